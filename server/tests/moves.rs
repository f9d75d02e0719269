//! Stocktakes, year-end collections and retention over HTTP: each happy path, each refusal
//! (with nothing changed), and who may do what.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Reply, Server};
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
