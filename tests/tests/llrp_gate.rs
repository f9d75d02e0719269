//! An LLRP portal gate, end to end: `custos-sim llrp-reader` as the gate's reader (over real
//! TCP), `custosd` driving it with the LLRP driver and sounding the alarm through the reader's
//! own GPOs (no Modbus gate I/O module), and `custos-server` judging the passage.

use std::time::Duration;

use custos_e2e::*;

/// An authorised exit through an LLRP gate (the walk read by the LLRP driver, the exit decided
/// with the server's verdict) leaves the reader's alarm GPO alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorised_exit_through_an_llrp_gate_leaves_the_gpo_low() -> anyhow::Result<()> {
    let site = Site::start(SiteOptions {
        gate: true,
        llrp_gate: true,
        ..SiteOptions::default()
    })
    .await?;
    let gate = site.gate();
    let carrier = site.carrier("S-1").clone();
    site.sign_out(&[&carrier.id], ALICE, true, Duration::from_secs(3600))
        .await?;
    gate.wait_policy_allows(carrier.epc, true).await?;
    let gpo = gate.gpo_mark();
    let crossing = gate.walk_out(&[carrier.epc, badge(ALICE_BADGE)]).await?;
    let decided = gate.exit_decided(&crossing).await?;
    assert_eq!(decided["alarm"], "None", "{decided}");
    let raised = gate
        .reader
        .stdout
        .json_since(gpo, |v| v["gpo"] == 1 && v["value"] == true);
    assert!(raised.is_empty(), "the alarm GPO was set: {raised:?}");
    Ok(())
}

/// An unauthorised exit through an LLRP gate sets the reader's alarm GPO (no Modbus module:
/// the daemon writes it with `SET_READER_CONFIG` while the ROSpec streams) and alerts the guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorised_exit_through_an_llrp_gate_sets_the_alarm_gpo() -> anyhow::Result<()> {
    let site = Site::start(SiteOptions {
        gate: true,
        llrp_gate: true,
        ..SiteOptions::default()
    })
    .await?;
    let gate = site.gate();
    let stream = site.alert_stream().await?;
    let carrier = site.carrier("S-2").clone();
    let gpo = gate.gpo_mark();
    let crossing = gate.walk_out(&[carrier.epc]).await?;
    gate.wait_for_gpo_after(gpo, 1, true, Duration::from_secs(5))
        .await?;
    let alert = stream
        .wait_alert("unauthorized_removal", STEP, |a| {
            a["carrier_id"] == carrier.id
        })
        .await?;
    assert_eq!(alert["device_id"], GATE, "{alert}");
    let decided = gate.exit_decided(&crossing).await?;
    assert_eq!(decided["alarm"], "Some(UnauthorizedRemoval)", "{decided}");
    Ok(())
}
