//! The secrecy period (保密期限) of a carrier over HTTP: set at registration (or the level's
//! longest when not given), refused beyond the level's longest, corrected with a reason and
//! kept in the corrections' history, and never more than the law allows for the level.

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

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let reply = self.call(Role::Custodian, method.clone(), path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
        reply.body
    }

    fn registration(control_no: &str, level: &str, years: Option<u32>) -> Value {
        let mut body = json!({
            "control_no": control_no, "kind": "paper", "level": level,
            "title": format!("标题 {control_no}"), "copy_no": 1, "copies": 1,
            "owner_unit": "保密办", "tags": []
        });
        if let Some(years) = years {
            body["secrecy_years"] = json!(years);
        }
        body
    }

    async fn register(&self, control_no: &str, level: &str, years: Option<u32>) -> String {
        let body = Fx::registration(control_no, level, years);
        let created = self
            .expect(Method::POST, "/api/v1/carriers", Some(body), 201)
            .await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn secrecy_years(&self, id: &str) -> Value {
        self.expect(Method::GET, &format!("/api/v1/carriers/{id}"), None, 200)
            .await["secrecy_years"]
            .clone()
    }
}

#[tokio::test]
async fn a_carrier_has_its_own_secrecy_period_within_its_levels_longest() {
    common::tracing();
    let fx = Fx::new().await;

    // Marked 机密★10年 at registration; unmarked carriers have their level's longest.
    let marked = fx.register("S-1", "S", Some(10)).await;
    assert_eq!(fx.secrecy_years(&marked).await, 10);
    let unmarked_s = fx.register("S-2", "S", None).await;
    assert_eq!(fx.secrecy_years(&unmarked_s).await, 20);
    let unmarked_c = fx.register("C-1", "C", None).await;
    assert_eq!(fx.secrecy_years(&unmarked_c).await, 10);

    // Longer than the level allows (秘密 at most 10 years): refused, nothing written.
    let rows = fx.server.rows("carriers").await;
    let audit = fx.server.audit_count().await;
    let refused = fx
        .call(
            Role::Custodian,
            Method::POST,
            "/api/v1/carriers",
            Some(Fx::registration("C-2", "C", Some(11))),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error()),
        (422, "secrecy_period_out_of_range")
    );
    assert_eq!(fx.server.rows("carriers").await, rows);
    assert_eq!(fx.server.audit_count().await, audit);

    // Corrected with a reason: the history keeps before and after.
    let path = format!("/api/v1/carriers/{marked}");
    let after = fx
        .expect(
            Method::PATCH,
            &path,
            Some(json!({"reason": "the originator set five years", "secrecy_years": 5})),
            200,
        )
        .await;
    assert_eq!(after["secrecy_years"], 5);
    let history = fx
        .expect(Method::GET, &format!("{path}/corrections"), None, 200)
        .await;
    assert_eq!(history[0]["before"]["secrecy_years"], 10);
    assert_eq!(history[0]["after"]["secrecy_years"], 5);
    assert_eq!(history[0]["reason"], "the originator set five years");

    // A correction beyond the level's longest, or to the same period, changes nothing.
    for (years, code) in [
        (21, "secrecy_period_out_of_range"),
        (5, "nothing_to_change"),
    ] {
        let reply = fx
            .call(
                Role::Custodian,
                Method::PATCH,
                &path,
                Some(json!({"reason": "r", "secrecy_years": years})),
            )
            .await;
        assert_eq!((reply.status, reply.error()), (422, code), "{years}");
    }
    assert_eq!(fx.secrecy_years(&marked).await, 5);

    // Correcting another field keeps an unmarked carrier following its level's default.
    fx.expect(
        Method::PATCH,
        &format!("/api/v1/carriers/{unmarked_s}"),
        Some(json!({"reason": "unit renamed", "owner_unit": "保密委员会办公室"})),
        200,
    )
    .await;
    let id: i64 = unmarked_s.parse().unwrap();
    let stored: Option<i64> = fx
        .server
        .state
        .store()
        .read(move |c| {
            Ok(c.query_row(
                "SELECT secrecy_years FROM carriers WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(stored, None, "still unmarked: follows its level");

    // Only custodians correct the register.
    let guard = fx
        .call(
            Role::Guard,
            Method::PATCH,
            &path,
            Some(json!({"reason": "r", "secrecy_years": 3})),
        )
        .await;
    assert_eq!(guard.status, 403);
}
