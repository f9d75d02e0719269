//! A departure in a real browser (#12): the security officer starts it on the person's page,
//! sees the carrier still held, is refused the clearance (清退) while it is out, and once it is
//! back certifies the clearance and approves the departure, which shows the end of the
//! decommissioning period (脱密期). Headless Chromium over WebDriver, as in `browser.rs`.

#[allow(dead_code)] // the parts of the scene a departure needs
#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "browser/webdriver.rs"]
mod webdriver;

use hyper::Method;
use scene::Scene;
use support::*;
use webdriver::Session;

/// Click the element `css` finds.
async fn click(session: &Session, css: &str) -> webdriver::WdResult<()> {
    let e = wait_css(session, css).await?;
    session.click(&e).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departure_from_start_to_clearance() {
    browser_test_at_widths(
        "people_departure",
        async |scene: &Scene, session: &Session, _width: u32| {
            // Lin (core) holds a carrier.
            let carrier = scene.carrier("2024-0077", 77).await;
            let signout = scene.approved_sign_out(&carrier).await;
            let issued = scene
                .call(
                    Method::POST,
                    &format!("/api/v1/signouts/{signout}/issue"),
                    &scene.custodian,
                    None,
                )
                .await;
            assert_eq!(issued.status, 200, "{:?}", issued.body);
            let person = scene.borrower.clone();

            sign_in(scene, session, "officer1").await?;
            wait_css(session, "#current-user").await?;
            visit(session, scene, &format!("/people/{person}")).await?;
            wait_css(session, r#"#person-heading[data-status="active"]"#).await?;

            // Start leaving: the carrier still held is listed, with its sign-out.
            click(session, "button#leave").await?;
            wait_css(session, r#"#person-heading[data-status="leaving"]"#).await?;
            wait_css(session, r#"#people-message[data-code="leaving"]"#).await?;
            let held = format!(r#"#holding-list li.held[data-carrier-id="{carrier}"]"#);
            let row = text_of(session, &held).await?;
            assert!(row.contains("2024-0077"), "held: {row:?}");
            assert!(
                !page_shows(session, "Reactor drawings").await?,
                "no carrier title on the person's page"
            );
            moment(session, "people_departure", "holding").await;

            // The clearance is refused while the carrier is out.
            click(session, "button#clearance").await?;
            wait_css(
                session,
                r#"#people-message[data-code="carriers_outstanding"]"#,
            )
            .await?;
            assert_eq!(text_of(session, "#people-message .count").await?, "1");
            wait_css(session, &held).await?;

            // The carrier comes back at the desk.
            let returned = scene
                .call(
                    Method::POST,
                    &format!("/api/v1/signouts/{signout}/return"),
                    &scene.custodian,
                    None,
                )
                .await;
            assert_eq!(returned.status, 200, "{:?}", returned.body);
            visit(session, scene, &format!("/people/{person}")).await?;
            wait_css(session, "#holding-empty").await?;

            // Clearance, then the departure with the category's period (core: 36 months).
            click(session, "button#clearance").await?;
            wait_css(session, r#"#people-message[data-code="cleared"]"#).await?;
            wait_css(session, r#".fact[data-field="cleared_at"]"#).await?;
            click(session, "button#depart").await?;
            wait_css(session, r#"#person-heading[data-status="departed"]"#).await?;
            wait_css(session, r#"#people-message[data-code="departed"]"#).await?;
            let ends = text_of(
                session,
                r#".fact[data-field="decommissioning_ends_on"] .date"#,
            )
            .await?;
            let expected = scene.state.now().date().add_months(36).unwrap().to_string();
            assert_eq!(ends, expected, "脱密期 end date");
            moment(session, "people_departure", "departed").await;

            // The register lists them as departed, with the end date.
            visit(session, scene, "/people").await?;
            let row = format!(
                r#"#people-table tr.person[data-person-id="{person}"][data-status="departed"]"#
            );
            wait_css(session, &row).await?;
            let cell = text_of(session, &format!("{row} td.decommissioning")).await?;
            assert_eq!(cell, expected);

            // Travel abroad: Lin, departed, asks to travel within the 脱密期 (marked so, two
            // approvals pending for core staff); Zhao (important) is approved and abroad now.
            let today = scene.state.now().date();
            let zhao = scene
                .call(
                    Method::POST,
                    "/api/v1/people",
                    &scene.officers[0],
                    Some(serde_json::json!({
                        "name": "Zhao", "department": "R&D", "category": "important",
                        "training_valid_until": today.add_years(5).unwrap().to_string(),
                        "commitment_signed_on": "2020-01-01"
                    })),
                )
                .await;
            assert_eq!(zhao.status, 201, "{:?}", zhao.body);
            let zhao = zhao.body["id"].as_str().unwrap().to_owned();
            let mut trips = Vec::new();
            for (who, destination) in [(&person, "Geneva"), (&zhao, "Singapore")] {
                let filed = scene
                    .call(
                        Method::POST,
                        "/api/v1/travel",
                        &scene.officers[0],
                        Some(serde_json::json!({
                            "person_id": who, "destination": destination,
                            "from": today.to_string(),
                            "until": today.plus_days(7).to_string(),
                            "purpose": "conference"
                        })),
                    )
                    .await;
                assert_eq!(filed.status, 201, "{:?}", filed.body);
                trips.push(filed.body["id"].as_str().unwrap().to_owned());
            }
            let approved = scene
                .call(
                    Method::POST,
                    &format!("/api/v1/travel/{}/approve", trips[1]),
                    &scene.officers[1],
                    None,
                )
                .await;
            assert_eq!(approved.status, 200, "{:?}", approved.body);
            session
                .goto(&scene.url(&format!("/people/{person}")))
                .await?;
            let lin_trip = format!(
                r#"#person-travel-list tr.trip[data-request-id="{}"][data-state="requested"][data-during-decommissioning="true"]"#,
                trips[0]
            );
            wait_css(session, &lin_trip).await?;
            let row = text_of(session, &lin_trip).await?;
            assert!(row.contains("Geneva"), "{row:?}");
            session.goto(&scene.url("/travel")).await?;
            let abroad = format!(
                r#"#travel-register tr.trip[data-person-id="{zhao}"][data-phase="abroad"][data-state="approved"]"#
            );
            wait_css(session, &abroad).await?;
            let row = text_of(session, &abroad).await?;
            assert!(row.contains("Zhao") && row.contains("Singapore"), "{row:?}");
            assert!(
                !page_shows(session, "Geneva").await?,
                "only approved travel is on the register"
            );
            moment(session, "people_departure", "travel").await;
            Ok(())
        },
    )
    .await;
}
