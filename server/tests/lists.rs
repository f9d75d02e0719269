//! Lists over HTTP on a real socket: every list (carriers, people, sign-outs, alerts, audit,
//! devices) answers one page as a JSON array with an RFC 8288 `Link: <…>; rel="next"` header
//! while more remain; cursors are stable while the list changes; the register's search finds
//! carriers by control number, title words (Chinese substrings too), holder and department;
//! bad paging parameters are 400 and change nothing.

mod common;

use std::collections::HashMap;

use common::{Reply, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::{Value, json};

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
}

impl Fx {
    async fn new() -> Fx {
        let server = Server::start().await;
        let tokens = server.tokens_per_role().await;
        Fx { server, tokens }
    }

    async fn call(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.server
            .call(method, path, Some(&self.tokens[&role]), body)
            .await
    }

    async fn get(&self, role: Role, path: &str) -> Reply {
        self.call(role, Method::GET, path, None).await
    }

    /// Register a carrier as the custodian; its id.
    async fn carrier(&self, control_no: &str, title: &str, owner_unit: &str) -> String {
        let body = json!({
            "control_no": control_no, "kind": "paper", "level": "C", "title": title,
            "owner_unit": owner_unit, "tags": [],
        });
        let reply = self
            .call(
                Role::Custodian,
                Method::POST,
                "/api/v1/carriers",
                Some(body),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Every page of `path` from the first, following `Link: rel="next"`; each page's items.
    async fn pages(&self, role: Role, path: &str) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next {
            let reply = self.get(role, &path).await;
            assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
            pages.push(reply.body.as_array().unwrap().clone());
            next = next_link(&reply);
            assert!(pages.len() < 1000, "the links never end");
        }
        pages
    }

    /// The `field` of every item of the whole list, page after page.
    async fn walk(&self, role: Role, path: &str, field: &str) -> Vec<String> {
        self.pages(role, path)
            .await
            .into_iter()
            .flatten()
            .map(|item| text(&item[field]))
            .collect()
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The URI of a `Link: <URI>; rel="next"` header, if any.
fn next_link(reply: &Reply) -> Option<String> {
    let link = reply.headers.get("link")?.to_str().unwrap();
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    let uri = link.strip_prefix('<')?.split_once('>')?.0;
    Some(uri.to_owned())
}

fn control_nos(items: &[Value]) -> Vec<String> {
    items.iter().map(|c| text(&c["control_no"])).collect()
}

#[tokio::test]
async fn the_register_pages_in_any_sort_with_a_stable_cursor() {
    let fx = Fx::new().await;
    for n in [3, 1, 5, 2, 4, 7, 6] {
        fx.carrier(&format!("CU-{n}"), "年度计划", "一处").await;
    }
    let path = "/api/v1/carriers?limit=3&sort=-control_no";
    let first = fx.get(Role::Custodian, path).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        control_nos(first.body.as_array().unwrap()),
        ["CU-7", "CU-6", "CU-5"]
    );
    let next = next_link(&first).expect("a link to the second page");
    assert!(next.starts_with("/api/v1/carriers?limit=3&sort=-control_no&cursor="));

    // A carrier registered before the cursor is neither repeated nor makes one skipped.
    fx.carrier("CU-9", "年度计划", "一处").await;
    let mut rest = Vec::new();
    let mut link = Some(next);
    while let Some(path) = link {
        let reply = fx.get(Role::SecurityOfficer, &path).await;
        assert_eq!(reply.status, 200);
        rest.extend(control_nos(reply.body.as_array().unwrap()));
        link = next_link(&reply);
    }
    assert_eq!(rest, ["CU-4", "CU-3", "CU-2", "CU-1"]);

    // Registration order (the default) and ascending control numbers, two at a time.
    let by_id = fx
        .walk(Role::Custodian, "/api/v1/carriers?limit=2", "control_no")
        .await;
    assert_eq!(
        by_id,
        [
            "CU-3", "CU-1", "CU-5", "CU-2", "CU-4", "CU-7", "CU-6", "CU-9"
        ]
    );
    let pages = fx
        .pages(Role::Custodian, "/api/v1/carriers?limit=4&sort=control_no")
        .await;
    assert_eq!(
        pages.len(),
        2,
        "exactly two full pages, the last without a link"
    );
    assert_eq!(control_nos(&pages[1]), ["CU-5", "CU-6", "CU-7", "CU-9"]);
}

#[tokio::test]
async fn a_page_holds_100_carriers_unless_asked_and_at_most_500() {
    let fx = Fx::new().await;
    let values: Vec<String> = (1..=520)
        .map(|n| {
            format!(
                "('B-{n:04}', 'paper', 'C', 'title', 'unit', 'in_storage', '2026-01-01T00:00:00Z')"
            )
        })
        .collect();
    fx.server
        .exec(format!(
            "INSERT INTO carriers (control_no, kind, level, title, owner_unit, state, created_at)
             VALUES {}",
            values.join(",")
        ))
        .await;
    let page = fx.get(Role::Custodian, "/api/v1/carriers").await;
    assert_eq!(page.body.as_array().unwrap().len(), 100);
    assert!(next_link(&page).is_some());
    let page = fx.get(Role::Custodian, "/api/v1/carriers?limit=500").await;
    assert_eq!(page.body.as_array().unwrap().len(), 500);
    let rest = fx.get(Role::Custodian, &next_link(&page).unwrap()).await;
    assert_eq!(rest.body.as_array().unwrap().len(), 20);
    assert_eq!(next_link(&rest), None);

    let audit = fx.server.audit_count().await;
    let id_cursor = next_link(&page).unwrap();
    let id_cursor = id_cursor.split("cursor=").nth(1).unwrap();
    for bad in [
        "limit=0".to_owned(),
        "limit=501".to_owned(),
        "limit=ten".to_owned(),
        "sort=title".to_owned(),
        "cursor=zz".to_owned(),
        "cursor=00".to_owned(),
        format!("sort=-id&cursor={id_cursor}"),
        format!("q={}", "x".repeat(201)),
        "state=lost".to_owned(),
    ] {
        let reply = fx
            .get(Role::Custodian, &format!("/api/v1/carriers?{bad}"))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
        assert_eq!(reply.error(), "bad_request");
    }
    assert_eq!(
        fx.server.audit_count().await,
        audit,
        "reading changes nothing"
    );
}

#[tokio::test]
async fn the_register_search_matches_title_words_holder_and_department() {
    let fx = Fx::new().await;
    let plan = fx.carrier("CU-100", "2026年度保密工作计划", "办公室").await;
    let minutes = fx
        .carrier("CU-101", "党委会议纪要（第三次）", "办公室")
        .await;
    let design = fx.carrier("AB-7", "Radar Design Review", "研究一所").await;
    let person = fx
        .call(
            Role::SecurityOfficer,
            Method::POST,
            "/api/v1/people",
            Some(json!({"name": "王晓明", "department": "技术保障科", "category": "important"})),
        )
        .await;
    assert_eq!(person.status, 201);
    let person = person.body["id"].as_str().unwrap().to_owned();
    // Set-up only: the holder is whoever a carrier is issued to.
    fx.server
        .exec(format!(
            "UPDATE carriers SET holder = {person}, state = 'out' WHERE id = {design}"
        ))
        .await;

    let search = |q: &str| {
        let q = q.to_owned();
        let fx = &fx;
        async move {
            let path = format!("/api/v1/carriers?q={}", encode(&q));
            let reply = fx.get(Role::Custodian, &path).await;
            assert_eq!(reply.status, 200, "{q}: {:?}", reply.body);
            let mut ids: Vec<String> = reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|c| text(&c["id"]))
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |ids: &[&String]| {
        let mut v: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
        v.sort();
        v
    };
    assert_eq!(
        search("保密").await,
        sorted(&[&plan]),
        "a two-character Chinese word"
    );
    assert_eq!(search("会议纪要").await, sorted(&[&minutes]));
    assert_eq!(
        search("年度 计划").await,
        sorted(&[&plan]),
        "every word must match"
    );
    assert_eq!(search("年度\u{3000}纪要").await, Vec::<String>::new());
    assert_eq!(search("radar review").await, sorted(&[&design]), "any case");
    assert_eq!(
        search("cu-10").await,
        sorted(&[&plan, &minutes]),
        "control number"
    );
    assert_eq!(
        search("晓明").await,
        sorted(&[&design]),
        "the holder's name"
    );
    assert_eq!(
        search("技术保障").await,
        sorted(&[&design]),
        "the holder's department"
    );
    assert_eq!(
        search("办公室").await,
        sorted(&[&plan, &minutes]),
        "the owning unit"
    );
    // The same search on the state filter and in pages.
    let out = fx
        .get(
            Role::SecurityOfficer,
            "/api/v1/carriers?state=out&q=%E7%8E%8B",
        )
        .await;
    assert_eq!(control_nos(out.body.as_array().unwrap()), ["AB-7"]);
    let paged = fx
        .walk(
            Role::Custodian,
            "/api/v1/carriers?q=%E5%8A%9E&limit=1&sort=-id",
            "control_no",
        )
        .await;
    assert_eq!(paged, ["CU-101", "CU-100"]);
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn every_list_answers_pages_with_a_next_link() {
    let fx = Fx::new().await;
    let mut people = Vec::new();
    for (name, department) in [("张三", "一处"), ("李四", "二处"), ("王五", "一处")] {
        let reply = fx
            .call(
                Role::SecurityOfficer,
                Method::POST,
                "/api/v1/people",
                Some(
                    json!({"name": name, "department": department, "category": "core",
                            "training_valid_until": "2099-01-01",
                            "commitment_signed_on": "2026-01-01"}),
                ),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        people.push(text(&reply.body["id"]));
    }
    assert_eq!(
        fx.walk(Role::Custodian, "/api/v1/people?limit=2&sort=-name", "name")
            .await,
        ["王五", "李四", "张三"]
    );
    assert_eq!(
        fx.walk(
            Role::Admin,
            "/api/v1/people?limit=1&q=%E4%B8%80%E5%A4%84",
            "name"
        )
        .await,
        ["张三", "王五"],
        "people by department"
    );

    for (id, name) in [("vault", "机要室"), ("hall", "大厅")] {
        let level = if id == "vault" { "TS" } else { "public" };
        let reply = fx
            .call(
                Role::Admin,
                Method::POST,
                "/api/v1/zones",
                Some(json!({"id": id, "name": name, "level": level})),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    for (n, body) in [
        json!({"id": "cab-2", "kind": "cabinet", "zone": "vault"}),
        json!({"id": "gate-1", "kind": "gate", "inside_zone": "vault", "outside_zone": "hall"}),
        json!({"id": "cab-1", "kind": "cabinet", "zone": "vault"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = body;
        body["public_key"] = json!(common::device_key_b64(u32::try_from(n).unwrap() + 1));
        let reply = fx
            .call(Role::Admin, Method::POST, "/api/v1/devices", Some(body))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    assert_eq!(
        fx.walk(Role::Admin, "/api/v1/devices?limit=2", "id").await,
        ["cab-1", "cab-2", "gate-1"]
    );
    assert_eq!(
        fx.walk(
            Role::SecurityOfficer,
            "/api/v1/devices?limit=1&sort=-kind&q=vault",
            "id"
        )
        .await,
        ["gate-1", "cab-2", "cab-1"]
    );

    let mut signouts = Vec::new();
    for n in 1..=3 {
        let carrier = fx.carrier(&format!("S-{n}"), "title", "unit").await;
        let due = fx.server.now().plus_secs(86_400 * (4 - n)).to_string();
        let reply = fx
            .call(
                Role::Custodian,
                Method::POST,
                "/api/v1/signouts",
                Some(json!({"carrier_ids": [carrier], "borrower": people[0],
                            "purpose": format!("review {n}"), "due_at": due,
                            "may_leave": false})),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        signouts.push(text(&reply.body["id"]));
    }
    let by_due = fx
        .walk(
            Role::Custodian,
            "/api/v1/signouts?limit=2&sort=due_at",
            "id",
        )
        .await;
    assert_eq!(
        by_due,
        [
            signouts[2].clone(),
            signouts[1].clone(),
            signouts[0].clone()
        ]
    );
    assert_eq!(
        fx.walk(
            Role::SecurityOfficer,
            "/api/v1/signouts?q=S-2&limit=1",
            "id"
        )
        .await,
        [signouts[1].clone()],
        "sign-outs by a carrier's control number"
    );

    // Alerts, newest first, one at a time.
    fx.server
        .exec(
            "INSERT INTO alerts (kind, severity, cause, raised_at_ms, last_seen_at_ms)
             VALUES ('reader_silent', 'high', 'a', 1, 1), ('reader_silent', 'high', 'b', 2, 2),
                    ('reader_fault', 'high', 'c', 3, 3)",
        )
        .await;
    let alerts = fx.walk(Role::Guard, "/api/v1/alerts?limit=1", "id").await;
    assert_eq!(alerts, ["3", "2", "1"]);
    let faults = fx
        .pages(Role::Guard, "/api/v1/alerts?limit=2&kind=reader_silent")
        .await;
    assert_eq!(faults.len(), 1, "two silent readers fit one page of two");

    // The audit trail, oldest first.
    let total = usize::try_from(fx.server.audit_count().await).unwrap();
    let ids = fx.walk(Role::Auditor, "/api/v1/audit?limit=7", "id").await;
    let expected: Vec<String> = (1..=total).map(|n| n.to_string()).collect();
    assert_eq!(ids, expected);

    for bad in [
        "/api/v1/people?sort=badge",
        "/api/v1/devices?limit=0",
        "/api/v1/signouts?cursor=abc",
        "/api/v1/alerts?sort=kind",
        "/api/v1/alerts?cursor=zz",
        "/api/v1/audit?cursor=00",
    ] {
        let role = if bad.contains("audit") {
            Role::Auditor
        } else {
            Role::SecurityOfficer
        };
        let reply = fx.get(role, bad).await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn alerts_are_searched_by_kind_control_number_and_note() {
    let fx = Fx::new().await;
    let carrier = fx.carrier("ZX-7", "title", "unit").await;
    fx.server
        .exec(format!(
            "INSERT INTO alerts (kind, severity, state, cause, raised_at_ms, last_seen_at_ms,
                                 carrier_id, resolution_note)
             VALUES ('reader_silent', 'high', 'open', 'a', 1, 1, NULL, NULL),
                    ('wrong_cabinet', 'high', 'open', 'b', 2, 2, {carrier}, NULL),
                    ('reader_fault', 'high', 'resolved', 'c', 3, 3, NULL,
                     'Found behind the Shelf')"
        ))
        .await;
    for (query, expected) in [
        ("q=READER", vec!["3", "1"]),
        ("q=zx-7", vec!["2"]),
        ("q=shelf", vec!["3"]),
        ("q=reader%20%20shelf", vec!["3"]),
        ("q=reader%20zx", vec![]),
        ("q=%20%20", vec!["3", "2", "1"]),
        ("q=reader&state=open", vec!["1"]),
    ] {
        let path = format!("/api/v1/alerts?limit=1&{query}");
        assert_eq!(fx.walk(Role::Guard, &path, "id").await, expected, "{query}");
    }
    let long = "a".repeat(201);
    let reply = fx
        .get(Role::Guard, &format!("/api/v1/alerts?q={long}"))
        .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
}

#[tokio::test]
async fn the_audit_trail_is_searched_by_actor_action_and_subject() {
    let fx = Fx::new().await;
    fx.carrier("AU-1", "title", "unit").await;
    fx.carrier("AU-2", "title", "unit").await;
    let all = fx
        .pages(Role::Auditor, "/api/v1/audit?limit=500")
        .await
        .concat();
    let fields = |e: &Value| {
        [&e["actor"], &e["action"], &e["subject"]]
            .map(|v| text(v).to_lowercase())
            .to_vec()
    };
    let last = all.last().unwrap();
    let [actor, action, subject] = [&last["actor"], &last["action"], &last["subject"]].map(text);
    for words in [
        vec![action.to_uppercase()],
        vec![actor.clone(), action.clone()],
        vec![subject.clone()],
        vec![action.clone(), "no-such-word".to_owned()],
    ] {
        let expected: Vec<String> = all
            .iter()
            .filter(|e| {
                let f = fields(e);
                words
                    .iter()
                    .all(|w| f.iter().any(|f| f.contains(&w.to_lowercase())))
            })
            .map(|e| text(&e["id"]))
            .collect();
        let q: String = words
            .join(" ")
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let found = fx
            .walk(Role::Auditor, &format!("/api/v1/audit?limit=2&q={q}"), "id")
            .await;
        assert_eq!(found, expected, "{words:?}");
        assert!(words.len() == 2 && words[1] == "no-such-word" || !found.is_empty());
    }
    let long = "a".repeat(201);
    let reply = fx
        .get(Role::Auditor, &format!("/api/v1/audit?q={long}"))
        .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
}
