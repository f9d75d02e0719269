//! The server goes down while people pass the gate: the daemon decides with the policy the
//! server signed earlier, keeps the passages in its outbox, and delivers each exactly once when
//! the server is back (same data directory, same address).

use std::time::Duration;

use custos_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passages_while_the_server_is_down_are_decided_locally_and_delivered_once()
-> anyhow::Result<()> {
    let mut site = Site::start(SiteOptions {
        gate: true,
        ..SiteOptions::default()
    })
    .await?;
    let allowed = site.carrier("S-1").clone();
    let refused = site.carrier("S-2").clone();
    site.sign_out(&[&allowed.id], ALICE, true, Duration::from_secs(3600))
        .await?;
    site.gate().wait_policy_allows(allowed.epc, true).await?;

    site.stop_server().await?;
    let gate = site.gate();

    // Alice leaves with her carrier: the cached policy lets her go.
    let coils = gate.coil_mark();
    let out_ok = gate.walk_out(&[allowed.epc, badge(ALICE_BADGE)]).await?;
    let decided = gate.exit_decided(&out_ok).await?;
    assert_eq!(decided["decided_by"], "policy", "{decided}");
    assert_eq!(decided["alarm"], "None", "{decided}");
    assert_eq!(gate.coil_changes_after(coils, 0, true), 0, "no alarm");

    // A carrier that is not signed out: the cached policy sounds the alarm.
    let out_bad = gate.walk_out(&[refused.epc]).await?;
    gate.wait_for_coil_after(coils, 0, true, Duration::from_secs(5))
        .await?;
    let decided = gate.exit_decided(&out_bad).await?;
    assert_eq!(decided["decided_by"], "policy", "{decided}");
    assert_eq!(decided["alarm"], "Some(UnauthorizedRemoval)", "{decided}");
    let epoch = gate.epoch;
    let seqs = [
        out_ok.seq.expect("stored in the outbox"),
        out_bad.seq.expect("stored in the outbox"),
    ];

    // The server comes back on the same address and data: the backlog drains.
    site.start_server().await?;
    site.wait_outbox_drained(GATE).await?;

    // Every event exactly once: per epoch the stored seqs are 1..=max, the passages included.
    let epochs = site.stored_epochs(GATE)?;
    assert!(!epochs.is_empty());
    for (epoch, count, min, max) in &epochs {
        assert_eq!(
            (*count, *min),
            (*max, 1),
            "epoch {epoch}: seqs 1..={max} each once"
        );
    }
    let db = site.server_db()?;
    for seq in seqs {
        let kind: String = db.query_row(
            "SELECT kind FROM events WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3",
            rusqlite::params![GATE, epoch, seq],
            |r| r.get(0),
        )?;
        assert_eq!(kind, "passage", "seq {seq}");
    }
    // The gate's own decisions travelled with the passages (issue 9, finding 8).
    let mut recorded = Vec::new();
    for seq in seqs {
        let body: String = db.query_row(
            "SELECT body_json FROM events WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3",
            rusqlite::params![GATE, epoch, seq],
            |r| r.get(0),
        )?;
        recorded.push(body);
    }
    // Both exits carry the gate's decision, the allowed one (the first after the server
    // stopped) as well as the alarmed one. The first one's upload was attempted, and failed,
    // before the gate decided it; an outbox that froze a passage once handed out for upload
    // (as it did before) delivered it with `null`.
    assert!(
        recorded[0].contains(r#""local_verdict":{"alarm":false,"policy_version":"#),
        "{recorded:?}"
    );
    assert!(
        recorded[1].contains(r#""local_verdict":{"alarm":true"#),
        "{recorded:?}"
    );

    // The server judged the late passages: one removal alert, for the refused carrier only.
    let alerts = wait_alerts(&site, None, "unauthorized_removal", STEP, |a| !a.is_empty()).await?;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["carrier_id"], refused.id, "{alerts:?}");
    assert_eq!(alerts[0]["occurrences"], 1, "{alerts:?}");
    assert!(site.alerts(None, Some("replay_rejected")).await?.is_empty());
    site.gate_mut().stop_daemon().await?;
    assert_eq!(site.gate().outbox_depth()?, 0, "nothing left in the outbox");
    for (carrier, count) in [(&allowed, 1), (&refused, 1)] {
        let passages = site
            .history(&carrier.id)
            .await?
            .into_iter()
            .filter(|h| h["type"] == "passage" && h["direction"] == "out")
            .count();
        assert_eq!(passages, count, "{}", carrier.control_no);
    }
    Ok(())
}
