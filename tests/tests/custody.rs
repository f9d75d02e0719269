//! Sign-out rules through the real server binary: an overdue loan raised by the periodic
//! sweep, two approvers for Top Secret, and an issue refused for expired training.

use std::time::{Duration, Instant};

use custos_e2e::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_past_its_due_time_raises_overdue() -> anyhow::Result<()> {
    let site = Site::start(SiteOptions::default()).await?;
    let stream = site.alert_stream().await?;
    let carrier = site.carrier("S-5").clone();
    let due_in = Duration::from_secs(3);
    let issued_at = Instant::now();
    let signout = site.sign_out(&[&carrier.id], BOB, false, due_in).await?;
    let view = site
        .get("custodian", &format!("/api/v1/signouts/{signout}"))
        .await?;
    assert_eq!(view["state"], "out", "{view}");

    // The sweep runs every 200 ms; the due time is at most a second past `due_in` (whole
    // seconds), so the alert comes seconds after the issue, never before the due time.
    let alert = stream
        .wait_alert("overdue", due_in + STEP, |a| a["carrier_id"] == carrier.id)
        .await?;
    assert!(
        issued_at.elapsed() >= due_in - Duration::from_secs(1),
        "overdue raised before the due time: {alert}"
    );
    assert_eq!(alert["state"], "open", "{alert}");
    assert_eq!(alert["detail"]["signout_id"], signout, "{alert}");
    assert_eq!(alert["person_id"], site.person(BOB).id, "{alert}");
    // RFC 3339 UTC in whole seconds: comparable as text.
    let (raised, due) = (
        alert["raised_at"].as_str().unwrap_or(""),
        alert["detail"]["due_at"].as_str().unwrap_or(""),
    );
    assert!(
        !due.is_empty() && raised > due,
        "raised {raised}, due {due}"
    );
    let listed = site.alerts(Some("open"), Some("overdue")).await?;
    assert_eq!(listed.len(), 1, "one overdue alert: {listed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_secret_needs_two_approvers_and_expired_training_refuses_the_issue()
-> anyhow::Result<()> {
    let site = Site::start(SiteOptions::default()).await?;
    let ts = site.carrier("TS-1").clone();

    // TS: one approval is not enough, the same officer cannot approve twice, a second one can.
    let id = site
        .request_signout(&[&ts.id], CAROL, false, Duration::from_secs(3600))
        .await?;
    let approve = format!("/api/v1/signouts/{id}/approve");
    let issue = format!("/api/v1/signouts/{id}/issue");
    let first = site.post("officer", &approve, json!({}), 200).await?;
    assert_eq!(first["state"], "requested", "{first}");
    assert_eq!(first["approvals_needed"], 1, "{first}");
    let early = site.post("custodian", &issue, json!({}), 409).await?;
    assert_eq!(early["error"], "not_approved", "{early}");
    let again = site
        .call(
            Some("officer"),
            hyper::Method::POST,
            &approve,
            Some(json!({})),
        )
        .await?;
    assert!(
        again.status == 409 || again.status == 422,
        "the same officer twice: {} {}",
        again.status,
        again.text()
    );
    // The requester (a custodian) may not approve at all.
    let reply = site
        .call(
            Some("custodian"),
            hyper::Method::POST,
            &approve,
            Some(json!({})),
        )
        .await?;
    assert_eq!(reply.status, 403, "{}", reply.text());
    let second = site.post("officer2", &approve, json!({}), 200).await?;
    assert_eq!(second["state"], "approved", "{second}");
    let out = site.post("custodian", &issue, json!({}), 200).await?;
    assert_eq!(out["state"], "out", "{out}");

    // Dave's training expired: the issue is refused and says why.
    let s6 = site.carrier("S-6").clone();
    let id = site
        .request_signout(&[&s6.id], DAVE, false, Duration::from_secs(3600))
        .await?;
    site.post(
        "officer",
        &format!("/api/v1/signouts/{id}/approve"),
        json!({}),
        200,
    )
    .await?;
    let refused = site
        .post(
            "custodian",
            &format!("/api/v1/signouts/{id}/issue"),
            json!({}),
            422,
        )
        .await?;
    assert_eq!(refused["error"], "training_expired", "{refused}");
    assert!(
        refused["reasons"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("training_expired"))),
        "{refused}"
    );
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("training")),
        "{refused}"
    );
    assert_eq!(site.carrier_view(&s6.id).await?["state"], "in_storage");
    Ok(())
}
