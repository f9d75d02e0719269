//! The gate, end to end: a simulated UHF reader on a pty, a simulated Modbus gate I/O module,
//! `custosd` deciding each exit with the server's verdict, and `custos-server` judging the
//! passage against the sign-outs. Each test runs its own site.

use std::time::Duration;

use custos_e2e::*;
use serde_json::Value;

/// How long an alarm may take from the crossing to the coil (generous: loaded machines).
const ALARM_WITHIN: Duration = Duration::from_secs(5);

async fn gate_site() -> anyhow::Result<Site> {
    Site::start(SiteOptions {
        gate: true,
        ..SiteOptions::default()
    })
    .await
}

/// Passages of `carrier_id` in its history.
async fn passages(site: &Site, carrier_id: &str) -> anyhow::Result<Vec<Value>> {
    Ok(site
        .history(carrier_id)
        .await?
        .into_iter()
        .filter(|h| h["type"] == "passage")
        .collect())
}

/// Waits until the carrier's history shows a passage in `direction` at the gate.
async fn wait_passage(site: &Site, carrier_id: &str, direction: &str) -> anyhow::Result<Value> {
    poll_some(
        &format!("a passage {direction} of carrier {carrier_id}"),
        STEP,
        || async move {
            Ok(passages(site, carrier_id)
                .await?
                .into_iter()
                .find(|p| p["direction"] == direction))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorised_exit_with_the_borrowers_badge_does_not_alarm() -> anyhow::Result<()> {
    let site = gate_site().await?;
    let gate = site.gate();
    let carrier = site.carrier("S-1").clone();
    site.sign_out(&[&carrier.id], ALICE, true, Duration::from_secs(3600))
        .await?;
    // The gate decides offline with the same rules: wait until its policy knows the sign-out,
    // so that the outcome does not depend on whether the server answers within the deadline.
    gate.wait_policy_allows(carrier.epc, true).await?;

    let coils = gate.coil_mark();
    let crossing = gate.walk_out(&[carrier.epc, badge(ALICE_BADGE)]).await?;
    let decided = gate.exit_decided(&crossing).await?;
    assert_eq!(decided["alarm"], "None", "{decided}");

    let passage = wait_passage(&site, &carrier.id, "out").await?;
    assert_eq!(passage["device_id"], GATE);
    assert!(
        site.alerts(None, Some("unauthorized_removal"))
            .await?
            .is_empty(),
        "no removal alert"
    );
    assert_eq!(
        gate.coil_changes_after(coils, 0, true),
        0,
        "the alarm coil was never set"
    );
    let view = site.carrier_view(&carrier.id).await?;
    assert_eq!(view["state"], "out");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorised_exit_sets_the_alarm_coil_and_alerts_the_guard() -> anyhow::Result<()> {
    let site = gate_site().await?;
    let gate = site.gate();
    let stream = site.alert_stream().await?;
    let carrier = site.carrier("S-2").clone();

    let crossing = gate.walk_out(&[carrier.epc]).await?;
    gate.wait_for_coil(0, true, ALARM_WITHIN).await?;
    let alert = stream
        .wait_alert("unauthorized_removal", STEP, |a| {
            a["carrier_id"] == carrier.id
        })
        .await?;
    assert_eq!(alert["device_id"], GATE, "{alert}");
    assert_eq!(alert["state"], "open", "{alert}");
    assert_eq!(alert["carrier_control_no"], "S-2", "{alert}");
    assert_eq!(alert["detail"]["reason"], "unauthorized_removal", "{alert}");
    assert!(alert.get("title").is_none(), "no carrier title in alerts");

    let decided = gate.exit_decided(&crossing).await?;
    assert_eq!(decided["alarm"], "Some(UnauthorizedRemoval)", "{decided}");
    let passage = wait_passage(&site, &carrier.id, "out").await?;
    assert_eq!(passage["device_id"], GATE);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_by_someone_other_than_the_borrower_alarms() -> anyhow::Result<()> {
    let site = gate_site().await?;
    let gate = site.gate();
    let stream = site.alert_stream().await?;
    let carrier = site.carrier("S-3").clone();
    site.sign_out(&[&carrier.id], ALICE, true, Duration::from_secs(3600))
        .await?;
    gate.wait_policy_allows(carrier.epc, true).await?;

    // Bob carries Alice's carrier out; his badge is read in the passage, hers is not.
    let crossing = gate.walk_out(&[carrier.epc, badge(BOB_BADGE)]).await?;
    gate.wait_for_coil(0, true, ALARM_WITHIN).await?;
    let alert = stream
        .wait_alert("unauthorized_removal", STEP, |a| {
            a["carrier_id"] == carrier.id
        })
        .await?;
    assert_eq!(alert["device_id"], GATE, "{alert}");
    assert_eq!(alert["detail"]["reason"], "borrower_absent", "{alert}");
    assert_eq!(
        alert["detail"]["badge_holders"],
        serde_json::json!([BOB]),
        "{alert}"
    );
    assert_eq!(alert["person_id"], site.person(BOB).id, "{alert}");
    let decided = gate.exit_decided(&crossing).await?;
    assert_ne!(decided["alarm"], "None", "{decided}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inward_passage_does_not_alarm_and_is_in_the_history() -> anyhow::Result<()> {
    let site = gate_site().await?;
    let gate = site.gate();
    let carrier = site.carrier("S-4").clone();

    let coils = gate.coil_mark();
    let crossing = gate.walk_in(&[carrier.epc]).await?;
    assert!(crossing.seq.is_some(), "the passage was stored");
    let passage = wait_passage(&site, &carrier.id, "in").await?;
    assert_eq!(passage["device_id"], GATE, "{passage}");
    assert_eq!(passage["direction"], "in", "{passage}");
    assert!(passage["at"].is_string(), "{passage}");

    assert_eq!(passages(&site, &carrier.id).await?.len(), 1, "one passage");
    assert!(
        site.alerts(None, Some("unauthorized_removal"))
            .await?
            .is_empty(),
        "no removal alert"
    );
    assert_eq!(gate.coil_changes_after(coils, 0, true), 0, "no alarm");
    Ok(())
}
