//! The approval model over HTTP (issue #10 A): sign-outs rejected with a reason, copies with
//! their lineage, reclassification and declassification, destruction with witnesses, and the
//! refusals of each (never by the requester, TS two people, witnesses, counts), each refusal
//! changing nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{INITIAL_PASSWORD, Reply, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::{Value, json};

/// Every table a request can change.
const TABLES: [&str; 8] = [
    "carriers",
    "carrier_tags",
    "signouts",
    "requests",
    "request_carriers",
    "request_approvals",
    "alerts",
    "audit",
];

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
    keys: AtomicU32,
}

impl Fx {
    /// A server with one account per role, zone `vault` (TS), cabinet `cab-1`.
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
        let key = common::device_key_b64(fx.keys.fetch_add(1, Ordering::SeqCst));
        fx.expect(
            Role::Admin,
            Method::POST,
            "/api/v1/devices",
            Some(json!({"id": "cab-1", "kind": "cabinet", "zone": "vault", "public_key": key})),
            201,
        )
        .await;
        fx
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.server.call(method, path, Some(token), body).await
    }

    async fn as_role(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(&self.tokens[&role], method, path, body).await
    }

    async fn expect(
        &self,
        role: Role,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let reply = self.as_role(role, method.clone(), path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
        reply.body
    }

    async fn person(&self, name: &str, category: &str) -> String {
        let body = json!({
            "name": name, "department": "R&D", "category": category,
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

    /// Create an account and activate it; its token.
    async fn user(&self, name: &str, roles: &[&str], person: Option<&str>) -> String {
        let mut body = json!({"username": name, "password": INITIAL_PASSWORD, "roles": roles});
        if let Some(p) = person {
            body["person_id"] = json!(p);
        }
        self.expect(Role::Admin, Method::POST, "/api/v1/users", Some(body), 201)
            .await;
        self.server.activate(name).await
    }

    async fn carrier(&self, control_no: &str, level: &str, kind: &str, tags: &[&str]) -> String {
        let body = json!({
            "control_no": control_no, "kind": kind, "level": level,
            "title": format!("标题 {control_no}"), "copy_no": 1, "copies": 1,
            "owner_unit": "保密办", "home_device": "cab-1", "tags": tags
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

    async fn counts(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for table in TABLES {
            out.push(self.server.rows(table).await);
        }
        out
    }
}

#[tokio::test]
async fn a_sign_out_is_rejected_with_its_reason_and_its_carrier_is_free_again() {
    let fx = Fx::new().await;
    let borrower = fx.person("Borrower", "important").await;
    let c = fx.carrier("S-1", "S", "paper", &[]).await;
    let body = json!({
        "carrier_ids": [c], "borrower": borrower, "purpose": "review",
        "due_at": fx.server.now().plus_secs(86_400).to_string(), "may_leave": false
    });
    let so = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/signouts",
            Some(body.clone()),
            201,
        )
        .await;
    let id = so["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/signouts/{id}/reject");

    // Refusals first, none of which changes anything.
    let own = fx
        .user("so-borrower", &["security_officer"], Some(&borrower))
        .await;
    let before = fx.counts().await;
    let no_reason = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &path,
            Some(json!({"reason": ""})),
        )
        .await;
    assert_eq!(no_reason.status, 400, "{:?}", no_reason.body);
    let custodian = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &path,
            Some(json!({"reason": "no"})),
        )
        .await;
    assert_eq!(custodian.status, 403);
    // The borrower's own officer account may not decide.
    let own = fx
        .call(&own, Method::POST, &path, Some(json!({"reason": "mine"})))
        .await;
    assert_eq!((own.status, own.error()), (422, "self_approval"));
    assert_eq!(fx.counts().await, before, "refusals change nothing");

    let rejected = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &path,
            Some(json!({"reason": "purpose too vague"})),
            200,
        )
        .await;
    assert_eq!(rejected["state"], "rejected");
    let shown = fx
        .expect(
            Role::Custodian,
            Method::GET,
            &format!("/api/v1/signouts/{id}"),
            None,
            200,
        )
        .await;
    assert_eq!(shown["state"], "rejected");
    assert_eq!(shown["rejection_reason"], "purpose too vague");

    // Final: no approval, no second rejection; the carrier can be asked for again.
    let late = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!((late.status, late.error()), (409, "not_requested"));
    let again = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &path,
            Some(json!({"reason": "twice"})),
        )
        .await;
    assert_eq!((again.status, again.error()), (409, "not_requested"));
    fx.expect(
        Role::Custodian,
        Method::POST,
        "/api/v1/signouts",
        Some(body),
        201,
    )
    .await;
}

impl Fx {
    async fn post(&self, role: Role, path: &str, body: Option<Value>, status: u16) -> Value {
        self.expect(role, Method::POST, path, body, status).await
    }

    async fn get(&self, path: &str) -> Value {
        self.expect(Role::Custodian, Method::GET, path, None, 200)
            .await
    }

    fn id(v: &Value) -> String {
        v["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn copies_continue_the_series_keep_the_lineage_and_ts_needs_two_approvals() {
    let fx = Fx::new().await;
    let original = fx.carrier("DOC-1", "S", "paper", &[]).await;
    let asked = fx
        .post(
            Role::Custodian,
            "/api/v1/copies",
            Some(json!({"original_id": original, "count": 2, "purpose": "meeting"})),
            201,
        )
        .await;
    assert_eq!(asked["state"], "requested");
    let id = Fx::id(&asked);
    // Not before approval.
    let early = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/copies/{id}/make"),
            None,
        )
        .await;
    assert_eq!((early.status, early.error()), (422, "not_approved"));
    let approved = fx
        .post(
            Role::SecurityOfficer,
            &format!("/api/v1/copies/{id}/approve"),
            None,
            200,
        )
        .await;
    assert_eq!(approved["state"], "approved");
    let made = fx
        .post(
            Role::Custodian,
            &format!("/api/v1/copies/{id}/make"),
            None,
            200,
        )
        .await;
    let copies: Vec<String> = made["carrier_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(copies.len(), 2);
    let first = fx.get(&format!("/api/v1/carriers/{}", copies[0])).await;
    assert_eq!(first["control_no"], "DOC-1-2");
    assert_eq!(first["level"], "S");
    assert_eq!(first["copy_no"], 2);
    assert_eq!(first["original_id"], original.as_str());
    // Done: a second make is refused.
    let again = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/copies/{id}/make"),
            None,
        )
        .await;
    assert_eq!((again.status, again.error()), (422, "not_approved"));

    // Copying a copy keeps the chain: the series goes on from 3.
    let of_copy = fx
        .post(
            Role::Custodian,
            "/api/v1/copies",
            Some(json!({"original_id": copies[1], "count": 1, "purpose": "archive"})),
            201,
        )
        .await;
    let of_copy = Fx::id(&of_copy);
    fx.post(
        Role::SecurityOfficer,
        &format!("/api/v1/copies/{of_copy}/approve"),
        None,
        200,
    )
    .await;
    let made = fx
        .post(
            Role::Custodian,
            &format!("/api/v1/copies/{of_copy}/make"),
            None,
            200,
        )
        .await;
    let grandchild = made["carrier_ids"][0].as_str().unwrap().to_owned();
    assert_eq!(
        fx.get(&format!("/api/v1/carriers/{grandchild}")).await["control_no"],
        "DOC-1-4"
    );
    // Lineage both ways.
    let down = fx
        .get(&format!("/api/v1/carriers/{original}/lineage"))
        .await;
    assert!(down["original"].is_null());
    assert_eq!(down["copies"].as_array().unwrap().len(), 2);
    let up = fx
        .get(&format!("/api/v1/carriers/{grandchild}/lineage"))
        .await;
    assert_eq!(up["original"]["id"], copies[1].as_str());
    assert_eq!(up["root"]["id"], original.as_str());

    // TS: two different officers, never the requester; made only after both.
    let ts = fx.carrier("TS-9", "TS", "paper", &[]).await;
    let both = fx
        .user("cust-so", &["custodian", "security_officer"], None)
        .await;
    let asked = fx
        .call(
            &both,
            Method::POST,
            "/api/v1/copies",
            Some(json!({"original_id": ts, "count": 1, "purpose": "x"})),
        )
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let id = Fx::id(&asked.body);
    let before = fx.counts().await;
    let own = fx
        .call(
            &both,
            Method::POST,
            &format!("/api/v1/copies/{id}/approve"),
            None,
        )
        .await;
    assert_eq!((own.status, own.error()), (422, "self_approval"));
    assert_eq!(fx.counts().await, before, "a refusal changes nothing");
    let first = fx
        .post(
            Role::SecurityOfficer,
            &format!("/api/v1/copies/{id}/approve"),
            None,
            200,
        )
        .await;
    assert_eq!(first["state"], "requested");
    assert_eq!(first["approvals_needed"], 1);
    let twice = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/copies/{id}/approve"),
            None,
        )
        .await;
    assert_eq!((twice.status, twice.error()), (409, "already_approved"));
    let one_only = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/copies/{id}/make"),
            None,
        )
        .await;
    assert_eq!((one_only.status, one_only.error()), (422, "not_approved"));
    let so2 = fx.user("so2", &["security_officer"], None).await;
    let second = fx
        .call(
            &so2,
            Method::POST,
            &format!("/api/v1/copies/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(second.body["state"], "approved");
    fx.post(
        Role::Custodian,
        &format!("/api/v1/copies/{id}/make"),
        None,
        200,
    )
    .await;
}

#[tokio::test]
async fn a_copy_request_can_be_rejected_and_bad_input_is_refused() {
    let fx = Fx::new().await;
    let original = fx.carrier("DOC-2", "C", "paper", &[]).await;
    let bad = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            "/api/v1/copies",
            Some(json!({"original_id": original, "count": 0, "purpose": ""})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let unknown = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            "/api/v1/copies",
            Some(json!({"original_id": "999", "count": 1, "purpose": "x"})),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.error()),
        (422, "unknown_reference")
    );
    let asked = fx
        .post(
            Role::Custodian,
            "/api/v1/copies",
            Some(json!({"original_id": original, "count": 1, "purpose": "x"})),
            201,
        )
        .await;
    let id = Fx::id(&asked);
    let rejected = fx
        .post(
            Role::SecurityOfficer,
            &format!("/api/v1/copies/{id}/reject"),
            Some(json!({"reason": "not needed"})),
            200,
        )
        .await;
    assert_eq!(rejected["state"], "rejected");
    let shown = fx.get(&format!("/api/v1/copies/{id}")).await;
    assert_eq!(shown["rejection"]["reason"], "not needed");
    let make = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/copies/{id}/make"),
            None,
        )
        .await;
    assert_eq!((make.status, make.error()), (422, "not_approved"));
}

#[tokio::test]
async fn a_destruction_is_witnessed_counted_and_retires_the_carriers() {
    let fx = Fx::new().await;
    let paper = fx
        .carrier("P-1", "S", "paper", &["epc:3474257BF40000000000162E"])
        .await;
    let flash = fx.carrier("F-1", "S", "flash", &[]).await;
    // One method must fit every kind.
    let wrong = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            "/api/v1/destructions",
            Some(json!({"carrier_ids": [paper, flash], "method": "shred", "reason": "expired"})),
        )
        .await;
    assert_eq!((wrong.status, wrong.error()), (422, "method_not_for_kind"));
    let asked = fx
        .post(
            Role::Custodian,
            "/api/v1/destructions",
            Some(json!({"carrier_ids": [paper], "method": "shred", "reason": "expired"})),
            201,
        )
        .await;
    let id = Fx::id(&asked);
    let officer = fx.person("Officer Wang", "core").await;
    fx.user("wang", &["security_officer"], Some(&officer)).await;
    let clerk = fx.person("Clerk Li", "general").await;
    let clerk2 = fx.person("Clerk Zhao", "general").await;
    let record = |witnesses: Value, count: u32| json!({"witnesses": witnesses, "at": fx.server.now().to_string(), "count": count});
    let path = format!("/api/v1/destructions/{id}/record");
    let early = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &path,
            Some(record(json!([officer, clerk]), 1)),
        )
        .await;
    assert_eq!((early.status, early.error()), (422, "not_approved"));
    fx.post(
        Role::SecurityOfficer,
        &format!("/api/v1/destructions/{id}/approve"),
        None,
        200,
    )
    .await;
    let before = fx.counts().await;
    for (witnesses, count, code) in [
        (json!([clerk, clerk2]), 1, "no_officer_witness"),
        (json!([officer, officer]), 1, "two_witnesses_needed"),
        (json!([officer]), 1, "two_witnesses_needed"),
        (json!([officer, clerk]), 2, "count_mismatch"),
    ] {
        let refused = fx
            .as_role(
                Role::Custodian,
                Method::POST,
                &path,
                Some(record(witnesses, count)),
            )
            .await;
        assert_eq!((refused.status, refused.error()), (422, code));
    }
    assert_eq!(fx.counts().await, before, "refusals change nothing");
    let done = fx
        .post(
            Role::Custodian,
            &path,
            Some(record(json!([officer, clerk]), 1)),
            200,
        )
        .await;
    assert_eq!(done["state"], "done");
    let carrier = fx.get(&format!("/api/v1/carriers/{paper}")).await;
    assert_eq!(carrier["state"], "destroyed");
    // Destroyed is final: no second destruction request, no sign-out.
    let again = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            "/api/v1/destructions",
            Some(json!({"carrier_ids": [paper], "method": "shred", "reason": "again"})),
        )
        .await;
    assert_eq!((again.status, again.error()), (422, "carrier_unavailable"));
}

#[tokio::test]
async fn reclassification_changes_the_level_at_its_last_approval() {
    let fx = Fx::new().await;
    let c = fx.carrier("R-1", "S", "paper", &[]).await;
    let same = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            "/api/v1/reclassifications",
            Some(json!({"carrier_id": c, "level": "S", "reason": "none"})),
        )
        .await;
    assert_eq!((same.status, same.error()), (422, "same_level"));
    let asked = fx
        .post(
            Role::Custodian,
            "/api/v1/reclassifications",
            Some(json!({"carrier_id": c, "level": "C", "reason": "review"})),
            201,
        )
        .await;
    let id = Fx::id(&asked);
    let done = fx
        .post(
            Role::SecurityOfficer,
            &format!("/api/v1/reclassifications/{id}/approve"),
            None,
            200,
        )
        .await;
    assert_eq!(done["state"], "done");
    assert_eq!(fx.get(&format!("/api/v1/carriers/{c}")).await["level"], "C");

    // TS declassified: two officers; the carrier leaves the register, history kept.
    let ts = fx.carrier("R-2", "TS", "paper", &[]).await;
    let asked = fx
        .post(
            Role::Custodian,
            "/api/v1/reclassifications",
            Some(json!({"carrier_id": ts, "level": "declassified", "reason": "30 years"})),
            201,
        )
        .await;
    let id = Fx::id(&asked);
    let first = fx
        .post(
            Role::SecurityOfficer,
            &format!("/api/v1/reclassifications/{id}/approve"),
            None,
            200,
        )
        .await;
    assert_eq!(first["state"], "requested");
    assert_eq!(
        fx.get(&format!("/api/v1/carriers/{ts}")).await["state"],
        "in_storage"
    );
    let so2 = fx.user("so2", &["security_officer"], None).await;
    let second = fx
        .call(
            &so2,
            Method::POST,
            &format!("/api/v1/reclassifications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(second.body["state"], "done");
    let shown = fx.get(&format!("/api/v1/carriers/{ts}")).await;
    assert_eq!(shown["state"], "declassified");
    assert_eq!(shown["level"], "TS");
}
