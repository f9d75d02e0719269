//! API tests against the real router on a real socket (127.0.0.1:0).

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{ADMIN_PASSWORD, PASSWORD, Reply, Server, raw_request};
use custos_server::audit::Verdict;
use custos_server::domain::ids::AuditId;
use custos_server::domain::role::Role;
use custos_server::service::audit::verify_chain;
use hyper::Method;
use serde_json::{Value, json};

fn key_b64(n: u32) -> String {
    common::device_key_b64(n)
}

/// Zones `in` (S) and `out` (public) and person 1, for endpoints that need them.
async fn seed(server: &Server, tokens: &HashMap<Role, String>) {
    for (id, level) in [("in", "S"), ("out", "public")] {
        let reply = server
            .call(
                Method::POST,
                "/api/v1/zones",
                Some(&tokens[&Role::Admin]),
                Some(json!({"id": id, "name": format!("zone {id}"), "level": level})),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let reply = server
        .call(
            Method::POST,
            "/api/v1/people",
            Some(&tokens[&Role::SecurityOfficer]),
            Some(json!({"name": "Li Wei", "department": "R&D", "category": "important"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["id"], "1");
}

struct Endpoint {
    method: Method,
    path: &'static str,
    allowed: &'static [Role],
    success: u16,
    body: fn(u32) -> Option<Value>,
}

fn endpoints() -> Vec<Endpoint> {
    use Role::*;
    let all: &'static [Role] = &[Admin, SecurityOfficer, Custodian, Guard, Auditor];
    vec![
        Endpoint {
            method: Method::POST,
            path: "/api/v1/users",
            allowed: &[Admin],
            success: 201,
            body: |n| {
                Some(json!({"username": format!("u{n}"), "password": PASSWORD, "roles": ["guard"]}))
            },
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/users",
            allowed: &[Admin],
            success: 200,
            body: |_| None,
        },
        Endpoint {
            method: Method::POST,
            path: "/api/v1/people",
            allowed: &[SecurityOfficer],
            success: 201,
            body: |n| {
                Some(
                    json!({"name": format!("P {n}"), "department": "D", "category": "general",
                                  "badge_tag": format!("b{n}"), "training_valid_until": "2030-01-01",
                                  "commitment_signed_on": "2024-01-01"}),
                )
            },
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/people",
            allowed: &[SecurityOfficer, Custodian, Admin],
            success: 200,
            body: |_| None,
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/people/1",
            allowed: &[SecurityOfficer, Custodian, Admin],
            success: 200,
            body: |_| None,
        },
        Endpoint {
            method: Method::POST,
            path: "/api/v1/zones",
            allowed: &[Admin],
            success: 201,
            body: |n| Some(json!({"id": format!("z{n}"), "name": "Z", "level": "TS"})),
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/zones",
            allowed: all,
            success: 200,
            body: |_| None,
        },
        Endpoint {
            method: Method::POST,
            path: "/api/v1/devices",
            allowed: &[Admin],
            success: 201,
            body: |n| {
                Some(
                    json!({"id": format!("gate-{n}"), "kind": "gate", "public_key": key_b64(n),
                                  "inside_zone": "in", "outside_zone": "out"}),
                )
            },
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/devices",
            allowed: &[Admin, SecurityOfficer],
            success: 200,
            body: |_| None,
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/audit",
            allowed: &[Auditor],
            success: 200,
            body: |_| None,
        },
        Endpoint {
            method: Method::DELETE,
            path: "/api/v1/session",
            allowed: all,
            success: 204,
            body: |_| None,
        },
    ]
}

#[tokio::test]
async fn role_matrix() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    seed(&server, &tokens).await;
    let mut n = 0;
    for ep in endpoints() {
        for role in Role::ALL {
            n += 1;
            let before = server.audit_count().await;
            // Logout ends the session it is called with: use a throwaway session for it.
            let token = if ep.path == "/api/v1/session" {
                let name = role.as_str();
                let password = if role == Role::Admin {
                    ADMIN_PASSWORD
                } else {
                    PASSWORD
                };
                server.login(name, password).await
            } else {
                tokens[&role].clone()
            };
            let before = if ep.path == "/api/v1/session" {
                before + 1
            } else {
                before
            };
            let reply = server
                .call(ep.method.clone(), ep.path, Some(&token), (ep.body)(n))
                .await;
            let allowed = ep.allowed.contains(&role);
            let expected = if allowed { ep.success } else { 403 };
            assert_eq!(
                reply.status, expected,
                "{} {} as {role}: {:?}",
                ep.method, ep.path, reply.body
            );
            let changed = server.audit_count().await - before;
            let writes = allowed && ep.method != Method::GET;
            assert_eq!(
                changed,
                i64::from(writes),
                "{} {} as {role}: audit entries",
                ep.method,
                ep.path
            );
            if !allowed {
                assert_eq!(reply.error(), "forbidden");
            }
        }
        // No token, and a token that was never issued.
        for token in [None, Some("not-a-session-token")] {
            let reply = server
                .call(ep.method.clone(), ep.path, token, (ep.body)(1000))
                .await;
            assert_eq!(
                reply.status, 401,
                "{} {} with {token:?}",
                ep.method, ep.path
            );
            assert_eq!(reply.error(), "unauthenticated");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_and_login_need_no_session() {
    let server = Server::start().await;
    let reply = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let reply = server
        .call(
            Method::POST,
            "/api/v1/session",
            None,
            Some(json!({"username": "ADMIN", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 200, "usernames are case-insensitive");
    assert_eq!(reply.body["roles"], json!(["admin"]));
    assert_eq!(reply.body["token"].as_str().unwrap().len(), 43);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_wrong_passwords_block_the_username_without_a_password_check() {
    let server = Server::start().await;
    let login = |username: &'static str, password: &'static str| {
        let server = &server;
        async move {
            server
                .call(
                    Method::POST,
                    "/api/v1/session",
                    None,
                    Some(json!({"username": username, "password": password})),
                )
                .await
        }
    };
    let wrong = "not-the-admin-password";
    // Five free failures, and a sixth that is still checked (and starts a 1-s block).
    for n in 1..=6 {
        let reply = login("admin", wrong).await;
        assert_eq!(
            (reply.status, reply.error()),
            (401, "invalid_credentials"),
            "try {n}"
        );
    }
    // Now even the right password is refused, under any spelling of the name. The block is
    // 1 s in whole seconds of the server's clock: Retry-After is 2 (or 1 if a second ticked).
    let retry_after = |reply: &Reply| -> u64 {
        reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    for name in ["admin", "ADMIN"] {
        let reply = login(name, ADMIN_PASSWORD).await;
        assert_eq!((reply.status, reply.error()), (429, "too_many_attempts"));
        assert!((1..=2).contains(&retry_after(&reply)));
    }
    // Another account is not affected.
    assert_eq!(login("guard9", wrong).await.status, 401);
    // After the block the right password opens a session, and the count starts over.
    server.advance(2);
    assert_eq!(login("admin", ADMIN_PASSWORD).await.status, 200);
    for _ in 1..=6 {
        assert_eq!(login("admin", wrong).await.status, 401);
    }
    assert_eq!(login("admin", wrong).await.status, 429);
    // A failure after a block doubles the next one.
    server.advance(2);
    assert_eq!(login("admin", wrong).await.status, 401);
    let reply = login("admin", ADMIN_PASSWORD).await;
    assert_eq!(reply.status, 429);
    assert!((2..=3).contains(&retry_after(&reply)));
    server.stop().await.unwrap();
}

/// Each case: what to send, as whom, what to expect; nothing may change in the database.
struct BadInput {
    what: &'static str,
    method: Method,
    path: &'static str,
    role: Option<Role>,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    status: u16,
    error: &'static str,
}

fn bad(
    what: &'static str,
    method: Method,
    path: &'static str,
    role: Option<Role>,
    body: &str,
    status: u16,
    error: &'static str,
) -> BadInput {
    BadInput {
        what,
        method,
        path,
        role,
        body: body.as_bytes().to_vec(),
        content_type: Some("application/json"),
        status,
        error,
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    use Role::*;
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    seed(&server, &tokens).await;
    let (users, post, get) = ("/api/v1/users", Method::POST, Method::GET);
    let big = format!(
        r#"{{"username":"big","password":"{}","roles":["guard"]}}"#,
        "x".repeat(20 * 1024)
    );
    let mut cases = vec![
        bad(
            "malformed json",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username": "#,
            400,
            "bad_request",
        ),
        bad(
            "not an object",
            post.clone(),
            users,
            Some(Admin),
            "[1,2]",
            400,
            "bad_request",
        ),
        bad(
            "wrong type",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x1","password":"long enough password","roles":"guard"}"#,
            400,
            "bad_request",
        ),
        bad(
            "unknown role",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x1","password":"long enough password","roles":["root"]}"#,
            400,
            "bad_request",
        ),
        bad(
            "unknown field",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x1","password":"long enough password","roles":["guard"],"email":"a@b"}"#,
            400,
            "bad_request",
        ),
        bad(
            "missing field",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x1","roles":["guard"]}"#,
            400,
            "bad_request",
        ),
        bad(
            "oversized body",
            post.clone(),
            users,
            Some(Admin),
            &big,
            413,
            "payload_too_large",
        ),
        bad(
            "duplicate username, other case",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"GUARD","password":"long enough password","roles":["guard"]}"#,
            409,
            "conflict",
        ),
        bad(
            "exclusive roles",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x2","password":"long enough password","roles":["admin","auditor"]}"#,
            422,
            "role_conflict",
        ),
        bad(
            "no roles",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x2","password":"long enough password","roles":[]}"#,
            422,
            "role_conflict",
        ),
        bad(
            "weak password",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x3","password":"short","roles":["guard"]}"#,
            422,
            "weak_password",
        ),
        bad(
            "invalid username",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x y","password":"long enough password","roles":["guard"]}"#,
            400,
            "bad_request",
        ),
        bad(
            "unknown person",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x4","password":"long enough password","roles":["guard"],"person_id":"99"}"#,
            422,
            "unknown_reference",
        ),
        bad(
            "bad zone level",
            post.clone(),
            "/api/v1/zones",
            Some(Admin),
            r#"{"id":"z9","name":"Z","level":"secret"}"#,
            400,
            "bad_request",
        ),
        bad(
            "bad zone id",
            post.clone(),
            "/api/v1/zones",
            Some(Admin),
            r#"{"id":"z 9","name":"Z","level":"S"}"#,
            400,
            "bad_request",
        ),
        bad(
            "blank zone name",
            post.clone(),
            "/api/v1/zones",
            Some(Admin),
            r#"{"id":"z9","name":"  ","level":"S"}"#,
            400,
            "bad_request",
        ),
        bad(
            "duplicate zone",
            post.clone(),
            "/api/v1/zones",
            Some(Admin),
            r#"{"id":"in","name":"again","level":"S"}"#,
            409,
            "conflict",
        ),
        bad(
            "gate without outside zone",
            post.clone(),
            "/api/v1/devices",
            Some(Admin),
            &format!(
                r#"{{"id":"g1","kind":"gate","public_key":"{}","inside_zone":"in"}}"#,
                key_b64(1)
            ),
            422,
            "invalid_placement",
        ),
        bad(
            "cabinet without zone",
            post.clone(),
            "/api/v1/devices",
            Some(Admin),
            &format!(
                r#"{{"id":"c1","kind":"cabinet","public_key":"{}"}}"#,
                key_b64(1)
            ),
            422,
            "invalid_placement",
        ),
        bad(
            "unknown zone",
            post.clone(),
            "/api/v1/devices",
            Some(Admin),
            &format!(
                r#"{{"id":"c1","kind":"cabinet","public_key":"{}","zone":"nowhere"}}"#,
                key_b64(1)
            ),
            422,
            "unknown_reference",
        ),
        bad(
            "short public key",
            post.clone(),
            "/api/v1/devices",
            Some(Admin),
            &format!(
                r#"{{"id":"c1","kind":"cabinet","public_key":"{}","zone":"in"}}"#,
                STANDARD.encode([1; 31])
            ),
            400,
            "bad_request",
        ),
        bad(
            "unknown device kind",
            post.clone(),
            "/api/v1/devices",
            Some(Admin),
            &format!(
                r#"{{"id":"c1","kind":"door","public_key":"{}","zone":"in"}}"#,
                key_b64(1)
            ),
            400,
            "bad_request",
        ),
        bad(
            "impossible date",
            post.clone(),
            "/api/v1/people",
            Some(SecurityOfficer),
            r#"{"name":"N","department":"D","category":"core","training_valid_until":"2025-13-01"}"#,
            400,
            "bad_request",
        ),
        bad(
            "unknown category",
            post.clone(),
            "/api/v1/people",
            Some(SecurityOfficer),
            r#"{"name":"N","department":"D","category":"secret"}"#,
            400,
            "bad_request",
        ),
        bad(
            "blank name",
            post.clone(),
            "/api/v1/people",
            Some(SecurityOfficer),
            r#"{"name":"","department":"D","category":"core"}"#,
            400,
            "bad_request",
        ),
        bad(
            "bad audit cursor",
            get.clone(),
            "/api/v1/audit?after=abc",
            Some(Auditor),
            "",
            400,
            "bad_request",
        ),
        bad(
            "unknown query key",
            get.clone(),
            "/api/v1/audit?since=1",
            Some(Auditor),
            "",
            400,
            "bad_request",
        ),
        bad(
            "non-numeric person",
            get.clone(),
            "/api/v1/people/abc",
            Some(SecurityOfficer),
            "",
            404,
            "not_found",
        ),
        bad(
            "unknown person id",
            get.clone(),
            "/api/v1/people/99",
            Some(SecurityOfficer),
            "",
            404,
            "not_found",
        ),
        bad(
            "unknown route",
            get.clone(),
            "/api/v1/nothing",
            None,
            "",
            404,
            "not_found",
        ),
        bad(
            "wrong method",
            Method::PUT,
            "/api/v1/zones",
            Some(Admin),
            "",
            405,
            "method_not_allowed",
        ),
        bad(
            "wrong password",
            post.clone(),
            "/api/v1/session",
            None,
            r#"{"username":"admin","password":"wrong password!"}"#,
            401,
            "invalid_credentials",
        ),
        bad(
            "unknown user",
            post.clone(),
            "/api/v1/session",
            None,
            r#"{"username":"nobody","password":"wrong password!"}"#,
            401,
            "invalid_credentials",
        ),
    ];
    cases.push(BadInput {
        content_type: None,
        ..bad(
            "no content type",
            post.clone(),
            users,
            Some(Admin),
            r#"{"username":"x5","password":"long enough password","roles":["guard"]}"#,
            415,
            "unsupported_media_type",
        )
    });
    let tables = ["audit", "users", "people", "zones", "devices", "sessions"];
    for case in cases {
        let mut before = Vec::new();
        for t in tables {
            before.push(server.rows(t).await);
        }
        let auth = case.role.map(|r| format!("Bearer {}", tokens[&r]));
        let mut headers = Vec::new();
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        if let Some(ct) = case.content_type {
            headers.push(("content-type", ct));
        }
        let body = (!case.body.is_empty()).then(|| case.body.clone());
        let reply: Reply =
            raw_request(server.addr, case.method.clone(), case.path, &headers, body).await;
        assert_eq!(reply.status, case.status, "{}: {:?}", case.what, reply.body);
        assert_eq!(reply.error(), case.error, "{}: {:?}", case.what, reply.body);
        assert!(reply.body["message"].is_string(), "{}", case.what);
        assert_eq!(
            reply
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "{}",
            case.what
        );
        for (t, n) in tables.iter().zip(before) {
            assert_eq!(server.rows(t).await, n, "{}: table {t} changed", case.what);
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_header_to_change_state() {
    let server = Server::start().await;
    let reply = server
        .call(
            Method::POST,
            "/api/v1/session",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let token = reply.body["token"].as_str().unwrap();
    assert!(
        set_cookie.starts_with(&format!("custos_session={token};")),
        "{set_cookie}"
    );
    let csrf = reply.body["csrf_token"].as_str().unwrap().to_owned();
    let cookie = format!("theme=dark; custos_session={token}");
    let zone = br#"{"id":"c1","name":"Cookie zone","level":"C"}"#.to_vec();
    let json = ("content-type", "application/json");

    let reply = raw_request(
        server.addr,
        Method::GET,
        "/api/v1/zones",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "reads need no CSRF token");

    let before = server.audit_count().await;
    for csrf_header in [None, Some("wrong"), Some("")] {
        let mut headers = vec![("cookie", cookie.as_str()), json];
        if let Some(h) = csrf_header {
            headers.push(("x-csrf-token", h));
        }
        let reply = raw_request(
            server.addr,
            Method::POST,
            "/api/v1/zones",
            &headers,
            Some(zone.clone()),
        )
        .await;
        assert_eq!(
            (reply.status, reply.error()),
            (403, "csrf"),
            "{csrf_header:?}"
        );
    }
    assert_eq!(server.audit_count().await, before);

    let headers = [
        ("cookie", cookie.as_str()),
        json,
        ("x-csrf-token", csrf.as_str()),
    ];
    let reply = raw_request(
        server.addr,
        Method::POST,
        "/api/v1/zones",
        &headers,
        Some(zone.clone()),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);

    // A bearer request needs no CSRF token.
    let reply = server
        .call(
            Method::POST,
            "/api/v1/zones",
            Some(token),
            Some(json!({"id":"c2","name":"B","level":"C"})),
        )
        .await;
    assert_eq!(reply.status, 201);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn logout_and_expiry_end_a_session() {
    let server = Server::start().await;
    let token = server.login("admin", ADMIN_PASSWORD).await;
    let reply = server
        .call(Method::DELETE, "/api/v1/session", Some(&token), None)
        .await;
    assert_eq!(reply.status, 204);
    assert!(
        reply.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let reply = server
        .call(Method::GET, "/api/v1/zones", Some(&token), None)
        .await;
    assert_eq!(reply.status, 401);
    let reply = server
        .call(Method::DELETE, "/api/v1/session", Some(&token), None)
        .await;
    assert_eq!(reply.status, 401, "a second logout has no session");

    let token = server.login("admin", ADMIN_PASSWORD).await;
    let ttl = server.state.settings().session_ttl_secs as i64;
    server.clock_offset.store(ttl - 1, Ordering::SeqCst);
    assert_eq!(
        server
            .call(Method::GET, "/api/v1/zones", Some(&token), None)
            .await
            .status,
        200
    );
    server.clock_offset.store(ttl, Ordering::SeqCst);
    assert_eq!(
        server
            .call(Method::GET, "/api/v1/zones", Some(&token), None)
            .await
            .status,
        401
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn created_resources_read_back() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    seed(&server, &tokens).await;
    let admin = &tokens[&Role::Admin];
    let officer = &tokens[&Role::SecurityOfficer];

    let reply = server
        .call(Method::POST, "/api/v1/people", Some(officer), Some(json!({
            "name": "Zhang San", "department": "Archive", "category": "core", "badge_tag": "BADGE-7",
            "training_valid_until": "2027-06-30", "commitment_signed_on": "2024-01-15"})))
        .await;
    assert_eq!(reply.status, 201);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let person = server
        .call(
            Method::GET,
            &format!("/api/v1/people/{id}"),
            Some(officer),
            None,
        )
        .await;
    assert_eq!(person.body["name"], "Zhang San");
    assert_eq!(person.body["category"], "core");
    assert_eq!(person.body["status"], "active");
    assert_eq!(person.body["training_valid_until"], "2027-06-30");
    let dup = server
        .call(
            Method::POST,
            "/api/v1/people",
            Some(officer),
            Some(json!({
            "name": "Other", "department": "A", "category": "general", "badge_tag": "BADGE-7"})),
        )
        .await;
    assert_eq!(dup.status, 409, "badge tags are unique");

    let reply = server
        .call(Method::POST, "/api/v1/users", Some(admin), Some(json!({
            "username": "zhang", "password": PASSWORD, "roles": ["custodian", "guard"], "person_id": id})))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let users = server
        .call(Method::GET, "/api/v1/users", Some(admin), None)
        .await;
    let zhang = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "zhang")
        .unwrap();
    assert_eq!(zhang["roles"], json!(["custodian", "guard"]));
    assert_eq!(zhang["person_id"], json!(id));
    let listing = users.body.to_string();
    assert!(
        !listing.contains("argon2") && !listing.contains("password_hash"),
        "{listing}"
    );

    let key = key_b64(77);
    let reply = server
        .call(
            Method::POST,
            "/api/v1/devices",
            Some(admin),
            Some(json!({
            "id": "cab-1", "kind": "cabinet", "public_key": key, "zone": "in"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = server
        .call(
            Method::POST,
            "/api/v1/devices",
            Some(admin),
            Some(json!({
            "id": "cab-2", "kind": "cabinet", "public_key": key, "zone": "in"})),
        )
        .await;
    assert_eq!(reply.status, 409, "a public key belongs to one device");
    let devices = server
        .call(Method::GET, "/api/v1/devices", Some(officer), None)
        .await;
    assert_eq!(
        devices.body,
        json!([{
        "id": "cab-1", "kind": "cabinet", "public_key": key, "inside_zone": null,
        "outside_zone": null, "zone": "in", "created_at": devices.body[0]["created_at"],
        "revoked_at": null}])
    );
    let zones = server
        .call(
            Method::GET,
            "/api/v1/zones",
            Some(&tokens[&Role::Guard]),
            None,
        )
        .await;
    let levels: Vec<_> = zones
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["level"].clone())
        .collect();
    assert_eq!(levels, [json!("S"), json!("public")]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_audit_trail_records_every_change_without_secrets() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    seed(&server, &tokens).await;
    let auditor = &tokens[&Role::Auditor];
    let reply = server
        .call(Method::GET, "/api/v1/audit", Some(auditor), None)
        .await;
    let entries = reply.body.as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[0], "user.create");
    assert_eq!(entries[0]["actor"], "@init");
    for action in ["session.create", "zone.create", "person.create"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        assert_eq!(
            pair[1]["id"].as_str().unwrap().parse::<i64>().unwrap(),
            pair[0]["id"].as_str().unwrap().parse::<i64>().unwrap() + 1
        );
    }
    let text = reply.body.to_string();
    for secret in [ADMIN_PASSWORD, PASSWORD, "argon2", &tokens[&Role::Guard]] {
        assert!(!text.contains(secret), "the audit trail holds a secret");
    }
    let page = server
        .call(
            Method::GET,
            "/api/v1/audit?after=3&limit=2",
            Some(auditor),
            None,
        )
        .await;
    let ids: Vec<_> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, [json!("4"), json!("5")]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_writes_share_transactions_and_keep_the_chain_intact() {
    let server = Server::start().await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    let before = server.audit_count().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let addr = server.addr;
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            // Every fifth request collides with an earlier id and must fail alone.
            let id = if i % 5 == 4 {
                format!("z{}", i - 1)
            } else {
                format!("z{i}")
            };
            common::call(
                addr,
                Method::POST,
                "/api/v1/zones",
                Some(&admin),
                Some(json!({"id": id, "name": "Z", "level": "C"})),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(created, 32, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(server.audit_count().await, before + 32);
    assert_eq!(server.rows("zones").await, 32);
    let verdict = verify_chain(server.state.store(), server.public_key())
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Intact { .. }), "{verdict:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_signs_the_chain_head() {
    let server = Server::start().await;
    server.login("admin", ADMIN_PASSWORD).await;
    let last = server.audit_count().await;
    let store = server.state.store().clone();
    let key = server.public_key();
    server.stop().await.unwrap();
    assert_eq!(
        verify_chain(&store, key).await.unwrap(),
        Verdict::Intact {
            entries: last,
            signed_through: Some(AuditId(last))
        }
    );
}
