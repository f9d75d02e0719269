//! The custodian's and the security officer's pages against the real server on a real socket
//! (127.0.0.1:0), driven like a browser without script: a cookie jar, forms posted as
//! `application/x-www-form-urlencoded`, HTML checked by the stable ids and classes listed in
//! `server/src/web/mod.rs`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use common::browser::Browser;
use common::{ADMIN_PASSWORD, PASSWORD, Server};
use custos_protocol::barcode::CarrierLabel;
use custos_server::domain::role::Role;
use custos_server::web::form::encode;
use hyper::Method;
use serde_json::{Value, json};

/// A title that must never appear on a label (or on the desk).
const TITLE: &str = "XYZZY 绝密 reactor drawings";
const DAY_MS: i64 = 86_400_000;

// ---------------------------------------------------------------------------------------
// The scene

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
    keys: AtomicU32,
}

impl Fx {
    /// One account per role (named after it), zone `vault` (S), cabinets `cab-1` and
    /// `cab-2`.
    async fn new() -> Fx {
        let server = Server::start_with(|c| {
            c.sweep_interval_ms = 3_600_000;
            c.silence_watch = false;
        })
        .await;
        let tokens = server.tokens_per_role().await;
        let fx = Fx {
            server,
            tokens,
            keys: AtomicU32::new(1),
        };
        fx.api(
            Role::Admin,
            "/api/v1/zones",
            json!({"id": "vault", "name": "保密室", "level": "TS"}),
        )
        .await;
        for id in ["cab-1", "cab-2"] {
            let key = fx.key();
            fx.api(
                Role::Admin,
                "/api/v1/devices",
                json!({"id": id, "kind": "cabinet", "zone": "vault", "public_key": key}),
            )
            .await;
        }
        fx
    }

    fn key(&self) -> String {
        let n = self.keys.fetch_add(1, Ordering::SeqCst);
        common::device_key_b64(n)
    }

    /// A POST to the JSON API that must answer 201; returns the `id`.
    async fn api(&self, role: Role, path: &str, body: Value) -> String {
        let reply = self
            .server
            .call(Method::POST, path, Some(&self.tokens[&role]), Some(body))
            .await;
        assert!(
            reply.status == 201 || reply.status == 200,
            "{path}: {} {:?}",
            reply.status,
            reply.body
        );
        reply.body["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    }

    async fn person(&self, name: &str, category: &str, training: &str) -> String {
        self.api(
            Role::SecurityOfficer,
            "/api/v1/people",
            json!({"name": name, "department": "研发部", "category": category,
                   "training_valid_until": training, "commitment_signed_on": "2020-01-01"}),
        )
        .await
    }

    async fn carrier(&self, control_no: &str, level: &str, home: Option<&str>) -> String {
        self.api(
            Role::Custodian,
            "/api/v1/carriers",
            json!({"control_no": control_no, "kind": "paper", "level": level, "title": TITLE,
                   "copy_no": 1, "copies": 1, "owner_unit": "保密办", "home_device": home,
                   "tags": []}),
        )
        .await
    }

    async fn request(&self, carrier: &str, borrower: &str) -> String {
        let due = self.server.now().plus_secs(86_400).to_string();
        self.api(
            Role::Custodian,
            "/api/v1/signouts",
            json!({"carrier_ids": [carrier], "borrower": borrower, "purpose": "review",
                   "due_at": due, "may_leave": false}),
        )
        .await
    }

    async fn approve(&self, signout: &str) {
        let reply = self
            .server
            .call(
                Method::POST,
                &format!("/api/v1/signouts/{signout}/approve"),
                Some(&self.tokens[&Role::SecurityOfficer]),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    async fn browser(&self, role: Role) -> Browser {
        let mut b = Browser::new(&self.server);
        let password = if role == Role::Admin {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        };
        let signed_in = b.sign_in(role.as_str(), password).await;
        assert_eq!(
            signed_in.status, 303,
            "sign in {role:?}: {}",
            signed_in.body
        );
        b
    }

    async fn count(&self, sql: &str) -> i64 {
        let sql = sql.to_owned();
        self.server
            .state
            .store()
            .read(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    fn label(control_no: &str) -> String {
        CarrierLabel::new(control_no).unwrap().to_string()
    }
}

/// A small well-formedness check: one root element, every tag closed in order, attribute
/// values quoted, only the XML entities and numeric references.
fn assert_well_formed_xml(text: &str) {
    let body = text
        .trim_start()
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
        .map_or(text, |(_, rest)| rest);
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        rest = &rest[open + 1..];
        let close = rest.find('>').expect("unclosed tag");
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        );
        // Attributes: name="value" pairs.
        let mut attrs = tag[name.len()..].trim();
        while !attrs.is_empty() {
            let eq = attrs.find("=\"").expect("attribute without quoted value");
            let value_end = attrs[eq + 2..].find('"').expect("unterminated value") + eq + 2;
            assert!(!attrs[eq + 2..value_end].contains('<'));
            check_text(&attrs[eq + 2..value_end]);
            attrs = attrs[value_end + 1..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "one root element");

    fn check_text(text: &str) {
        let mut rest = text;
        while let Some(at) = rest.find('&') {
            let end = rest[at..].find(';').expect("unterminated entity") + at;
            let entity = &rest[at + 1..end];
            assert!(
                matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos") || entity.starts_with('#'),
                "entity &{entity};"
            );
            rest = &rest[end + 1..];
        }
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_new_page_answers_each_role_with_the_page_or_a_403_page() {
    let fx = Fx::new().await;
    let carrier = fx.carrier("2024-0001", "S", Some("cab-1")).await;
    use Role::*;
    let carrier_page = format!("/carriers/{carrier}");
    let label = format!("/carriers/{carrier}/label.svg");
    let pages: &[(&str, &[Role])] = &[
        ("/desk", &[Custodian]),
        ("/desk?scan=nothing", &[Custodian]),
        ("/carriers", &[Custodian]),
        ("/carriers/new", &[Custodian]),
        (carrier_page.as_str(), &[Custodian, SecurityOfficer]),
        (label.as_str(), &[Custodian, SecurityOfficer]),
        ("/signouts/new", &[Custodian]),
        ("/signouts/list", &[Custodian, SecurityOfficer]),
        ("/cabinets", &[Custodian]),
        ("/cabinets/cab-1", &[Custodian]),
        ("/approvals", &[SecurityOfficer]),
        ("/people", &[SecurityOfficer]),
        ("/overdue", &[SecurityOfficer]),
        ("/missing", &[SecurityOfficer]),
        ("/alerts/history", &[SecurityOfficer]),
        ("/stocktakes", &[Custodian]),
        ("/transfers", &[Custodian]),
        ("/collections", &[Custodian, SecurityOfficer]),
        ("/retention", &[Custodian, SecurityOfficer]),
        ("/repairs", &[Custodian]),
        ("/dispatches", &[Custodian]),
    ];
    let mut browsers = HashMap::new();
    for role in Role::ALL {
        browsers.insert(role, fx.browser(role).await);
    }
    for (path, allowed) in pages {
        for role in Role::ALL {
            let b = browsers.get_mut(&role).unwrap();
            let answer = b.get(path).await;
            if allowed.contains(&role) {
                assert_eq!(answer.status, 200, "{path} as {role}: {}", answer.body);
                if path.ends_with(".svg") {
                    assert!(answer.header("content-type").starts_with("image/svg+xml"));
                } else {
                    assert!(answer.is_html(), "{path} as {role}");
                    assert!(answer.body.contains(r#"<html lang="zh-CN">"#));
                }
            } else {
                assert_eq!(answer.status, 403, "{path} as {role}: {}", answer.body);
                assert!(answer.is_html(), "{path} as {role}: a page, not JSON");
                assert!(answer.body.contains(r#"id="message""#));
                assert!(answer.body.contains("无权访问"), "{path} as {role}");
                assert!(answer.body.contains(r#"id="current-user""#));
            }
        }
    }
    // The navigation shows each role its pages and marks the current one.
    let custodian = browsers.get_mut(&Custodian).unwrap();
    let desk = custodian.get("/desk").await;
    let current = desk.tag(r#"aria-current="page""#);
    assert!(current.contains(r#"href="/desk""#), "{current}");
    for path in ["/carriers", "/signouts/new", "/cabinets"] {
        assert!(desk.body.contains(&format!(r#"href="{path}""#)), "{path}");
    }
    assert!(!desk.body.contains(r#"href="/approvals""#));
    let officer = browsers.get_mut(&SecurityOfficer).unwrap();
    let people = officer.get("/people").await;
    for path in [
        "/approvals",
        "/overdue",
        "/missing",
        "/alerts/history",
        "/guard",
    ] {
        assert!(people.body.contains(&format!(r#"href="{path}""#)), "{path}");
    }

    // Forms refuse the wrong role with the 403 page too (with that user's own CSRF secret).
    let guard = browsers.get_mut(&Guard).unwrap();
    let (_, csrf) = guard.page("/guard").await;
    for path in [
        "/people",
        "/carriers/new",
        "/signouts/new",
        "/desk/issue",
        "/repairs",
        "/dispatches",
    ] {
        let answer = guard
            .post_form(path, &[("csrf", &csrf), ("name", "x")])
            .await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert!(answer.body.contains("无权访问"));
    }
    assert_eq!(fx.count("SELECT count(*) FROM people").await, 0);

    // Unknown ids: a 404 page, not a stack trace.
    let custodian = browsers.get_mut(&Custodian).unwrap();
    for path in [
        "/carriers/999",
        "/carriers/abc",
        "/cabinets/nope",
        "/carriers/999/label.svg",
    ] {
        let answer = custodian.get(path).await;
        assert_eq!(answer.status, 404, "{path}");
        assert!(
            answer.is_html() && answer.body.contains(r#"id="message""#),
            "{path}"
        );
    }

    // Without a session: 303 to the sign-in form, which will come back.
    let mut anonymous = Browser::new(&fx.server);
    for (path, _) in pages {
        let answer = anonymous.get(path).await;
        assert_eq!(answer.status, 303, "{path}");
        assert_eq!(answer.location(), format!("/login?next={}", encode(path)));
    }
    let answer = anonymous.post_form("/people", &[("name", "x")]).await;
    assert_eq!((answer.status, answer.location()), (303, "/login"));
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_carrier_registered_through_the_form_has_its_page_and_a_label_without_title() {
    let fx = Fx::new().await;
    let mut b = fx.browser(Role::Custodian).await;
    let (form, csrf) = b.page("/carriers/new").await;
    // The EPC to encode: GIAI-96 of the configured prefix and the next carrier number.
    let hex = form.element("epc-hex");
    let uri = form.element("epc-uri");
    assert!(uri.contains("urn:epc:id:giai:0614141.1<"), "{uri}");
    let epc = hex
        .trim_start_matches(|c| c != '>')
        .trim_start_matches('>')
        .trim_end_matches("</code>")
        .to_owned();
    assert_eq!(epc.len(), 24, "{epc}");
    assert!(form.element("carrier-tags").contains(&format!("epc:{epc}")));
    let nonce = form.attr_after(r#"name="nonce""#, "value").unwrap();
    let cab_option = form.tag(r#"value="cab-1""#);
    assert!(cab_option.starts_with("<option"));

    // Errors: messages in Chinese under their fields, the typed values kept, status 422.
    let bad = b
        .post_form(
            "/carriers/new",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("control_no", "bad no!"),
                ("kind", "paper"),
                ("level", "TS"),
                ("title", ""),
                ("owner_unit", "保密办公室"),
                ("tags", "epc:XYZ"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    for field in ["control_no", "title", "tags"] {
        assert!(
            bad.body
                .contains(&format!(r#"class="field-error" data-field="{field}""#)),
            "{field}"
        );
    }
    assert!(bad.body.contains("载体编号须为"));
    assert!(
        bad.tag(r#"id="carrier-owner-unit""#)
            .contains(r#"value="保密办公室""#)
    );
    assert!(
        bad.tag(r#"id="carrier-control-no""#)
            .contains(r#"value="BAD NO!""#)
    );
    assert!(bad.element("carrier-tags").contains("epc:XYZ"));
    assert_eq!(fx.count("SELECT count(*) FROM carriers").await, 0);

    // TS without copy numbers: the domain rule, on its field.
    let fields = |copy_no: &'static str| {
        vec![
            ("control_no", "2024-0017"),
            ("kind", "optical_disc"),
            ("level", "TS"),
            ("title", TITLE),
            ("copy_no", copy_no),
            ("copies", if copy_no.is_empty() { "" } else { "3" }),
            ("owner_unit", "保密办"),
            ("home_device", "cab-1"),
        ]
    };
    let mut no_copy = fields("");
    no_copy.extend([("csrf", csrf.as_str()), ("nonce", nonce.as_str())]);
    let refused = b.post_form("/carriers/new", &no_copy).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("绝密载体须填写份号和份数"));

    // A secrecy period longer than the level's longest (TS: 30 years): refused at its field.
    let mut too_long = fields("1");
    too_long.extend([
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("secrecy_years", "31"),
    ]);
    let refused = b.post_form("/carriers/new", &too_long).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(r#"class="field-error" data-field="secrecy_years""#)
    );
    assert!(
        refused
            .tag(r#"id="carrier-secrecy-years""#)
            .contains(r#"value="31""#)
    );
    assert_eq!(fx.count("SELECT count(*) FROM carriers").await, 0);

    // Accepted (with its own secrecy period, 绝密★25年): 303 to the carrier's page.
    let tags = format!("epc:{epc}\nbarcode:ACME-778899");
    let mut ok = fields("1");
    ok.extend([
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("tags", tags.as_str()),
        ("secrecy_years", "25"),
    ]);
    let created = b.post_form("/carriers/new", &ok).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location().to_owned();
    assert!(location.starts_with("/carriers/") && location.ends_with("?created=1"));
    let id = location
        .trim_start_matches("/carriers/")
        .trim_end_matches("?created=1")
        .to_owned();

    // The same form sent again: the same answer, nothing registered twice.
    let again = b.post_form("/carriers/new", &ok).await;
    assert_eq!((again.status, again.location()), (303, location.as_str()));
    assert_eq!(fx.count("SELECT count(*) FROM carriers").await, 1);

    let page = b.get(&location).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="flash""#));
    assert!(
        page.tag(r#"id="carrier-heading""#)
            .contains(&format!(r#"data-carrier-id="{id}""#))
    );
    assert!(
        page.body.contains(TITLE),
        "custodians see the title on the carrier's page"
    );
    let label_text = Fx::label("2024-0017");
    assert!(page.element("label-text").contains(&label_text));
    let tags = page.element("tag-list");
    assert!(tags.contains(&format!("epc:{epc}")) && tags.contains("urn:epc:id:giai:0614141.1"));
    assert!(tags.contains("barcode:ACME-778899"));
    assert!(
        page.tag(r#"id="label-image""#)
            .contains(&format!("/carriers/{id}/label.svg"))
    );
    assert!(page.element("history-panel").contains("暂无记录"));
    assert!(
        page.element("carrier-secrecy").contains("绝密★25年"),
        "the carrier page shows its secrecy period"
    );

    // The label: SVG, well-formed, control number and level, never the title.
    let label = b.get(&format!("/carriers/{id}/label.svg")).await;
    assert_eq!(label.status, 200);
    assert!(label.header("content-type").starts_with("image/svg+xml"));
    assert!(
        label
            .header("content-security-policy")
            .contains("default-src 'none'")
    );
    assert!(label.body.contains(">2024-0017</text>"));
    assert!(label.body.contains(&format!(">{label_text}</text>")));
    assert!(
        label.body.contains("绝密★25年 Top Secret"),
        "the label prints the carrier's own secrecy period"
    );
    assert!(!label.body.contains(TITLE) && !label.body.contains("XYZZY"));
    assert!(!label.body.contains("style="));
    assert_well_formed_xml(&label.body);

    // The register finds it by control number and by tag, and not by something else.
    for q in ["2024-00", "acme-7788", &epc[..10]] {
        let list = b.get(&format!("/carriers?q={}", encode(q))).await;
        assert!(
            list.tags("tr class=\"carrier\"").len() == 1,
            "{q}: {}",
            list.body
        );
    }
    let none = b.get("/carriers?q=ZZZ").await;
    assert!(none.body.contains(r#"id="carrier-empty""#));
    let out = b.get("/carriers?state=out").await;
    assert!(out.body.contains(r#"id="carrier-empty""#));

    // The language switch applies to the form's messages.
    b.jar.insert("lang".into(), "en".into());
    let (_, csrf) = b.page("/carriers/new").await;
    let bad = b
        .post_form(
            "/carriers/new",
            &[("csrf", &csrf), ("control_no", "2024-0017")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("Choose the kind."), "{}", bad.body);
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn the_desk_resolves_scans_and_a_double_issue_issues_once() {
    let fx = Fx::new().await;
    let borrower = fx.person("李伟", "core", "2099-12-31").await;
    let carrier = fx.carrier("2024-0042", "S", Some("cab-1")).await;
    let label = Fx::label("2024-0042");
    let mut b = fx.browser(Role::Custodian).await;

    // Before any sign-out: the carrier, no action but a link to request one.
    let (desk, _) = b.page(&format!("/desk?scan={}", encode(&label))).await;
    let result = desk.tag(r#"id="scan-result""#);
    assert!(
        result.contains(r#"data-found="true""#)
            && result.contains(&format!(r#"data-carrier-id="{carrier}""#))
    );
    assert!(desk.body.contains(r#"id="request-link""#));
    assert!(!desk.body.contains(r#"id="issue""#));
    assert!(!desk.body.contains(TITLE), "the desk shows no titles");
    assert!(desk.tag(r#"id="scan-input""#).contains("autofocus"));

    // An unknown barcode says so and keeps the scan field focused.
    let (unknown, _) = b.page("/desk?scan=NO-SUCH-THING").await;
    assert!(
        unknown
            .tag(r#"id="scan-result""#)
            .contains(r#"data-found="false""#)
    );
    assert!(unknown.element("scan-unknown").contains("未知条码"));
    assert!(unknown.element("scan-unknown").contains("NO-SUCH-THING"));
    assert!(unknown.tag(r#"id="scan-input""#).contains("autofocus"));
    b.jar.insert("lang".into(), "en".into());
    let (unknown, _) = b.page("/desk?scan=NO-SUCH-THING").await;
    assert!(unknown.element("scan-unknown").contains("Unknown barcode"));
    b.jar.remove("lang");

    // Request through the form, by scanning the label into the carriers field.
    let (form, csrf) = b.page("/signouts/new").await;
    let nonce = form.attr_after(r#"name="nonce""#, "value").unwrap();
    let due = fx
        .server
        .now()
        .plus_secs(3 * 86_400)
        .to_string()
        .get(..16)
        .unwrap()
        .to_owned();
    let refused = b
        .post_form(
            "/signouts/new",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("carriers", &format!("{label}\nCU9999-9999Z")),
                ("borrower", ""),
                ("purpose", "审查"),
                ("due", "2001-01-01T10:00"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.element("signout-unknown").contains("CU9999-9999Z"));
    assert!(refused.body.contains("请选择借用人"));
    assert!(refused.body.contains("应还时间须晚于现在"));
    assert!(
        refused
            .tag(r#"id="signout-purpose""#)
            .contains(r#"value="审查""#)
    );
    assert!(refused.element("signout-carriers").contains(&label));
    let fields = [
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("carriers", label.as_str()),
        ("borrower", borrower.as_str()),
        ("purpose", "审查"),
        ("due", due.as_str()),
        ("tz_offset", "0"),
    ];
    let requested = b.post_form("/signouts/new", &fields).await;
    assert_eq!(requested.status, 303, "{}", requested.body);
    let location = requested.location().to_owned();
    let signout = location
        .trim_start_matches("/signouts/new?requested=")
        .to_owned();
    let twice = b.post_form("/signouts/new", &fields).await;
    assert_eq!((twice.status, twice.location()), (303, location.as_str()));
    assert_eq!(fx.count("SELECT count(*) FROM signouts").await, 1);
    let (page, _) = b.page(&location).await;
    assert!(
        page.tag(r#"id="flash""#)
            .contains(&format!(r#"data-signout-id="{signout}""#))
    );

    // Awaiting approval: no issue button yet.
    let (desk, _) = b.page(&format!("/desk?scan={}", encode(&label))).await;
    assert!(!desk.body.contains(r#"id="issue""#));
    assert!(desk.element("no-action").contains("等待保密员审批"));
    fx.approve(&signout).await;

    // Approved: scanning (lower case, as some scanners send it) offers the issue.
    let (desk, csrf) = b
        .page(&format!("/desk?scan={}", encode(&label.to_lowercase())))
        .await;
    assert!(
        desk.tag(r#"id="issue""#)
            .contains(&format!(r#"data-signout-id="{signout}""#))
    );
    assert!(!desk.body.contains(r#"id="return""#));
    let issue = [
        ("csrf", csrf.as_str()),
        ("signout", signout.as_str()),
        ("scan", label.as_str()),
    ];
    let first = b.post_form("/desk/issue", &issue).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(
        first.location(),
        format!("/desk?scan={}&done=issued", encode(&label))
    );
    let second = b.post_form("/desk/issue", &issue).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(
        second
            .tag(r#"id="desk-message""#)
            .contains(r#"data-kind="already_issued""#)
    );
    assert!(second.body.contains("重复提交未再次发放"));
    assert_eq!(
        fx.count("SELECT count(*) FROM audit WHERE action = 'signout.issue'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM carriers WHERE state = 'out'")
            .await,
        1
    );

    // Out: a typed control number finds it; the return button is there.
    let (desk, csrf) = b.page("/desk?scan=2024-0042&done=issued").await;
    assert!(
        desk.tag(r#"id="desk-message""#)
            .contains(r#"data-kind="issued""#)
    );
    assert!(
        desk.tag(r#"id="scan-result""#)
            .contains(r#"data-state="out""#)
    );
    assert!(desk.element("scan-result").contains("李伟"));
    assert!(
        desk.tag(r#"id="return""#)
            .contains(&format!(r#"data-signout-id="{signout}""#))
    );
    let back = [
        ("csrf", csrf.as_str()),
        ("signout", signout.as_str()),
        ("carrier", carrier.as_str()),
        ("scan", "2024-0042"),
    ];
    let first = b.post_form("/desk/return", &back).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let second = b.post_form("/desk/return", &back).await;
    assert_eq!(second.status, 409);
    assert!(
        second
            .tag(r#"id="desk-message""#)
            .contains(r#"data-kind="already_returned""#)
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM carriers WHERE state = 'in_storage'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM signouts WHERE state = 'returned'")
            .await,
        1
    );

    // A form without the CSRF field changes nothing.
    let forged = b
        .post_form("/desk/issue", &[("signout", &signout), ("scan", &label)])
        .await;
    assert_eq!(forged.status, 403);
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn approvals_show_why_an_issue_would_be_refused_and_refuse_self_approval() {
    let fx = Fx::new().await;
    let lapsed = fx.person("王芳", "general", "2020-01-01").await;
    let carrier = fx.carrier("2024-0100", "S", Some("cab-1")).await;
    let signout = fx.request(&carrier, &lapsed).await;

    let mut officer = fx.browser(Role::SecurityOfficer).await;
    let (queue, csrf) = officer.page("/approvals").await;
    let item = queue.element("approval-list");
    assert!(item.contains(&format!(r#"data-signout-id="{signout}""#)));
    assert!(item.contains("2024-0100") && item.contains("王芳") && item.contains("custodian"));
    assert!(!item.contains(TITLE));
    let codes: Vec<&str> = queue.tags(r#"class="refusal""#);
    let joined = codes.join(" ");
    assert!(
        joined.contains(r#"data-code="training_expired""#),
        "{joined}"
    );
    assert!(
        joined.contains(r#"data-code="clearance_insufficient""#),
        "{joined}"
    );
    assert!(item.contains("保密培训已过期"));
    assert!(queue.tag(r#"class="approvals-needed""#).starts_with("<dd"));
    officer.jar.insert("lang".into(), "en".into());
    let (english, _) = officer.page("/approvals").await;
    assert!(english.body.contains("secrecy training has expired"));
    officer.jar.remove("lang");

    // Approving works, and approving again is answered, not repeated.
    let path = format!("/approvals/{signout}/approve");
    let done = officer.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.location()
            .starts_with(&format!("/approvals?approved={signout}"))
    );
    let (after, _) = officer.page(done.location()).await;
    assert!(
        after
            .tag(r#"id="approval-message""#)
            .contains(r#"data-code="approved""#)
    );
    assert!(after.body.contains(r#"id="approval-empty""#));
    let again = officer.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 409);
    assert!(
        again
            .tag(r#"id="approval-message""#)
            .contains(r#"data-code="not_requested""#)
    );
    assert_eq!(fx.count("SELECT count(*) FROM signout_approvals").await, 1);

    // An account that is custodian and security officer requests, then tries to approve.
    let reply = fx
        .server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&fx.tokens[&Role::Admin]),
            Some(
                json!({"username": "both", "password": common::INITIAL_PASSWORD,
                        "roles": ["custodian", "security_officer"]}),
            ),
        )
        .await;
    assert_eq!(reply.status, 201);
    fx.server.activate("both").await;
    let fit = fx.person("赵强", "core", "2099-12-31").await;
    let other = fx.carrier("2024-0101", "C", Some("cab-1")).await;
    let mut both = Browser::new(&fx.server);
    assert_eq!(both.sign_in("both", PASSWORD).await.status, 303);
    let (form, csrf) = both.page("/signouts/new").await;
    let nonce = form.attr_after(r#"name="nonce""#, "value").unwrap();
    let due = fx.server.now().plus_secs(86_400).to_string()[..16].to_owned();
    let requested = both
        .post_form(
            "/signouts/new",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("carrier_id", &other),
                ("borrower", &fit),
                ("purpose", "review"),
                ("due", &due),
            ],
        )
        .await;
    assert_eq!(requested.status, 303, "{}", requested.body);
    let own = requested
        .location()
        .trim_start_matches("/signouts/new?requested=")
        .to_owned();
    let (queue, csrf) = both.page("/approvals").await;
    assert!(queue.tag(r#"class="would-pass""#).starts_with("<p"));
    let refused = both
        .post_form(&format!("/approvals/{own}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let message = refused.element("approval-message");
    assert!(message.contains(r#"data-code="self_approval""#));
    assert!(message.contains("不能批准本人提出或本人借用的申请"));
    assert_eq!(
        fx.count(&format!(
            "SELECT count(*) FROM signouts WHERE id = {own} AND state = 'requested'"
        ))
        .await,
        1
    );
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn people_are_registered_by_form_and_departure_waits_for_every_carrier() {
    let fx = Fx::new().await;
    let mut b = fx.browser(Role::SecurityOfficer).await;
    let (form, csrf) = b.page("/people").await;
    let nonce = form.attr_after(r#"name="nonce""#, "value").unwrap();
    let bad = b
        .post_form(
            "/people",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("name", ""),
                ("department", "研发部"),
                ("category", "boss"),
                ("training_valid_until", "2030-02-30"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("姓名须为") && bad.body.contains("请选择人员类别"));
    assert!(bad.body.contains("日期格式须为"));
    assert!(
        bad.tag(r#"id="person-department""#)
            .contains(r#"value="研发部""#)
    );
    assert!(
        bad.tag(r#"id="person-training""#)
            .contains(r#"value="2030-02-30""#)
    );
    let fields = [
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("name", "陈静"),
        ("department", "研发部"),
        ("category", "important"),
        ("training_valid_until", "2021-06-30"),
        ("commitment_signed_on", "2020-01-01"),
    ];
    let created = b.post_form("/people", &fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location().to_owned();
    let id = location.trim_start_matches("/people?created=").to_owned();
    let again = b.post_form("/people", &fields).await;
    assert_eq!((again.status, again.location()), (303, location.as_str()));
    assert_eq!(fx.count("SELECT count(*) FROM people").await, 1);

    let (list, csrf) = b.page(&location).await;
    assert!(
        list.tag(r#"id="people-message""#)
            .contains(r#"data-code="created""#)
    );
    let row = list.tag(&format!(r#"class="person" data-person-id="{id}""#));
    assert!(row.contains(r#"data-status="active""#), "{row}");
    let training = list.tag(r#"class="training expired""#);
    assert!(training.contains(r#"data-expired="true""#));
    assert!(list.body.contains("重要涉密人员"));

    // Holding a carrier: the departure is refused with the 清退 message and the count.
    let fit = fx.person("周敏", "core", "2099-12-31").await;
    let carrier = fx.carrier("2024-0200", "S", Some("cab-1")).await;
    let signout = fx.request(&carrier, &fit).await;
    fx.approve(&signout).await;
    let reply = fx
        .server
        .call(
            Method::POST,
            &format!("/api/v1/signouts/{signout}/issue"),
            Some(&fx.tokens[&Role::Custodian]),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let leaving = b
        .post_form(&format!("/people/{fit}/leave"), &[("csrf", &csrf)])
        .await;
    assert_eq!(leaving.status, 303);
    let refused = b
        .post_form(&format!("/people/{fit}/depart"), &[("csrf", &csrf)])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let message = refused.element("people-message");
    assert!(message.contains(r#"data-code="carriers_outstanding""#));
    assert!(message.contains("清退") && message.contains(r#"<span class="count">1</span>"#));

    // Leaving, then leaving again (answered), then a departure of someone holding nothing.
    let left = b
        .post_form(&format!("/people/{id}/leave"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (left.status, left.location()),
        (303, format!("/people/{id}?done=leaving").as_str())
    );
    let twice = b
        .post_form(&format!("/people/{id}/leave"), &[("csrf", &csrf)])
        .await;
    assert_eq!(twice.status, 409);
    assert!(
        twice
            .tag(r#"id="people-message""#)
            .contains(r#"data-code="already_leaving""#)
    );
    let cleared = b
        .post_form(&format!("/people/{id}/clearance"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (cleared.status, cleared.location()),
        (303, format!("/people/{id}?done=cleared").as_str())
    );
    let departed = b
        .post_form(&format!("/people/{id}/depart"), &[("csrf", &csrf)])
        .await;
    assert_eq!(departed.status, 303);
    let (list, _) = b.page("/people").await;
    let row = list.tag(&format!(r#"class="person" data-person-id="{id}""#));
    assert!(row.contains(r#"data-status="departed""#));
    let ends = fx.server.now().date().add_years(2).unwrap().to_string();
    assert!(
        list.body.contains(&ends),
        "脱密期 ends two years on: {ends}"
    );
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn missing_carriers_show_the_days_left_and_overdue_sign_outs_their_days() {
    let fx = Fx::new().await;
    let ts = fx.carrier("2024-0300", "TS", Some("cab-1")).await;
    let s = fx.carrier("2024-0301", "S", Some("cab-1")).await;
    let late = fx.carrier("2024-0302", "C", None).await;
    let now = fx.server.now().unix_ms();
    fx.server
        .exec(format!(
            "UPDATE carriers SET state = 'missing', missing_since_ms = {} WHERE id IN ({ts}, {s});
             UPDATE carriers SET state = 'missing', missing_since_ms = {} WHERE id = {late};",
            now - 3 * DAY_MS,
            now - 61 * DAY_MS - 1000
        ))
        .await;
    let mut b = fx.browser(Role::SecurityOfficer).await;
    let (page, _) = b.page("/missing").await;
    let days = |id: &str| -> String {
        let row = page.element("missing-table");
        let at = row.find(&format!(r#"data-carrier-id="{id}""#)).unwrap();
        let cell = &row[at..];
        let start = cell.find(r#"class="days-left" data-days=""#).unwrap() + 29;
        cell[start..start + cell[start..].find('"').unwrap()].to_owned()
    };
    assert_eq!(days(&ts), "7", "TS: 10 days from missing");
    assert_eq!(days(&s), "57", "S: 60 days");
    assert!(
        page.tag(&format!(r#"data-carrier-id="{late}""#))
            .contains(r#"data-passed="true""#)
    );
    assert!(page.body.contains("已超过期限"));
    assert!(!page.body.contains(TITLE));

    // An overdue sign-out.
    let borrower = fx.person("孙立", "core", "2099-12-31").await;
    let carrier = fx.carrier("2024-0303", "S", Some("cab-1")).await;
    let signout = fx.request(&carrier, &borrower).await;
    fx.approve(&signout).await;
    let reply = fx
        .server
        .call(
            Method::POST,
            &format!("/api/v1/signouts/{signout}/issue"),
            Some(&fx.tokens[&Role::Custodian]),
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    let (empty, _) = b.page("/overdue").await;
    assert!(empty.body.contains(r#"id="overdue-empty""#));
    fx.server
        .exec(format!(
            "UPDATE signouts SET due_at_ms = {} WHERE id = {signout}",
            now - 2 * DAY_MS - 3_600_000
        ))
        .await;
    let (overdue, _) = b.page("/overdue").await;
    let row = overdue.element("overdue-table");
    assert!(row.contains(&format!(r#"data-signout-id="{signout}""#)));
    assert!(
        row.contains(r#"class="days-overdue" data-days="2""#),
        "{row}"
    );
    assert!(row.contains("孙立") && row.contains("2024-0303"));
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_carrier_page_shows_a_turned_back_after_its_passage() {
    let fx = Fx::new().await;
    let id = fx.carrier("A-7", "S", Some("cab-1")).await;
    let t = fx.server.now().unix_ms();
    fx.server
        .exec(format!(
            "INSERT INTO events (id, device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                 VALUES (901, 'cab-1', 1, 1, {t}, {t}, 'passage', '{{}}'),
                        (902, 'cab-1', 1, 2, {t} + 2000, {t}, 'turned_back', '{{}}');
             INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id, direction)
                 VALUES ({id}, 901, {t}, 'passage', 'cab-1', 'out'),
                        ({id}, 902, {t} + 2000, 'turned_back', 'cab-1', 'out');"
        ))
        .await;
    let mut b = fx.browser(Role::Custodian).await;
    let (page, _) = b.page(&format!("/carriers/{id}")).await;
    let panel = page.element("history-panel");
    let passage = panel.find(r#"data-type="passage""#).expect("the passage");
    let back = panel
        .find(r#"data-type="turned_back""#)
        .expect("the turning back");
    assert!(passage < back, "oldest first: {panel}");
    assert!(panel[back..].contains("在门禁处折返（未通过）"), "{panel}");
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_cabinet_count_lists_present_missing_and_extra_carriers() {
    let fx = Fx::new().await;
    let a = fx.carrier("A-1", "S", Some("cab-1")).await;
    let bb = fx.carrier("B-1", "S", Some("cab-1")).await;
    let c = fx.carrier("C-2", "C", Some("cab-2")).await;
    let d = fx.carrier("D-0", "C", None).await;
    let now = fx.server.now().unix_ms();
    fx.server
        .exec(format!(
            "INSERT INTO cabinet_contents (device_id, carrier_id, since_ms)
             VALUES ('cab-1', {a}, {now}), ('cab-1', {c}, {now}), ('cab-1', {d}, {now}),
                    ('cab-2', {c}, {now});"
        ))
        .await;
    let mut b = fx.browser(Role::Custodian).await;
    let (page, _) = b.page("/cabinets/cab-1").await;
    let ids = |list: &str| -> Vec<String> {
        let html = page.element(list);
        html.match_indices("data-carrier-id=\"")
            .map(|(at, m)| {
                let rest = &html[at + m.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect()
    };
    assert_eq!(ids("cabinet-present"), std::slice::from_ref(&a));
    assert_eq!(ids("cabinet-missing"), std::slice::from_ref(&bb));
    assert_eq!(ids("cabinet-extra"), [c.clone(), d.clone()]);
    let extra = page.element("cabinet-extra");
    assert!(extra.contains(r#"data-reason="wrong_cabinet""#) && extra.contains("cab-2"));
    assert!(extra.contains(r#"data-reason="no_home""#));
    assert!(page.element("cabinet-snapshot").contains("从未"));

    let (list, _) = b.page("/cabinets").await;
    let table = list.element("cabinet-table");
    let row1 = &table[table.find(r#"data-device-id="cab-1""#).unwrap()..];
    assert!(row1.contains(r#"<td class="count-present">1</td><td class="count-missing">1</td><td class="count-extra">2</td>"#), "{row1}");
    let row2 = &table[table.find(r#"data-device-id="cab-2""#).unwrap()..];
    assert!(row2.contains(r#"<td class="count-present">1</td><td class="count-missing">0</td><td class="count-extra">0</td>"#), "{row2}");

    // The registration form offers the cabinets as homes.
    let (form, _) = b.page("/carriers/new").await;
    assert!(form.element("carrier-home").contains(r#"value="cab-2""#));
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn the_alert_history_lists_handled_alerts_by_kind() {
    let fx = Fx::new().await;
    let carrier = fx.carrier("2024-0400", "TS", Some("cab-1")).await;
    let now = fx.server.now().unix_ms();
    fx.server
        .exec(format!(
            "INSERT INTO alerts (kind, severity, state, cause, raised_at_ms, last_seen_at_ms,
                                 carrier_id, device_id, acknowledged_by, acknowledged_at_ms,
                                 resolved_by, resolved_at_ms, resolution_note)
             VALUES ('missing', 'high', 'resolved', 'c1', {now}, {now}, {carrier}, 'cab-1',
                     'guard', {now}, 'security_officer', {now}, '已在会议室找到'),
                    ('reader_silent', 'high', 'acknowledged', 'c2', {now}, {now}, NULL, 'cab-2',
                     'guard', {now}, NULL, NULL, NULL),
                    ('unknown_tag', 'low', 'open', 'c3', {now}, {now}, NULL, 'cab-2',
                     NULL, NULL, NULL, NULL, NULL);"
        ))
        .await;
    let mut b = fx.browser(Role::SecurityOfficer).await;
    let (page, _) = b.page("/alerts/history").await;
    let rows = page.tags(r#"class="alert-row""#);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().any(|r| r.contains(r#"data-kind="missing""#) && r.contains(r#"data-state="resolved""#)));
    assert!(
        rows.iter()
            .any(|r| r.contains(r#"data-kind="reader_silent""#))
    );
    let table = page.element("history-table");
    assert!(table.contains("已在会议室找到") && table.contains("security_officer"));
    assert!(table.contains("2024-0400") && !table.contains(TITLE));
    let (only, _) = b.page("/alerts/history?kind=reader_silent").await;
    let rows = only.tags(r#"class="alert-row""#);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(r#"data-kind="reader_silent""#));
    assert!(only.tag(r#"value="reader_silent""#).contains("selected"));
    let (resolved, _) = b.page("/alerts/history?state=resolved").await;
    assert_eq!(resolved.tags(r#"class="alert-row""#).len(), 1);
    fx.server.stop().await.unwrap();
}

/// "Needs override" through the pages: the custodian sends the request with a note, the
/// officer's approve form asks for a written override reason (refused without one), and the
/// reason then shows on the approval at the desk.
#[tokio::test]
async fn an_override_is_asked_by_form_and_its_reason_shows_at_the_desk() {
    let fx = Fx::new().await;
    let clerk = fx.person("李雷", "general", "2099-12-31").await;
    let carrier = fx.carrier("2024-0200", "S", Some("cab-1")).await;
    let label = Fx::label("2024-0200");

    let mut custodian = fx.browser(Role::Custodian).await;
    let (form, csrf) = custodian.page("/signouts/new").await;
    assert!(form.body.contains(r#"id="signout-override-note""#));
    let nonce = form.attr_after(r#"name="nonce""#, "value").unwrap();
    let due = fx.server.now().plus_secs(86_400).to_string();
    let due = due.get(..16).unwrap();
    let requested = custodian
        .post_form(
            "/signouts/new",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("carrier_id", &carrier),
                ("borrower", &clerk),
                ("purpose", "审查"),
                ("due", due),
                ("tz_offset", "0"),
                ("override_note", "需要核对原件"),
            ],
        )
        .await;
    assert_eq!(requested.status, 303, "{}", requested.body);
    let signout = requested
        .location()
        .trim_start_matches("/signouts/new?requested=")
        .to_owned();

    let mut officer = fx.browser(Role::SecurityOfficer).await;
    let (queue, csrf) = officer.page("/approvals").await;
    let item = queue.element("approval-list");
    assert!(item.contains(r#"class="override-note""#) && item.contains("需要核对原件"));
    assert!(item.contains(r#"name="override_reason""#));
    let path = format!("/approvals/{signout}/approve");
    let bare = officer.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(bare.status, 422, "{}", bare.body);
    assert!(bare.body.contains("此借出单需特批"));
    let reason = "经处长同意，限阅一天";
    let done = officer
        .post_form(&path, &[("csrf", &csrf), ("override_reason", reason)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);

    let (desk, _) = custodian
        .page(&format!("/desk?scan={}", encode(&label)))
        .await;
    assert!(desk.tag(r#"class="override-reason""#).starts_with("<dd"));
    assert!(desk.body.contains(reason));
    assert!(desk.tag(r#"id="issue""#).contains(&signout));
    fx.server.stop().await.unwrap();
}
