//! Carriers moved and counted, in a real browser (issue #11): a transfer asked for and handed
//! over by one custodian and signed for by another, and a stocktake of a holder's carriers
//! with one carrier missing, settled as a missing report. See `browser.rs` for the harness.

// The shared harness has helpers these tests do not use (the gate, the guard).
#[allow(dead_code)]
#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "browser/webdriver.rs"]
mod webdriver;

use hyper::Method;
use scene::{PASSWORD, Scene};
use serde_json::{Value, json};
use support::*;
use webdriver::Session;

/// The administrator's password (set by `initialise` in the scene).
const ADMIN_PASSWORD: &str = "first operator key 1";
const INITIAL_PASSWORD: &str = "temporary passphrase 1";

/// A bearer token for `username`.
async fn token(scene: &Scene, username: &str, password: &str) -> String {
    let reply = scene
        .call(
            Method::POST,
            "/api/v1/session",
            "",
            Some(json!({"username": username, "password": password})),
        )
        .await;
    assert_eq!(reply.status, 200, "login {username}: {:?}", reply.body);
    reply.body["token"].as_str().expect("token").to_owned()
}

/// A second custodian account, `receiver`, with the scene's password.
async fn receiver(scene: &Scene) {
    let admin = token(scene, "admin", ADMIN_PASSWORD).await;
    let reply = scene
        .call(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"username": "receiver", "password": INITIAL_PASSWORD, "roles": ["custodian"]})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let first = token(scene, "receiver", INITIAL_PASSWORD).await;
    let reply = scene
        .call(
            Method::POST,
            "/api/v1/session/password",
            &first,
            Some(json!({"old": INITIAL_PASSWORD, "new": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

async fn carrier_json(scene: &Scene, id: &str) -> Value {
    let reply = scene
        .call(
            Method::GET,
            &format!("/api/v1/carriers/{id}"),
            &scene.custodian,
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn fill(session: &Session, css: &str, text: &str) -> webdriver::WdResult<()> {
    let field = wait_css(session, css).await?;
    session.send_keys(&field, text).await
}

async fn click(session: &Session, css: &str) -> webdriver::WdResult<()> {
    let button = wait_css(session, css).await?;
    session.click(&button).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_handed_over_and_signed_for_by_the_receiving_custodian() {
    browser_test_at_widths("moves_transfer", async |scene: &Scene, session: &Session, _width: u32| {
        let carrier = scene.carrier("2024-0101", 101).await;
        receiver(scene).await;

        sign_in(scene, session, "custodian").await?;
        wait_path(session, scene, "/desk").await?;
        visit(session, scene, "/transfers").await?;
        fill(session, "#transfer-carriers", "2024-0101").await?;
        fill(session, "#transfer-to-unit", "档案室").await?;
        fill(session, "#transfer-reason", "部门撤并").await?;
        click(session, "#transfer-submit").await?;
        wait_css(session, r#"#moves-message[data-code="requested"]"#).await?;
        let item = wait_css(session, r#"#transfer-list > li.transfer[data-state="requested"]"#).await?;
        let id = session
            .attr(&item, "data-request-id")
            .await?
            .expect("request id");

        // Top secret: two security officers approve (on their approval page; here by API).
        for officer in &scene.officers {
            let reply = scene
                .call(
                    Method::POST,
                    &format!("/api/v1/transfers/{id}/approve"),
                    officer,
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }

        visit(session, scene, "/transfers").await?;
        click(session, &format!(r#"button.handover[data-id="{id}"]"#)).await?;
        wait_css(session, r#"#moves-message[data-code="handed_over"]"#).await?;
        wait_css(
            session,
            &format!(r#"li.transfer[data-request-id="{id}"][data-step="handed_over"]"#),
        )
        .await?;
        let moving = carrier_json(scene, &carrier).await;
        assert_eq!(moving["state"], "in_transfer");
        assert_eq!(moving["owner_unit"], "保密办", "custody changes only at receipt");
        moment(session, "moves_transfer", "handed_over").await;

        // The receiving custodian signs for it.
        click(session, "#logout-submit").await?;
        wait_css(session, "#login-form").await?;
        sign_in(scene, session, "receiver").await?;
        wait_path(session, scene, "/desk").await?;
        visit(session, scene, "/transfers").await?;
        click(session, &format!(r#"button.receive[data-id="{id}"]"#)).await?;
        wait_css(session, r#"#moves-message[data-code="received"]"#).await?;
        wait_css(
            session,
            &format!(r#"li.transfer[data-request-id="{id}"][data-step="received"][data-state="done"]"#),
        )
        .await?;
        let received = carrier_json(scene, &carrier).await;
        assert_eq!(received["state"], "in_storage");
        assert_eq!(received["owner_unit"], "档案室");
        moment(session, "moves_transfer", "received").await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stocktake_finds_one_carrier_missing_and_reports_it() {
    browser_test_at_widths(
        "moves_stocktake",
        async |scene: &Scene, session: &Session, _width: u32| {
            let held = scene.carrier("2024-0201", 201).await;
            let lost = scene.carrier("2024-0202", 202).await;
            for carrier in [&held, &lost] {
                let signout = scene.approved_sign_out(carrier).await;
                let reply = scene
                    .call(
                        Method::POST,
                        &format!("/api/v1/signouts/{signout}/issue"),
                        &scene.custodian,
                        None,
                    )
                    .await;
                assert_eq!(reply.status, 200, "{:?}", reply.body);
            }

            sign_in(scene, session, "custodian").await?;
            wait_path(session, scene, "/desk").await?;
            visit(session, scene, "/stocktakes").await?;
            wait_css(session, "#stocktake-form").await?;
            session
                .execute(
                    "document.querySelector('#stocktake-scope-kind').value = 'custodian';",
                    vec![],
                )
                .await?;
            fill(session, "#stocktake-scope-ref", &scene.borrower).await?;
            click(session, "#stocktake-submit").await?;
            wait_css(session, r#"#stocktake-heading[data-state="open"]"#).await?;
            assert_eq!(text_of(session, ".count-expected").await?, "2");

            fill(session, "#stocktake-scan-input", "2024-0201").await?;
            click(session, "#stocktake-scan-submit").await?;
            wait_css(session, r#"#moves-message[data-code="scanned"]"#).await?;
            assert_eq!(text_of(session, ".count-seen").await?, "1");

            click(session, "#stocktake-close").await?;
            wait_css(session, r#"#stocktake-heading[data-state="closed"]"#).await?;
            let missing =
                format!(r#"#stocktake-missing li.missing-carrier[data-carrier-id="{lost}"]"#);
            wait_css(session, &missing).await?;
            assert_eq!(
                session
                    .find_all("#stocktake-missing li.missing-carrier")
                    .await?
                    .len(),
                1,
                "one discrepancy"
            );
            assert!(
                !page_shows(session, "Reactor drawings").await?,
                "a stocktake never shows a carrier title"
            );
            moment(session, "moves_stocktake", "closed").await;

            fill(
                session,
                &format!("{missing} .resolution-note"),
                "持有人处未找到",
            )
            .await?;
            click(session, &format!("{missing} .resolve-submit")).await?;
            wait_css(
                session,
                &format!(r#"{missing} .resolution[data-resolution="missing"]"#),
            )
            .await?;
            assert_eq!(carrier_json(scene, &lost).await["state"], "missing");
            assert_eq!(carrier_json(scene, &held).await["state"], "out");
            Ok(())
        },
    )
    .await;
}

/// A laptop (top secret, in storage) registered by API; its id.
async fn laptop(scene: &Scene, control_no: &str) -> String {
    let reply = scene
        .call(
            Method::POST,
            "/api/v1/carriers",
            &scene.custodian,
            Some(
                json!({"control_no": control_no, "kind": "laptop", "level": "TS",
                        "title": "Reactor drawings (never shown to guards)",
                        "copy_no": 1, "copies": 1, "owner_unit": "保密办", "tags": []}),
            ),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_in_repair_is_refused_a_sign_out_until_it_returns() {
    browser_test("moves_repair", async |scene: &Scene, session: &Session| {
        let carrier = laptop(scene, "2024-0301").await;

        // Sent for repair on site, under escort, its disk removed and kept.
        sign_in(scene, session, "custodian").await?;
        wait_path(session, scene, "/desk").await?;
        session.goto(&scene.url("/repairs")).await?;
        fill(session, "#repair-carrier", "2024-0301").await?;
        fill(session, "#repair-repairer", "某某维修公司").await?;
        fill(session, "#repair-qualification", "BM-2026/017").await?;
        session
            .execute(
                "document.querySelector('#repair-qualified-until').value = '2099-12-31';",
                vec![],
            )
            .await?;
        fill(session, "#repair-escort", "李陪同").await?;
        fill(session, "#repair-media-note", "硬盘拆下，存保密柜").await?;
        fill(session, "#repair-reason", "屏幕损坏").await?;
        click(session, "#repair-submit").await?;
        wait_css(session, r#"#moves-message[data-code="sent"]"#).await?;
        let open =
            format!(r#"#repair-list > li.repair[data-carrier-id="{carrier}"][data-state="open"]"#);
        let item = wait_css(session, &open).await?;
        let repair = session
            .attr(&item, "data-repair-id")
            .await?
            .expect("repair id");
        assert!(
            page_shows(session, "硬盘拆下，存保密柜").await?,
            "the kept media are shown"
        );
        moment(session, "moves_repair", "sent").await;

        // In repair on the carrier page, with the removed media.
        session
            .goto(&scene.url(&format!("/carriers/{carrier}")))
            .await?;
        wait_css(
            session,
            r#"#carrier-facts .carrier-state[data-state="in_repair"]"#,
        )
        .await?;
        wait_css(
            session,
            &format!(r#"#repair-panel[data-repair-id="{repair}"]"#),
        )
        .await?;
        assert_eq!(carrier_json(scene, &carrier).await["in_repair"], true);

        // A sign-out of it is refused, saying why.
        session.goto(&scene.url("/signouts/new")).await?;
        click(session, &format!("#signout-carrier-{carrier}")).await?;
        wait_css(session, r#"#signout-due[data-proposed="true"]"#).await?;
        fill(session, "#signout-borrower", "林").await?;
        fill(session, "#signout-purpose", "出差使用").await?;
        click(session, "#signout-submit").await?;
        let refusal = wait_css(session, r#".field-error[data-field="carriers"]"#).await?;
        let said = session.text(&refusal).await?;
        assert!(
            said.contains("维修") || said.contains("repair"),
            "the refusal says the carrier is in repair: {said}"
        );
        moment(session, "moves_repair", "refused").await;

        // Back from repair: available again.
        session.goto(&scene.url("/repairs")).await?;
        fill(
            session,
            &format!("{open} .repair-return-note"),
            "硬盘已装回，封条完好",
        )
        .await?;
        click(session, &format!("{open} .repair-return-submit")).await?;
        wait_css(session, r#"#moves-message[data-code="returned"]"#).await?;
        wait_css(
            session,
            &format!(r#"li.repair[data-repair-id="{repair}"][data-state="returned"]"#),
        )
        .await?;
        session
            .goto(&scene.url(&format!("/carriers/{carrier}")))
            .await?;
        wait_css(
            session,
            r#"#carrier-facts .carrier-state[data-state="in_storage"]"#,
        )
        .await?;
        assert_eq!(carrier_json(scene, &carrier).await["in_repair"], false);
        let due = scene.state.now().plus_secs(86_400).to_string();
        let reply = scene
            .call(
                Method::POST,
                "/api/v1/signouts",
                &scene.custodian,
                Some(json!({"carrier_ids": [carrier], "borrower": scene.borrower,
                            "purpose": "review", "due_at": due, "may_leave": false})),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_is_asked_for_sent_and_its_delivery_recorded_on_its_page() {
    browser_test("moves_dispatch", async |scene: &Scene, session: &Session| {
        let carrier = scene.carrier("2024-0401", 141).await;

        sign_in(scene, session, "custodian").await?;
        wait_path(session, scene, "/desk").await?;
        session.goto(&scene.url("/dispatches")).await?;
        fill(session, "#dispatch-carriers", "2024-0401").await?;
        fill(session, "#dispatch-destination", "上级机关").await?;
        fill(session, "#dispatch-courier", "机要交通员 陈").await?;
        fill(session, "#dispatch-sealed-by", "保管员 李").await?;
        click(session, "#dispatch-submit").await?;
        wait_css(session, r#"#moves-message[data-code="requested"]"#).await?;
        let item = wait_css(session, r#"#dispatch-list > li.dispatch[data-step="requested"]"#).await?;
        let id = session
            .attr(&item, "data-request-id")
            .await?
            .expect("request id");

        // Top secret: two security officers approve (on their approval page; here by API).
        for officer in &scene.officers {
            let reply = scene
                .call(
                    Method::POST,
                    &format!("/api/v1/dispatches/{id}/approve"),
                    officer,
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }

        session.goto(&scene.url("/dispatches")).await?;
        click(session, &format!(r#"button.send[data-id="{id}"]"#)).await?;
        wait_css(session, r#"#moves-message[data-code="sent"]"#).await?;
        let sent = format!(r#"li.dispatch[data-request-id="{id}"][data-step="sent"]"#);
        wait_css(session, &sent).await?;
        assert_eq!(carrier_json(scene, &carrier).await["state"], "dispatched");
        assert!(
            !page_shows(session, "Reactor drawings").await?,
            "the dispatch page never shows a carrier title"
        );
        moment(session, "moves_dispatch", "sent").await;

        fill(session, &format!("{sent} .received-by"), "上级机关 收发室 王").await?;
        click(session, &format!(r#"button.delivered[data-id="{id}"]"#)).await?;
        wait_css(session, r#"#moves-message[data-code="delivered"]"#).await?;
        wait_css(
            session,
            &format!(r#"li.dispatch[data-request-id="{id}"][data-step="delivered"][data-state="done"]"#),
        )
        .await?;
        assert!(page_shows(session, "上级机关 收发室 王").await?);
        Ok(())
    })
    .await;
}
