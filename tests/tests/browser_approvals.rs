//! The approval model in a real browser (issue #10 A): a security officer who gave the first
//! of two TS approvals sees that instead of a second approve button, and rejects the sign-out
//! with a reason on the approval page; a custodian makes approved copies and sees the lineage
//! both ways on the carrier pages; a custodian records a destruction with two witnesses and
//! the carrier is destroyed.
//!
//! The scene (accounts, zones, gate, people) is `browser/scene.rs`; requests and approvals the
//! test does not walk through are seeded over the JSON API. Every wait polls with a deadline.

// The shared browser helpers serve every area's tests; this file uses only some of them.
#[allow(dead_code)]
#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "browser/webdriver.rs"]
mod webdriver;

use hyper::Method;
use scene::Scene;
use serde_json::{Value, json};
use support::*;
use webdriver::Session;

/// `POST` as `token`, expecting `status`; the answer's body.
async fn post(scene: &Scene, token: &str, path: &str, body: Option<Value>, status: u16) -> Value {
    let reply = scene.call(Method::POST, path, token, body).await;
    assert_eq!(reply.status, status, "POST {path}: {:?}", reply.body);
    reply.body
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// Approve a request of `kind` by both officers (the scene's carriers are top secret).
async fn approved_by_both(scene: &Scene, kind: &str, id: &str) {
    for officer in &scene.officers {
        post(
            scene,
            officer,
            &format!("/api/v1/{kind}/{id}/approve"),
            None,
            200,
        )
        .await;
    }
}

async fn click(session: &Session, css: &str) -> webdriver::WdResult<()> {
    let e = wait_css(session, css).await?;
    session.click(&e).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_rejects_a_sign_out_with_a_reason() {
    browser_test_at_widths(
        "approvals_reject",
        async |scene: &Scene, session: &Session, _width: u32| {
            let carrier = scene.carrier("2024-0101", 101).await;
            let due = scene.state.now().plus_secs(86_400).to_string();
            let signout = id_of(
                &post(
                    scene,
                    &scene.custodian,
                    "/api/v1/signouts",
                    Some(json!({"carrier_ids": [carrier], "borrower": scene.borrower,
                            "purpose": "review", "due_at": due, "may_leave": false})),
                    201,
                )
                .await,
            );
            // Top secret: officer1 gives the first of two approvals.
            post(
                scene,
                &scene.officers[0],
                &format!("/api/v1/signouts/{signout}/approve"),
                None,
                200,
            )
            .await;
            sign_in(scene, session, "officer1").await?;
            wait_path(session, scene, "/officer").await?;
            visit(session, scene, "/approvals").await?;
            let item = format!(r#"#approval-list > li.approval[data-signout-id="{signout}"]"#);
            wait_css(session, &item).await?;
            // Having approved, officer1 sees that instead of a second approve button.
            wait_css(session, &format!("{item} p.approved-by-you")).await?;
            assert!(
                session
                    .find_all(&format!("{item} button.approve"))
                    .await?
                    .is_empty(),
                "no second approve button for an officer who approved"
            );
            let reason = session
                .find(&format!(r#"{item} form.reject textarea[name="reason"]"#))
                .await?;
            session.send_keys(&reason, "用途不明确").await?;
            click(session, &format!("{item} button.reject")).await?;
            wait_css(session, r#"#approval-message[data-code="rejected"]"#).await?;
            wait_gone(session, &item).await?;
            moment(session, "approvals_reject", "rejected").await;
            let shown = scene
                .call(
                    Method::GET,
                    &format!("/api/v1/signouts/{signout}"),
                    &scene.custodian,
                    None,
                )
                .await;
            assert_eq!(shown.body["state"], "rejected", "{:?}", shown.body);
            assert_eq!(shown.body["rejection_reason"], "用途不明确");
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custodian_makes_approved_copies_and_sees_their_lineage() {
    browser_test_at_widths("approvals_copy", async |scene: &Scene, session: &Session, _width: u32| {
        let original = scene.carrier("2024-0202", 202).await;
        let request = id_of(
            &post(
                scene,
                &scene.custodian,
                "/api/v1/copies",
                Some(json!({"original_id": original, "count": 1, "purpose": "会议"})),
                201,
            )
            .await,
        );
        approved_by_both(scene, "copies", &request).await;
        sign_in(scene, session, "custodian").await?;
        wait_path(session, scene, "/desk").await?;
        visit(session, scene, &format!("/carriers/{original}")).await?;
        let row = format!(
            r#"#carrier-requests li.request[data-kind="copies"][data-request-id="{request}"][data-state="approved"]"#
        );
        wait_css(session, &row).await?;
        click(session, &format!("{row} button.make-copies")).await?;
        // The new copy's page: copied from the original, numbered on in its series.
        let from = wait_css(session, "#lineage-original a.carrier-no").await?;
        assert_eq!(session.text(&from).await?, "2024-0202");
        let heading = text_of(session, "#carrier-heading .carrier-no").await?;
        assert_eq!(heading, "2024-0202-2");
        moment(session, "approvals_copy", "copy").await;
        let copy = session
            .attr(&session.find("#carrier-heading").await?, "data-carrier-id")
            .await?
            .expect("the copy's id");
        // And the original's page lists the copy.
        session.click(&from).await?;
        wait_css(
            session,
            &format!(r#"#lineage-copies li[data-carrier-id="{copy}"]"#),
        )
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custodian_records_a_witnessed_destruction() {
    browser_test_at_widths(
        "approvals_destroy",
        async |scene: &Scene, session: &Session, _width: u32| {
            let carrier = scene.carrier("2024-0303", 33).await;
            let request = id_of(
                &post(
                    scene,
                    &scene.custodian,
                    "/api/v1/destructions",
                    Some(json!({"carrier_ids": [carrier], "method": "shred", "reason": "到期"})),
                    201,
                )
                .await,
            );
            approved_by_both(scene, "destructions", &request).await;
            // Witnesses: a security officer on the register, and a clerk.
            let officer = id_of(
                &post(
                    scene,
                    &scene.officers[0],
                    "/api/v1/people",
                    Some(json!({"name": "王保密", "department": "保密办", "category": "core"})),
                    201,
                )
                .await,
            );
            let clerk = id_of(
                &post(
                    scene,
                    &scene.officers[0],
                    "/api/v1/people",
                    Some(json!({"name": "李文书", "department": "办公室", "category": "general"})),
                    201,
                )
                .await,
            );
            let admin = post(
                scene,
                "",
                "/api/v1/session",
                Some(json!({"username": "admin", "password": "first operator key 1"})),
                200,
            )
            .await;
            let admin = admin["token"].as_str().expect("a token").to_owned();
            post(
                scene,
                &admin,
                "/api/v1/users",
                Some(
                    json!({"username": "wang", "password": "temporary passphrase 1",
                        "roles": ["security_officer"], "person_id": officer}),
                ),
                201,
            )
            .await;

            sign_in(scene, session, "custodian").await?;
            wait_path(session, scene, "/desk").await?;
            visit(session, scene, &format!("/carriers/{carrier}")).await?;
            click(
                session,
                &format!(r#"li.request[data-request-id="{request}"] a.record-destruction"#),
            )
            .await?;
            wait_css(session, "#record-form").await?;
            click(session, &format!(r#"#witness-1 option[value="{officer}"]"#)).await?;
            click(session, &format!(r#"#witness-2 option[value="{clerk}"]"#)).await?;
            let count = session.find("#record-count").await?;
            session.send_keys(&count, "1").await?;
            moment(session, "approvals_destroy", "record").await;
            click(session, "#record-submit").await?;
            wait_css(
                session,
                &format!(r#"#carrier-heading[data-carrier-id="{carrier}"]"#),
            )
            .await?;
            wait_css(
                session,
                r#".fact[data-field="state"] .carrier-state[data-state="destroyed"]"#,
            )
            .await?;
            let shown = scene
                .call(
                    Method::GET,
                    &format!("/api/v1/carriers/{carrier}"),
                    &scene.custodian,
                    None,
                )
                .await;
            assert_eq!(shown.body["state"], "destroyed", "{:?}", shown.body);
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_overrides_a_failed_check_with_a_written_reason() {
    browser_test_at_widths(
        "approvals_override",
        async |scene: &Scene, session: &Session, _width: u32| {
            let carrier = scene.carrier("2024-0303", 303).await;
            let due = scene.state.now().plus_secs(86_400).to_string();
            let signout = id_of(
                &post(
                    scene,
                    &scene.custodian,
                    "/api/v1/signouts",
                    Some(json!({"carrier_ids": [carrier], "borrower": scene.borrower,
                            "purpose": "review", "due_at": due, "may_leave": false,
                            "override_note": "需要核对原件"})),
                    201,
                )
                .await,
            );
            sign_in(scene, session, "officer1").await?;
            wait_path(session, scene, "/officer").await?;
            visit(session, scene, "/approvals").await?;
            let item = format!(r#"#approval-list > li.approval[data-signout-id="{signout}"]"#);
            let note = wait_css(session, &format!("{item} dd.override-note")).await?;
            assert_eq!(session.text(&note).await?, "需要核对原件");
            let field = session
                .find(&format!(
                    r#"{item} input.override-reason[name="override_reason"]"#
                ))
                .await?;
            session.send_keys(&field, "经处长同意").await?;
            click(session, &format!("{item} button.approve")).await?;
            wait_css(session, r#"#approval-message[data-code="approved_partly"]"#).await?;
            let shown = wait_css(session, &format!("{item} dd.override-reason")).await?;
            assert_eq!(session.text(&shown).await?, "经处长同意");
            moment(session, "approvals_override", "override_reason_shown").await;
            Ok(())
        },
    )
    .await;
}
