//! Custody API tests against the real router on a real socket: carriers and their tags,
//! sign-outs from request to return, people leaving and departing, carrier history, the role
//! matrix of every custody endpoint, and bad input that must change nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use common::{INITIAL_PASSWORD, Reply, Server, raw_request};
use custos_protocol::barcode::CarrierLabel;
use custos_server::domain::role::Role;
use custos_server::domain::time::Timestamp;
use hyper::Method;
use serde_json::{Value, json};

// From /work/shared/vectors/epc-tds.txt.
const GIAI_HEX: &str = "3474257BF40000000000162E";
const GIAI_URI: &str = "urn:epc:id:giai:0614141.5678";
const SGTIN_HEX: &str = "3074257BF7194E4000001A85";

/// Every table a custody operation can change.
const TABLES: [&str; 7] = [
    "carriers",
    "carrier_tags",
    "signouts",
    "signout_carriers",
    "signout_approvals",
    "people",
    "audit",
];

fn title_of(control_no: &str) -> String {
    format!("机密标题 {control_no} 年度计划")
}

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
    keys: std::sync::atomic::AtomicU32,
}

impl Fx {
    /// A server with one account per role, zones `vault` (TS) and `hall` (public), cabinets
    /// `cab-1` and `cab-2`, gate `gate-1`, desk `desk-1`.
    async fn new() -> Fx {
        let server = Server::start().await;
        let tokens = server.tokens_per_role().await;
        let fx = Fx {
            server,
            tokens,
            keys: std::sync::atomic::AtomicU32::new(1),
        };
        for (id, level) in [("vault", "TS"), ("hall", "public")] {
            fx.expect(
                Role::Admin,
                Method::POST,
                "/api/v1/zones",
                Some(json!({"id": id, "name": id, "level": level})),
                201,
            )
            .await;
        }
        for body in [
            json!({"id": "cab-1", "kind": "cabinet", "zone": "vault"}),
            json!({"id": "cab-2", "kind": "cabinet", "zone": "vault"}),
            json!({"id": "gate-1", "kind": "gate", "inside_zone": "vault", "outside_zone": "hall"}),
            json!({"id": "desk-1", "kind": "desk"}),
        ] {
            let mut body = body;
            body["public_key"] = json!(fx.key());
            fx.expect(
                Role::Admin,
                Method::POST,
                "/api/v1/devices",
                Some(body),
                201,
            )
            .await;
        }
        fx
    }

    fn key(&self) -> String {
        let n = self.keys.fetch_add(1, Ordering::SeqCst);
        common::device_key_b64(n)
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.server.call(method, path, token, body).await
    }

    async fn as_role(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(Some(self.token(role)), method, path, body).await
    }

    /// Start leaving and certify the clearance (清退): what a departure needs first.
    async fn leave_and_clear(&self, person: &str) {
        for step in ["leave", "clearance"] {
            self.expect(
                Role::SecurityOfficer,
                Method::POST,
                &format!("/api/v1/people/{person}/{step}"),
                None,
                200,
            )
            .await;
        }
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

    /// Register a person; returns the id.
    async fn person(&self, body: Value) -> String {
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

    /// A person who passes every issue check for carriers up to their category's level.
    async fn fit_person(&self, name: &str, category: &str) -> String {
        self.person(json!({
            "name": name, "department": "R&D", "category": category,
            "training_valid_until": "2099-12-31", "commitment_signed_on": "2020-01-01"
        }))
        .await
    }

    /// Create an account and log it in.
    async fn user(&self, name: &str, roles: &[&str], person: Option<&str>) -> String {
        let mut body = json!({"username": name, "password": INITIAL_PASSWORD, "roles": roles});
        if let Some(p) = person {
            body["person_id"] = json!(p);
        }
        self.expect(Role::Admin, Method::POST, "/api/v1/users", Some(body), 201)
            .await;
        self.server.activate(name).await
    }

    /// Register a carrier homed in `cab-1`; returns the id.
    async fn carrier(&self, control_no: &str, level: &str, tags: &[&str]) -> String {
        let body = json!({
            "control_no": control_no, "kind": "paper", "level": level,
            "title": title_of(control_no), "copy_no": 1, "copies": 2,
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

    fn due(&self) -> String {
        self.server.now().plus_secs(86_400).to_string()
    }

    /// Request a sign-out as the custodian; returns the id.
    async fn request(&self, carriers: &[&str], borrower: &str) -> String {
        let body = json!({
            "carrier_ids": carriers, "borrower": borrower, "purpose": "review",
            "due_at": self.due(), "may_leave": false
        });
        let reply = self
            .expect(
                Role::Custodian,
                Method::POST,
                "/api/v1/signouts",
                Some(body),
                201,
            )
            .await;
        assert_eq!(reply["state"], "requested");
        reply["id"].as_str().unwrap().to_owned()
    }

    async fn approve(&self, id: &str) -> Value {
        self.expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            None,
            200,
        )
        .await
    }

    async fn issue(&self, id: &str) -> Reply {
        self.as_role(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/signouts/{id}/issue"),
            None,
        )
        .await
    }

    /// Request, approve (one approver: no TS carriers) and issue.
    async fn issued(&self, carriers: &[&str], borrower: &str) -> String {
        let id = self.request(carriers, borrower).await;
        self.approve(&id).await;
        let reply = self.issue(&id).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        id
    }

    async fn get(&self, role: Role, path: &str) -> Value {
        self.expect(role, Method::GET, path, None, 200).await
    }

    /// Row counts of every custody table.
    async fn counts(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for table in TABLES {
            out.push(self.server.rows(table).await);
        }
        out
    }

    /// Every status of people, in id order (status changes must not happen on refusals).
    async fn statuses(&self) -> Vec<(String, Option<String>)> {
        self.server
            .state
            .store()
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT status, decommissioning_ends_on FROM people ORDER BY id")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_full_happy_path() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Zhang San", "important").await;
    let s1 = fx
        .carrier("2024-0017", "S", &[&format!("epc:{GIAI_HEX}")])
        .await;
    let c1 = fx.carrier("2024-0018", "C", &["em:1a00b54e12"]).await;

    let carrier = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{s1}"))
        .await;
    assert_eq!(carrier["state"], "in_storage");
    assert_eq!(carrier["title"], title_of("2024-0017"));
    assert_eq!(carrier["holder"], Value::Null);
    assert_eq!(
        carrier["label"],
        CarrierLabel::new("2024-0017").unwrap().to_string()
    );
    assert_eq!(carrier["tags"][0]["tag"], format!("epc:{GIAI_HEX}"));
    assert_eq!(carrier["tags"][0]["uri"], GIAI_URI);

    let id = fx.request(&[&s1, &c1], &borrower).await;
    let pending = fx
        .get(Role::SecurityOfficer, &format!("/api/v1/signouts/{id}"))
        .await;
    assert_eq!(pending["state"], "requested");
    assert_eq!(pending["approvals_needed"], 1);
    assert_eq!(pending["would_refuse"], json!([]));
    assert_eq!(pending["borrower"]["id"], borrower);
    assert_eq!(pending["requester"]["username"], "custodian");
    assert_eq!(pending["carriers"].as_array().unwrap().len(), 2);
    let claimed = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{s1}"))
        .await;
    assert_eq!(claimed["signout"]["id"], id);
    assert_eq!(claimed["signout"]["state"], "requested");

    let approved = fx.approve(&id).await;
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["approvals_needed"], 0);

    let issued = fx.issue(&id).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    assert_eq!(issued.body["state"], "out");
    let out = fx
        .get(Role::SecurityOfficer, &format!("/api/v1/carriers/{s1}"))
        .await;
    assert_eq!(out["state"], "out");
    assert_eq!(out["holder"], json!({"id": borrower, "name": "Zhang San"}));
    let listed = fx.get(Role::Custodian, "/api/v1/signouts?state=out").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        listed[0].get("would_refuse").is_none(),
        "only for pending ones"
    );

    let partial = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/signouts/{id}/return"),
            Some(json!({"carrier_ids": [s1]})),
            200,
        )
        .await;
    assert_eq!(partial["state"], "out");
    assert_eq!(partial["returned"], json!([s1]));
    assert_eq!(partial["outstanding"], json!([c1]));
    let back = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{s1}"))
        .await;
    assert_eq!(back["state"], "in_storage");
    assert_eq!(back["holder"], Value::Null);
    assert_eq!(back["signout"], Value::Null);
    let still = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{c1}"))
        .await;
    assert_eq!(still["state"], "out");

    let full = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/signouts/{id}/return"),
            None,
            200,
        )
        .await;
    assert_eq!(full["state"], "returned");
    assert_eq!(full["returned"], json!([c1]));
    assert_eq!(full["outstanding"], json!([]));
    let done = fx
        .get(Role::SecurityOfficer, &format!("/api/v1/signouts/{id}"))
        .await;
    assert_eq!(done["state"], "returned");
    assert!(done["closed_at"].is_string());
    assert!(
        done["carriers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["returned_by"] == "user:custodian" && c["state"] == "in_storage")
    );
    let stored = fx
        .get(Role::Custodian, "/api/v1/carriers?state=in_storage")
        .await;
    assert_eq!(stored.as_array().unwrap().len(), 2);

    let history = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{c1}/history"))
        .await;
    let events: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["type"], "signout");
            assert_eq!(h["signout_id"], id);
            h["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(events, ["requested", "approved", "issued", "returned"]);

    let actions: Vec<String> = fx
        .get(Role::Auditor, "/api/v1/audit")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .filter(|a| a.starts_with("signout.") || a.starts_with("carrier."))
        .collect();
    assert_eq!(
        actions,
        [
            "carrier.create",
            "carrier.create",
            "signout.request",
            "signout.approve",
            "signout.issue",
            "signout.return",
            "signout.return"
        ]
    );
}

#[tokio::test]
async fn top_secret_needs_two_different_approvers() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Core One", "core").await;
    let ts = fx.carrier("TS-1", "TS", &[]).await;
    let c = fx.carrier("C-1", "C", &[]).await;
    let id = fx.request(&[&ts, &c], &borrower).await;
    let second_officer = fx.user("so2", &["security_officer"], None).await;

    let first = fx.approve(&id).await;
    assert_eq!(first["state"], "requested");
    assert_eq!(first["approvals_needed"], 1);

    let before = fx.counts().await;
    let again = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!((again.status, again.error()), (409, "already_approved"));
    let early = fx.issue(&id).await;
    assert_eq!((early.status, early.error()), (409, "not_approved"));
    assert_eq!(fx.counts().await, before, "refusals change nothing");

    let second = fx
        .call(
            Some(&second_officer),
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(second.body["state"], "approved");
    assert_eq!(second.body["approvals_needed"], 0);
    let shown = fx
        .get(Role::Custodian, &format!("/api/v1/signouts/{id}"))
        .await;
    let approvers: Vec<_> = shown["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(approvers.len(), 2);
    assert!(
        approvers.contains(&"security_officer".to_owned()) && approvers.contains(&"so2".to_owned())
    );
    assert_eq!(fx.issue(&id).await.status, 200);

    // A third approval after the fact is refused.
    let late = fx
        .call(
            Some(&fx.user("so3", &["security_officer"], None).await),
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!((late.status, late.error()), (409, "not_requested"));
}

#[tokio::test]
async fn requesters_and_borrowers_cannot_approve() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Borrower", "important").await;
    let other = fx.fit_person("Other", "important").await;
    let carrier = fx.carrier("SELF-1", "S", &[]).await;
    let carrier2 = fx.carrier("SELF-2", "S", &[]).await;

    // One account holding both custodian and security officer requests, then approves.
    let dual = fx
        .user("dual", &["custodian", "security_officer"], None)
        .await;
    let body = json!({
        "carrier_ids": [carrier], "borrower": other, "purpose": "p",
        "due_at": fx.due(), "may_leave": true
    });
    let requested = fx
        .call(Some(&dual), Method::POST, "/api/v1/signouts", Some(body))
        .await;
    assert_eq!(requested.status, 201, "{:?}", requested.body);
    let own = requested.body["id"].as_str().unwrap().to_owned();
    let before = fx.counts().await;
    let reply = fx
        .call(
            Some(&dual),
            Method::POST,
            &format!("/api/v1/signouts/{own}/approve"),
            None,
        )
        .await;
    assert_eq!((reply.status, reply.error()), (422, "self_approval"));
    assert_eq!(fx.counts().await, before);

    // A security officer whose account belongs to the borrower.
    let borrowers_account = fx
        .user("officer-borrower", &["security_officer"], Some(&borrower))
        .await;
    let theirs = fx.request(&[&carrier2], &borrower).await;
    let before = fx.counts().await;
    let reply = fx
        .call(
            Some(&borrowers_account),
            Method::POST,
            &format!("/api/v1/signouts/{theirs}/approve"),
            None,
        )
        .await;
    assert_eq!((reply.status, reply.error()), (422, "self_approval"));
    assert_eq!(fx.counts().await, before);
    // Somebody else may.
    assert_eq!(fx.approve(&theirs).await["state"], "approved");
}

#[tokio::test]
async fn issue_is_refused_for_each_reason() {
    let fx = Fx::new().await;
    let today = fx.server.now().date();
    let yesterday = Timestamp::from_unix(fx.server.now().unix() - 86_400)
        .unwrap()
        .date();
    let expired = fx
        .person(
            json!({"name": "Expired", "department": "D", "category": "core",
                       "training_valid_until": yesterday, "commitment_signed_on": "2020-01-01"}),
        )
        .await;
    let untrained = fx
        .person(
            json!({"name": "Untrained", "department": "D", "category": "core",
                       "commitment_signed_on": "2020-01-01"}),
        )
        .await;
    let uncommitted = fx
        .person(
            json!({"name": "Uncommitted", "department": "D", "category": "core",
                       "training_valid_until": today}),
        )
        .await;
    let general = fx.fit_person("General", "general").await;
    let departed = fx.fit_person("Departed", "core").await;
    fx.leave_and_clear(&departed).await;
    fx.expect(
        Role::SecurityOfficer,
        Method::POST,
        &format!("/api/v1/people/{departed}/depart"),
        None,
        200,
    )
    .await;
    let leaving = fx.fit_person("Leaving", "core").await;
    fx.expect(
        Role::SecurityOfficer,
        Method::POST,
        &format!("/api/v1/people/{leaving}/leave"),
        None,
        200,
    )
    .await;

    let cases = [
        (&expired, "training_expired"),
        (&untrained, "training_expired"),
        (&uncommitted, "commitment_missing"),
        (&general, "clearance_insufficient"),
        (&departed, "person_not_active"),
        (&leaving, "person_not_active"),
    ];
    for (n, (person, code)) in cases.into_iter().enumerate() {
        let carrier = fx.carrier(&format!("R-{n}"), "S", &[]).await;
        let id = fx.request(&[&carrier], person).await;
        let pending = fx
            .get(Role::SecurityOfficer, &format!("/api/v1/signouts/{id}"))
            .await;
        assert_eq!(pending["would_refuse"], json!([code]), "{code}");
        fx.approve(&id).await;
        let before = fx.counts().await;
        let reply = fx.issue(&id).await;
        assert_eq!(
            (reply.status, reply.error()),
            (422, code),
            "{:?}",
            reply.body
        );
        assert_eq!(reply.body["reasons"], json!([code]));
        assert_eq!(fx.counts().await, before, "{code}: nothing changed");
        let still = fx
            .get(Role::Custodian, &format!("/api/v1/carriers/{carrier}"))
            .await;
        assert_eq!(still["state"], "in_storage");
        let signout = fx
            .get(Role::Custodian, &format!("/api/v1/signouts/{id}"))
            .await;
        assert_eq!(signout["state"], "approved");
    }

    // Several reasons at once are all named.
    let nobody = fx
        .person(json!({"name": "Nobody", "department": "D", "category": "general"}))
        .await;
    let carrier = fx.carrier("R-MANY", "TS", &[]).await;
    let id = fx.request(&[&carrier], &nobody).await;
    fx.approve(&id).await;
    let second = fx.user("so2", &["security_officer"], None).await;
    let approved = fx
        .call(
            Some(&second),
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.body["state"], "approved");
    let reply = fx.issue(&id).await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.body["reasons"],
        json!([
            "clearance_insufficient",
            "training_expired",
            "commitment_missing"
        ])
    );
    assert_eq!(reply.error(), "clearance_insufficient");
}

#[tokio::test]
async fn a_double_submitted_issue_issues_once() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Twice", "core").await;
    let carrier = fx.carrier("DBL-1", "S", &[]).await;
    let id = fx.request(&[&carrier], &borrower).await;
    fx.approve(&id).await;
    let audit_before = fx.server.audit_count().await;
    let (a, b) = tokio::join!(fx.issue(&id), fx.issue(&id));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", a.body, b.body);
    let refused = if a.status == 409 { &a } else { &b };
    assert_eq!(refused.error(), "not_approved");
    assert_eq!(fx.server.audit_count().await, audit_before + 1);
    let third = fx.issue(&id).await;
    assert_eq!((third.status, third.error()), (409, "not_approved"));
}

#[tokio::test]
async fn returning_what_is_not_out_is_refused() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Ret", "core").await;
    let a = fx.carrier("RET-A", "S", &[]).await;
    let b = fx.carrier("RET-B", "S", &[]).await;
    let other = fx.carrier("RET-C", "S", &[]).await;
    let pending = fx.request(&[&other], &borrower).await;
    let id = fx.issued(&[&a, &b], &borrower).await;
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{id}/return"),
        Some(json!({"carrier_ids": [a]})),
        200,
    )
    .await;
    let before = fx.counts().await;
    for (path, body, status, code) in [
        // A carrier that is not on this sign-out.
        (
            format!("/api/v1/signouts/{id}/return"),
            json!({"carrier_ids": [other]}),
            409,
            "carrier_not_out",
        ),
        // One already returned.
        (
            format!("/api/v1/signouts/{id}/return"),
            json!({"carrier_ids": [a]}),
            409,
            "carrier_not_out",
        ),
        // A mix: nothing is returned.
        (
            format!("/api/v1/signouts/{id}/return"),
            json!({"carrier_ids": [b, a]}),
            409,
            "carrier_not_out",
        ),
        // An unknown carrier id.
        (
            format!("/api/v1/signouts/{id}/return"),
            json!({"carrier_ids": ["999"]}),
            409,
            "carrier_not_out",
        ),
        // A sign-out that was never issued.
        (
            format!("/api/v1/signouts/{pending}/return"),
            json!({}),
            409,
            "not_out",
        ),
        (
            format!("/api/v1/signouts/{id}/return"),
            json!({"carrier_ids": []}),
            400,
            "bad_request",
        ),
    ] {
        let reply = fx
            .as_role(Role::Custodian, Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(
            (reply.status, reply.error()),
            (status, code),
            "{body}: {:?}",
            reply.body
        );
    }
    assert_eq!(fx.counts().await, before);
    let still = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{b}"))
        .await;
    assert_eq!(still["state"], "out");
}

#[tokio::test]
async fn cancelling_frees_the_carriers() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Can", "core").await;
    let carrier = fx.carrier("CAN-1", "S", &[]).await;
    let requested = fx.request(&[&carrier], &borrower).await;
    // Claimed: a second request for the same carrier is refused.
    let body = json!({"carrier_ids": [carrier], "borrower": borrower, "purpose": "p",
                      "due_at": fx.due(), "may_leave": false});
    let reply = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            "/api/v1/signouts",
            Some(body.clone()),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (409, "carrier_unavailable"));
    let cancelled = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{requested}/cancel"),
            None,
            200,
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    let approve = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{requested}/approve"),
            None,
        )
        .await;
    assert_eq!((approve.status, approve.error()), (409, "not_requested"));
    // Free again; an approved one can be cancelled by the custodian; an issued one cannot.
    let second = fx.request(&[&carrier], &borrower).await;
    fx.approve(&second).await;
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{second}/cancel"),
        None,
        200,
    )
    .await;
    let third = fx.issued(&[&carrier], &borrower).await;
    let reply = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/signouts/{third}/cancel"),
            None,
        )
        .await;
    assert_eq!((reply.status, reply.error()), (409, "not_cancellable"));
    let cancelled_list = fx
        .get(Role::SecurityOfficer, "/api/v1/signouts?state=cancelled")
        .await;
    assert_eq!(cancelled_list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn departure_waits_until_every_carrier_is_back() {
    let fx = Fx::new().await;
    let person = fx.fit_person("Leaver", "core").await;
    let carrier = fx.carrier("DEP-1", "S", &[]).await;
    let id = fx.issued(&[&carrier], &person).await;

    let left = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/leave"),
            None,
            200,
        )
        .await;
    assert_eq!(left["status"], "leaving");
    assert!(left["leaving_since"].is_string());
    let again = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/leave"),
            None,
        )
        .await;
    assert_eq!((again.status, again.error()), (409, "already_leaving"));

    let before = (fx.counts().await, fx.statuses().await);
    let refused = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/depart"),
            None,
        )
        .await;
    assert_eq!(
        (refused.status, refused.error()),
        (409, "carriers_outstanding")
    );
    assert_eq!((fx.counts().await, fx.statuses().await), before);

    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{id}/return"),
        None,
        200,
    )
    .await;
    // Everything is back, but the clearance (清退) has not been certified yet.
    let uncleared = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/depart"),
            None,
        )
        .await;
    assert_eq!((uncleared.status, uncleared.error()), (409, "not_cleared"));
    let cleared = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/clearance"),
            None,
            200,
        )
        .await;
    assert!(cleared["cleared_at"].is_string());
    let departed = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/depart"),
            None,
            200,
        )
        .await;
    assert_eq!(departed["status"], "departed");
    // Core staff: three years (the default configuration), counted from today.
    let today = fx.server.now().date();
    let expected = today.add_years(3).unwrap().to_string();
    assert_eq!(departed["decommissioning_ends_on"], expected);
    let people = fx.get(Role::Custodian, "/api/v1/people").await;
    let listed = people
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == person)
        .unwrap();
    assert_eq!(listed["status"], "departed");
    assert_eq!(listed["decommissioning_ends_on"], expected);
    let twice = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{person}/depart"),
            None,
        )
        .await;
    assert_eq!((twice.status, twice.error()), (409, "already_departed"));
    let general = fx.fit_person("General", "general").await;
    fx.leave_and_clear(&general).await;
    let gone = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/people/{general}/depart"),
            None,
            200,
        )
        .await;
    assert_eq!(
        gone["decommissioning_ends_on"],
        today.add_years(1).unwrap().to_string()
    );
}

#[tokio::test]
async fn tags_resolve_at_the_desk_and_guards_never_see_titles() {
    let fx = Fx::new().await;
    let label = CarrierLabel::new("2025-0001").unwrap().to_string();
    let id = fx
        .carrier(
            "2025-0001",
            "S",
            &[
                &format!("epc:{}", SGTIN_HEX.to_lowercase()),
                "barcode:4006381333931",
                "em:1A00B54E12",
            ],
        )
        .await;
    let other = fx
        .carrier("2025-0002", "C", &["barcode:HELLO WORLD/7"])
        .await;
    let unlabelled = fx.carrier("2025-0003", "C", &[]).await;
    for (tag, expected) in [
        (format!("epc:{SGTIN_HEX}"), &id),
        (format!("EPC:{}", SGTIN_HEX.to_lowercase()), &id),
        ("barcode:4006381333931".to_owned(), &id),
        ("em:1a00b54e12".to_owned(), &id),
        // The printed label resolves through the control number, registered as a tag or not.
        (format!("barcode:{label}"), &id),
        (
            format!("barcode:{}", CarrierLabel::new("2025-0003").unwrap()),
            &unlabelled,
        ),
        ("barcode:HELLO%20WORLD%2F7".to_owned(), &other),
    ] {
        let path = format!("/api/v1/carriers/by-tag/{tag}");
        let full = fx.get(Role::Custodian, &path).await;
        assert_eq!(&full["id"], expected, "{tag}");
        assert!(full["title"].is_string(), "{tag}");
        let guard = fx.get(Role::Guard, &path).await;
        assert_eq!(&guard["id"], expected, "{tag}");
        assert!(guard.get("title").is_none(), "{tag}: {guard}");
        assert!(!guard.to_string().contains("机密标题"), "{tag}");
    }
    let shown = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{id}"))
        .await;
    assert_eq!(shown["tags"][0]["tag"], format!("epc:{SGTIN_HEX}"));
    assert_eq!(
        shown["tags"][0]["uri"],
        "urn:epc:id:sgtin:0614141.812345.6789"
    );
    assert!(shown["tags"][1].get("uri").is_none());
    for (tag, status) in [
        ("em:FFFFFFFFFF", 404),
        ("barcode:nothing-here", 404),
        ("rfid:00", 400),
        ("epc:XYZ", 400),
    ] {
        let reply = fx
            .as_role(
                Role::Guard,
                Method::GET,
                &format!("/api/v1/carriers/by-tag/{tag}"),
                None,
            )
            .await;
        assert_eq!(reply.status, status, "{tag}: {:?}", reply.body);
    }

    // Search by control number or tag, and by state.
    let found = fx
        .get(Role::SecurityOfficer, "/api/v1/carriers?q=2025-000")
        .await;
    assert_eq!(found.as_array().unwrap().len(), 3);
    let found = fx
        .get(Role::SecurityOfficer, "/api/v1/carriers?q=hello")
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], other);
    let found = fx
        .get(
            Role::Custodian,
            &format!("/api/v1/carriers?q={}", &SGTIN_HEX[..10]),
        )
        .await;
    assert_eq!(found[0]["id"], id);
    let none = fx.get(Role::Custodian, "/api/v1/carriers?state=out").await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn history_merges_readings_sign_outs_and_alerts_oldest_first() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Walker", "core").await;
    let carrier = fx
        .carrier("HIS-1", "S", &[&format!("epc:{GIAI_HEX}")])
        .await;
    let id = fx.issued(&[&carrier], &borrower).await;
    let signout = fx
        .get(Role::Custodian, &format!("/api/v1/signouts/{id}"))
        .await;
    let issued: Timestamp = signout["issued_at"].as_str().unwrap().parse().unwrap();
    let base = issued.unix() * 1000;
    let cid: i64 = carrier.parse().unwrap();
    // What ingest would have written: a scan at the desk, out through the gate, an alert, back
    // in, onto the shelf; and where the carrier was last seen.
    fx.server
        .state
        .store()
        .write(move |c| {
            let rows: [(i64, &str, &str, Option<&str>); 4] = [
                (5_000, "scan", "desk-1", None),
                (10_000, "passage", "gate-1", Some("out")),
                (20_000, "passage", "gate-1", Some("in")),
                (30_000, "cabinet", "cab-1", None),
            ];
            for (seq, (offset, kind, device, direction)) in rows.into_iter().enumerate() {
                let event_kind = if kind == "cabinet" { "cabinet_snapshot" } else { kind };
                c.execute(
                    "INSERT INTO events (device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                     VALUES (?1, 1, ?2, ?3, ?3, ?4, '{}')",
                    rusqlite::params![device, seq as i64 + 1, base + offset, event_kind],
                )?;
                let event = c.last_insert_rowid();
                c.execute(
                    "INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id, direction)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![cid, event, base + offset, kind, device, direction],
                )?;
            }
            c.execute(
                "INSERT INTO alerts (kind, severity, cause, raised_at_ms, last_seen_at_ms, carrier_id, device_id)
                 VALUES ('unauthorized_removal', 'critical', 'test', ?1, ?1, ?2, 'gate-1')",
                rusqlite::params![base + 11_000, cid],
            )?;
            c.execute(
                "UPDATE carriers SET last_seen_device = 'cab-1', last_seen_at_ms = ?1 WHERE id = ?2",
                rusqlite::params![base + 30_000, cid],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    fx.server.clock_offset.store(100, Ordering::SeqCst);
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{id}/return"),
        None,
        200,
    )
    .await;

    let history = fx
        .get(
            Role::SecurityOfficer,
            &format!("/api/v1/carriers/{carrier}/history"),
        )
        .await;
    let items = history.as_array().unwrap();
    let summary: Vec<String> = items
        .iter()
        .map(|h| match h["type"].as_str().unwrap() {
            "signout" => format!("signout:{}", h["event"].as_str().unwrap()),
            "passage" => format!(
                "passage:{}:{}",
                h["device_id"].as_str().unwrap(),
                h["direction"].as_str().unwrap()
            ),
            "alert" => format!("alert:{}", h["kind"].as_str().unwrap()),
            other => format!("{other}:{}", h["device_id"].as_str().unwrap()),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "signout:requested",
            "signout:approved",
            "signout:issued",
            "scan:desk-1",
            "passage:gate-1:out",
            "alert:unauthorized_removal",
            "passage:gate-1:in",
            "cabinet:cab-1",
            "signout:returned"
        ]
    );
    let times: Vec<Timestamp> = items
        .iter()
        .map(|h| h["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(
        items[4]["at"],
        Timestamp::from_unix(issued.unix() + 10)
            .unwrap()
            .to_string()
    );
    let shown = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{carrier}"))
        .await;
    assert_eq!(
        shown["last_seen"],
        json!({"device_id": "cab-1", "at": Timestamp::from_unix(issued.unix() + 30).unwrap()})
    );
    let unknown = fx
        .as_role(
            Role::Custodian,
            Method::GET,
            "/api/v1/carriers/999/history",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    CreateCarrier,
    ListCarriers,
    GetCarrier,
    History,
    ByTag,
    CreateSignout,
    ListSignouts,
    GetSignout,
    Approve,
    Issue,
    Return,
    Cancel,
    Leave,
    Depart,
}

impl Ep {
    const ALL: [Ep; 14] = [
        Ep::CreateCarrier,
        Ep::ListCarriers,
        Ep::GetCarrier,
        Ep::History,
        Ep::ByTag,
        Ep::CreateSignout,
        Ep::ListSignouts,
        Ep::GetSignout,
        Ep::Approve,
        Ep::Issue,
        Ep::Return,
        Ep::Cancel,
        Ep::Leave,
        Ep::Depart,
    ];

    fn allowed(self) -> &'static [Role] {
        use Role::*;
        match self {
            Ep::CreateCarrier | Ep::CreateSignout | Ep::Issue | Ep::Return => &[Custodian],
            Ep::ListCarriers
            | Ep::GetCarrier
            | Ep::History
            | Ep::ListSignouts
            | Ep::GetSignout
            | Ep::Cancel => &[Custodian, SecurityOfficer],
            Ep::ByTag => &[Custodian, Guard],
            Ep::Approve | Ep::Leave | Ep::Depart => &[SecurityOfficer],
        }
    }

    fn writes(self) -> bool {
        !matches!(
            self,
            Ep::ListCarriers
                | Ep::GetCarrier
                | Ep::History
                | Ep::ByTag
                | Ep::ListSignouts
                | Ep::GetSignout
        )
    }

    fn success(self) -> u16 {
        match self {
            Ep::CreateCarrier | Ep::CreateSignout => 201,
            _ => 200,
        }
    }

    /// The request, after preparing whatever it acts on (a fresh sign-out, carrier, person).
    async fn prepare(self, fx: &Fx, n: usize, borrower: &str) -> (Method, String, Option<Value>) {
        let control_no = format!("M-{n}");
        match self {
            Ep::CreateCarrier => (
                Method::POST,
                "/api/v1/carriers".into(),
                Some(
                    json!({"control_no": format!("N-{n}"), "kind": "flash", "level": "C",
                            "title": "t", "owner_unit": "u", "tags": [format!("em:{n:010X}")]}),
                ),
            ),
            Ep::ListCarriers => (Method::GET, "/api/v1/carriers".into(), None),
            Ep::GetCarrier => (Method::GET, "/api/v1/carriers/1".into(), None),
            Ep::History => (Method::GET, "/api/v1/carriers/1/history".into(), None),
            Ep::ByTag => (
                Method::GET,
                format!("/api/v1/carriers/by-tag/epc:{GIAI_HEX}"),
                None,
            ),
            Ep::CreateSignout => {
                let carrier = fx.carrier(&control_no, "S", &[]).await;
                (
                    Method::POST,
                    "/api/v1/signouts".into(),
                    Some(json!({"carrier_ids": [carrier], "borrower": borrower,
                                "purpose": "p", "due_at": fx.due(), "may_leave": false})),
                )
            }
            Ep::ListSignouts => (Method::GET, "/api/v1/signouts".into(), None),
            Ep::GetSignout => (Method::GET, "/api/v1/signouts/1".into(), None),
            Ep::Approve | Ep::Cancel => {
                let carrier = fx.carrier(&control_no, "S", &[]).await;
                let id = fx.request(&[&carrier], borrower).await;
                let verb = if self == Ep::Approve {
                    "approve"
                } else {
                    "cancel"
                };
                (Method::POST, format!("/api/v1/signouts/{id}/{verb}"), None)
            }
            Ep::Issue => {
                let carrier = fx.carrier(&control_no, "S", &[]).await;
                let id = fx.request(&[&carrier], borrower).await;
                fx.approve(&id).await;
                (Method::POST, format!("/api/v1/signouts/{id}/issue"), None)
            }
            Ep::Return => {
                let carrier = fx.carrier(&control_no, "S", &[]).await;
                let id = fx.issued(&[&carrier], borrower).await;
                (Method::POST, format!("/api/v1/signouts/{id}/return"), None)
            }
            Ep::Leave | Ep::Depart => {
                let person = fx.fit_person(&format!("P{n}"), "general").await;
                if self == Ep::Depart {
                    fx.leave_and_clear(&person).await;
                }
                let verb = if self == Ep::Leave { "leave" } else { "depart" };
                (
                    Method::POST,
                    format!("/api/v1/people/{person}/{verb}"),
                    None,
                )
            }
        }
    }
}

#[tokio::test]
async fn role_matrix_for_every_custody_endpoint() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Matrix", "core").await;
    // Carrier 1 and sign-out 1 exist for the reads.
    let first = fx
        .carrier("FIRST", "S", &[&format!("epc:{GIAI_HEX}")])
        .await;
    assert_eq!(first, "1");
    assert_eq!(fx.request(&[&first], &borrower).await, "1");
    let mut n = 0;
    for ep in Ep::ALL {
        for role in Role::ALL {
            n += 1;
            let (method, path, body) = ep.prepare(&fx, n, &borrower).await;
            let before = fx.server.audit_count().await;
            let reply = fx.as_role(role, method.clone(), &path, body.clone()).await;
            let allowed = ep.allowed().contains(&role);
            let expected = if allowed { ep.success() } else { 403 };
            assert_eq!(reply.status, expected, "{ep:?} as {role}: {:?}", reply.body);
            let changed = fx.server.audit_count().await - before;
            assert_eq!(
                changed,
                i64::from(allowed && ep.writes()),
                "{ep:?} as {role}"
            );
            if !allowed {
                assert_eq!(reply.error(), "forbidden");
            }
            if allowed && matches!(ep, Ep::GetCarrier | Ep::ByTag | Ep::ListCarriers) {
                let carrier = if ep == Ep::ListCarriers {
                    &reply.body[0]
                } else {
                    &reply.body
                };
                assert_eq!(
                    carrier.get("title").is_some(),
                    role != Role::Guard,
                    "{ep:?} as {role}"
                );
            }
            // Without a session: 401, whatever the endpoint.
            let anonymous = fx.call(None, method.clone(), &path, body).await;
            assert_eq!(anonymous.status, 401, "{ep:?} without a token");
        }
    }
}

/// name, method, path, caller, raw body, expected status, expected error code.
type BadCase = (
    &'static str,
    Method,
    String,
    Role,
    Option<String>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    use Role::*;
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Bad", "core").await;
    let carrier = fx
        .carrier("BAD-1", "S", &[&format!("epc:{GIAI_HEX}")])
        .await;
    let out = fx.carrier("BAD-2", "S", &[]).await;
    let returned_signout = fx.issued(&[&out], &borrower).await;
    fx.expect(
        Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{returned_signout}/return"),
        None,
        200,
    )
    .await;
    let busy = fx.carrier("BAD-3", "S", &[]).await;
    let pending = fx.request(&[&busy], &borrower).await;
    let departed = fx.fit_person("Gone", "general").await;
    fx.leave_and_clear(&departed).await;
    fx.expect(
        SecurityOfficer,
        Method::POST,
        &format!("/api/v1/people/{departed}/depart"),
        None,
        200,
    )
    .await;

    let carrier_body = |patch: Value| {
        let mut body = json!({"control_no": "NEW-1", "kind": "paper", "level": "S",
                              "title": "New title", "owner_unit": "U", "tags": []});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };
    let due = fx.due();
    let past = Timestamp::from_unix(fx.server.now().unix() - 60)
        .unwrap()
        .to_string();
    let signout_body = |patch: Value| {
        let mut body = json!({"carrier_ids": [carrier], "borrower": borrower, "purpose": "p",
                              "due_at": due, "may_leave": false});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };
    let other_label = CarrierLabel::new("OTHER-1").unwrap().to_string();
    let (carriers, signouts) = ("/api/v1/carriers", "/api/v1/signouts");
    let cases: Vec<BadCase> = vec![
        (
            "malformed json",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(r#"{"control_no": "#.into()),
            400,
            "bad_request",
        ),
        (
            "unknown field",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"secret": 1}))),
            400,
            "bad_request",
        ),
        (
            "missing tags",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(
                r#"{"control_no":"X","kind":"paper","level":"S","title":"t","owner_unit":"u"}"#
                    .into(),
            ),
            400,
            "bad_request",
        ),
        (
            "lower-case control_no",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"control_no": "new-1"}))),
            400,
            "bad_request",
        ),
        (
            "control_no too long",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"control_no": "A".repeat(25)}))),
            400,
            "bad_request",
        ),
        (
            "cjk control_no",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"control_no": "机字2024第17号"}))),
            400,
            "bad_request",
        ),
        (
            "unknown kind",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"kind": "usb"}))),
            400,
            "bad_request",
        ),
        (
            "unknown level",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"level": "public"}))),
            400,
            "bad_request",
        ),
        (
            "blank title",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"title": "  "}))),
            400,
            "bad_request",
        ),
        (
            "bad epc",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"tags": ["epc:ABC"]}))),
            400,
            "bad_request",
        ),
        (
            "bad em",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"tags": ["em:12345"]}))),
            400,
            "bad_request",
        ),
        (
            "bad tag scheme",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"tags": ["rfid:12"]}))),
            400,
            "bad_request",
        ),
        (
            "negative copy_no",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"copy_no": -1}))),
            400,
            "bad_request",
        ),
        (
            "TS without copy_no",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"level": "TS", "copies": 3}))),
            422,
            "copy_number_required",
        ),
        (
            "copy_no over copies",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"copy_no": 4, "copies": 3}))),
            422,
            "copy_number_out_of_range",
        ),
        (
            "home is a gate",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"home_device": "gate-1"}))),
            422,
            "home_not_cabinet",
        ),
        (
            "unknown home",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"home_device": "cab-9"}))),
            422,
            "unknown_reference",
        ),
        (
            "label of another carrier",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(
                json!({"tags": [format!("barcode:{other_label}")]}),
            )),
            422,
            "label_mismatch",
        ),
        (
            "duplicate tag",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(
                json!({"tags": [format!("epc:{}", GIAI_HEX.to_lowercase())]}),
            )),
            409,
            "conflict",
        ),
        (
            "tag twice in one request",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(
                json!({"tags": ["em:1A00B54E12", "em:1a00b54e12"]}),
            )),
            409,
            "conflict",
        ),
        (
            "duplicate control_no",
            Method::POST,
            carriers.into(),
            Custodian,
            Some(carrier_body(json!({"control_no": "BAD-1"}))),
            409,
            "conflict",
        ),
        (
            "unknown carrier state filter",
            Method::GET,
            "/api/v1/carriers?state=lost".into(),
            Custodian,
            None,
            400,
            "bad_request",
        ),
        (
            "unknown carrier",
            Method::GET,
            "/api/v1/carriers/999".into(),
            Custodian,
            None,
            404,
            "not_found",
        ),
        (
            "non-numeric carrier",
            Method::GET,
            "/api/v1/carriers/abc".into(),
            SecurityOfficer,
            None,
            404,
            "not_found",
        ),
        (
            "malformed signout",
            Method::POST,
            signouts.into(),
            Custodian,
            Some("{".into()),
            400,
            "bad_request",
        ),
        (
            "signout unknown field",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"approver": "1"}))),
            400,
            "bad_request",
        ),
        (
            "no carriers",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"carrier_ids": []}))),
            400,
            "bad_request",
        ),
        (
            "carrier twice",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"carrier_ids": [carrier, carrier]}))),
            400,
            "bad_request",
        ),
        (
            "numeric carrier id",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"carrier_ids": [1]}))),
            400,
            "bad_request",
        ),
        (
            "unknown carrier id",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"carrier_ids": ["999"]}))),
            422,
            "unknown_reference",
        ),
        (
            "unknown borrower",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"borrower": "999"}))),
            422,
            "unknown_reference",
        ),
        (
            "due_at not a time",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"due_at": "tomorrow"}))),
            400,
            "bad_request",
        ),
        (
            "due_at in the past",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"due_at": past}))),
            422,
            "due_in_past",
        ),
        (
            "blank purpose",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"purpose": ""}))),
            400,
            "bad_request",
        ),
        (
            "carrier on a live sign-out",
            Method::POST,
            signouts.into(),
            Custodian,
            Some(signout_body(json!({"carrier_ids": [busy]}))),
            409,
            "carrier_unavailable",
        ),
        (
            "unknown sign-out state filter",
            Method::GET,
            "/api/v1/signouts?state=lost".into(),
            SecurityOfficer,
            None,
            400,
            "bad_request",
        ),
        (
            "unknown query key",
            Method::GET,
            "/api/v1/signouts?status=out".into(),
            SecurityOfficer,
            None,
            400,
            "bad_request",
        ),
        (
            "unknown sign-out",
            Method::GET,
            "/api/v1/signouts/999".into(),
            SecurityOfficer,
            None,
            404,
            "not_found",
        ),
        (
            "approve unknown",
            Method::POST,
            "/api/v1/signouts/999/approve".into(),
            SecurityOfficer,
            None,
            404,
            "not_found",
        ),
        (
            "approve non-numeric",
            Method::POST,
            "/api/v1/signouts/x/approve".into(),
            SecurityOfficer,
            None,
            404,
            "not_found",
        ),
        (
            "approve returned",
            Method::POST,
            format!("/api/v1/signouts/{returned_signout}/approve"),
            SecurityOfficer,
            None,
            409,
            "not_requested",
        ),
        (
            "issue unknown",
            Method::POST,
            "/api/v1/signouts/999/issue".into(),
            Custodian,
            None,
            404,
            "not_found",
        ),
        (
            "issue unapproved",
            Method::POST,
            format!("/api/v1/signouts/{pending}/issue"),
            Custodian,
            None,
            409,
            "not_approved",
        ),
        (
            "issue returned",
            Method::POST,
            format!("/api/v1/signouts/{returned_signout}/issue"),
            Custodian,
            None,
            409,
            "not_approved",
        ),
        (
            "return malformed",
            Method::POST,
            format!("/api/v1/signouts/{returned_signout}/return"),
            Custodian,
            Some("{".into()),
            400,
            "bad_request",
        ),
        (
            "return unknown field",
            Method::POST,
            format!("/api/v1/signouts/{returned_signout}/return"),
            Custodian,
            Some(r#"{"all":true}"#.into()),
            400,
            "bad_request",
        ),
        (
            "return returned",
            Method::POST,
            format!("/api/v1/signouts/{returned_signout}/return"),
            Custodian,
            None,
            409,
            "not_out",
        ),
        (
            "return unknown",
            Method::POST,
            "/api/v1/signouts/999/return".into(),
            Custodian,
            None,
            404,
            "not_found",
        ),
        (
            "cancel returned",
            Method::POST,
            format!("/api/v1/signouts/{returned_signout}/cancel"),
            SecurityOfficer,
            None,
            409,
            "not_cancellable",
        ),
        (
            "cancel unknown",
            Method::POST,
            "/api/v1/signouts/999/cancel".into(),
            Custodian,
            None,
            404,
            "not_found",
        ),
        (
            "leave unknown",
            Method::POST,
            "/api/v1/people/999/leave".into(),
            SecurityOfficer,
            None,
            404,
            "not_found",
        ),
        (
            "leave departed",
            Method::POST,
            format!("/api/v1/people/{departed}/leave"),
            SecurityOfficer,
            None,
            409,
            "already_departed",
        ),
        (
            "depart unknown",
            Method::POST,
            "/api/v1/people/abc/depart".into(),
            SecurityOfficer,
            None,
            404,
            "not_found",
        ),
        (
            "by-tag malformed",
            Method::GET,
            "/api/v1/carriers/by-tag/em:XYZ".into(),
            Guard,
            None,
            400,
            "bad_request",
        ),
        (
            "history unknown",
            Method::GET,
            "/api/v1/carriers/999/history".into(),
            Custodian,
            None,
            404,
            "not_found",
        ),
    ];
    for (name, method, path, role, body, status, code) in cases {
        let before = (fx.counts().await, fx.statuses().await);
        let auth = format!("Bearer {}", fx.token(role));
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let reply = raw_request(
            fx.server.addr,
            method,
            &path,
            &headers,
            body.map(String::into_bytes),
        )
        .await;
        assert_eq!(
            (reply.status, reply.error()),
            (status, code),
            "{name}: {:?}",
            reply.body
        );
        assert_eq!(
            (fx.counts().await, fx.statuses().await),
            before,
            "{name}: database changed"
        );
    }
}

#[tokio::test]
async fn the_audit_trail_never_holds_a_title() {
    let fx = Fx::new().await;
    let borrower = fx.fit_person("Audit", "core").await;
    let a = fx
        .carrier("AUD-1", "TS", &[&format!("epc:{GIAI_HEX}")])
        .await;
    let b = fx.carrier("AUD-2", "S", &["barcode:4006381333931"]).await;
    let id = fx.request(&[&a, &b], &borrower).await;
    fx.approve(&id).await;
    let second = fx.user("so2", &["security_officer"], None).await;
    fx.call(
        Some(&second),
        Method::POST,
        &format!("/api/v1/signouts/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(fx.issue(&id).await.status, 200);
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{id}/return"),
        Some(json!({"carrier_ids": [a]})),
        200,
    )
    .await;
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{id}/return"),
        None,
        200,
    )
    .await;
    let cancelled = fx.request(&[&a], &borrower).await;
    fx.expect(
        Role::SecurityOfficer,
        Method::POST,
        &format!("/api/v1/signouts/{cancelled}/cancel"),
        None,
        200,
    )
    .await;

    for control_no in ["AUD-1", "AUD-2"] {
        let title = title_of(control_no);
        let hits: i64 = fx
            .server
            .state
            .store()
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM audit
                     WHERE instr(actor || action || subject || coalesce(before_json, '')
                                 || coalesce(after_json, ''), ?1) > 0",
                    [&title],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(hits, 0, "{control_no}");
    }
    // Not even a fragment of it, and the entries do name the carriers by control number.
    let trail = fx.get(Role::Auditor, "/api/v1/audit").await.to_string();
    assert!(!trail.contains("机密标题") && !trail.contains("年度计划"));
    assert!(trail.contains("AUD-1") && trail.contains("\"level\":\"TS\""));
    let verdict = custos_server::service::audit::verify_chain(
        fx.server.state.store(),
        fx.server.public_key(),
    )
    .await
    .unwrap();
    assert!(
        matches!(verdict, custos_server::audit::Verdict::Intact { .. }),
        "{verdict:?}"
    );
}

/// A sign-out the rules would refuse (a Secret carrier for someone cleared only to C) can be
/// sent as "needs override" with the custodian's note; only an officer approving it with a
/// written override reason approves it, the reason shows on the sign-out and in the audit, and
/// the issue then waives the clearance mismatch. An override of a plain request is refused.
#[tokio::test]
async fn an_officer_overrides_a_failed_check_only_with_a_written_reason() {
    let fx = Fx::new().await;
    let clerk = fx.fit_person("Clerk", "general").await;
    let carrier = fx.carrier("OVR-1", "S", &[]).await;
    let body = json!({
        "carrier_ids": [carrier], "borrower": clerk, "purpose": "review",
        "due_at": fx.due(), "may_leave": false,
        "override_note": "需要核对原件"
    });
    let made = fx
        .expect(
            Role::Custodian,
            Method::POST,
            "/api/v1/signouts",
            Some(body),
            201,
        )
        .await;
    let id = made["id"].as_str().unwrap().to_owned();
    let one = format!("/api/v1/signouts/{id}");
    let path = |step: &str| format!("{one}/{step}");

    // A plain approval, or a blank reason, approves nothing.
    let before = fx.counts().await;
    let plain = fx
        .as_role(Role::SecurityOfficer, Method::POST, &path("approve"), None)
        .await;
    assert_eq!(
        (plain.status, plain.error()),
        (422, "override_reason_required")
    );
    let blank = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &path("override"),
            Some(json!({"reason": "   "})),
        )
        .await;
    assert_eq!(blank.status, 400, "{:?}", blank.body);
    // Only a security officer may override.
    let custodian = fx
        .as_role(
            Role::Custodian,
            Method::POST,
            &path("override"),
            Some(json!({"reason": "我来批"})),
        )
        .await;
    assert_eq!(custodian.status, 403);
    assert_eq!(fx.counts().await, before, "refusals change nothing");
    let shown = fx.get(Role::Custodian, &one).await;
    assert_eq!(shown["state"], "requested");
    assert_eq!(shown["override_note"], "需要核对原件");
    assert_eq!(shown["would_refuse"], json!(["clearance_insufficient"]));

    let reason = "经处长同意，限阅一天";
    let approved = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &path("override"),
            Some(json!({ "reason": reason })),
            200,
        )
        .await;
    assert_eq!(approved["state"], "approved");
    let shown = fx.get(Role::Custodian, &one).await;
    assert_eq!(shown["approvals"][0]["override_reason"], reason);
    assert_eq!(shown["would_refuse"], json!([]));
    let issued = fx.issue(&id).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);

    let trail = fx.get(Role::Auditor, "/api/v1/audit").await.to_string();
    assert!(trail.contains(reason), "the override reason is audited");

    // An override of a request that did not ask for one is refused.
    let other = fx.carrier("OVR-2", "C", &[]).await;
    let plain_id = fx.request(&[&other], &clerk).await;
    let refused = fx
        .as_role(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{plain_id}/override"),
            Some(json!({ "reason": reason })),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error()),
        (422, "override_not_requested")
    );
}
