//! The list pages (issue #14 on the pages) over HTTP, driven like a browser without script:
//! people, sign-outs, alert history, audit trail and devices each show one page at a time with
//! a next link that keeps the search, search narrows, a sort header reverses the order, and a
//! malformed page parameter (cursor, sort, an over-long search) is refused with 400 and the
//! first page with a notice, never a 500. DOM hooks: `server/src/web/DOM_HOOKS.md`.

mod common;

use std::collections::HashMap;

use common::browser::{Answer, Browser};
use common::{ADMIN_PASSWORD, PASSWORD, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::{Value, json};

use Role::{Admin, Auditor, Custodian, Guard, SecurityOfficer};

/// People registered: more than a page of the people page (25).
const PEOPLE: usize = 30;
/// Sign-outs requested: more than a page of the sign-outs page (25).
const SIGNOUTS: usize = 30;
/// Handled alerts: more than a page of the alert history (50).
const ALERTS: usize = 55;

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
}

impl Fx {
    async fn new() -> Fx {
        let server = Server::start_with(|c| {
            c.sweep_interval_ms = 3_600_000;
            c.silence_watch = false;
        })
        .await;
        let tokens = server.tokens_per_role().await;
        Fx { server, tokens }
    }

    /// A POST to the JSON API that must succeed; its `id`.
    async fn api(&self, role: Role, path: &str, body: Value) -> String {
        let reply = self
            .server
            .call(Method::POST, path, Some(&self.tokens[&role]), Some(body))
            .await;
        assert!(
            (200..300).contains(&reply.status),
            "{path}: {} {:?}",
            reply.status,
            reply.body
        );
        match &reply.body["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    async fn browser(&self, role: Role) -> Browser {
        let mut b = Browser::new(&self.server);
        let password = if role == Admin {
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

    /// `PEOPLE` people `P-01`.. (odd ones in 一处, even ones in 二处); their ids in order.
    async fn people(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for n in 1..=PEOPLE {
            let dept = if n % 2 == 1 { "一处" } else { "二处" };
            let body = json!({"name": format!("P-{n:02}"), "department": dept,
                "category": "important", "training_valid_until": "2099-01-01",
                "commitment_signed_on": "2020-01-01"});
            ids.push(self.api(SecurityOfficer, "/api/v1/people", body).await);
        }
        ids
    }

    /// `SIGNOUTS` sign-outs of one carrier each to `borrower`, every fifth for a meeting
    /// (会议); their ids in order.
    async fn signouts(&self, borrower: &str) -> Vec<String> {
        let due = self.server.now().plus_secs(86_400).to_string();
        let mut ids = Vec::new();
        for n in 1..=SIGNOUTS {
            let carrier = self
                .api(
                    Custodian,
                    "/api/v1/carriers",
                    json!({"control_no": format!("S-{n:03}"), "kind": "paper", "level": "C",
                           "title": "t", "owner_unit": "U", "tags": []}),
                )
                .await;
            let purpose = if n % 5 == 0 {
                "会议 材料"
            } else {
                "审阅"
            };
            ids.push(
                self.api(
                    Custodian,
                    "/api/v1/signouts",
                    json!({"carrier_ids": [carrier], "borrower": borrower, "purpose": purpose,
                           "due_at": due, "may_leave": false}),
                )
                .await,
            );
        }
        ids
    }
}

/// The value of attribute `name` in a start tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(tag[start..start + end].replace("&amp;", "&"))
}

/// `data-{name}` of every row whose start tag holds `row`.
fn column(page: &Answer, row: &str, name: &str) -> Vec<String> {
    page.tags(row)
        .iter()
        .filter_map(|t| attr(t, name))
        .collect()
}

/// The address of the link `#{id}`, if the page has one.
fn link(page: &Answer, id: &str) -> Option<String> {
    let needle = format!("id=\"{id}\"");
    let tags = page.tags(&needle);
    tags.first().and_then(|t| attr(t, "href"))
}

#[tokio::test]
async fn people_page_through_search_and_sort() {
    let fx = Fx::new().await;
    let ids = fx.people().await;
    let mut b = fx.browser(SecurityOfficer).await;
    let row = r#"class="person""#;

    // By name: P-01.. on the first page, the rest on the next, which leads back.
    let first = b.get("/people").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let shown = column(&first, row, "data-person-id");
    assert_eq!(shown, ids[..25].to_vec());
    assert!(link(&first, "people-first").is_none());
    let next = link(&first, "people-next").expect("a next page");
    let second = b.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(column(&second, row, "data-person-id"), ids[25..].to_vec());
    assert!(link(&second, "people-next").is_none());
    assert_eq!(link(&second, "people-first").as_deref(), Some("/people"));

    // The name header sorts the other way; its link starts again at the first page.
    let header = first.tag(r#"data-sort="name""#);
    let down = attr(header, "href").unwrap();
    assert!(!down.contains("cursor"), "{down}");
    let down = b.get(&down).await;
    let shown = column(&down, row, "data-person-id");
    assert_eq!(shown.first(), ids.last());
    assert!(down.body.contains(r#"aria-sort="descending""#));

    // Search narrows (the department), and the next link keeps the search and filters.
    let q = "/people?q=%E4%BA%8C%E5%A4%84&state=active";
    let narrowed = b.get(q).await;
    let shown = column(&narrowed, row, "data-person-id");
    assert_eq!(shown.len(), PEOPLE / 2);
    assert!(link(&narrowed, "people-next").is_none());
    let small = b.get("/people?state=active&sort=-name").await;
    assert_eq!(column(&small, row, "data-person-id").len(), 25);
    let next = link(&small, "people-next").unwrap();
    assert!(
        next.contains("state=active") && next.contains("sort=-name"),
        "{next}"
    );
    let rest = b.get(&next).await;
    assert_eq!(
        column(&rest, row, "data-person-id"),
        ids[..5].iter().rev().cloned().collect::<Vec<_>>()
    );
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn signouts_page_for_custodians_and_officers() {
    let fx = Fx::new().await;
    let borrower = fx
        .api(
            SecurityOfficer,
            "/api/v1/people",
            json!({"name": "借用人甲", "department": "一处", "category": "core",
                   "training_valid_until": "2099-01-01", "commitment_signed_on": "2020-01-01"}),
        )
        .await;
    let ids = fx.signouts(&borrower).await;
    let row = r#"class="signout""#;
    for role in [Custodian, SecurityOfficer] {
        let mut b = fx.browser(role).await;
        // Newest first by default.
        let first = b.get("/signouts/list").await;
        assert_eq!(first.status, 200, "{role:?}: {}", first.body);
        let shown = column(&first, row, "data-signout-id");
        let newest: Vec<String> = ids.iter().rev().take(25).cloned().collect();
        assert_eq!(shown, newest);
        let next = link(&first, "signouts-next").expect("a next page");
        let second = b.get(&next).await;
        assert_eq!(column(&second, row, "data-signout-id").len(), SIGNOUTS - 25);
        assert!(link(&second, "signouts-first").is_some());

        // The number header sorts oldest first.
        let up = attr(first.tag(r#"data-sort="id""#), "href").unwrap();
        let up = b.get(&up).await;
        assert_eq!(column(&up, row, "data-signout-id")[0], ids[0]);

        // The search narrows to the meetings and keeps itself in the sort links.
        let meetings = b.get("/signouts/list?q=%E4%BC%9A%E8%AE%AE").await;
        let shown = column(&meetings, row, "data-signout-id");
        assert_eq!(shown.len(), SIGNOUTS / 5);
        let sort = attr(meetings.tag(r#"data-sort="due_at""#), "href").unwrap();
        assert!(sort.contains("q=%E4%BC%9A%E8%AE%AE"), "{sort}");
        let by_state = b.get("/signouts/list?state=approved").await;
        assert!(by_state.body.contains(r#"id="signouts-empty""#));
    }
    let mut guard = fx.browser(Guard).await;
    assert_eq!(guard.get("/signouts/list").await.status, 403);
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn alert_history_and_audit_page_back_in_time() {
    let fx = Fx::new().await;
    let now = fx.server.now().unix_ms();
    let rows: Vec<String> = (1..=ALERTS)
        .map(|n| {
            let note = if n % 11 == 0 {
                "在会议室找到"
            } else {
                "已处理"
            };
            format!(
                "('missing', 'high', 'resolved', 'c{n}', {now}, {now}, NULL, NULL,
                  'guard', {now}, 'security_officer', {now}, '{note}')"
            )
        })
        .collect();
    fx.server
        .exec(format!(
            "INSERT INTO alerts (kind, severity, state, cause, raised_at_ms, last_seen_at_ms,
                                 carrier_id, device_id, acknowledged_by, acknowledged_at_ms,
                                 resolved_by, resolved_at_ms, resolution_note)
             VALUES {}, ('unknown_tag', 'low', 'open', 'open1', {now}, {now}, NULL, NULL,
                         NULL, NULL, NULL, NULL, NULL);",
            rows.join(",")
        ))
        .await;
    let mut b = fx.browser(SecurityOfficer).await;
    let row = r#"class="alert-row""#;
    let first = b.get("/alerts/history").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let shown = column(&first, row, "data-alert-id");
    assert_eq!(shown.len(), 50);
    assert!(
        !first.body.contains(r#"data-state="open""#),
        "open alerts are not history"
    );
    let ids: Vec<i64> = shown.iter().map(|s| s.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let next = link(&first, "history-next").expect("older alerts");
    let older = b.get(&next).await;
    let rest: Vec<i64> = column(&older, row, "data-alert-id")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(rest.len(), ALERTS - 50);
    assert!(rest.iter().all(|id| id < ids.last().unwrap()));
    // The number header turns the history oldest first, and its next page continues so.
    let header = attr(first.tag(r#"data-sort="id""#), "href").unwrap();
    let up = b.get(&header).await;
    let up_ids: Vec<i64> = column(&up, row, "data-alert-id")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(up_ids.len(), 50);
    assert!(
        up_ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {up_ids:?}"
    );
    let up_next = b.get(&link(&up, "history-next").unwrap()).await;
    let up_rest: Vec<i64> = column(&up_next, row, "data-alert-id")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(up_rest.len(), ALERTS - 50);
    assert!(up_rest.iter().all(|id| id > up_ids.last().unwrap()));

    // The API sorts the same way, and its cursor of one order is refused in the other.
    let token = &fx.tokens[&SecurityOfficer];
    let api = fx
        .server
        .call(
            Method::GET,
            "/api/v1/alerts?sort=id&limit=2",
            Some(token),
            None,
        )
        .await;
    assert_eq!(api.status, 200, "{:?}", api.body);
    let ids: Vec<i64> = api
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids[0] < ids[1], "{ids:?}");
    let next = api
        .headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let next = next
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .replace("/api/v1", "");
    let more = fx
        .server
        .call(Method::GET, &format!("/api/v1{next}"), Some(token), None)
        .await;
    assert_eq!(more.status, 200, "{:?}", more.body);
    let third: i64 = more.body[0]["id"].as_str().unwrap().parse().unwrap();
    assert!(third > ids[1]);
    let swapped = next.replace("sort=id", "sort=-id");
    let refused = fx
        .server
        .call(Method::GET, &format!("/api/v1{swapped}"), Some(token), None)
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);

    let found = b
        .get("/alerts/history?q=%E4%BC%9A%E8%AE%AE&kind=missing")
        .await;
    assert_eq!(column(&found, row, "data-alert-id").len(), ALERTS / 11);

    // The audit trail: newest first, the next page with the API's cursor keeps the filter.
    for n in 0..60 {
        fx.api(
            Admin,
            "/api/v1/zones",
            json!({"id": format!("z{n}"), "name": format!("区域{n}"), "level": "C"}),
        )
        .await;
    }
    let mut auditor = fx.browser(Auditor).await;
    let trail = auditor.get("/audit?batches=1").await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let entries: Vec<i64> = column(&trail, r#"class="audit-entry""#, "data-entry-id")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(entries.len(), 50, "more than a page of audit entries");
    assert!(entries.windows(2).all(|w| w[0] > w[1]));
    let next = link(&trail, "audit-next").expect("older entries");
    assert!(
        next.contains("batches=1") && next.contains("cursor="),
        "{next}"
    );
    let older = auditor.get(&next).await;
    assert_eq!(older.status, 200);
    let rest: Vec<i64> = column(&older, r#"class="audit-entry""#, "data-entry-id")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        !rest.is_empty() && rest[0] < *entries.last().unwrap(),
        "{rest:?}"
    );
    assert_eq!(
        link(&older, "audit-first").as_deref(),
        Some("/audit?batches=1")
    );
    // The API's cursor of the trail (oldest first) is not this page's (newest first).
    let api = fx
        .server
        .call(
            Method::GET,
            "/api/v1/audit?limit=1",
            Some(&fx.tokens[&Auditor]),
            None,
        )
        .await;
    let api_link = api
        .headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let api_cursor = api_link
        .split("cursor=")
        .nth(1)
        .and_then(|c| c.split(['&', '>']).next())
        .expect("the API pages the trail");
    let wrong = auditor.get(&format!("/audit?cursor={api_cursor}")).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains(r#"id="audit-reset""#));
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn devices_search_and_sort() {
    let fx = Fx::new().await;
    fx.api(
        Admin,
        "/api/v1/zones",
        json!({"id": "vault", "name": "保密室", "level": "TS"}),
    )
    .await;
    for (n, (id, kind)) in [
        ("cab-a", "cabinet"),
        ("desk-b", "desk"),
        ("cab-c", "cabinet"),
    ]
    .into_iter()
    .enumerate()
    {
        let key = common::device_key_b64(u32::try_from(n).unwrap() + 1);
        fx.api(
            Admin,
            "/api/v1/devices",
            json!({"id": id, "kind": kind, "zone": "vault", "public_key": key}),
        )
        .await;
    }
    let mut b = fx.browser(Admin).await;
    let row = "data-revoked=";
    let all = b.get("/admin/devices").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(
        column(&all, row, "data-device-id"),
        ["cab-a", "cab-c", "desk-b"]
    );
    let down = b.get("/admin/devices?sort=-id").await;
    assert_eq!(
        column(&down, row, "data-device-id"),
        ["desk-b", "cab-c", "cab-a"]
    );
    let desks = b.get("/admin/devices?q=desk").await;
    assert_eq!(column(&desks, row, "data-device-id"), ["desk-b"]);
    let zone = b.get("/admin/devices?q=vault&sort=kind").await;
    assert_eq!(
        column(&zone, row, "data-device-id"),
        ["cab-a", "cab-c", "desk-b"]
    );
    // A zone's name finds the devices in it, as its id does.
    let named = b
        .get("/admin/devices?q=%E4%BF%9D%E5%AF%86%E5%AE%A4+desk")
        .await;
    assert_eq!(column(&named, row, "data-device-id"), ["desk-b"]);
    let api = fx
        .server
        .call(
            Method::GET,
            "/api/v1/devices?q=%E4%BF%9D%E5%AF%86%E5%AE%A4",
            Some(&fx.tokens[&Admin]),
            None,
        )
        .await;
    assert_eq!(api.status, 200, "{:?}", api.body);
    assert_eq!(api.body.as_array().map(Vec::len), Some(3));
    fx.server.stop().await.unwrap();
}

/// Every list page answers a malformed cursor, an unknown sort and an over-long search with
/// 400 and its first page with a notice: the refusal is clear, nothing breaks.
#[tokio::test]
async fn malformed_page_parameters_are_refused_with_400_not_500() {
    let fx = Fx::new().await;
    let long = "x".repeat(201);
    let pages: [(Role, &str, &str); 6] = [
        (Custodian, "/carriers", "carrier"),
        (SecurityOfficer, "/people", "people"),
        (Custodian, "/signouts/list", "signouts"),
        (SecurityOfficer, "/alerts/history", "history"),
        (Auditor, "/audit", "audit"),
        (Admin, "/admin/devices", "device"),
    ];
    for (role, path, prefix) in pages {
        let mut b = fx.browser(role).await;
        let fine = b.get(path).await;
        assert_eq!(fine.status, 200, "{path}: {}", fine.body);
        assert!(!fine.body.contains(&format!("id=\"{prefix}-reset\"")));
        let mut bad = vec![
            format!("{path}?cursor=zz"),
            format!("{path}?cursor=%E4%BC%9A"),
            format!("{path}?cursor={}", "ab".repeat(600)),
        ];
        if path != "/audit" {
            bad.push(format!("{path}?sort=nonsense&cursor=00"));
        }
        if !matches!(path, "/audit") {
            bad.push(format!("{path}?q={long}"));
        }
        for query in bad {
            let answer = b.get(&query).await;
            assert_eq!(answer.status, 400, "{query}: {}", answer.body);
            assert!(answer.is_html(), "{query}");
            assert!(
                answer.body.contains(&format!("id=\"{prefix}-reset\"")),
                "{query}: no notice"
            );
        }
    }
    // A sort the page does not offer is refused even without a cursor (alerts sort by id).
    let mut officer = fx.browser(SecurityOfficer).await;
    let answer = officer.get("/alerts/history?sort=kind").await;
    assert_eq!(answer.status, 400);
    fx.server.stop().await.unwrap();
}
