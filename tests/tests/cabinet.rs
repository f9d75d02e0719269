//! A smart cabinet end to end: a simulated UHF shelf reader on a pty, `custosd` taking
//! inventory snapshots, and `custos-server` reconciling them (removals after a grace period,
//! returns, carriers in the wrong cabinet).

use std::time::Duration;

use custos_e2e::*;
use serde_json::Value;

/// Waits until the carrier's state is `state`.
async fn wait_state(site: &Site, carrier_id: &str, state: &str) -> anyhow::Result<Value> {
    poll_some(
        &format!("carrier {carrier_id} to be {state}"),
        STEP,
        || async move {
            let view = site.carrier_view(carrier_id).await?;
            Ok((view["state"] == state).then_some(view))
        },
    )
    .await
}

/// Waits until the carrier's history shows it at cabinet `device`.
async fn wait_seen_in_cabinet(site: &Site, carrier_id: &str, device: &str) -> anyhow::Result<()> {
    poll_some(
        &format!("carrier {carrier_id} seen in {device}"),
        STEP,
        || async move {
            Ok(site
                .history(carrier_id)
                .await?
                .into_iter()
                .find(|h| h["type"] == "cabinet" && h["device_id"] == device))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_without_sign_out_goes_missing_and_wrong_cabinet_is_reported() -> anyhow::Result<()>
{
    let site = Site::start(SiteOptions {
        cabinet: true,
        ..SiteOptions::default()
    })
    .await?;
    let cabinet = site.cabinet();
    let stream = site.alert_stream().await?;
    let (s1, s2, s9) = (
        site.carrier("S-1").clone(),
        site.carrier("S-2").clone(),
        site.carrier("S-9").clone(),
    );

    // Both carriers are on the shelves of their home cabinet: the first count finds them.
    cabinet.control.field(1, &[s1.epc, s2.epc]).await?;
    wait_seen_in_cabinet(&site, &s1.id, CAB1).await?;
    wait_seen_in_cabinet(&site, &s2.id, CAB1).await?;

    // S-2 is signed out properly (its borrower takes it); S-1 is simply taken.
    site.sign_out(&[&s2.id], ALICE, false, Duration::from_secs(3600))
        .await?;
    let mark = stream.mark();
    cabinet.control.field(1, &[]).await?;

    // After the grace period (1.5 s here) S-1's removal is an alert and S-1 is missing.
    let alert = stream
        .wait_alert("cabinet_removal", STEP, |a| a["carrier_id"] == s1.id)
        .await?;
    assert_eq!(alert["device_id"], CAB1, "{alert}");
    let missing = wait_state(&site, &s1.id, "missing").await?;
    assert_eq!(missing["control_no"], "S-1");
    // S-2 left on its sign-out: no alert, still out.
    assert!(
        !stream
            .events()
            .iter()
            .skip(mark)
            .any(|e| e.event == "alert" && e.data["carrier_id"] == s2.id),
        "no alert about the signed-out carrier: {:?}",
        stream.alerts()
    );
    assert_eq!(site.carrier_view(&s2.id).await?["state"], "out");
    let removals = site.alerts(None, Some("cabinet_removal")).await?;
    assert_eq!(removals.len(), 1, "{removals:?}");

    // S-9 belongs in cab-2 but is put into cab-1.
    cabinet.control.field(2, &[s9.epc]).await?;
    let wrong = stream
        .wait_alert("wrong_cabinet", STEP, |a| a["carrier_id"] == s9.id)
        .await?;
    assert_eq!(wrong["device_id"], CAB1, "{wrong}");

    // Both come home: S-2 is returned by the cabinet, missing S-1 is found.
    cabinet.control.field(1, &[s1.epc, s2.epc]).await?;
    wait_state(&site, &s2.id, "in_storage").await?;
    wait_state(&site, &s1.id, "in_storage").await?;
    Ok(())
}
