//! The pages in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `.ci/run`) driven over W3C WebDriver, against a server started in this
//! process on 127.0.0.1:0 and seeded through its API.
//!
//! - A guard signs in, a gate posts a signed batch with a carrier leaving without a sign-out,
//!   the unauthorised-removal banner appears on the open console without a reload, and the
//!   guard acknowledges it.
//! - A custodian signs in, types a carrier's printed label into the scan desk and presses
//!   Enter, and issues the approved sign-out.
//!
//! Every flow runs at a desk monitor's 1400 px and a tablet's 800 px
//! (`support::browser_test_at_widths`, a fresh site and browser per width), and every page a
//! flow opens (`support::visit`, `support::wait_path`) or ends on must fit the window: nothing
//! wider than it (`support::fits_width`).
//!
//! Elements are found by the stable ids and classes listed in `server/src/web/mod.rs`. Every
//! wait polls with a deadline. When a test fails, a PNG of the page it was on is written to
//! `target/browser-screenshots/<test>.png`, the driver's log beside it, and the path printed.
//! Without Chromium the tests fail and say what to install. `CUSTOS_BROWSER_SCREENSHOTS=1`
//! also keeps a screenshot of each key moment of a passing run (`<test>-<moment>.png`).

#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[allow(dead_code)] // the driver serves every browser test file; this one uses a part
#[path = "browser/webdriver.rs"]
mod webdriver;

use hyper::Method;
use scene::{GATE, Scene, label};
use support::*;
use webdriver::{ENTER, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_sees_an_unauthorised_removal_live_and_acknowledges_it() {
    browser_test_at_widths("guard_console", async |scene: &Scene, session: &Session, _width: u32| {
        let carrier = scene.carrier("2024-0017", 17).await;
        sign_in(scene, session, "guard").await?;
        wait_path(session, scene, "/guard").await?;
        let user = text_of(session, "#current-user").await?;
        assert!(user.contains("guard"), "signed in as {user:?}");
        // The console is connected to the alert stream before anything happens.
        wait_css(session, r#"#live-status[data-live="on"]"#).await?;
        assert!(
            session
                .find_all("#banners > .alert-banner")
                .await?
                .is_empty(),
            "no banner before the passage"
        );

        // A carrier leaves through the gate without a sign-out: the gate's signed batch.
        let alert = scene.walk_out_with(17).await;
        let banner = format!(
            r#"#banners > .alert-banner[data-kind="unauthorized_removal"][data-alert-id="{alert}"]"#
        );
        let shown = wait_css(session, &banner).await?;
        assert_eq!(
            session.attr(&shown, "data-state").await?.as_deref(),
            Some("open")
        );
        assert_eq!(
            text_of(session, &format!("{banner} .carrier-no")).await?,
            "2024-0017"
        );
        let level = session.find(&format!("{banner} .level")).await?;
        assert_eq!(
            session.attr(&level, "data-level").await?.as_deref(),
            Some("TS")
        );
        let gate = text_of(session, &format!(r#"{banner} .fact[data-field="gate"]"#)).await?;
        assert!(gate.contains(GATE), "gate fact {gate:?}");
        let holder = text_of(
            session,
            &format!(r#"{banner} .fact[data-field="badge_holder"]"#),
        )
        .await?;
        assert!(holder.contains("Bob"), "badge holder fact {holder:?}");
        assert!(
            !page_shows(session, "Reactor drawings").await?,
            "the guard console never shows a carrier title"
        );
        moment(session, "guard_console", "banner").await;

        // Acknowledge on the console.
        let ack = session
            .find(&format!(r#"button.ack[data-alert-id="{alert}"]"#))
            .await?;
        session.click(&ack).await?;
        wait_css(session, &format!(r#"{banner}[data-state="acknowledged"]"#)).await?;
        wait_gone(session, &format!(r#"button.ack[data-alert-id="{alert}"]"#)).await?;
        let reply = scene
            .call(
                Method::GET,
                &format!("/api/v1/alerts/{alert}"),
                &scene.guard,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["state"], "acknowledged", "{:?}", reply.body);
        assert_eq!(reply.body["kind"], "unauthorized_removal");
        assert_eq!(reply.body["carrier_id"], carrier.as_str());
        assert_eq!(reply.body["person_id"], scene.walker.as_str());
        assert!(
            reply.body["acknowledged_at"].is_string(),
            "acknowledged_at set: {:?}",
            reply.body
        );
        moment(session, "guard_console", "acknowledged").await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custodian_signs_a_carrier_out_by_typing_its_label() {
    browser_test_at_widths(
        "scan_desk",
        async |scene: &Scene, session: &Session, _width: u32| {
            let carrier = scene.carrier("2024-0042", 42).await;
            let signout = scene.approved_sign_out(&carrier).await;
            sign_in(scene, session, "custodian").await?;
            wait_path(session, scene, "/desk").await?;

            // The scan field has the focus, as a keyboard-wedge scanner needs.
            let input = wait_css(session, "#scan-input").await?;
            let focused = session
                .execute(
                    "return document.activeElement ? document.activeElement.id : null;",
                    vec![],
                )
                .await?;
            assert_eq!(focused, "scan-input", "the scan field has the focus");
            session
                .send_keys(&input, &format!("{}{ENTER}", label("2024-0042")))
                .await?;

            let result = format!(r#"#scan-result[data-found="true"][data-carrier-id="{carrier}"]"#);
            wait_css(session, &result).await?;
            let borrower = text_of(session, "#scan-result .signout-box .borrower").await?;
            assert!(borrower.contains('林'), "borrower {borrower:?}");
            assert!(
                !page_shows(session, "Reactor drawings").await?,
                "the desk never shows a carrier title"
            );
            let issue = session
                .find(&format!(r#"button#issue[data-signout-id="{signout}"]"#))
                .await?;
            moment(session, "scan_desk", "found").await;
            session.click(&issue).await?;

            wait_css(session, r#"#desk-message[data-kind="issued"]"#).await?;
            wait_css(session, &format!(r#"{result}[data-state="out"]"#)).await?;
            session
                .find(&format!(r#"button#return[data-signout-id="{signout}"]"#))
                .await?;
            assert!(
                session.find_all("button#issue").await?.is_empty(),
                "nothing left to issue"
            );
            moment(session, "scan_desk", "issued").await;

            let reply = scene
                .call(
                    Method::GET,
                    &format!("/api/v1/signouts/{signout}"),
                    &scene.custodian,
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            assert_eq!(reply.body["state"], "out", "{:?}", reply.body);
            let reply = scene
                .call(
                    Method::GET,
                    &format!("/api/v1/carriers/{carrier}"),
                    &scene.custodian,
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            assert_eq!(reply.body["state"], "out", "{:?}", reply.body);
            Ok(())
        },
    )
    .await;
}
