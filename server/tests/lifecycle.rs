//! Lifecycle API tests against the real router on a real socket: a correction with its
//! history and its refusals, a carrier reported missing and found (also one without a home
//! cabinet), who was told of the incident, an unauthorised removal resolved as "the person
//! left", an overdue loan escalated to missing by the sweep, and the loan limits.

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
    /// A server with one account per role, zone `vault` (S), cabinet `cab-1`, gate `gate-1`,
    /// and person `Li` (core, trained, committed).
    async fn new() -> Fx {
        Fx::with(Server::start().await).await
    }

    async fn with(server: Server) -> Fx {
        let tokens = server.tokens_per_role().await;
        let fx = Fx { server, tokens };
        for zone in [
            json!({"id": "vault", "name": "Vault", "level": "S"}),
            json!({"id": "hall", "name": "Hall", "level": "public"}),
        ] {
            fx.expect(Role::Admin, Method::POST, "/api/v1/zones", zone, 201)
                .await;
        }
        for (n, body) in [
            json!({"id": "cab-1", "kind": "cabinet", "zone": "vault"}),
            json!({"id": "gate-1", "kind": "gate", "inside_zone": "vault", "outside_zone": "hall"}),
        ]
        .into_iter()
        .enumerate()
        {
            let mut body = body;
            body["public_key"] = json!(common::device_key_b64(u32::try_from(n).unwrap() + 1));
            fx.expect(Role::Admin, Method::POST, "/api/v1/devices", body, 201)
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
        body: Value,
        status: u16,
    ) -> Value {
        let reply = self.call(role, method.clone(), path, Some(body)).await;
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
        reply.body
    }

    async fn get(&self, role: Role, path: &str) -> Value {
        let reply = self.call(role, Method::GET, path, None).await;
        assert_eq!(reply.status, 200, "GET {path}: {:?}", reply.body);
        reply.body
    }

    async fn carrier(&self, control_no: &str, level: &str) -> String {
        let body = json!({
            "control_no": control_no, "kind": "paper", "level": level,
            "title": format!("机密标题 {control_no}"), "copy_no": 1, "copies": 3,
            "owner_unit": "保密办", "home_device": "cab-1", "tags": []
        });
        let reply = self
            .expect(Role::Custodian, Method::POST, "/api/v1/carriers", body, 201)
            .await;
        reply["id"].as_str().unwrap().to_owned()
    }

    async fn person(&self) -> String {
        let body = json!({
            "name": "Li", "department": "R&D", "category": "core",
            "training_valid_until": "2099-12-31", "commitment_signed_on": "2020-01-01"
        });
        let reply = self
            .expect(
                Role::SecurityOfficer,
                Method::POST,
                "/api/v1/people",
                body,
                201,
            )
            .await;
        reply["id"].as_str().unwrap().to_owned()
    }

    fn due_in_days(&self, days: i64) -> String {
        self.server.now().plus_secs(days * 86_400).to_string()
    }

    /// A sign-out of `carrier` to `borrower` due in `days`, requested and approved.
    async fn approved(&self, carrier: &str, borrower: &str, days: i64) -> String {
        let body = json!({
            "carrier_ids": [carrier], "borrower": borrower, "purpose": "review",
            "due_at": self.due_in_days(days), "may_leave": false
        });
        let reply = self
            .expect(Role::Custodian, Method::POST, "/api/v1/signouts", body, 201)
            .await;
        let id = reply["id"].as_str().unwrap().to_owned();
        self.expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/signouts/{id}/approve"),
            json!({}),
            200,
        )
        .await;
        id
    }

    async fn state_of(&self, carrier: &str) -> String {
        let c = self
            .get(Role::Custodian, &format!("/api/v1/carriers/{carrier}"))
            .await;
        c["state"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_correction_keeps_its_history_and_refuses_what_it_may_not_change() {
    let fx = Fx::new().await;
    let id = fx.carrier("L-1", "S").await;
    let path = format!("/api/v1/carriers/{id}");
    let before = fx.server.audit_count().await;
    for (body, status, code) in [
        (json!({"owner_unit": "Office 2"}), 400, "bad_request"),
        (
            json!({"reason": " ", "owner_unit": "Office 2"}),
            400,
            "bad_request",
        ),
        (json!({"reason": "r", "level": "TS"}), 422, "not_editable"),
        (
            json!({"reason": "r", "control_no": "L-9"}),
            422,
            "not_editable",
        ),
        (
            json!({"reason": "r", "owner_unit": "保密办"}),
            422,
            "nothing_to_change",
        ),
        (
            json!({"reason": "r", "copy_no": 4}),
            422,
            "copy_number_out_of_range",
        ),
        (
            json!({"reason": "r", "home_device": "gate-1"}),
            422,
            "home_not_cabinet",
        ),
        (
            json!({"reason": "r", "home_device": "cab-9"}),
            422,
            "unknown_reference",
        ),
    ] {
        let reply = fx
            .call(Role::Custodian, Method::PATCH, &path, Some(body.clone()))
            .await;
        assert_eq!(
            (reply.status, reply.error()),
            (status, code),
            "{body}: {:?}",
            reply.body
        );
    }
    for role in [Role::Guard, Role::SecurityOfficer, Role::Auditor] {
        let reply = fx
            .call(
                role,
                Method::PATCH,
                &path,
                Some(json!({"reason": "r", "copy_no": 2})),
            )
            .await;
        assert_eq!(reply.status, 403, "{role:?}");
    }
    assert_eq!(
        fx.server.audit_count().await,
        before,
        "refusals change nothing"
    );

    let body = json!({
        "reason": "title mistyped at registration", "title": "机密标题 L-1（修订）",
        "home_device": null, "copy_no": 2, "tags": ["em:1a00b54e12"]
    });
    let after = fx
        .expect(Role::Custodian, Method::PATCH, &path, body, 200)
        .await;
    assert_eq!(after["title"], "机密标题 L-1（修订）");
    assert_eq!(after["copy_no"], 2);
    assert!(after["home_device"].is_null());
    assert_eq!(after["level"], "S", "level unchanged");
    let history = fx
        .get(Role::SecurityOfficer, &format!("{path}/corrections"))
        .await;
    assert_eq!(history[0]["reason"], "title mistyped at registration");
    assert_eq!(history[0]["actor"], "custodian");
    assert_eq!(history[0]["before"]["title"], "机密标题 L-1");
    assert_eq!(history[0]["after"]["copy_no"], 2);
    assert_eq!(history[0]["before"]["home_device"], "cab-1");
    let audit = fx.get(Role::Auditor, "/api/v1/audit").await.to_string();
    assert!(audit.contains("carrier.correct"));
    assert!(!audit.contains("机密标题"), "no title in the audit trail");
}

#[tokio::test]
async fn a_carrier_reported_missing_is_found_with_its_incident_record() {
    let fx = Fx::new().await;
    let id = fx.carrier("M-1", "TS").await;
    let missing = format!("/api/v1/carriers/{id}/missing");
    let found = format!("/api/v1/carriers/{id}/found");
    for role in [Role::Guard, Role::Auditor, Role::Admin] {
        let reply = fx
            .call(role, Method::POST, &missing, Some(json!({"note": "x"})))
            .await;
        assert_eq!(reply.status, 403, "{role:?}");
    }
    let reply = fx
        .call(
            Role::Custodian,
            Method::POST,
            &missing,
            Some(json!({"note": " "})),
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = fx
        .call(
            Role::Custodian,
            Method::POST,
            &found,
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (409, "not_missing"));

    let carrier = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &missing,
            json!({"note": "not in cabinet 1 at the morning count"}),
            200,
        )
        .await;
    assert_eq!(carrier["state"], "missing");
    assert!(carrier["missing_since"].is_string());
    let reply = fx
        .call(
            Role::SecurityOfficer,
            Method::POST,
            &missing,
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (409, "already_missing"));
    let alerts = fx
        .get(Role::SecurityOfficer, "/api/v1/alerts?kind=missing")
        .await;
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    assert!(
        !alerts.to_string().contains("机密标题"),
        "no title in alerts"
    );

    let incidents = fx
        .get(
            Role::SecurityOfficer,
            &format!("/api/v1/carriers/{id}/incidents"),
        )
        .await;
    let incident = incidents[0]["id"].to_string();
    assert_eq!(incidents[0]["cause"], "manual");
    assert_eq!(
        incidents[0]["what_happened"],
        "not in cabinet 1 at the morning count"
    );
    let told = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/incidents/{incident}/told"),
            json!({"told": "市保密局 by phone"}),
            200,
        )
        .await;
    assert_eq!(told["told"], "市保密局 by phone");
    assert!(told["told_at"].is_string());
    let reply = fx
        .call(
            Role::SecurityOfficer,
            Method::POST,
            &format!("/api/v1/incidents/{incident}/told"),
            Some(json!({"told": "x", "told_at": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(reply.status, 400, "told in the future");
    let reply = fx
        .call(Role::Custodian, Method::GET, "/api/v1/incidents/999", None)
        .await;
    assert_eq!(reply.status, 404);

    // Found by the security officer; the carrier has no cabinet to be seen in any more.
    fx.expect(
        Role::Custodian,
        Method::PATCH,
        &format!("/api/v1/carriers/{id}"),
        json!({"reason": "its cabinet was retired", "home_device": null}),
        200,
    )
    .await;
    let carrier = fx
        .expect(
            Role::SecurityOfficer,
            Method::POST,
            &found,
            json!({"note": "in the shredder room, seal intact"}),
            200,
        )
        .await;
    assert_eq!(carrier["state"], "in_storage");
    assert!(carrier["missing_since"].is_null());
    let incident = fx
        .get(Role::Custodian, &format!("/api/v1/incidents/{incident}"))
        .await;
    assert_eq!(incident["found_by"], "user:security_officer");
    assert_eq!(incident["found_note"], "in the shredder room, seal intact");
}

#[tokio::test]
async fn an_unauthorised_removal_resolved_as_the_person_left_marks_the_carrier_missing() {
    let fx = Fx::new().await;
    let id = fx.carrier("U-1", "S").await;
    let other = fx.carrier("U-2", "S").await;
    let now_ms = fx.server.now().unix_ms();
    fx.server
        .exec(format!(
            "INSERT INTO alerts (id, kind, severity, cause, raised_at_ms, last_seen_at_ms,
                                 carrier_id, device_id)
             VALUES (901, 'unauthorized_removal', 'critical', 'u:1', {now_ms}, {now_ms}, {id}, 'gate-1'),
                    (902, 'unauthorized_removal', 'critical', 'u:2', {now_ms}, {now_ms}, {other}, 'gate-1'),
                    (903, 'reader_silent', 'high', 'r:1', {now_ms}, {now_ms}, NULL, 'gate-1')"
        ))
        .await;
    let reply = fx
        .call(
            Role::Guard,
            Method::POST,
            "/api/v1/alerts/903/resolve",
            Some(json!({"note": "back", "outcome": "person_left"})),
        )
        .await;
    // A rule about the alert, not the request's form: 422 (the OpenAPI fuzzer's property).
    assert_eq!(reply.status, 422, "an outcome only for removals");
    assert_eq!(reply.error(), "outcome_not_applicable");
    let reply = fx
        .call(
            Role::Guard,
            Method::POST,
            "/api/v1/alerts/901/resolve",
            Some(json!({"note": "x", "outcome": "vanished"})),
        )
        .await;
    assert_eq!(reply.status, 400, "unknown outcome");

    fx.expect(
        Role::Guard,
        Method::POST,
        "/api/v1/alerts/902/resolve",
        json!({"note": "stopped with it at the door", "outcome": "stopped_at_gate"}),
        200,
    )
    .await;
    assert_eq!(fx.state_of(&other).await, "in_storage");
    let resolved = fx
        .expect(
            Role::Guard,
            Method::POST,
            "/api/v1/alerts/901/resolve",
            json!({"note": "walked off before we reached him", "outcome": "person_left"}),
            200,
        )
        .await;
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(fx.state_of(&id).await, "missing");
    let incidents = fx
        .get(Role::Custodian, &format!("/api/v1/carriers/{id}/incidents"))
        .await;
    assert_eq!(incidents[0]["cause"], "unauthorized_removal");
    assert_eq!(incidents[0]["alert_id"], 901);
}

#[tokio::test]
async fn loans_are_limited_per_level_at_request_and_at_issue_and_overdue_ones_escalate() {
    let fx = Fx::new().await;
    let li = fx.person().await;
    let s = fx.carrier("S-1", "S").await;
    let ts = fx.carrier("T-1", "TS").await;
    let before = fx.server.audit_count().await;
    for (carriers, due) in [
        (json!([s]), "9999-12-31T00:00:00Z".to_owned()),
        (json!([s]), fx.due_in_days(31)),
        (json!([ts]), fx.due_in_days(8)),
    ] {
        let reply = fx
            .call(
                Role::Custodian,
                Method::POST,
                "/api/v1/signouts",
                Some(json!({
                    "carrier_ids": carriers, "borrower": li, "purpose": "review",
                    "due_at": due, "may_leave": false
                })),
            )
            .await;
        assert_eq!(
            (reply.status, reply.error()),
            (422, "loan_too_long"),
            "{due}"
        );
    }
    assert_eq!(
        fx.server.audit_count().await,
        before,
        "refusals change nothing"
    );
    assert_eq!(fx.server.rows("signouts").await, 0);

    // A 30-day S loan, then the office shortens S loans to 10 days before it is issued.
    let long = fx.approved(&s, &li, 30).await;
    let short = fx.approved(&ts, &li, 1).await;
    // TS: a second officer.
    let so2 = fx
        .server
        .account(&fx.tokens[&Role::Admin], "so2", &[Role::SecurityOfficer])
        .await;
    let reply = fx
        .server
        .call(
            Method::POST,
            &format!("/api/v1/signouts/{short}/approve"),
            Some(&so2),
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let fx = Fx {
        server: fx.server.restart_with(|c| c.loans.max_days_s = 10).await,
        tokens: fx.tokens,
    };
    let reply = fx
        .call(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/signouts/{long}/issue"),
            None,
        )
        .await;
    assert_eq!((reply.status, reply.error()), (422, "loan_too_long"));
    assert_eq!(fx.state_of(&s).await, "in_storage", "nothing issued");
    fx.expect(
        Role::Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{short}/issue"),
        json!({}),
        200,
    )
    .await;

    // The TS loan is due in a day; 24 hours later it is missing (default escalation).
    fx.server.advance(86_400 + 23 * 3600);
    let mut fx = fx;
    for role in [Role::Custodian, Role::SecurityOfficer] {
        let token = fx.server.login(role.as_str(), common::PASSWORD).await;
        fx.tokens.insert(role, token);
    }
    custos_server::service::sweep::sweep(&fx.server.state)
        .await
        .unwrap();
    assert_eq!(fx.state_of(&ts).await, "out", "overdue, not yet missing");
    fx.server.advance(3600);
    // (The server's own sweep may get there first: either way it is missing now.)
    custos_server::service::sweep::sweep(&fx.server.state)
        .await
        .unwrap();
    assert_eq!(fx.state_of(&ts).await, "missing");
    let incidents = fx
        .get(
            Role::SecurityOfficer,
            &format!("/api/v1/carriers/{ts}/incidents"),
        )
        .await;
    assert_eq!(incidents[0]["cause"], "overdue");
    assert_eq!(incidents[0]["signout_id"], short.as_str());
    // Found: back on the (still overdue) loan, and not escalated again.
    let carrier = fx
        .expect(
            Role::Custodian,
            Method::POST,
            &format!("/api/v1/carriers/{ts}/found"),
            json!({"note": "the borrower was ill at home"}),
            200,
        )
        .await;
    assert_eq!(carrier["state"], "out");
    fx.server.advance(3 * 3600);
    custos_server::service::sweep::sweep(&fx.server.state)
        .await
        .unwrap();
    assert_eq!(fx.state_of(&ts).await, "out");
}
