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
