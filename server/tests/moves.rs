//! Stocktakes, year-end collections and retention over HTTP: each happy path, each refusal
//! (with nothing changed), and who may do what.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{INITIAL_PASSWORD, Reply, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::{Value, json};

const EPC_1: &str = "3474257BF40000000000162E";

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
    keys: AtomicU32,
}

impl Fx {
    /// A server with one account per role, zone `vault` (TS) with cabinets `cab-1`, `cab-2`.
    async fn new() -> Fx {
        let server = Server::start().await;
        let tokens = server.tokens_per_role().await;
        let fx = Fx {
            server,
            tokens,
            keys: AtomicU32::new(1),
        };
        fx.expect(
            Role::Admin,
            Method::POST,
            "/api/v1/zones",
            Some(json!({"id": "vault", "name": "vault", "level": "TS"})),
            201,
        )
        .await;
        for id in ["cab-1", "cab-2"] {
            let key = common::device_key_b64(fx.keys.fetch_add(1, Ordering::SeqCst));
            fx.expect(
                Role::Admin,
                Method::POST,
                "/api/v1/devices",
                Some(json!({"id": id, "kind": "cabinet", "zone": "vault", "public_key": key})),
                201,
            )
            .await;
        }
        fx
    }

    async fn call(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.server
            .call(method, path, Some(&self.tokens[&role]), body)
            .await
    }

    async fn expect(
        &self,
        role: Role,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let reply = self.call(role, method.clone(), path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
        reply.body
    }

    /// A refused call: its status and error code, and nothing changed in the audit trail.
    async fn refused(
        &self,
        role: Role,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) {
        let before = self.server.audit_count().await;
        let reply = self.call(role, method.clone(), path, body).await;
        assert_eq!(
            (reply.status, reply.error()),
            (status, code),
            "{method} {path}: {:?}",
            reply.body
        );
        assert_eq!(self.server.audit_count().await, before, "{method} {path}");
    }

    async fn carrier(&self, control_no: &str, home: &str, tags: &[&str]) -> String {
        let body = json!({
            "control_no": control_no, "kind": "paper", "level": "S",
            "title": format!("标题 {control_no}"), "owner_unit": "保密办",
            "home_device": home, "tags": tags
        });
        let reply = self
            .expect(
                Role::Custodian,
                Method::POST,
                "/api/v1/carriers",
                Some(body),
                201,
            )
            .await;
        reply["id"].as_str().unwrap().to_owned()
    }

    async fn person(&self, name: &str, department: &str) -> String {
        let body = json!({
            "name": name, "department": department, "category": "important",
            "training_valid_until": "2099-12-31", "commitment_signed_on": "2020-01-01"
        });
        let reply = self
            .expect(
                Role::SecurityOfficer,
                Method::POST,
                "/api/v1/people",
                Some(body),
                201,
            )
            .await;
        reply["id"].as_str().unwrap().to_owned()
    }

    /// Lend `carrier` to `borrower` (request, approve, issue); the sign-out id.
    async fn lend(&self, carrier: &str, borrower: &str) -> String {
        let due = self.server.now().plus_secs(86_400).to_string();
        let body = json!({
            "carrier_ids": [carrier], "borrower": borrower, "purpose": "review",
            "due_at": due, "may_leave": false
        });
        let id = self
            .expect(
                Role::Custodian,
                Method::POST,
                "/api/v1/signouts",
                Some(body),
                201,
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/api/v1/signouts/{id}");
        self.expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("{path}/approve"),
            None,
            200,
        )
        .await;
        self.expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/issue"),
            None,
            200,
        )
        .await;
        id
    }

    /// A second custodian account linked to person `person`; its token.
    async fn custodian_for(&self, username: &str, person: &str) -> String {
        let body = json!({
            "username": username, "password": INITIAL_PASSWORD,
            "roles": ["custodian"], "person_id": person
        });
        self.expect(Role::Admin, Method::POST, "/api/v1/users", Some(body), 201)
            .await;
        self.server.activate(username).await
    }

    async fn with_token(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.server.call(method, path, Some(token), body).await
    }

    async fn carrier_json(&self, carrier: &str) -> Value {
        self.expect(
            Role::Custodian,
            Method::GET,
            &format!("/api/v1/carriers/{carrier}"),
            None,
            200,
        )
        .await
    }

    async fn state_of(&self, carrier: &str) -> String {
        let c = self
            .expect(
                Role::Custodian,
                Method::GET,
                &format!("/api/v1/carriers/{carrier}"),
                None,
                200,
            )
            .await;
        c["state"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_stocktake_counts_expected_against_seen_and_settles_what_is_missing() {
    let fx = Fx::new().await;
    let a = fx
        .carrier("ST-1", "cab-1", &[&format!("epc:{EPC_1}")])
        .await;
    let b = fx.carrier("ST-2", "cab-1", &[]).await;
    let c = fx.carrier("ST-3", "cab-1", &[]).await;
    let elsewhere = fx.carrier("ST-9", "cab-2", &[]).await;

    // Who may count, and what a scope must name.
    for role in [Role::Guard, Role::SecurityOfficer, Role::Auditor] {
        fx.refused(
            role,
            Method::POST,
            "/api/v1/stocktakes",
            Some(json!({"scope": {"device_id": "cab-1"}})),
            403,
            "forbidden",
        )
        .await;
    }
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/stocktakes",
        Some(json!({"scope": {"device_id": "cab-1", "zone_id": "vault"}})),
        400,
        "bad_request",
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/stocktakes",
        Some(json!({"scope": {"device_id": "cab-404"}})),
        422,
        "unknown_reference",
    )
    .await;

    // A zone expects every carrier at home in it.
    let zone = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/stocktakes",
            Some(json!({"scope": {"zone_id": "vault"}})),
            201,
        )
        .await;
    let zone_view = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            &format!("/api/v1/stocktakes/{}", zone["id"].as_str().unwrap()),
            None,
            200,
        )
        .await;
    assert_eq!(zone_view["result"]["expected"], 4);

    let id = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/stocktakes",
            Some(json!({"scope": {"device_id": "cab-1"}})),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/stocktakes/{id}");
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/scans"),
        Some(json!({"tags": []})),
        400,
        "bad_request",
    )
    .await;
    // A read by tag, a typed control number, a carrier homed elsewhere and an unknown tag.
    let view = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/scans"),
            Some(json!({"tags": [format!("epc:{EPC_1}"), "ST-2", "ST-9", "epc:00000000000000000000BEEF"]})),
            200,
        )
        .await;
    assert_eq!(view["state"], "open");
    assert_eq!(view["result"]["seen"], 2);
    // Resolving before closing is refused.
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/resolutions"),
        Some(json!({"carrier_id": c, "resolution": "missing", "note": "not found"})),
        409,
        "stocktake_open",
    )
    .await;

    let result = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/close"),
            None,
            200,
        )
        .await;
    assert_eq!(result["expected"], 3);
    assert_eq!(result["seen"], 2);
    assert_eq!(result["missing"], json!([c]));
    let unexpected: Vec<&str> = result["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(unexpected.len(), 2, "{unexpected:?}");
    assert!(unexpected.contains(&"epc:00000000000000000000BEEF"));
    let _ = (a, b, elsewhere.clone());

    // Closed: no more scans, no second close.
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/scans"),
        Some(json!({"tags": ["ST-3"]})),
        409,
        "stocktake_closed",
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/close"),
        None,
        409,
        "stocktake_closed",
    )
    .await;
    // Only a missing carrier of this stocktake is a discrepancy.
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/resolutions"),
        Some(json!({"carrier_id": elsewhere, "resolution": "missing", "note": "x"})),
        422,
        "not_a_discrepancy",
    )
    .await;

    let settled = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/resolutions"),
            Some(json!({"carrier_id": c, "resolution": "missing", "note": "not on the shelf"})),
            200,
        )
        .await;
    assert_eq!(settled["state"], "closed");
    assert_eq!(settled["closed_by"], "custodian");
    assert_eq!(settled["resolutions"][0]["resolution"], "missing");
    assert_eq!(fx.state_of(&c).await, "missing");
    // Reported missing from a stocktake raises the `missing` alert like every other path.
    let alerts = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            "/api/v1/alerts",
            None,
            200,
        )
        .await;
    let raised: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "missing" && a["carrier_id"] == json!(c))
        .collect();
    assert_eq!(raised.len(), 1, "{alerts:?}");
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/resolutions"),
        Some(json!({"carrier_id": c, "resolution": "correction", "note": "again"})),
        409,
        "already_resolved",
    )
    .await;

    let list = fx
        .expect(
            Role::Custodian,
            Method::GET,
            "/api/v1/stocktakes",
            None,
            200,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    fx.refused(Role::Guard, Method::GET, &path, None, 403, "forbidden")
        .await;
    fx.refused(
        Role::Custodian,
        Method::GET,
        "/api/v1/stocktakes/999",
        None,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_collection_calls_in_every_loan_and_closes_each_once_back() {
    let fx = Fx::new().await;
    let zhang = fx.person("Zhang San", "R&D").await;
    let li = fx.person("Li Si", "Finance").await;
    let a = fx.carrier("YC-1", "cab-1", &[]).await;
    let b = fx.carrier("YC-2", "cab-1", &[]).await;
    let stays = fx.carrier("YC-3", "cab-1", &[]).await;
    let loan_a = fx.lend(&a, &zhang).await;
    fx.lend(&b, &li).await;

    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/collections",
        Some(json!({"year": 2026})),
        403,
        "forbidden",
    )
    .await;
    fx.refused(
        Role::SecurityOfficer,
        Method::POST,
        "/api/v1/collections",
        Some(json!({"year": 12})),
        400,
        "bad_request",
    )
    .await;
    let id = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            "/api/v1/collections",
            Some(json!({"year": 2026})),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fx.refused(
        Role::SecurityOfficer,
        Method::POST,
        "/api/v1/collections",
        Some(json!({"year": 2026})),
        409,
        "conflict",
    )
    .await;

    let path = format!("/api/v1/collections/{id}");
    let report = fx
        .expect(Role::Custodian, Method::GET, &path, None, 200)
        .await;
    assert_eq!(report["year"], 2026);
    assert_eq!(report["complete"], false);
    assert_eq!(report["items"].as_array().unwrap().len(), 2);
    let depts: Vec<&str> = report["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["department"].as_str().unwrap())
        .collect();
    assert_eq!(depts, ["Finance", "R&D"]);

    let item = |c: &str| format!("{path}/items/{c}");
    fx.refused(
        Role::Custodian,
        Method::POST,
        &item(&a),
        Some(json!({"outcome": "kept"})),
        409,
        "still_on_loan",
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        &item(&stays),
        Some(json!({"outcome": "kept"})),
        422,
        "not_collected",
    )
    .await;

    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{loan_a}/return"),
        Some(json!({})),
        200,
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        &item(&a),
        Some(json!({"outcome": "destroyed"})),
        409,
        "not_destroyed",
    )
    .await;
    let report = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &item(&a),
            Some(json!({"outcome": "archived"})),
            200,
        )
        .await;
    assert_eq!(fx.state_of(&a).await, "archived");
    let rd = &report["departments"][1];
    assert_eq!(
        (
            rd["called_in"].as_u64(),
            rd["archived"].as_u64(),
            rd["open"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    fx.refused(
        Role::Custodian,
        Method::POST,
        &item(&a),
        Some(json!({"outcome": "kept"})),
        409,
        "already_closed",
    )
    .await;
    fx.refused(
        Role::SecurityOfficer,
        Method::POST,
        &item(&b),
        Some(json!({"outcome": "kept"})),
        403,
        "forbidden",
    )
    .await;
    let list = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            "/api/v1/collections",
            None,
            200,
        )
        .await;
    assert_eq!(list[0]["year"], 2026);
}

#[tokio::test]
async fn carriers_past_their_retention_are_listed_for_review() {
    let fx = Fx::new().await;
    let old = fx.carrier("RT-1", "cab-1", &[]).await;
    let young = fx.carrier("RT-2", "cab-1", &[]).await;
    let today = fx.server.now().date();
    let past = format!("{}-01-01", today.ymd().0 - 1);
    let future = format!("{}-01-01", today.ymd().0 + 5);

    fx.refused(
        Role::Custodian,
        Method::PUT,
        &format!("/api/v1/carriers/{old}/retention"),
        Some(json!({"retention_until": past, "distribution_scope": "保密办", "reason": " "})),
        400,
        "bad_request",
    )
    .await;
    fx.refused(
        Role::Guard,
        Method::PUT,
        &format!("/api/v1/carriers/{old}/retention"),
        Some(json!({"retention_until": past, "distribution_scope": null, "reason": "x"})),
        403,
        "forbidden",
    )
    .await;
    let set = fx
        .expect(
            Role::Custodian,
            Method::PUT,
            &format!("/api/v1/carriers/{old}/retention"),
            Some(json!({"retention_until": past, "distribution_scope": "保密办、研发部", "reason": "登记保管期限"})),
            200,
        )
        .await;
    assert_eq!(set["distribution_scope"], "保密办、研发部");
    fx.expect(
        Role::Custodian,
        Method::PUT,
        &format!("/api/v1/carriers/{young}/retention"),
        Some(json!({"retention_until": future, "distribution_scope": null, "reason": "登记"})),
        200,
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::PUT,
        "/api/v1/carriers/999/retention",
        Some(json!({"retention_until": null, "distribution_scope": null, "reason": "x"})),
        404,
        "not_found",
    )
    .await;

    let review = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            "/api/v1/retention/review",
            None,
            200,
        )
        .await;
    let ids: Vec<&str> = review
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [old.as_str()]);
    assert_eq!(review[0]["retention_until"], past);
}

#[tokio::test]
async fn a_transfer_changes_custody_only_when_the_receiving_custodian_signs() {
    let fx = Fx::new().await;
    let wang = fx.person("Wang Wu", "Archive").await;
    let other = fx.person("Zhao Liu", "Archive").await;
    let receiver = fx.custodian_for("receiver", &wang).await;
    let stranger = fx.custodian_for("stranger", &other).await;
    let a = fx.carrier("TR-1", "cab-1", &[]).await;
    let b = fx.carrier("TR-2", "cab-1", &[]).await;
    let lent = fx.carrier("TR-3", "cab-1", &[]).await;
    fx.lend(&lent, &other).await;

    // Input and availability.
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/transfers",
        Some(json!({"carrier_ids": [a, a], "to_unit": "档案室", "reason": "移交"})),
        400,
        "bad_request",
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/transfers",
        Some(json!({"carrier_ids": [a, lent], "to_unit": "档案室", "reason": "移交"})),
        409,
        "carrier_unavailable",
    )
    .await;
    fx.refused(
        Role::Guard,
        Method::POST,
        "/api/v1/transfers",
        Some(json!({"carrier_ids": [a], "to_unit": "档案室", "reason": "移交"})),
        403,
        "forbidden",
    )
    .await;

    let asked = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/transfers",
            Some(json!({"carrier_ids": [a, b], "to_unit": "档案室", "to_custodian": wang, "reason": "部门撤并"})),
            201,
        )
        .await;
    assert_eq!(asked["state"], "requested");
    let id = asked["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/transfers/{id}");
    // A carrier on an open transfer cannot be asked for again.
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/transfers",
        Some(json!({"carrier_ids": [a], "to_unit": "别处", "reason": "x"})),
        409,
        "carrier_unavailable",
    )
    .await;
    // Nothing moves before approval.
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/handover"),
        None,
        409,
        "not_ready",
    )
    .await;
    fx.expect(
        Role::SecurityOfficer,
        Method::POST,
        &format!("{path}/approve"),
        None,
        200,
    )
    .await;
    fx.refused(
        Role::SecurityOfficer,
        Method::POST,
        &format!("{path}/approve"),
        None,
        409,
        "not_requested",
    )
    .await;
    // Receipt before hand-over is refused.
    let early = fx
        .with_token(&receiver, Method::POST, &format!("{path}/receive"), None)
        .await;
    assert_eq!((early.status, early.error()), (409, "not_handed_over"));

    let handed = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/handover"),
            None,
            200,
        )
        .await;
    assert_eq!(handed["steps"][0]["step"], "handed_over");
    let moving = fx.carrier_json(&a).await;
    assert_eq!(moving["state"], "in_transfer");
    assert_eq!(
        moving["owner_unit"], "保密办",
        "custody changes only at receipt"
    );

    // The sender cannot sign for it, nor a custodian the transfer does not name.
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/receive"),
        None,
        422,
        "self_receipt",
    )
    .await;
    let wrong = fx
        .with_token(&stranger, Method::POST, &format!("{path}/receive"), None)
        .await;
    assert_eq!((wrong.status, wrong.error()), (422, "wrong_receiver"));

    let received = fx
        .with_token(&receiver, Method::POST, &format!("{path}/receive"), None)
        .await;
    assert_eq!(received.status, 200, "{:?}", received.body);
    assert_eq!(received.body["state"], "done");
    for c in [&a, &b] {
        let now = fx.carrier_json(c).await;
        assert_eq!(
            (now["state"].as_str(), now["owner_unit"].as_str()),
            (Some("in_storage"), Some("档案室"))
        );
    }
    let again = fx
        .with_token(&receiver, Method::POST, &format!("{path}/receive"), None)
        .await;
    assert_eq!((again.status, again.error()), (409, "already_received"));

    let list = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            "/api/v1/transfers",
            None,
            200,
        )
        .await;
    assert_eq!(list[0]["steps"].as_array().unwrap().len(), 2);

    // A dissolved unit hands over everything it keeps in one transfer.
    let whole = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/transfers",
            Some(json!({"from_unit": "档案室", "to_unit": "总部", "reason": "撤销"})),
            201,
        )
        .await;
    let whole = fx
        .expect(
            Role::Custodian,
            Method::GET,
            &format!("/api/v1/transfers/{}", whole["id"].as_str().unwrap()),
            None,
            200,
        )
        .await;
    assert_eq!(whole["carrier_ids"], json!([a, b]));
    let rejected = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/transfers/{}/reject", whole["id"].as_str().unwrap()),
            Some(json!({"reason": "尚未批准撤销"})),
            200,
        )
        .await;
    assert_eq!(rejected["state"], "rejected");
}

#[tokio::test]
async fn a_dispatch_is_sent_within_its_window_and_its_delivery_recorded() {
    let fx = Fx::new().await;
    let a = fx
        .carrier("DS-1", "cab-1", &[&format!("epc:{EPC_1}")])
        .await;
    let window = fx.server.now().plus_secs(4 * 3600).to_string();
    let past = fx.server.now().plus_secs(-60).to_string();
    let body = |w: &str| json!({"carrier_ids": [a], "destination": "上级机关", "courier": "机要交通员 陈", "sealed_by": "保管员 李", "window_until": w});
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/dispatches",
        Some(body(&past)),
        422,
        "window_in_past",
    )
    .await;
    let mut blank = body(&window);
    blank["courier"] = json!(" ");
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/dispatches",
        Some(blank),
        400,
        "bad_request",
    )
    .await;
    let id = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/dispatches",
            Some(body(&window)),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/dispatches/{id}");
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/send"),
        None,
        409,
        "not_ready",
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/delivered"),
        Some(json!({"received_by": "王"})),
        409,
        "not_handed_over",
    )
    .await;
    fx.expect(
        Role::SecurityOfficer,
        Method::POST,
        &format!("{path}/approve"),
        None,
        200,
    )
    .await;
    let sent = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/send"),
            None,
            200,
        )
        .await;
    assert_eq!(sent["steps"][0]["step"], "sent");
    assert_eq!(fx.state_of(&a).await, "dispatched");
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/send"),
        None,
        409,
        "not_ready",
    )
    .await;
    let done = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("{path}/delivered"),
            Some(json!({"received_by": "上级机关 收发室 王"})),
            200,
        )
        .await;
    assert_eq!(done["state"], "done");
    assert_eq!(done["steps"][1]["note"], "上级机关 收发室 王");
    fx.refused(
        Role::Custodian,
        Method::POST,
        &format!("{path}/delivered"),
        Some(json!({"received_by": "again"})),
        409,
        "already_received",
    )
    .await;
    let list = fx
        .expect(
            Role::Custodian,
            Method::GET,
            "/api/v1/dispatches",
            None,
            200,
        )
        .await;
    assert_eq!(list[0]["body"]["destination"], "上级机关");
}

impl Fx {
    /// A carrier of `kind` in storage at `cab-1`; its id.
    async fn carrier_of_kind(&self, control_no: &str, kind: &str) -> String {
        let body = json!({
            "control_no": control_no, "kind": kind, "level": "S",
            "title": format!("标题 {control_no}"), "owner_unit": "保密办",
            "home_device": "cab-1", "tags": []
        });
        let reply = self
            .expect(
                Role::Custodian,
                Method::POST,
                "/api/v1/carriers",
                Some(body),
                201,
            )
            .await;
        reply["id"].as_str().unwrap().to_owned()
    }
}

fn repair_body(carrier: &str, mode: &str, media: &str, escort: Option<&str>) -> Value {
    json!({
        "carrier_id": carrier, "repairer": "Wang Repair Co.", "qualification_no": "BM-2026/017",
        "qualified_until": "2099-12-31", "mode": mode, "escort": escort, "media": media,
        "media_note": "SSD removed, kept in cab-1", "reason": "screen broken"
    })
}

#[tokio::test]
async fn a_repair_goes_to_a_qualified_repairer_and_is_tracked_until_it_returns() {
    let fx = Fx::new().await;
    let laptop = fx.carrier_of_kind("LT-1", "laptop").await;
    let disk = fx.carrier_of_kind("HD-1", "hard_disk").await;
    let paper = fx.carrier_of_kind("P-1", "paper").await;

    // Who may: a guard may not send anything for repair.
    let on_site = repair_body(&laptop, "on_site", "removed_and_kept", Some("Li Escort"));
    fx.refused(
        Role::Guard,
        Method::POST,
        "/api/v1/repairs",
        Some(on_site.clone()),
        403,
        "forbidden",
    )
    .await;

    // Rule refusals, nothing written.
    let post = |body: Value, status: u16, code: &'static str| {
        let fx = &fx;
        async move {
            fx.refused(
                Role::Custodian,
                Method::POST,
                "/api/v1/repairs",
                Some(body),
                status,
                code,
            )
            .await
        }
    };
    post(
        repair_body(&paper, "on_site", "removed_and_kept", Some("Li Escort")),
        422,
        "not_repairable",
    )
    .await;
    let mut lapsed = on_site.clone();
    lapsed["qualified_until"] = json!("2000-01-01");
    post(lapsed, 422, "repairer_not_qualified").await;
    post(
        repair_body(&laptop, "on_site", "removed_and_kept", None),
        422,
        "escort_required",
    )
    .await;
    post(
        repair_body(&laptop, "dispatch", "repaired_on_site", None),
        422,
        "media_must_be_removed",
    )
    .await;
    post(
        repair_body(&disk, "dispatch", "removed_and_kept", None),
        422,
        "media_must_be_removed",
    )
    .await;
    let mut blank = on_site.clone();
    blank["reason"] = json!("  ");
    post(blank, 400, "bad_request").await;

    // The happy path: sent on site under escort with its media removed and kept.
    let sent = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/repairs",
            Some(on_site.clone()),
            201,
        )
        .await;
    let id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["carrier"]["id"], json!(laptop));
    assert_eq!(sent["mode"], json!("on_site"));
    assert_eq!(sent["media"], json!("removed_and_kept"));
    assert_eq!(sent["returned_at"], Value::Null);
    assert!(sent.get("title").is_none() && sent["carrier"].get("title").is_none());

    // Once at a time; the officer sees it open.
    post(on_site.clone(), 409, "already_in_repair").await;
    let list = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            "/api/v1/repairs",
            None,
            200,
        )
        .await;
    assert_eq!(list[0]["id"], json!(id));

    // Back: closed once.
    let back = format!("/api/v1/repairs/{id}/return");
    let returned = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &back,
            Some(json!({"note": "SSD reinstalled, seals checked"})),
            200,
        )
        .await;
    assert!(returned["returned_at"].is_string());
    assert_eq!(returned["returned_by"], sent["sent_by"]);
    fx.refused(
        Role::Custodian,
        Method::POST,
        &back,
        Some(json!({"note": "again"})),
        409,
        "repair_closed",
    )
    .await;
    fx.refused(
        Role::Custodian,
        Method::POST,
        "/api/v1/repairs/999/return",
        Some(json!({"note": "x"})),
        404,
        "not_found",
    )
    .await;

    // Returned, it may go again, this time by dispatch with its media kept here.
    fx.expect(
        Role::Custodian,
        Method::POST,
        "/api/v1/repairs",
        Some(repair_body(&laptop, "dispatch", "removed_and_kept", None)),
        201,
    )
    .await;
    let one = fx
        .expect(
            Role::SecurityOfficer,
            Method::GET,
            &format!("/api/v1/repairs/{id}"),
            None,
            200,
        )
        .await;
    assert_eq!(one["return_note"], json!("SSD reinstalled, seals checked"));
}

/// Repair is a carrier state: while a repair is open nothing signs the carrier out, issues
/// it, copies, transfers, dispatches or destroys it (409 `in_repair`, nothing written); the
/// register shows it in repair; back from repair it is available again.
#[tokio::test]
async fn a_carrier_in_repair_is_not_available_until_it_returns() {
    let fx = Fx::new().await;
    let laptop = fx.carrier_of_kind("LT-9", "laptop").await;
    let borrower = fx.person("张三", "一处").await;

    // Asked for and approved before it went for repair.
    let due = fx.server.now().plus_secs(86_400).to_string();
    let signout = json!({
        "carrier_ids": [laptop], "borrower": borrower, "purpose": "review",
        "due_at": due, "may_leave": false
    });
    let approved = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/signouts",
            Some(signout.clone()),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let issue = format!("/api/v1/signouts/{approved}/issue");
    fx.expect(
        Role::SecurityOfficer,
        Method::POST,
        &format!("/api/v1/signouts/{approved}/approve"),
        None,
        200,
    )
    .await;

    let sent = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/repairs",
            Some(repair_body(
                &laptop,
                "on_site",
                "removed_and_kept",
                Some("Li Escort"),
            )),
            201,
        )
        .await;
    let repair = sent["id"].as_str().unwrap().to_owned();
    let shown = fx.carrier_json(&laptop).await;
    assert_eq!(shown["in_repair"], json!(true));
    assert_eq!(
        shown["state"],
        json!("in_storage"),
        "custody does not change"
    );

    let window = fx.server.now().plus_secs(4 * 3600).to_string();
    let refusals: [(&str, Value); 6] = [
        ("/api/v1/signouts", signout.clone()),
        (&issue, Value::Null),
        (
            "/api/v1/copies",
            json!({"original_id": laptop, "count": 1, "purpose": "backup"}),
        ),
        (
            "/api/v1/transfers",
            json!({"carrier_ids": [laptop], "to_unit": "二处", "reason": "reorganised"}),
        ),
        (
            "/api/v1/dispatches",
            json!({"carrier_ids": [laptop], "destination": "上级机关", "courier": "陈",
                   "sealed_by": "李", "window_until": window}),
        ),
        (
            "/api/v1/destructions",
            json!({"carrier_ids": [laptop], "method": "physical", "reason": "end of life"}),
        ),
    ];
    for (path, body) in refusals {
        let body = (!body.is_null()).then_some(body);
        fx.refused(Role::Custodian, Method::POST, path, body, 409, "in_repair")
            .await;
    }

    // A count of its cabinet does not expect it: it is away on its repair.
    let count = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/stocktakes",
            Some(json!({"scope": {"device_id": "cab-1"}})),
            201,
        )
        .await;
    let view = fx
        .expect(
            Role::Custodian,
            Method::GET,
            &format!("/api/v1/stocktakes/{}", count["id"].as_str().unwrap()),
            None,
            200,
        )
        .await;
    assert_eq!(view["result"]["expected"], 0, "{view:?}");

    // Back from repair: available again, and the approved sign-out is issued.
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/repairs/{repair}/return"),
        Some(json!({"note": "SSD reinstalled, seals checked"})),
        200,
    )
    .await;
    assert_eq!(fx.carrier_json(&laptop).await["in_repair"], json!(false));
    fx.expect(Role::Custodian, Method::POST, &issue, None, 200)
        .await;
    assert_eq!(fx.state_of(&laptop).await, "out");
}
