//! The account lifecycle over HTTP (security review, issue #9): a password an administrator
//! chose must be replaced before the account can act; disabling, a departure, a reset and a
//! revocation end sessions and live streams at once; the password policy refuses weak
//! passwords with a code naming the reason; every change is audited.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::browser::Browser;
use common::{ADMIN_PASSWORD, INITIAL_PASSWORD, PASSWORD, Reply, Server};
use custos_server::domain::role::Role;
use http_body_util::{BodyExt, Empty};
use hyper::Method;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// How long a test waits for something that should happen at once.
const WAIT: Duration = Duration::from_secs(20);

async fn admin(server: &Server) -> String {
    server.login("admin", ADMIN_PASSWORD).await
}

/// Create an account with [`INITIAL_PASSWORD`] (not activated); its id.
async fn create(server: &Server, admin: &str, body: Value) -> String {
    let mut body = body;
    body["password"] = json!(INITIAL_PASSWORD);
    let reply = server
        .call(Method::POST, "/api/v1/users", Some(admin), Some(body))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn login_status(server: &Server, username: &str, password: &str) -> u16 {
    server
        .call(
            Method::POST,
            "/api/v1/session",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
        .status
}

async fn post(server: &Server, token: &str, path: &str, body: Option<Value>) -> Reply {
    server.call(Method::POST, path, Some(token), body).await
}

/// The audit actions, oldest first, read directly.
async fn audit_actions(server: &Server) -> Vec<(String, String, String)> {
    server
        .state
        .store()
        .read(|c| {
            let mut stmt = c.prepare("SELECT actor, action, subject FROM audit ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap()
}

fn has_entry(entries: &[(String, String, String)], actor: &str, action: &str, subject: &str) {
    assert!(
        entries
            .iter()
            .any(|(a, b, c)| a == actor && b == action && c == subject),
        "no {action} by {actor} on {subject} in {entries:?}"
    );
}

#[tokio::test]
async fn a_new_officer_must_set_their_own_password_before_anything_else() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let id = create(
        &server,
        &admin,
        json!({"username": "officer", "roles": ["security_officer"]}),
    )
    .await;
    let officer = server.login("officer", INITIAL_PASSWORD).await;
    // Every call but the change (and logout) is refused, approvals included.
    for (method, path) in [
        (Method::GET, "/api/v1/people"),
        (Method::GET, "/api/v1/alerts"),
        (Method::POST, "/api/v1/signouts/1/approve"),
    ] {
        let reply = server
            .call(method.clone(), path, Some(&officer), None)
            .await;
        assert_eq!(
            (reply.status, reply.error()),
            (403, "password_change_required"),
            "{method} {path}"
        );
    }
    let change = |old: &str, new: &str| json!({"old": old, "new": new});
    let path = "/api/v1/session/password";
    let refusals = [
        (change("wrong password 99", PASSWORD), 403, "wrong_password"),
        (
            change(INITIAL_PASSWORD, INITIAL_PASSWORD),
            422,
            "password_unchanged",
        ),
        (
            change(INITIAL_PASSWORD, "Password1234!"),
            422,
            "password_common",
        ),
        (
            change(INITIAL_PASSWORD, "officer 2024 pw"),
            422,
            "password_contains_username",
        ),
        (change(INITIAL_PASSWORD, "short"), 422, "weak_password"),
    ];
    for (body, status, code) in refusals {
        let reply = post(&server, &officer, path, Some(body.clone())).await;
        assert_eq!((reply.status, reply.error()), (status, code), "{body}");
    }
    let reply = post(
        &server,
        &officer,
        path,
        Some(change(INITIAL_PASSWORD, PASSWORD)),
    )
    .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    // The same session may act at once; the password the administrator chose is gone.
    let reply = server
        .call(Method::GET, "/api/v1/people", Some(&officer), None)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        login_status(&server, "officer", INITIAL_PASSWORD).await,
        401
    );
    assert_eq!(login_status(&server, "officer", PASSWORD).await, 200);
    let entries = audit_actions(&server).await;
    has_entry(
        &entries,
        "officer",
        "user.password_change",
        &format!("user:{id}"),
    );
    // The first administrator chose their own password at init: not asked to change it.
    let reply = server
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    let users = reply.body.as_array().unwrap();
    assert_eq!(users[0]["must_change_password"], false);
    assert_eq!(users[1]["must_change_password"], false);
}

#[tokio::test]
async fn disabling_ends_sessions_and_logins_until_enabled() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let id = create(
        &server,
        &admin,
        json!({"username": "cust", "roles": ["custodian"]}),
    )
    .await;
    let custodian = server.activate("cust").await;
    let carriers = |token: String| {
        let server = &server;
        async move {
            server
                .call(Method::GET, "/api/v1/carriers", Some(&token), None)
                .await
                .status
        }
    };
    assert_eq!(carriers(custodian.clone()).await, 200);

    // Refusals change nothing.
    let reply = post(
        &server,
        &custodian,
        &format!("/api/v1/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(reply.status, 403, "not an administrator");
    let reply = post(&server, &admin, "/api/v1/users/999/disable", None).await;
    assert_eq!(reply.status, 404);
    let reply = post(&server, &admin, "/api/v1/users/1/disable", None).await;
    assert_eq!((reply.status, reply.error()), (422, "cannot_disable_self"));
    assert_eq!(carriers(custodian.clone()).await, 200);

    let reply = post(
        &server,
        &admin,
        &format!("/api/v1/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    assert_eq!(carriers(custodian.clone()).await, 401, "the token ended");
    assert_eq!(login_status(&server, "cust", PASSWORD).await, 401);
    let reply = server
        .call(
            Method::POST,
            "/api/v1/carriers",
            Some(&custodian),
            Some(
                json!({"control_no": "X-1", "kind": "paper", "level": "C", "title": "t",
                        "owner_unit": "u", "tags": []}),
            ),
        )
        .await;
    assert_eq!(reply.status, 401, "cannot register carriers");
    let reply = server
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    assert_eq!(reply.body[1]["disabled"], true);

    let reply = post(&server, &admin, &format!("/api/v1/users/{id}/enable"), None).await;
    assert_eq!(reply.status, 204);
    assert_eq!(login_status(&server, "cust", PASSWORD).await, 200);
    let entries = audit_actions(&server).await;
    has_entry(&entries, "admin", "user.disable", &format!("user:{id}"));
    has_entry(&entries, "admin", "user.enable", &format!("user:{id}"));
}

#[tokio::test]
async fn a_reset_ends_sessions_and_forces_a_change() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let id = create(
        &server,
        &admin,
        json!({"username": "guard1", "roles": ["guard"]}),
    )
    .await;
    let guard = server.activate("guard1").await;
    let path = format!("/api/v1/users/{id}/password");
    for (password, code) in [
        ("guard1guard1", "password_contains_username"),
        ("aaaaaaaaaaaa", "password_one_character"),
        ("qwertyqwerty", "password_common"),
        ("short", "weak_password"),
    ] {
        let reply = post(&server, &admin, &path, Some(json!({"password": password}))).await;
        assert_eq!((reply.status, reply.error()), (422, code), "{password}");
    }
    let reply = post(
        &server,
        &guard,
        &path,
        Some(json!({"password": "reset by guard 1"})),
    )
    .await;
    assert_eq!(reply.status, 403);
    let reply = server
        .call(Method::GET, "/api/v1/alerts", Some(&guard), None)
        .await;
    assert_eq!(reply.status, 200, "refusals changed nothing");

    let temporary = "reset passphrase 7";
    let reply = post(&server, &admin, &path, Some(json!({"password": temporary}))).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let reply = server
        .call(Method::GET, "/api/v1/alerts", Some(&guard), None)
        .await;
    assert_eq!(reply.status, 401, "sessions end at a reset");
    assert_eq!(login_status(&server, "guard1", PASSWORD).await, 401);
    let pending = server.login("guard1", temporary).await;
    let reply = server
        .call(Method::GET, "/api/v1/alerts", Some(&pending), None)
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, "password_change_required")
    );
    let reply = post(
        &server,
        &pending,
        "/api/v1/session/password",
        Some(json!({"old": temporary, "new": "my own secret words"})),
    )
    .await;
    assert_eq!(reply.status, 204);
    let reply = server
        .call(Method::GET, "/api/v1/alerts", Some(&pending), None)
        .await;
    assert_eq!(reply.status, 200);
    let entries = audit_actions(&server).await;
    has_entry(
        &entries,
        "admin",
        "user.password_reset",
        &format!("user:{id}"),
    );
    // Neither password is in the trail.
    let text = format!("{entries:?}");
    assert!(!text.contains(temporary) && !text.contains("my own secret words"));
}

#[tokio::test]
async fn sessions_are_listed_without_tokens_and_revoked() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let id = create(
        &server,
        &admin,
        json!({"username": "guard1", "roles": ["guard"]}),
    )
    .await;
    let first = server.activate("guard1").await;
    let second = server.login("guard1", PASSWORD).await;
    let path = format!("/api/v1/users/{id}/sessions");
    let reply = server.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(reply.status, 200);
    let list = reply.body.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let text = reply.body.to_string();
    assert!(!text.contains(&first) && !text.contains(&second));
    assert!(list[0]["created_at"].is_string() && list[0]["expires_at"].is_string());

    let reply = server.call(Method::GET, &path, Some(&first), None).await;
    assert_eq!(reply.status, 403);
    let reply = server.call(Method::DELETE, &path, Some(&first), None).await;
    assert_eq!(reply.status, 403);
    let reply = server
        .call(
            Method::GET,
            "/api/v1/users/999/sessions",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, 404);

    let reply = server.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!((reply.status, &reply.body), (200, &json!({"revoked": 2})));
    for token in [&first, &second] {
        let reply = server
            .call(Method::GET, "/api/v1/alerts", Some(token), None)
            .await;
        assert_eq!(reply.status, 401);
    }
    let reply = server.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(reply.body, json!([]));
    has_entry(
        &audit_actions(&server).await,
        "admin",
        "session.revoke",
        &format!("user:{id}"),
    );
}

#[tokio::test]
async fn changing_ones_password_ends_the_other_sessions() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    create(
        &server,
        &admin,
        json!({"username": "guard1", "roles": ["guard"]}),
    )
    .await;
    let here = server.activate("guard1").await;
    let elsewhere = server.login("guard1", PASSWORD).await;
    let reply = post(
        &server,
        &here,
        "/api/v1/session/password",
        Some(json!({"old": PASSWORD, "new": "another good phrase"})),
    )
    .await;
    assert_eq!(reply.status, 204);
    let status = |token: String| {
        let server = &server;
        async move {
            server
                .call(Method::GET, "/api/v1/alerts", Some(&token), None)
                .await
                .status
        }
    };
    assert_eq!(status(here).await, 200);
    assert_eq!(status(elsewhere).await, 401);
}

#[tokio::test]
async fn a_departed_persons_account_stops_working() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let officer = &tokens[&Role::SecurityOfficer];
    let admin = &tokens[&Role::Admin];
    let reply = post(
        &server,
        officer,
        "/api/v1/people",
        Some(json!({"name": "Li", "department": "R&D", "category": "general"})),
    )
    .await;
    assert_eq!(reply.status, 201);
    let person = reply.body["id"].as_str().unwrap().to_owned();
    let id = create(
        &server,
        admin,
        json!({"username": "li", "roles": ["custodian"], "person_id": person}),
    )
    .await;
    let li = server.activate("li").await;
    let reply = server
        .call(Method::GET, "/api/v1/carriers", Some(&li), None)
        .await;
    assert_eq!(reply.status, 200);

    for step in ["leave", "clearance", "depart"] {
        let reply = post(
            &server,
            officer,
            &format!("/api/v1/people/{person}/{step}"),
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{step}: {:?}", reply.body);
    }
    let reply = server
        .call(Method::GET, "/api/v1/carriers", Some(&li), None)
        .await;
    assert_eq!(reply.status, 401, "the token ended with the departure");
    assert_eq!(login_status(&server, "li", PASSWORD).await, 401);
    let reply = post(&server, admin, &format!("/api/v1/users/{id}/enable"), None).await;
    assert_eq!((reply.status, reply.error()), (422, "person_departed"));
    // Nor can a new account be linked to the departed person.
    let reply = server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(admin),
            Some(json!({"username": "li2", "password": INITIAL_PASSWORD,
                        "roles": ["custodian"], "person_id": person})),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (422, "person_departed"));
    has_entry(
        &audit_actions(&server).await,
        "security_officer",
        "user.disable",
        &format!("user:{id}"),
    );
}

#[tokio::test]
async fn weak_passwords_are_refused_with_their_reason_and_nothing_is_created() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let before = server.rows("users").await;
    for (username, password, code) in [
        ("wang.wei", "wang.wei", "weak_password"),
        ("wang.wei", "wang.wei.2024!", "password_contains_username"),
        (
            "wang.wei",
            "my WANG.WEI account",
            "password_contains_username",
        ),
        ("wang.wei", "aaaaaaaaaaaa", "password_one_character"),
        ("wang.wei", "            ", "password_one_character"),
        ("wang.wei", "password1234", "password_common"),
        ("wang.wei", "1q2w3e4r5t6y", "password_common"),
    ] {
        let reply = server
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({"username": username, "password": password, "roles": ["guard"]})),
            )
            .await;
        assert_eq!((reply.status, reply.error()), (422, code), "{password:?}");
    }
    assert_eq!(server.rows("users").await, before);
}

// ---------------------------------------------------------------------------------------
// Live streams end with their session
// ---------------------------------------------------------------------------------------

/// A live `GET /alerts/stream` as `token`: the body, after the `hello` event.
async fn stream(addr: SocketAddr, token: &str) -> Incoming {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(Method::GET)
        .uri("/api/v1/alerts/stream")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("send");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut seen = String::new();
    while !seen.contains("event: hello") {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("hello within the wait")
            .expect("stream open")
            .expect("frame");
        if let Ok(bytes) = frame.into_data() {
            seen.push_str(std::str::from_utf8(&bytes).unwrap());
        }
    }
    body
}

/// Wait until the stream's body ends (keep-alive comments and events are skipped).
async fn ended(mut body: Incoming) {
    tokio::time::timeout(WAIT, async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await
    .expect("the stream is still open after its session ended");
}

#[tokio::test]
async fn a_stream_ends_at_logout_and_others_stay_open() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let guard = &tokens[&Role::Guard];
    let other = server.login("guard", PASSWORD).await;
    let body = stream(server.addr, guard).await;
    let mut other_body = stream(server.addr, &other).await;
    let reply = server
        .call(Method::DELETE, "/api/v1/session", Some(guard), None)
        .await;
    assert_eq!(reply.status, 204);
    ended(body).await;
    // The other session's stream is still open: it answers no end within a short look.
    let still_open = tokio::time::timeout(Duration::from_millis(300), other_body.frame()).await;
    assert!(still_open.is_err(), "the other session's stream ended too");
}

#[tokio::test]
async fn a_stream_ends_when_its_user_is_disabled_or_its_sessions_revoked() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let admin = &tokens[&Role::Admin];
    let reply = server
        .call(Method::GET, "/api/v1/users", Some(admin), None)
        .await;
    let id_of = |name: &str| {
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (guard, officer) = (id_of("guard"), id_of("security_officer"));
    let body = stream(server.addr, &tokens[&Role::Guard]).await;
    let reply = post(
        &server,
        admin,
        &format!("/api/v1/users/{guard}/disable"),
        None,
    )
    .await;
    assert_eq!(reply.status, 204);
    ended(body).await;

    let body = stream(server.addr, &tokens[&Role::SecurityOfficer]).await;
    let reply = server
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{officer}/sessions"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    ended(body).await;
}

#[tokio::test]
async fn a_stream_ends_when_its_session_expires() {
    let server = Server::start_with(|c| c.session_ttl_secs = 8).await;
    let admin = admin(&server).await;
    create(
        &server,
        &admin,
        json!({"username": "guard1", "roles": ["guard"]}),
    )
    .await;
    server.activate("guard1").await;
    let guard = server.login("guard1", PASSWORD).await;
    let body = stream(server.addr, &guard).await;
    // Nobody ends the session: its expiry alone closes the stream.
    ended(body).await;
}

// ---------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pages_force_the_change_and_give_the_admin_the_account_actions() {
    let server = Server::start().await;
    let admin_token = admin(&server).await;
    let id = create(
        &server,
        &admin_token,
        json!({"username": "guard1", "roles": ["guard"]}),
    )
    .await;

    // The new guard sees nothing but the change-password form until it is done.
    let mut guard = Browser::new(&server).with_header("accept-language", "en");
    assert_eq!(guard.sign_in("guard1", INITIAL_PASSWORD).await.status, 303);
    let console = guard.get("/guard").await;
    assert_eq!(
        (console.status, console.location()),
        (303, "/account/password")
    );
    let (form, csrf) = guard.page("/account/password").await;
    assert!(
        form.body.contains(r#"id="password-required""#),
        "{}",
        form.body
    );
    let change = |new: &'static str, confirm: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("old", INITIAL_PASSWORD.to_owned()),
            ("new", new.to_owned()),
            ("confirm", confirm.to_owned()),
        ]
    };
    for (fields, status, field) in [
        (
            change("my own secret words", "other words here"),
            422,
            "confirm",
        ),
        (change("qwertyqwerty", "qwertyqwerty"), 422, "new"),
    ] {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = guard.post_form("/account/password", &pairs).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        assert!(
            answer.body.contains(&format!(r#"data-field="{field}""#)),
            "{}",
            answer.body
        );
    }
    let fields = change("my own secret words", "my own secret words");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = guard.post_form("/account/password", &pairs).await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, "/"),
        "{}",
        answer.body
    );
    assert_eq!(guard.get("/guard").await.status, 200);

    // The administrator's list has the actions, in both languages.
    let mut zh = Browser::new(&server);
    assert_eq!(zh.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let (list, _) = zh.page("/admin/users").await;
    assert!(
        list.body.contains("停用") && list.body.contains("重置密码"),
        "{}",
        list.body
    );
    let mut en = Browser::new(&server).with_header("accept-language", "en");
    assert_eq!(en.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let (list, csrf) = en.page("/admin/users").await;
    for hook in [
        "form class=\"user-disable\"",
        "form class=\"user-reset\"",
        "class=\"user-sessions\"",
    ] {
        assert!(list.body.contains(hook), "{hook}: {}", list.body);
    }
    assert!(list.body.contains("Disable") && list.body.contains("Reset password"));

    // Refusals: one's own account, a weak temporary password.
    let answer = en
        .post_form("/admin/users/1/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer.body.contains(r#"id="user-action-error""#),
        "{}",
        answer.body
    );
    let answer = en
        .post_form(
            &format!("/admin/users/{id}/password"),
            &[("csrf", &csrf), ("password", "password1234")],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("too common"), "{}", answer.body);

    let (sessions, _) = en.page(&format!("/admin/users/{id}/sessions")).await;
    assert_eq!(
        sessions.tags("data-session-id").len(),
        1,
        "{}",
        sessions.body
    );
    let answer = en
        .post_form(&format!("/admin/users/{id}/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (answer.status, answer.location()),
        (303, "/admin/users?updated=guard1")
    );
    let (list, _) = en.page("/admin/users").await;
    assert!(list.body.contains("disabled-tag") && list.body.contains("form class=\"user-enable\""));
    // The guard's session ended with the account.
    let console = guard.get("/guard").await;
    assert_eq!(console.status, 303);
    assert!(
        console.location().starts_with("/login"),
        "{}",
        console.location()
    );
    let answer = en
        .post_form(&format!("/admin/users/{id}/enable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 303);
    let answer = en
        .post_form(
            &format!("/admin/users/{id}/password"),
            &[("csrf", &csrf), ("password", "reset passphrase 7")],
        )
        .await;
    assert_eq!(answer.status, 303);
    let (list, _) = en.page("/admin/users").await;
    assert!(list.body.contains("must-change-tag"));
}
