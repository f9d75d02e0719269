//! The lifecycle pages in a real browser (see `browser.rs` for how a test starts a site and a
//! Chromium session): a custodian corrects a carrier's owning unit with a reason and sees the
//! before/after in its history, reports the carrier (Top Secret, no home cabinet) missing and
//! sees the 10-day leak-deadline clock, records on the printable incident record who was told;
//! a security officer sees the clock on their home page and reports the carrier found: it is
//! in storage again and its incident closed.

// Shared helpers: this file uses only some of them.
#[path = "browser/scene.rs"]
#[allow(dead_code)]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[path = "browser/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use hyper::Method;
use scene::Scene;
use support::*;
use webdriver::Session;

/// Empty a form field (typing appends to what it holds).
async fn clear(session: &Session, id: &str) -> webdriver::WdResult<()> {
    session
        .execute(
            "document.getElementById(arguments[0]).value = '';",
            vec![serde_json::json!(id)],
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_is_corrected_reported_missing_and_found() {
    browser_test_at_widths("lifecycle", async |scene: &Scene, session: &Session, _width: u32| {
        let carrier = scene.carrier("2024-0051", 51).await;
        sign_in(scene, session, "custodian").await?;
        wait_css(session, "#current-user").await?;
        visit(session, scene, &format!("/carriers/{carrier}")).await?;
        wait_css(session, "#corrections-empty").await?;

        // A correction, with its reason; the history shows before and after.
        let link = wait_css(session, "#correct-link").await?;
        session.click(&link).await?;
        wait_css(session, "#correct-form").await?;
        clear(session, "correct-owner-unit").await?;
        let unit = session.find("#correct-owner-unit").await?;
        session.send_keys(&unit, "档案室").await?;
        // The secrecy period (保密期限) shown is the level's longest (TS: 30 years) until set.
        let years = session.find("#correct-secrecy-years").await?;
        assert_eq!(session.attr(&years, "value").await?.as_deref(), Some("30"));
        clear(session, "correct-secrecy-years").await?;
        session.send_keys(&years, "5").await?;
        let reason = session.find("#correct-reason").await?;
        session
            .send_keys(&reason, "owning unit mistyped at registration")
            .await?;
        let submit = session.find("#correct-submit").await?;
        session.click(&submit).await?;
        wait_css(session, r#"#lifecycle-message[data-code="corrected"]"#).await?;
        let changed = r#"#corrections li.correction tr.changed-field[data-field="owner_unit"]"#;
        assert_eq!(
            text_of(session, &format!("{changed} .before")).await?,
            "保密办"
        );
        assert_eq!(
            text_of(session, &format!("{changed} .after")).await?,
            "档案室"
        );
        let period = r#"#corrections li.correction tr.changed-field[data-field="secrecy_years"]"#;
        assert_eq!(text_of(session, &format!("{period} .before")).await?, "30");
        assert_eq!(text_of(session, &format!("{period} .after")).await?, "5");
        wait_css(session, r#"#carrier-secrecy[data-years="5"]"#).await?;
        moment(session, "lifecycle", "corrected").await;

        // The label prints the carrier's own period mark.
        session
            .goto(&scene.url(&format!("/carriers/{carrier}/label.svg")))
            .await?;
        assert!(
            text_of(session, "#label-level")
                .await?
                .starts_with("绝密★5年"),
            "the label's period mark"
        );
        visit(session, scene, &format!("/carriers/{carrier}")).await?;
        wait_css(session, "#missing-note").await?;

        // Reported missing: the leak-deadline clock of a TS carrier runs 10 days.
        let note = session.find("#missing-note").await?;
        session
            .send_keys(&note, "not on its shelf at the morning count")
            .await?;
        let submit = session.find("#missing-submit").await?;
        session.click(&submit).await?;
        let clock = wait_css(session, r#"#leak-clock[data-passed="false"]"#).await?;
        assert_eq!(
            session.attr(&clock, "data-days-left").await?.as_deref(),
            Some("10")
        );
        wait_css(
            session,
            r#"#carrier-facts .carrier-state[data-state="missing"]"#,
        )
        .await?;
        moment(session, "lifecycle", "missing").await;

        // The incident record: who was told.
        let record = wait_css(
            session,
            r#"#incidents li.incident[data-open="true"] a.incident-print"#,
        )
        .await?;
        session.click(&record).await?;
        wait_css(session, r#"#incident[data-cause="manual"]"#).await?;
        let told = session.find("#told-text").await?;
        session.send_keys(&told, "市保密局 by phone").await?;
        let submit = session.find("#told-submit").await?;
        session.click(&submit).await?;
        wait_for(session, "who was told", async || {
            let text = text_of(session, r#"#incident-facts .fact[data-field="told"] dd"#).await?;
            Ok(text.contains("市保密局").then_some(()))
        })
        .await?;
        moment(session, "lifecycle", "incident").await;

        // A security officer's home page shows the clock; the officer reports it found,
        // although it has no home cabinet to be seen in.
        let logout = session.find("#logout-submit").await?;
        session.click(&logout).await?;
        wait_css(session, "#login-username").await?;
        sign_in(scene, session, "officer1").await?;
        wait_css(session, "#current-user").await?;
        // (Until the officer's home page lands, the clocks head the approvals page.)
        visit(session, scene, "/approvals").await?;
        let item = format!(
            r#"#leak-clocks li.leak-clock-item[data-carrier-id="{carrier}"][data-passed="false"]"#
        );
        let item = wait_css(session, &item).await?;
        assert_eq!(
            session.attr(&item, "data-days-left").await?.as_deref(),
            Some("10")
        );
        moment(session, "lifecycle", "officer_home").await;
        visit(session, scene, &format!("/carriers/{carrier}")).await?;
        let note = wait_css(session, "#found-note").await?;
        session.send_keys(&note, "in the reading room safe").await?;
        let submit = session.find("#found-submit").await?;
        session.click(&submit).await?;
        wait_css(session, r#"#lifecycle-message[data-code="found"]"#).await?;
        wait_css(
            session,
            r#"#carrier-facts .carrier-state[data-state="in_storage"]"#,
        )
        .await?;
        wait_css(session, r#"#incidents li.incident[data-open="false"]"#).await?;
        wait_gone(session, "#leak-clock").await?;
        moment(session, "lifecycle", "found").await;

        let reply = scene
            .call(
                Method::GET,
                &format!("/api/v1/carriers/{carrier}/incidents"),
                &scene.custodian,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body[0]["found_note"], "in the reading room safe");
        assert_eq!(reply.body[0]["told"], "市保密局 by phone");
        Ok(())
    })
    .await;
}
