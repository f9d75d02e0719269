//! The pages against the real server on a real socket (127.0.0.1:0), driven like a browser
//! without script: a cookie jar, forms posted as `application/x-www-form-urlencoded`, HTML
//! checked by its stable ids and classes (listed in `server/src/web/mod.rs`).

mod common;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::browser::Browser;
use common::{ADMIN_PASSWORD, PASSWORD, Server};
use custos_server::domain::role::Role;
use custos_server::web::form::encode;
use hyper::Method;

/// A carrier title that must never reach the guard console.
const TITLE: &str = "XYZZY 绝密 reactor drawings";

/// A server whose background sweeps stay out of the way (tests seed alerts themselves).
async fn start() -> Server {
    Server::start_with(|c| {
        c.sweep_interval_ms = 3_600_000;
        c.silence_watch = false;
    })
    .await
}

fn password(role: Role) -> &'static str {
    if role == Role::Admin {
        ADMIN_PASSWORD
    } else {
        PASSWORD
    }
}

/// One signed-in browser per role (accounts named after their role).
async fn browsers(server: &Server) -> HashMap<Role, Browser> {
    server.tokens_per_role().await;
    let mut out = HashMap::new();
    for role in Role::ALL {
        let mut b = Browser::new(server);
        let answer = b.sign_in(role.as_str(), password(role)).await;
        assert_eq!(answer.status, 303, "{role}: {}", answer.body);
        out.insert(role, b);
    }
    out
}

async fn count(server: &Server, sql: &'static str) -> i64 {
    server
        .state
        .store()
        .read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_form_says_when_a_username_is_blocked_after_repeated_failures() {
    let server = start().await;
    let mut b = Browser::new(&server);
    for _ in 0..6 {
        assert_eq!(b.sign_in("admin", "wrong password!").await.status, 401);
    }
    let blocked = b.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(blocked.status, 429);
    assert!(blocked.body.contains(r#"id="login-error""#));
    assert!(blocked.body.contains("登录失败次数过多"));
    assert!(["1", "2"].contains(&blocked.header("retry-after")));
    assert!(b.cookie("custos_session").is_none());
}

#[tokio::test]
async fn signing_in_through_the_form_sets_the_api_cookie_and_redirects() {
    let server = start().await;
    let mut b = Browser::new(&server);
    let form = b.get("/login?next=/audit").await;
    assert_eq!(form.status, 200);
    assert!(form.is_html());
    for id in ["login-username", "login-password", "login-submit"] {
        assert!(form.body.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    let login_cookie = form.set_cookies().join("\n");
    assert!(login_cookie.contains("custos_login=") && login_cookie.contains("HttpOnly"));
    assert!(login_cookie.contains("SameSite=Strict") && login_cookie.contains("Path=/login"));
    assert_eq!(
        form.attr_after(r#"name="next""#, "value").as_deref(),
        Some("/audit")
    );

    // A wrong password: the form again, 401, the username kept, no session.
    let token = form.attr_after(r#"name="csrf""#, "value").unwrap();
    let refused = b
        .post_form(
            "/login",
            &[
                ("csrf", &token),
                ("username", "admin"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains(r#"id="login-error""#));
    assert!(refused.body.contains("用户名或密码错误"));
    assert!(refused.body.contains(r#"value="admin""#));
    assert!(!refused.body.contains("wrong password!"));
    assert!(b.cookie("custos_session").is_none());

    // Without the double-submit token: refused before the password is looked at.
    let mut other = Browser::new(&server);
    let forged = other
        .post_form(
            "/login",
            &[
                ("csrf", "forged"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(other.cookie("custos_session").is_none());

    // The right password: 303 to `next`, the session cookie with the API's attributes.
    let accepted = b
        .post_form(
            "/login",
            &[
                ("csrf", &token),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", "/admin/zones"),
            ],
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    assert_eq!(accepted.location(), "/admin/zones");
    let session = accepted
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("custos_session="))
        .expect("session cookie")
        .to_owned();
    for attr in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "secure_cookies is off by default"
    );

    // The cookie is the API's session: JSON endpoints accept it.
    let users = b.get("/api/v1/users").await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.body.starts_with('['));

    // Home sends the administrator to the first page the role allows; /login to home.
    let home = b.get("/").await;
    assert_eq!((home.status, home.location()), (303, "/admin/start"));
    let again = b.get("/login").await;
    assert_eq!((again.status, again.location()), (303, "/"));

    // An off-site `next` is ignored.
    let mut third = Browser::new(&server);
    let form = third.get("/login").await;
    let token = form.attr_after(r#"name="csrf""#, "value").unwrap();
    let answer = third
        .post_form(
            "/login",
            &[
                ("csrf", &token),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_page_answers_each_role_with_the_page_or_a_403_page() {
    let server = start().await;
    let mut browsers = browsers(&server).await;
    use Role::*;
    let pages: &[(&str, &[Role])] = &[
        ("/guard", &[Guard, SecurityOfficer]),
        ("/officer", &[SecurityOfficer]),
        ("/guard/status.json", &[Guard, SecurityOfficer]),
        ("/admin/start", &[Admin]),
        ("/admin/users", &[Admin]),
        ("/admin/devices", &[Admin]),
        ("/admin/zones", &[Admin]),
        ("/audit", &[Auditor]),
    ];
    for (path, allowed) in pages {
        for role in Role::ALL {
            let b = browsers.get_mut(&role).unwrap();
            let answer = b.get(path).await;
            if allowed.contains(&role) {
                assert_eq!(answer.status, 200, "{path} as {role}: {}", answer.body);
                if path.ends_with(".json") {
                    assert!(
                        answer
                            .header("content-type")
                            .starts_with("application/json")
                    );
                } else {
                    assert!(answer.is_html(), "{path} as {role}");
                    assert!(answer.body.contains(r#"<html lang="zh-CN">"#));
                    assert!(answer.body.contains(r#"aria-current="page""#), "{path}");
                }
            } else {
                assert_eq!(answer.status, 403, "{path} as {role}: {}", answer.body);
                assert!(answer.is_html(), "{path} as {role}: a page, not JSON");
                assert!(answer.body.contains(r#"id="message""#));
                assert!(answer.body.contains("无权访问"), "{path} as {role}");
                assert!(
                    answer.body.contains(r#"id="current-user""#),
                    "the 403 page keeps the frame"
                );
            }
        }
    }
    // The 403 page in English for an English browser.
    let auditor = browsers.get_mut(&Auditor).unwrap();
    auditor.jar.insert("lang".into(), "en".into());
    let answer = auditor.get("/guard").await;
    assert_eq!(answer.status, 403);
    assert!(answer.body.contains("Access denied") && answer.body.contains(r#"lang="en""#));

    // Home: each role to its first page.
    for (role, home) in [
        (Admin, "/admin/start"),
        (SecurityOfficer, "/officer"),
        (Guard, "/guard"),
        (Auditor, "/audit"),
        (Custodian, "/desk"),
    ] {
        let answer = browsers.get_mut(&role).unwrap().get("/").await;
        assert_eq!((answer.status, answer.location()), (303, home), "{role}");
    }

    // Without a session: 303 to the sign-in form, which will come back.
    let mut anonymous = Browser::new(&server);
    for (path, _) in pages {
        let answer = anonymous.get(path).await;
        assert_eq!(answer.status, 303, "{path}");
        assert_eq!(answer.location(), format!("/login?next={}", encode(path)));
    }
    let answer = anonymous.get("/").await;
    assert_eq!((answer.status, answer.location()), (303, "/login"));
    let answer = anonymous
        .post_form(
            "/admin/zones",
            &[("id", "z"), ("name", "Z"), ("level", "S")],
        )
        .await;
    assert_eq!((answer.status, answer.location()), (303, "/login"));
    // A bearer token does not open a page: pages are cookie-only.
    let token = server.login("admin", ADMIN_PASSWORD).await;
    let bearer = format!("Bearer {token}");
    let answer = anonymous
        .send(
            Method::GET,
            "/admin/users",
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(answer.status, 303);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_form_without_the_right_csrf_field_is_refused_and_changes_nothing() {
    let server = start().await;
    let mut admin = Browser::new(&server);
    assert_eq!(admin.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let csrf = admin.csrf("/admin/zones").await;
    let zones = || count(&server, "SELECT count(*) FROM zones");
    let audit_before = server.audit_count().await;
    for fields in [
        vec![("id", "vault"), ("name", "Vault"), ("level", "TS")],
        vec![
            ("csrf", "wrong"),
            ("id", "vault"),
            ("name", "Vault"),
            ("level", "TS"),
        ],
        vec![
            ("csrf", ""),
            ("id", "vault"),
            ("name", "Vault"),
            ("level", "TS"),
        ],
    ] {
        let answer = admin.post_form("/admin/zones", &fields).await;
        assert_eq!(answer.status, 403, "{fields:?}");
        assert!(answer.is_html());
        assert!(answer.body.contains("表单已过期"), "{}", answer.body);
    }
    // The header alone (the API's way) is not enough for a form either.
    let answer = admin
        .send(
            Method::POST,
            "/admin/zones",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-csrf-token", &csrf),
            ],
            Some("id=vault&name=Vault&level=TS".into()),
        )
        .await;
    assert_eq!(answer.status, 403);
    // Not a form at all.
    let answer = admin
        .send(
            Method::POST,
            "/admin/zones",
            &[("content-type", "application/json")],
            Some(format!(r#"{{"csrf":"{csrf}"}}"#)),
        )
        .await;
    assert_eq!(answer.status, 415);
    assert_eq!(zones().await, 0);
    assert_eq!(server.audit_count().await, audit_before);

    // With the field: created, Post/Redirect/Get back to the list.
    let answer = admin
        .post_form(
            "/admin/zones",
            &[
                ("csrf", &csrf),
                ("id", "vault"),
                ("name", "保密室"),
                ("level", "TS"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location(), "/admin/zones?created=vault");
    let list = admin.get(answer.location()).await;
    assert!(list.body.contains(r#"id="flash""#));
    assert!(list.body.contains(r#"data-zone-id="vault""#) && list.body.contains("保密室"));
    assert_eq!(zones().await, 1);

    // Submitted twice: one zone, and the second answer says so with the values kept.
    let again = admin
        .post_form(
            "/admin/zones",
            &[
                ("csrf", &csrf),
                ("id", "vault"),
                ("name", "保密室"),
                ("level", "TS"),
            ],
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("该区域编号已存在"));
    assert!(again.body.contains(r#"value="vault""#));
    assert_eq!(zones().await, 1);

    // Sign-out is a form too: without the field nothing happens; with it the session ends.
    let answer = admin.post_form("/logout", &[]).await;
    assert_eq!(answer.status, 403);
    let old = admin.cookie("custos_session").unwrap().to_owned();
    let answer = admin.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((answer.status, answer.location()), (303, "/login"));
    assert!(admin.cookie("custos_session").is_none());
    admin.jar.insert("custos_session".into(), old);
    let answer = admin.get("/admin/zones").await;
    assert_eq!(answer.status, 303, "the old cookie is dead");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn exclusive_roles_are_refused_by_the_form_with_the_typed_values_kept() {
    let server = start().await;
    let mut admin = Browser::new(&server);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let csrf = admin.csrf("/admin/users").await;
    let page = admin.get("/admin/users").await;
    assert!(page.body.contains(r#"id="roles-exclusive-hint""#));
    assert!(page.body.contains(r#"id="user-role-auditor""#));
    let users_before = count(&server, "SELECT count(*) FROM users").await;
    let audit_before = server.audit_count().await;

    let answer = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "dual.role"),
                ("password", "a secret password"),
                ("roles", "admin"),
                ("roles", "auditor"),
                ("roles", "guard"),
                ("person_id", ""),
            ],
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("角色冲突"), "the message, in Chinese");
    assert!(answer.body.contains(r#"<li data-field="roles">"#));
    assert!(
        answer.body.contains(r#"value="dual.role""#),
        "username kept"
    );
    assert!(
        !answer.body.contains("a secret password"),
        "never the password"
    );
    for (role, checked) in [
        ("admin", true),
        ("auditor", true),
        ("guard", true),
        ("custodian", false),
        ("security_officer", false),
    ] {
        let tag = answer
            .body
            .split(&format!(r#"id="user-role-{role}""#))
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .unwrap();
        assert_eq!(tag.contains("checked"), checked, "{role}: {tag}");
    }
    assert_eq!(
        count(&server, "SELECT count(*) FROM users").await,
        users_before
    );
    assert_eq!(server.audit_count().await, audit_before);

    // In English, every problem at once.
    admin.jar.insert("lang".into(), "en".into());
    let answer = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "bad name"),
                ("password", "short"),
                ("person_id", "x"),
            ],
        )
        .await;
    assert_eq!(answer.status, 422);
    for message in [
        "The username must be",
        "at least 12 characters",
        "Choose at least one role",
        "The person id must be a number",
    ] {
        assert!(answer.body.contains(message), "{message}");
    }

    // A valid account is created once; the same name again is "taken".
    let fields = [
        ("csrf", csrf.as_str()),
        ("username", "li.wei"),
        ("password", "a secret password"),
        ("roles", "custodian"),
        ("roles", "guard"),
    ];
    let answer = admin.post_form("/admin/users", &fields).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let answer = admin.post_form("/admin/users", &fields).await;
    assert_eq!(answer.status, 409);
    assert!(answer.body.contains("That username is already taken"));
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM users WHERE username = 'li.wei'"
        )
        .await,
        1
    );
    let mut li = Browser::new(&server);
    assert_eq!(
        li.sign_in("li.wei", "a secret password").await.location(),
        "/"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn devices_are_registered_through_the_form_and_listed_with_their_keys() {
    let server = start().await;
    let mut admin = Browser::new(&server);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let csrf = admin.csrf("/admin/zones").await;
    for (id, level) in [("inner", "S"), ("outer", "public")] {
        let answer = admin
            .post_form(
                "/admin/zones",
                &[("csrf", &csrf), ("id", id), ("name", id), ("level", level)],
            )
            .await;
        assert_eq!(answer.status, 303);
    }
    let key = common::device_key_b64(42);
    let bad = admin
        .post_form(
            "/admin/devices",
            &[
                ("csrf", &csrf),
                ("id", "gate-1"),
                ("kind", "gate"),
                ("public_key", &key),
                ("inside_zone", "inner"),
                ("outside_zone", "inner"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("通道门的内侧和外侧区域不能相同"));
    assert!(bad.body.contains(&format!(r#"value="{key}""#)), "key kept");
    let good = admin
        .post_form(
            "/admin/devices",
            &[
                ("csrf", &csrf),
                ("id", "gate-1"),
                ("kind", "gate"),
                ("public_key", &key),
                ("inside_zone", "inner"),
                ("outside_zone", "outer"),
            ],
        )
        .await;
    assert_eq!(good.status, 303, "{}", good.body);
    let list = admin.get("/admin/devices").await;
    assert!(list.body.contains(r#"data-device-id="gate-1""#));
    assert!(list.body.contains(&key), "public key shown");
    assert!(list.body.contains("从未"), "no heartbeat yet");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_language_switch_changes_the_rendered_strings() {
    let server = start().await;
    let mut admin = Browser::new(&server);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let zh = admin.get("/admin/zones").await;
    assert!(zh.body.contains(r#"<html lang="zh-CN">"#));
    assert!(zh.body.contains("新建区域") && !zh.body.contains("New zone"));
    assert!(zh.body.contains(r#"href="/lang/en?next=/admin/zones""#));

    let switch = admin.get("/lang/en?next=/admin/zones").await;
    assert_eq!((switch.status, switch.location()), (303, "/admin/zones"));
    assert!(
        switch
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("lang=en"))
    );
    let en = admin.get("/admin/zones").await;
    assert!(en.body.contains(r#"<html lang="en">"#));
    assert!(en.body.contains("New zone") && !en.body.contains("新建区域"));

    let back = admin.get("/lang/zh?next=//evil.example").await;
    assert_eq!(back.location(), "/", "an off-site return is ignored");
    assert!(admin.get("/admin/zones").await.body.contains("新建区域"));

    // Without a cookie, Accept-Language decides; Chinese otherwise.
    let mut english = Browser::new(&server).with_header("accept-language", "en-GB,en;q=0.9");
    assert!(english.get("/login").await.body.contains("Sign in"));
    let mut other = Browser::new(&server).with_header("accept-language", "fr-FR");
    assert!(other.get("/login").await.body.contains("登录"));
    server.stop().await.unwrap();
}

/// A gate (`gate-1`, heart beating), a silent cabinet, a carrier with a distinctive title, an
/// unauthorized-removal alert for it, and a passage in which it was read.
async fn seed_guard_scene(server: &Server) -> i64 {
    let now_ms = server.now().unix_ms();
    server
        .exec(format!(
            "INSERT INTO zones (id, name, level, created_at) VALUES
                 ('in', 'In', 'TS', '2025-01-01T00:00:00Z'),
                 ('out', 'Out', 'public', '2025-01-01T00:00:00Z');
             INSERT INTO devices (id, kind, public_key, inside_zone, outside_zone, zone, created_at)
                 VALUES ('gate-1', 'gate', randomblob(32), 'in', 'out', NULL, '2025-01-01T00:00:00Z'),
                        ('cab-9', 'cabinet', randomblob(32), NULL, NULL, 'in', '2025-01-01T00:00:00Z');
             INSERT INTO device_status (device_id, last_heartbeat_ms, health_json)
                 VALUES ('gate-1', {now_ms}, '{{\"readers\":{{\"uhf-main\":{{\"state\":\"ok\"}}}}}}');
             INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, created_at)
                 VALUES (5, 'JM-2025-0042', 'paper', 'TS', '{TITLE}', 'Unit 7', '2025-01-01T00:00:00Z');
             INSERT INTO events (id, device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                 VALUES (77, 'gate-1', 1, 1, {now_ms}, {now_ms}, 'passage',
                         '{{\"type\":\"passage\",\"reader\":\"uhf-main\",\"direction\":\"out\",\"tags\":[],\"badges\":[],\"local_verdict\":null}}');
             INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id, direction)
                 VALUES (5, 77, {now_ms}, 'passage', 'gate-1', 'out');
             INSERT INTO alerts (id, kind, severity, cause, raised_at_ms, last_seen_at_ms, carrier_id,
                                 device_id, detail_json)
                 VALUES (3, 'unauthorized_removal', 'critical', 'unauthorized_removal:carrier:5:device:gate-1',
                         {now_ms}, {now_ms}, 5, 'gate-1',
                         '{{\"control_no\":\"JM-2025-0042\",\"level\":\"TS\",\"direction\":\"out\",\"gate\":\"gate-1\",\"badge_holders\":[\"王芳\"]}}');"
        ))
        .await;
    3
}

#[tokio::test]
async fn the_guard_console_shows_the_removal_readers_and_passages_but_never_a_title() {
    let server = start().await;
    let mut browsers = browsers(&server).await;
    let alert = seed_guard_scene(&server).await;
    let guard = browsers.get_mut(&Role::Guard).unwrap();
    let page = guard.get("/guard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains(TITLE) && !page.body.contains("XYZZY"),
        "title leaked"
    );
    let banner = format!(
        r#"<li class="alert-banner" data-alert-id="{alert}" data-kind="unauthorized_removal" data-state="open""#
    );
    assert!(page.body.contains(&banner), "{}", page.body);
    for needle in [
        "JM-2025-0042",
        r#"data-level="TS">绝密"#,
        r#"data-direction="out">带出"#,
        "王芳",
        &format!(r#"<button class="ack" type="button" data-alert-id="{alert}">"#),
        &format!(r#"<button class="resolve" type="button" data-alert-id="{alert}">"#),
        r#"<li class="reader reader-ok" data-device-id="gate-1" data-ok="true""#,
        r#"<li class="reader reader-down" data-device-id="cab-9" data-ok="false""#,
        r#"<li class="passage" data-event-id="77">"#,
        r#"id="custos-i18n""#,
        r#"<meta name="csrf-token""#,
    ] {
        assert!(page.body.contains(needle), "{needle} missing");
    }

    let status = guard.get("/guard/status.json").await;
    assert_eq!(status.status, 200);
    assert!(!status.body.contains("XYZZY"), "title leaked in the poll");
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(json["readers"][0]["device_id"], "gate-1");
    assert_eq!(json["readers"][0]["ok"], true);
    assert_eq!(json["readers"][1]["state"], "never");
    assert_eq!(
        json["passages"][0]["carriers"][0]["control_no"],
        "JM-2025-0042"
    );
    assert_eq!(json["passages"][0]["direction_label"], "带出");

    // The script's path: the API with the page's cookie and the meta CSRF token.
    let csrf = page.attr_after(r#"name="csrf-token""#, "content").unwrap();
    let path = format!("/api/v1/alerts/{alert}/ack");
    let refused = guard.send(Method::POST, &path, &[], None).await;
    assert_eq!(refused.status, 403, "no header, no change");
    let acked = guard
        .send(Method::POST, &path, &[("x-csrf-token", &csrf)], None)
        .await;
    assert_eq!(acked.status, 200, "{}", acked.body);
    let page = guard.get("/guard").await;
    assert!(
        page.body
            .contains(r#"data-kind="unauthorized_removal" data-state="acknowledged""#)
    );
    assert!(
        !page.body.contains(r#"class="ack""#),
        "no ack button once acknowledged"
    );
    let resolved = guard
        .send(
            Method::POST,
            &format!("/api/v1/alerts/{alert}/resolve"),
            &[
                ("x-csrf-token", &csrf),
                ("content-type", "application/json"),
            ],
            Some(r#"{"note":"carrier returned to the vault"}"#.into()),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    let page = guard.get("/guard").await;
    assert!(
        !page.body.contains("alert-banner"),
        "resolved alerts leave the console"
    );
    assert!(page.body.contains(r#"id="alert-empty">"#));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_assets_are_served() {
    let server = start().await;
    let mut b = Browser::new(&server);
    let login = b.get("/login").await;
    let forbidden = {
        server.tokens_per_role().await;
        let mut guard = Browser::new(&server);
        guard.sign_in("guard", PASSWORD).await;
        guard.get("/audit").await
    };
    assert_eq!(forbidden.status, 403);
    for answer in [&login, &forbidden] {
        let csp = answer.header("content-security-policy");
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(answer.header("x-frame-options"), "DENY");
        assert_eq!(answer.header("referrer-policy"), "no-referrer");
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
        assert_eq!(answer.header("cache-control"), "no-store");
        assert!(!answer.body.contains("<script>"), "no inline script");
        assert!(!answer.body.contains("style="), "no inline style");
        assert!(!answer.body.contains("http://") && !answer.body.contains("https://"));
    }
    let css_href = login.attr_after("stylesheet", "href").unwrap();
    let js_href = login.attr_after("<script", "src").unwrap();
    assert!(css_href.starts_with("/static/custos.css?v="));
    for (href, kind, needle) in [
        (&css_href, "text/css", ".alert-banner"),
        (&js_href, "text/javascript", "EventSource"),
    ] {
        let asset = b.get(href).await;
        assert_eq!(asset.status, 200, "{href}");
        assert!(asset.header("content-type").starts_with(kind));
        assert!(asset.header("cache-control").starts_with("public"));
        assert!(
            asset
                .header("content-security-policy")
                .contains("default-src 'none'")
        );
        assert!(asset.body.contains(needle));
        let etag = asset.header("etag").to_owned();
        let cached = b
            .send(Method::GET, href, &[("if-none-match", &etag)], None)
            .await;
        assert_eq!(cached.status, 304);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_auditor_sees_the_trail_filters_the_chain_status_and_signed_heads() {
    let server = start().await;
    let mut browsers = browsers(&server).await;
    custos_server::service::audit::sign_head(&server.state)
        .await
        .unwrap();
    let auditor = browsers.get_mut(&Role::Auditor).unwrap();
    let page = auditor.get("/audit").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"class="chain-ok" id="chain-status" data-intact="true""#)
    );
    let key = STANDARD.encode(server.public_key());
    assert!(page.body.contains(&key), "server key shown");
    assert!(page.body.contains(r#"id="head-table""#));
    let entries = server.audit_count().await;
    assert!(
        page.body.contains(&format!(r#"data-entry-id="{entries}""#)),
        "newest first"
    );
    assert!(page.body.contains(r#"class="hash" title=""#));

    let filtered = auditor.get("/audit?actor=admin&action=user.").await;
    let rows = filtered.body.matches(r#"class="audit-entry""#).count();
    assert_eq!(rows, 4, "admin created four accounts");
    assert!(filtered.body.contains(r#"value="user.""#), "filter kept");
    let none = auditor.get("/audit?actor=nobody").await;
    assert!(none.body.contains(r#"id="audit-empty""#));
    let bad = auditor.get("/audit?from=2025-02-30").await;
    assert!(bad.body.contains("日期格式须为 YYYY-MM-DD"));
    assert!(bad.body.contains(r#"value="2025-02-30""#));
    server.stop().await.unwrap();
}
