//! The register of people over HTTP (#12): edits with their history, the departure sequence
//! (leave → return → clearance 清退 → departure with its 脱密期), reminders, duties kept apart
//! per person, and no issue to oneself. Each endpoint's success and refusals.

mod common;

use std::collections::HashMap;

use common::{Reply, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::{Value, json};

use Role::{Admin, Custodian, SecurityOfficer};

struct Fx {
    server: Server,
    tokens: HashMap<Role, String>,
}

impl Fx {
    async fn new() -> Fx {
        Fx::with(Server::start().await).await
    }

    async fn with(server: Server) -> Fx {
        let tokens = server.tokens_per_role().await;
        Fx { server, tokens }
    }

    async fn call(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.server
            .call(method, path, Some(&self.tokens[&role]), body)
            .await
    }

    async fn ok(&self, role: Role, method: Method, path: &str, body: Option<Value>) -> Value {
        let reply = self.call(role, method.clone(), path, body).await;
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {:?}",
            reply.status,
            reply.body
        );
        reply.body
    }

    async fn refused(
        &self,
        role: Role,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let reply = self.call(role, method, path, body).await;
        (reply.status, reply.error().to_owned())
    }

    async fn person(&self, name: &str, category: &str, training: &str) -> String {
        let body = json!({"name": name, "department": "R&D", "category": category,
            "training_valid_until": training, "commitment_signed_on": "2020-01-01"});
        let reply = self
            .ok(SecurityOfficer, Method::POST, "/api/v1/people", Some(body))
            .await;
        reply["id"].as_str().unwrap().to_owned()
    }

    /// A carrier signed out to `borrower` and issued; (carrier id, sign-out id).
    async fn issued(&self, control_no: &str, borrower: &str) -> (String, String) {
        let carrier = self
            .ok(
                Custodian,
                Method::POST,
                "/api/v1/carriers",
                Some(
                    json!({"control_no": control_no, "kind": "paper", "level": "C",
                    "title": "t", "owner_unit": "U", "tags": []}),
                ),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let due = self.server.now().plus_secs(86_400).to_string();
        let signout = self
            .ok(
                Custodian,
                Method::POST,
                "/api/v1/signouts",
                Some(
                    json!({"carrier_ids": [carrier], "borrower": borrower, "purpose": "p",
                    "due_at": due, "may_leave": false}),
                ),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/api/v1/signouts/{signout}");
        self.ok(
            SecurityOfficer,
            Method::POST,
            &format!("{path}/approve"),
            None,
        )
        .await;
        self.ok(Custodian, Method::POST, &format!("{path}/issue"), None)
            .await;
        (carrier, signout)
    }
}

#[tokio::test]
async fn an_edit_renews_training_and_keeps_the_history() {
    let fx = Fx::new().await;
    let id = fx.person("王强", "important", "2000-01-01").await;
    let other = fx.person("李四", "general", "2099-01-01").await;
    let path = format!("/api/v1/people/{id}");
    let edited = fx
        .ok(
            SecurityOfficer,
            Method::PATCH,
            &path,
            Some(
                json!({"reason": "复训合格", "training_valid_until": "2031-05-31",
                "badge_tag": "BADGE-9", "vetted_on": "2025-01-02", "vetting_outcome": "合格"}),
            ),
        )
        .await;
    assert_eq!(edited["training_valid_until"], "2031-05-31");
    assert_eq!(edited["badge_tag"], "BADGE-9");
    assert_eq!(edited["vetting_outcome"], "合格");
    let file = fx
        .ok(SecurityOfficer, Method::GET, &format!("{path}/file"), None)
        .await;
    let history = file["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["reason"], "复训合格");
    assert_eq!(history[0]["before"]["training_valid_until"], "2000-01-01");
    assert_eq!(history[0]["after"]["training_valid_until"], "2031-05-31");

    let cases = [
        (
            SecurityOfficer,
            path.clone(),
            json!({"reason": ""}),
            400,
            "bad_request",
        ),
        (
            SecurityOfficer,
            path.clone(),
            json!({"reason": "x", "colour": "red"}),
            400,
            "bad_request",
        ),
        (
            SecurityOfficer,
            path.clone(),
            json!({"reason": "x", "clearance": "TS"}),
            400,
            "bad_request",
        ),
        (
            SecurityOfficer,
            format!("/api/v1/people/{other}"),
            json!({"reason": "x", "badge_tag": "BADGE-9"}),
            409,
            "conflict",
        ),
        (
            SecurityOfficer,
            "/api/v1/people/999".into(),
            json!({"reason": "x"}),
            404,
            "not_found",
        ),
        (
            Custodian,
            path.clone(),
            json!({"reason": "x", "name": "Z"}),
            403,
            "forbidden",
        ),
    ];
    for (role, p, body, status, code) in cases {
        assert_eq!(
            fx.refused(role, Method::PATCH, &p, Some(body.clone()))
                .await,
            (status, code.to_owned()),
            "{p} {body}"
        );
    }
    let file = fx
        .ok(SecurityOfficer, Method::GET, &format!("{path}/file"), None)
        .await;
    assert_eq!(
        file["history"].as_array().unwrap().len(),
        1,
        "refusals change nothing"
    );
    assert_eq!(
        fx.refused(Custodian, Method::GET, &format!("{path}/file"), None)
            .await,
        (403, "forbidden".to_owned())
    );
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_departure_runs_leave_return_clearance_depart() {
    let fx = Fx::new().await;
    let id = fx.person("周敏", "general", "2099-01-01").await;
    let (carrier, signout) = fx.issued("DEP-1", &id).await;
    let path = format!("/api/v1/people/{id}");
    let so = SecurityOfficer;
    assert_eq!(
        fx.refused(so, Method::POST, &format!("{path}/clearance"), None)
            .await,
        (409, "not_leaving".to_owned())
    );
    assert_eq!(
        fx.refused(so, Method::POST, &format!("{path}/depart"), None)
            .await,
        (409, "not_leaving".to_owned())
    );
    fx.ok(so, Method::POST, &format!("{path}/leave"), None)
        .await;
    let file = fx.ok(so, Method::GET, &format!("{path}/file"), None).await;
    let holding = file["holding"].as_array().unwrap();
    assert_eq!(holding.len(), 1);
    assert_eq!(holding[0]["id"], json!(carrier));
    assert_eq!(holding[0]["signout_id"], json!(signout));
    assert!(holding[0].get("title").is_none(), "no titles");
    assert_eq!(
        fx.refused(so, Method::POST, &format!("{path}/clearance"), None)
            .await,
        (409, "carriers_outstanding".to_owned())
    );
    fx.ok(
        Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{signout}/return"),
        None,
    )
    .await;
    assert_eq!(
        fx.refused(so, Method::POST, &format!("{path}/depart"), None)
            .await,
        (409, "not_cleared".to_owned())
    );
    let cleared = fx
        .ok(so, Method::POST, &format!("{path}/clearance"), None)
        .await;
    assert!(cleared["cleared_at"].is_string());
    assert_eq!(
        fx.refused(so, Method::POST, &format!("{path}/clearance"), None)
            .await,
        (409, "already_cleared".to_owned())
    );
    let depart = format!("{path}/depart");
    for (body, status, code) in [
        (json!({"months": 6}), 422, "period_too_short"),
        (json!({"months": 30, "lifelong": true}), 400, "bad_request"),
        (json!({"years": 2}), 400, "bad_request"),
    ] {
        assert_eq!(
            fx.refused(so, Method::POST, &depart, Some(body.clone()))
                .await,
            (status, code.to_owned()),
            "{body}"
        );
    }
    assert_eq!(
        fx.refused(Custodian, Method::POST, &depart, None).await,
        (403, "forbidden".to_owned())
    );
    let gone = fx
        .ok(so, Method::POST, &depart, Some(json!({"months": 30})))
        .await;
    assert_eq!(gone["status"], "departed");
    assert_eq!(gone["decommissioning_months"], 30);
    let ends = fx.server.now().date().add_months(30).unwrap().to_string();
    assert_eq!(gone["decommissioning_ends_on"], ends);
    assert_eq!(
        fx.refused(so, Method::POST, &depart, None).await,
        (409, "already_departed".to_owned())
    );
    assert_eq!(
        fx.refused(
            so,
            Method::PATCH,
            &path,
            Some(json!({"reason": "x", "name": "Y"}))
        )
        .await,
        (409, "already_departed".to_owned())
    );

    // A lifelong period has no end date; the default is the category's shortest.
    let other = fx.person("终身", "core", "2099-01-01").await;
    let p = format!("/api/v1/people/{other}");
    fx.ok(so, Method::POST, &format!("{p}/leave"), None).await;
    fx.ok(so, Method::POST, &format!("{p}/clearance"), None)
        .await;
    let lifelong = fx
        .ok(
            so,
            Method::POST,
            &format!("{p}/depart"),
            Some(json!({"lifelong": true})),
        )
        .await;
    assert_eq!(lifelong["decommissioning_lifelong"], true);
    assert!(lifelong["decommissioning_ends_on"].is_null());
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn reminders_name_expiring_training_within_the_window() {
    let fx = Fx::new().await;
    let soon = fx.server.now().date().plus_days(10).to_string();
    let later = fx.server.now().date().plus_days(90).to_string();
    let due = fx.person("快到期", "general", &soon).await;
    fx.person("不急", "general", &later).await;
    let list = fx
        .ok(
            SecurityOfficer,
            Method::GET,
            "/api/v1/people/reminders",
            None,
        )
        .await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["person_id"], json!(due));
    assert_eq!(list[0]["kind"], "training_expiring");
    assert_eq!(list[0]["days_left"], 10);
    assert_eq!(
        fx.refused(Custodian, Method::GET, "/api/v1/people/reminders", None)
            .await,
        (403, "forbidden".to_owned())
    );
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn privileged_accounts_belong_to_one_person_each() {
    let server = Server::start_with(|c| c.people.privileged_accounts_need_person = true).await;
    let admin = server.login("admin", common::ADMIN_PASSWORD).await;
    let create = |body: Value| {
        let (server, admin) = (&server, admin.clone());
        async move {
            server
                .call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
                .await
        }
    };
    let pw = common::INITIAL_PASSWORD;
    let unlinked =
        create(json!({"username": "so1", "password": pw, "roles": ["security_officer"]})).await;
    assert_eq!(
        (unlinked.status, unlinked.error()),
        (422, "person_required")
    );
    let linked = create(
        json!({"username": "so1", "password": pw, "roles": ["security_officer"],
        "new_person": {"name": "保密员甲", "department": "保密办", "category": "core"}}),
    )
    .await;
    assert_eq!(linked.status, 201, "{:?}", linked.body);
    let so = server.activate("so1").await;
    let people = server
        .call(Method::GET, "/api/v1/people", Some(&so), None)
        .await;
    let person = people.body[0]["id"].clone();
    let second = create(
        json!({"username": "aud1", "password": pw, "roles": ["auditor"],
        "person_id": person}),
    )
    .await;
    assert_eq!(
        (second.status, second.error()),
        (422, "person_roles_exclusive")
    );
    let both = create(
        json!({"username": "x1", "password": pw, "roles": ["custodian"],
        "person_id": person, "new_person": {"name": "n", "department": "d", "category": "core"}}),
    )
    .await;
    assert_eq!(both.status, 400);
    let custodian = create(
        json!({"username": "cust1", "password": pw, "roles": ["custodian"],
        "person_id": person}),
    )
    .await;
    assert_eq!(custodian.status, 201, "{:?}", custodian.body);
    let guard = create(json!({"username": "guard1", "password": pw, "roles": ["guard"]})).await;
    assert_eq!(guard.status, 201, "non-privileged accounts need no person");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_custodian_cannot_issue_to_themselves() {
    let fx = Fx::new().await;
    let me = fx.person("自己", "general", "2099-01-01").await;
    let admin = &fx.tokens[&Admin];
    let reply = fx
        .server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(admin),
            Some(
                json!({"username": "selfcust", "password": common::INITIAL_PASSWORD,
                "roles": ["custodian"], "person_id": me}),
            ),
        )
        .await;
    assert_eq!(reply.status, 201);
    let token = fx.server.activate("selfcust").await;
    let carrier = fx
        .ok(
            Custodian,
            Method::POST,
            "/api/v1/carriers",
            Some(
                json!({"control_no": "SELF-1", "kind": "paper", "level": "C",
                "title": "t", "owner_unit": "U", "tags": []}),
            ),
        )
        .await["id"]
        .clone();
    let due = fx.server.now().plus_secs(86_400).to_string();
    let signout = fx
        .ok(
            Custodian,
            Method::POST,
            "/api/v1/signouts",
            Some(
                json!({"carrier_ids": [carrier], "borrower": me, "purpose": "p",
                "due_at": due, "may_leave": false}),
            ),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fx.ok(
        SecurityOfficer,
        Method::POST,
        &format!("/api/v1/signouts/{signout}/approve"),
        None,
    )
    .await;
    let refused = fx
        .server
        .call(
            Method::POST,
            &format!("/api/v1/signouts/{signout}/issue"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((refused.status, refused.error()), (422, "self_issue"));
    // Another custodian may.
    fx.ok(
        Custodian,
        Method::POST,
        &format!("/api/v1/signouts/{signout}/issue"),
        None,
    )
    .await;
    fx.server.stop().await.unwrap();
}

#[tokio::test]
async fn travel_abroad_goes_through_the_approval_model() {
    let fx = Fx::new().await;
    let admin = &fx.tokens[&Admin];
    for name in ["so2", "so3"] {
        fx.server.account(admin, name, &[SecurityOfficer]).await;
    }
    let so2 = fx.server.login("so2", common::PASSWORD).await;
    let so3 = fx.server.login("so3", common::PASSWORD).await;
    let as_ = |token: &str, path: &str, body: Option<Value>| {
        let (server, token, path) = (&fx.server, token.to_owned(), path.to_owned());
        async move { server.call(Method::POST, &path, Some(&token), body).await }
    };
    let general = fx.person("出差甲", "general", "2099-01-01").await;
    let core = fx.person("出差乙", "core", "2099-01-01").await;
    let today = fx.server.now().date();
    let trip = |person: &str, from: i64, until: i64| {
        json!({"person_id": person, "destination": "Geneva", "purpose": "conference",
            "from": today.plus_days(from).to_string(), "until": today.plus_days(until).to_string()})
    };
    let so = SecurityOfficer;
    let filed = fx
        .ok(
            so,
            Method::POST,
            "/api/v1/travel",
            Some(trip(&general, 10, 20)),
        )
        .await;
    assert_eq!(
        (
            &filed["state"],
            &filed["approvals_needed"],
            &filed["during_decommissioning"]
        ),
        (&json!("requested"), &json!(1), &json!(false))
    );
    let id = filed["id"].as_str().unwrap().to_owned();
    assert_eq!(
        fx.refused(
            so,
            Method::POST,
            &format!("/api/v1/travel/{id}/approve"),
            None
        )
        .await,
        (422, "self_approval".to_owned())
    );
    let approved = as_(&so2, &format!("/api/v1/travel/{id}/approve"), None).await;
    assert_eq!(approved.body["state"], "approved", "{:?}", approved.body);

    // Core personnel: two different officers.
    let filed = fx
        .ok(so, Method::POST, "/api/v1/travel", Some(trip(&core, 1, 2)))
        .await;
    assert_eq!(filed["approvals_needed"], 2);
    let id = filed["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/travel/{id}/approve");
    let first = as_(&so2, &approve, None).await;
    assert_eq!(first.body["state"], "requested", "{:?}", first.body);
    let again = as_(&so2, &approve, None).await;
    assert_eq!((again.status, again.error()), (409, "already_approved"));
    let second = as_(&so3, &approve, None).await;
    assert_eq!(second.body["state"], "approved", "{:?}", second.body);

    // A departed person in their decommissioning period: the trip is marked.
    let leaver = fx.person("出差丙", "general", "2099-01-01").await;
    for step in ["leave", "clearance", "depart"] {
        fx.ok(
            so,
            Method::POST,
            &format!("/api/v1/people/{leaver}/{step}"),
            None,
        )
        .await;
    }
    let marked = fx
        .ok(
            so,
            Method::POST,
            "/api/v1/travel",
            Some(trip(&leaver, 30, 40)),
        )
        .await;
    assert_eq!(marked["during_decommissioning"], true);
    let id = marked["id"].as_str().unwrap().to_owned();
    let no_reason = as_(
        &so2,
        &format!("/api/v1/travel/{id}/reject"),
        Some(json!({"reason": ""})),
    )
    .await;
    assert_eq!(no_reason.status, 400);
    let rejected = as_(
        &so2,
        &format!("/api/v1/travel/{id}/reject"),
        Some(json!({"reason": "脱密期内不予批准"})),
    )
    .await;
    assert_eq!(rejected.body["state"], "rejected", "{:?}", rejected.body);
    // After the period the person is no longer restricted.
    let after = fx
        .refused(
            so,
            Method::POST,
            "/api/v1/travel",
            Some(trip(&leaver, 400, 410)),
        )
        .await;
    assert_eq!(after, (422, "not_restricted".to_owned()));

    let mut bad_dest = trip(&general, 1, 2);
    bad_dest["destination"] = json!("");
    for (role, body, status, code) in [
        (so, trip(&general, 5, 4), 422, "ends_before_start"),
        (so, trip("999", 1, 2), 422, "unknown_reference"),
        (so, bad_dest, 400, "bad_request"),
        (Custodian, trip(&general, 1, 2), 403, "forbidden"),
    ] {
        assert_eq!(
            fx.refused(role, Method::POST, "/api/v1/travel", Some(body.clone()))
                .await,
            (status, code.to_owned()),
            "{body}"
        );
    }
    let listed = fx.ok(so, Method::GET, "/api/v1/travel", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let approved = fx
        .ok(so, Method::GET, "/api/v1/travel?state=approved", None)
        .await;
    assert_eq!(approved.as_array().unwrap().len(), 2);
    assert_eq!(
        fx.refused(so, Method::POST, "/api/v1/travel/999/approve", None)
            .await,
        (404, "not_found".to_owned())
    );
    fx.server.stop().await.unwrap();
}
