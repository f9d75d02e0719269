//! Crash safety: `custosd` is killed with SIGKILL at random points while tags keep passing the
//! gate, and restarted each time. At the end the server must hold every event exactly once.
//!
//! What "exactly once" is checked as:
//! - for every `(gate-1, epoch)` the server stores the seqs `1..=max`, each once (no gap, no
//!   duplicate), and its `acked_through` for that epoch is `max`;
//! - every passage a daemon logged as stored (its `crossing` entry names the seq; the entry is
//!   written after the outbox commit) is on the server, as a passage in that direction;
//! - after the last daemon stopped cleanly, its outbox is empty.
//!
//! Environment (see tests/README.md for a long manual run):
//! - `CUSTOS_CRASH_KILLS` (default 100): how many kills at least;
//! - `CUSTOS_CRASH_SECS` (default 0): keep killing at least this long;
//! - `CUSTOS_CRASH_SEED` (default fixed): the seed of the kill intervals;
//! - `CUSTOS_CRASH_MIN_MS`, `CUSTOS_CRASH_MAX_MS` (default 50, 400): the range of the time
//!   between a daemon announcing itself and its kill.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use custos_e2e::proc::Proc;
use custos_e2e::*;
use serde_json::Value;

/// A small deterministic generator (SplitMix64): the same seed kills at the same offsets.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// (epoch, seq, direction) of every passage the daemon logged as stored.
fn logged_crossings(proc: &Proc, epoch: u64) -> Vec<(u64, u64, String)> {
    proc.stderr
        .json_since(0, |v| message(v) == "crossing")
        .iter()
        .filter_map(|v| {
            let f = fields(v);
            Some((
                epoch,
                f["seq"].as_u64()?,
                f["direction"].as_str()?.to_lowercase(),
            ))
        })
        .collect()
}

/// Carries tags through the gate until `stop`: out and back in, one tag after another. This
/// is load, not a wait: the daemon dies under it at random moments, so it cannot wait on the
/// daemon, and a step lost to a kill is just a passage that never happened.
async fn walk_forever(
    control: Control,
    tags: Vec<custos_protocol::epc::Epc>,
    stop: Arc<AtomicBool>,
    steps: Arc<AtomicU64>,
) {
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let tag = [tags[i % tags.len()]];
        let (from, to) = if (i / tags.len()) % 2 == 0 {
            (1, 3)
        } else {
            (3, 1)
        };
        let _ = control.field(from, &tag).await;
        pause(120).await;
        let _ = control.field(from, &[]).await;
        let _ = control.field(to, &tag).await;
        pause(120).await;
        let _ = control.field(to, &[]).await;
        pause(200).await;
        steps.fetch_add(1, Ordering::SeqCst);
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_duplicates_no_event() -> anyhow::Result<()> {
    let kills = env_u64("CUSTOS_CRASH_KILLS", 100);
    let min_secs = env_u64("CUSTOS_CRASH_SECS", 0);
    let seed = env_u64("CUSTOS_CRASH_SEED", 0x00C0_FFEE_5EED);
    let (min_ms, max_ms) = (
        env_u64("CUSTOS_CRASH_MIN_MS", 50),
        env_u64("CUSTOS_CRASH_MAX_MS", 400),
    );
    assert!(
        min_ms <= max_ms,
        "CUSTOS_CRASH_MIN_MS > CUSTOS_CRASH_MAX_MS"
    );
    eprintln!(
        "crash loop: at least {kills} kills and {min_secs} s, seed {seed}, kill {min_ms}..={max_ms} ms after start"
    );
    let mut site = Site::start(SiteOptions {
        gate: true,
        daemon: DaemonTuning {
            min_reads: 1,
            holdoff_ms: 150,
            passage_gap_ms: 150,
            verdict_deadline_ms: 300,
            heartbeat_interval_ms: 250,
            alarm_ms: 500,
        },
        ..SiteOptions::default()
    })
    .await?;
    let tags = epcs(&site, &["S-1", "S-2", "S-3", "S-4", "S-5", "S-6"]);
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicU64::new(0));
    let driver = tokio::spawn(walk_forever(
        site.gate().control.clone(),
        tags,
        stop.clone(),
        steps.clone(),
    ));

    let mut rng = SplitMix64(seed);
    let mut logged = Vec::new();
    let started = Instant::now();
    let mut done = 0;
    while done < kills || started.elapsed() < Duration::from_secs(min_secs) {
        // The random point: how long this daemon lives after announcing itself.
        tokio::time::sleep(Duration::from_millis(rng.between(min_ms, max_ms))).await;
        let epoch = site.gate().epoch;
        let killed = site.gate_mut().kill_daemon().await?;
        logged.extend(logged_crossings(&killed, epoch));
        done += 1;
        site.gate_mut().start_daemon().await?;
    }
    let killing = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    driver.await?;
    site.gate().control.clear().await?;

    // Let the last daemon deliver everything, then stop it cleanly.
    site.wait_outbox_drained(GATE).await?;
    let epoch = site.gate().epoch;
    let last = site.gate_mut().stop_daemon().await?;
    logged.extend(logged_crossings(&last, epoch));
    assert_eq!(site.gate().outbox_depth()?, 0, "the outbox is empty");

    // Every (device, epoch): seqs 1..=max, each once, all acknowledged.
    let epochs = site.stored_epochs(GATE)?;
    let db = site.server_db()?;
    let mut total = 0;
    for &(epoch, count, min, max) in &epochs {
        assert_eq!(
            (count, min),
            (max, 1),
            "epoch {epoch}: seqs must be 1..={max}"
        );
        let acked: u64 = db.query_row(
            "SELECT acked_through FROM device_epochs WHERE device_id = ?1 AND epoch = ?2",
            rusqlite::params![GATE, epoch],
            |r| r.get(0),
        )?;
        assert_eq!(acked, max, "epoch {epoch}: acked through its last event");
        total += count;
    }
    // Every passage a daemon stored before it died is there, once, as what it was.
    let unique: BTreeSet<(u64, u64)> = logged.iter().map(|(e, s, _)| (*e, *s)).collect();
    assert_eq!(
        unique.len(),
        logged.len(),
        "a seq logged twice in one epoch"
    );
    for (epoch, seq, direction) in &logged {
        let (kind, body): (String, String) = db
            .query_row(
                "SELECT kind, body_json FROM events WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3",
                rusqlite::params![GATE, epoch, seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("logged passage {epoch}/{seq} not on the server: {e}"));
        assert_eq!(kind, "passage", "{epoch}/{seq}");
        let body: Value = serde_json::from_str(&body)?;
        assert_eq!(
            body["direction"],
            direction.as_str(),
            "{epoch}/{seq}: {body}"
        );
    }
    let replays = site.alerts(None, Some("replay_rejected")).await?;
    eprintln!(
        "crash loop: {done} kills in {killing:.1?}, {} walks, {} epochs with events, {total} events stored, \
         {} passages logged before a kill, {} replay_rejected alerts (late requests of killed daemons)",
        steps.load(Ordering::SeqCst),
        epochs.len(),
        logged.len(),
        replays.len(),
    );
    assert!(done >= kills);
    assert!(
        epochs.len() as u64 >= kills / 2,
        "events flowed in most lives: {} epochs with events",
        epochs.len()
    );
    assert!(!logged.is_empty(), "passages were stored while killing");
    Ok(())
}
