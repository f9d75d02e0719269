//! The printable report pages against the real server, driven like a browser without script:
//! who may open them, what they show (unit, title, rows, signature lines, the print
//! stylesheet) and that titles appear only on the register. The PDF itself is checked in
//! `tests/tests/browser_reports.rs` with headless Chromium.

mod common;

use common::browser::Browser;
use common::{ADMIN_PASSWORD, PASSWORD, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::json;

const TITLE: &str = "XYZZY 绝密 report title";

#[tokio::test]
async fn reports_open_for_custodians_and_officers_only_and_carry_the_print_layout() {
    let server = Server::start_with(|c| c.report_unit = "某研究所保密办公室".to_owned()).await;
    let tokens = server.tokens_per_role().await;
    let reply = server
        .call(
            Method::POST,
            "/api/v1/carriers",
            Some(&tokens[&Role::Custodian]),
            Some(
                json!({"control_no": "S-2026-0001", "kind": "paper", "level": "S",
                        "title": TITLE, "owner_unit": "一处", "tags": []}),
            ),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let paths = [
        "/reports",
        "/reports/register",
        "/reports/overdue",
        "/reports/missing",
    ];
    for role in Role::ALL {
        let mut b = Browser::new(&server);
        let password = if role == Role::Admin {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        };
        assert_eq!(b.sign_in(role.as_str(), password).await.status, 303);
        let allowed = matches!(role, Role::Custodian | Role::SecurityOfficer);
        for path in paths {
            let answer = b.get(path).await;
            if !allowed {
                assert_eq!(answer.status, 403, "{path} as {role}");
                continue;
            }
            assert_eq!(answer.status, 200, "{path} as {role}: {}", answer.body);
            if path == "/reports" {
                assert!(answer.body.contains(r#"id="report-list""#));
                assert!(answer.body.contains(r#"data-export="carriers""#));
                continue;
            }
            let body = &answer.body;
            assert!(body.contains("/static/report.css?v="), "{path}");
            assert!(body.contains("某研究所保密办公室"), "{path}: the unit");
            assert!(body.contains(r#"id="report-made-at""#), "{path}");
            assert_eq!(body.matches(r#"class="signature""#).count(), 3, "{path}");
            assert!(!body.contains("mainnav"), "{path}: no navigation on paper");
            assert_eq!(
                body.contains(TITLE),
                path == "/reports/register",
                "{path}: titles"
            );
        }
    }
    // The CSV links of the report list open with the page session (a cookie).
    let mut officer = Browser::new(&server);
    assert_eq!(
        officer.sign_in("security_officer", PASSWORD).await.status,
        303
    );
    let csv = officer.get("/api/v1/export/carriers.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with('\u{feff}') && csv.body.contains(TITLE));
    let mut anonymous = Browser::new(&server);
    let css = anonymous.get("/static/report.css").await;
    assert_eq!(css.status, 200);
    assert!(css.body.contains("size: A4") && css.body.contains("counter(pages)"));
    server.stop().await.unwrap();
}

/// The reports of single records: a custodian or an officer opens a stocktake's report (no
/// title, the record's facts, its closer's named line), an unknown record is a 404 page, and
/// every other role is refused.
#[tokio::test]
async fn record_reports_open_for_custodians_and_officers_and_show_no_title() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let custodian = &tokens[&Role::Custodian];
    let post = async |path: &str, body: serde_json::Value, status: u16| {
        let reply = server
            .call(Method::POST, path, Some(custodian), Some(body))
            .await;
        assert_eq!(reply.status, status, "{path}: {:?}", reply.body);
        reply.body
    };
    let person = server
        .call(
            Method::POST,
            "/api/v1/people",
            Some(&tokens[&Role::SecurityOfficer]),
            Some(json!({"name": "林", "department": "研发部", "category": "core"})),
        )
        .await;
    assert_eq!(person.status, 201, "{:?}", person.body);
    post(
        "/api/v1/carriers",
        json!({"control_no": "S-2026-0002", "kind": "paper", "level": "S",
               "title": TITLE, "owner_unit": "一处", "tags": []}),
        201,
    )
    .await;
    let stocktake = post(
        "/api/v1/stocktakes",
        json!({"scope": {"custodian_id": person.body["id"]}}),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &format!("/api/v1/stocktakes/{stocktake}/close"),
        json!(null),
        200,
    )
    .await;
    let report = format!("/reports/stocktakes/{stocktake}");
    for role in Role::ALL {
        let mut b = Browser::new(&server);
        let password = if role == Role::Admin {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        };
        assert_eq!(b.sign_in(role.as_str(), password).await.status, 303);
        let allowed = matches!(role, Role::Custodian | Role::SecurityOfficer);
        if allowed {
            // An officer has no stocktake page: the report list links the record's report.
            let list = b.get("/reports").await;
            assert!(
                list.body.contains(&format!(
                    r#"data-report="stocktake" data-id="{stocktake}" href="{report}""#
                )),
                "{role}: {}",
                list.body
            );
        }
        for path in [
            report.as_str(),
            "/reports/destructions/1",
            "/reports/collections/1",
        ] {
            let answer = b.get(path).await;
            if !allowed {
                assert_eq!(answer.status, 403, "{path} as {role}");
            } else if path == report {
                assert_eq!(answer.status, 200, "{path} as {role}: {}", answer.body);
                let body = &answer.body;
                assert!(body.contains(r#"data-report="stocktake""#));
                assert!(body.contains(r#"id="report-facts""#));
                assert!(
                    body.contains(r#"id="report-closed-by">custodian<"#),
                    "{body}"
                );
                assert!(body.contains(r#"class="signer">custodian<"#), "{body}");
                assert!(!body.contains(TITLE), "no title on a stocktake");
            } else {
                assert_eq!(answer.status, 404, "{path} as {role}: nothing recorded");
            }
        }
    }
    server.stop().await.unwrap();
}
