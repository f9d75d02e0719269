//! Reader supervision: a reader that stops answering is a fault the daemon reports at once; a
//! daemon that stops reporting is a silent reader the server notices by itself.

use std::time::{Duration, Instant};

use custos_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_reader_and_a_dead_daemon_are_noticed_and_recovery_is_seen()
-> anyhow::Result<()> {
    let mut site = Site::start(SiteOptions {
        gate: true,
        server: ServerTuning {
            supervision_interval_secs: 2,
            ..ServerTuning::default()
        },
        ..SiteOptions::default()
    })
    .await?;
    let stream = site.alert_stream().await?;
    site.wait_device_state(GATE, "ok", STEP).await?;

    // The reader stops answering (as if unplugged): a reader fault within 3 s.
    let mark = stream.events().len();
    let silenced = Instant::now();
    site.gate().control.silence(true).await?;
    let fault = stream
        .wait(
            tokio::time::Instant::now() + Duration::from_secs(3),
            "a reader_fault alert for the gate",
            |e| {
                e.event == "alert"
                    && e.data["kind"] == "reader_fault"
                    && e.data["device_id"] == GATE
                    && e.data["detail"]["state"] == "fault"
            },
        )
        .await;
    // Only events after the silence count (a daemon starting up may report a fault too).
    let fresh = stream.events().into_iter().skip(mark).any(|e| {
        e.event == "alert" && e.data["kind"] == "reader_fault" && e.data["device_id"] == GATE
    });
    let fault = fault?.data;
    assert!(fresh, "a reader_fault after the silence: {fault}");
    assert_eq!(fault["detail"]["reader"], "uhf-main", "{fault}");
    assert_eq!(fault["detail"]["fault"]["type"], "no_reply", "{fault}");
    let status = site
        .wait_device_state(
            GATE,
            "fault",
            Duration::from_secs(3).saturating_sub(silenced.elapsed()),
        )
        .await?;
    assert_eq!(status["reader"], "uhf-main", "{status}");

    // The daemon dies: after the supervision interval (2 s) the gate is a silent reader.
    site.gate_mut().kill_daemon().await?;
    let silent = stream
        .wait_alert("reader_silent", Duration::from_secs(10), |a| {
            a["device_id"] == GATE
        })
        .await?;
    assert_eq!(silent["detail"]["never_reported"], false, "{silent}");
    assert!(silent["detail"]["resumed_at"].is_null(), "{silent}");
    site.wait_device_state(GATE, "silent", STEP).await?;

    // Reader and daemon come back: the console shows the gate well again, and the silence
    // alert stays for a guard to resolve, marked as resumed.
    site.gate().control.silence(false).await?;
    site.gate_mut().start_daemon().await?;
    site.wait_device_state(GATE, "ok", STEP).await?;
    let resumed = wait_alerts(&site, None, "reader_silent", STEP, |alerts| {
        alerts
            .iter()
            .any(|a| a["device_id"] == GATE && a["detail"]["resumed_at"].is_string())
    })
    .await?;
    let alert = resumed
        .iter()
        .find(|a| a["device_id"] == GATE)
        .expect("the gate's silence alert");
    assert_eq!(alert["state"], "open", "not resolved by itself: {alert}");
    Ok(())
}
