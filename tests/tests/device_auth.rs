//! Device authentication at the real server: a batch signed with a key the device was not
//! registered with is refused and raises `device_auth_failed`; a correctly signed batch sent
//! twice is stored once and answered the same way both times.

use custos_daemon::keys::{DeviceKey, PublicKey};
use custos_e2e::http::{Reply, request};
use custos_e2e::*;
use custos_protocol::uplink::{
    Batch, BatchAck, Direction, Event, EventBody, Outcome, SIGNATURE_HEADER, SignedKind,
    TagSighting,
};
use hyper::Method;

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(now.as_millis()).expect("in range")
}

/// A batch from the gate: carrier `epc` carried out, seq 1 of epoch 1.
fn exit_batch(epc: custos_protocol::epc::Epc) -> Vec<u8> {
    let at_ms = now_ms();
    let batch = Batch {
        device_id: GATE.to_owned(),
        epoch: 1,
        events: vec![Event {
            seq: 1,
            at_ms,
            body: EventBody::Passage {
                reader: "uhf-main".to_owned(),
                direction: Direction::Out,
                tags: vec![TagSighting {
                    epc,
                    antenna_first: 1,
                    antenna_last: 3,
                    reads: 5,
                    peak_rssi: 180,
                    first_ms: at_ms - 600,
                    last_ms: at_ms,
                }],
                badges: vec![],
                local_verdict: None,
            },
        }],
    };
    serde_json::to_vec(&batch).expect("a batch serialises")
}

async fn post_batch(site: &Site, body: &[u8], signature: &str) -> anyhow::Result<Reply> {
    request(
        site.addr,
        Method::POST,
        &format!("/api/v1/devices/{GATE}/batches"),
        &[
            ("content-type", "application/json"),
            (SIGNATURE_HEADER, signature),
        ],
        body.to_vec(),
    )
    .await
}

fn stored_events(site: &Site) -> anyhow::Result<i64> {
    Ok(site.server_db()?.query_row(
        "SELECT count(*) FROM events WHERE device_id = ?1",
        [GATE],
        |r| r.get(0),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_batch_is_refused_and_a_replayed_one_is_stored_once() -> anyhow::Result<()> {
    let site = Site::start(SiteOptions::default()).await?;
    let stream = site.alert_stream().await?;
    let carrier = site.carrier("S-2").clone();
    let body = exit_batch(carrier.epc);

    // Forged: signed with a key of the forger's own, not the one gate-1 was registered with.
    let forger = site.root().join("forger.key");
    keygen(&forger).await?;
    let forged = DeviceKey::load(&forger)?.sign(SignedKind::Batch, &body);
    let reply = post_batch(&site, &body, &forged).await?;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(
        reply.json()["error"],
        "device_auth_failed",
        "{}",
        reply.text()
    );
    assert!(
        reply.headers.get(SIGNATURE_HEADER).is_none(),
        "refusals are not signed"
    );
    let alert = stream
        .wait_alert("device_auth_failed", STEP, |a| a["device_id"] == GATE)
        .await?;
    assert_eq!(
        alert["detail"]["reason"], "signature does not verify",
        "{alert}"
    );
    assert_eq!(stored_events(&site)?, 0, "nothing stored");

    // Genuine, then replayed byte for byte.
    let key = DeviceKey::load(site.keys.get(GATE).expect("gate key"))?;
    let signature = key.sign(SignedKind::Batch, &body);
    let server_key: PublicKey = site.server_key.parse()?;
    let mut acks = Vec::new();
    for attempt in 0..2 {
        let reply = post_batch(&site, &body, &signature).await?;
        assert_eq!(reply.status, 200, "attempt {attempt}: {}", reply.text());
        let sig = reply
            .headers
            .get(SIGNATURE_HEADER)
            .expect("a signed ack")
            .as_bytes();
        server_key.verify(SignedKind::BatchAck, &reply.bytes, sig)?;
        let ack: BatchAck = serde_json::from_slice(&reply.bytes)?;
        acks.push(ack);
    }
    assert_eq!(acks[0], acks[1], "the replay gets the same answer");
    let ack = &acks[0];
    assert_eq!((ack.epoch, ack.acked_through), (1, 1));
    assert_eq!(ack.verdicts.len(), 1, "{ack:?}");
    assert!(
        matches!(ack.verdicts[0].outcome, Outcome::Alarm { .. }),
        "a removal without sign-out: {ack:?}"
    );
    assert_eq!(stored_events(&site)?, 1, "stored once");
    let removals =
        wait_alerts(&site, None, "unauthorized_removal", STEP, |a| !a.is_empty()).await?;
    assert_eq!(removals.len(), 1, "one alert: {removals:?}");
    assert_eq!(removals[0]["occurrences"], 1, "raised once: {removals:?}");
    assert_eq!(removals[0]["carrier_id"], carrier.id);
    let auth_failures = site.alerts(None, Some("device_auth_failed")).await?;
    assert_eq!(
        auth_failures.len(),
        1,
        "the replay is no auth failure: {auth_failures:?}"
    );
    assert_eq!(auth_failures[0]["occurrences"], 1, "{auth_failures:?}");

    // A forged copy of the genuine batch (one byte changed, same signature) is refused too.
    let mut tampered = body.clone();
    let at = tampered
        .iter()
        .position(|&b| b == b'5')
        .expect("the batch has a digit 5");
    tampered[at] = b'6';
    let reply = post_batch(&site, &tampered, &signature).await?;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(stored_events(&site)?, 1, "still stored once");
    Ok(())
}
