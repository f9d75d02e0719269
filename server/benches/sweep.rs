//! The periodic sweep over a large site: its time must not grow with the carriers that are
//! fine, only with the few that are due.
//!
//! ```sh
//! cargo bench -p custos-server --bench sweep
//! cargo bench -p custos-server --bench sweep -- --sweeps 20
//! ```
//!
//! For each scale (1,000,000 carriers with 100,000 open sign-outs, then 100,000 carriers with
//! 10,000), a data directory is initialised with `cli::initialise`, then filled with SQL in one
//! transaction: carriers with an EPC tag each, people, sign-outs `out` (one carrier each), 50
//! cabinets and their heartbeats. A realistic handful is due: 5 sign-outs overdue, 5 cabinet
//! removals past their grace period with no sign-out (each also marks its carrier
//! missing), 5 carriers (level S) missing for 61 days
//! (past the 60-day leak deadline), 2 cabinets silent. Then the store is opened as `serve` opens it and
//! [`jobs::sweep_once`] (the real write job, with its commit) runs `--sweeps` times; the first
//! raises the alerts, the others find them raised. Printed: every sweep's time, median and
//! max, the alerts raised, and the `EXPLAIN QUERY PLAN` of each due-set query on the filled
//! file.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custos_server::config::Config;
use custos_server::jobs;
use custos_server::keys::{KEY_FILE, ServerKey};
use custos_server::store::sweeps::DUE_SET_QUERIES;
use custos_server::store::{DB_FILE, Store, StoreOptions};
use custos_server::{AppState, Settings};
use rusqlite::{Connection, params};

const DAY_MS: i64 = 86_400_000;
const CABINETS: usize = 50;
const PEOPLE: usize = 10_000;
/// Each kind of due item.
const DUE: usize = 5;

fn unix_ms_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn sweeps_arg() -> usize {
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--sweeps" {
            return it.next().and_then(|v| v.parse().ok()).expect("--sweeps N");
        }
    }
    20
}

/// Fill a freshly initialised database: `carriers` carriers, `open` of them out on a sign-out,
/// and the handful due (see the module docs).
fn populate(conn: &mut Connection, carriers: usize, open: usize) -> rusqlite::Result<()> {
    let now = unix_ms_now();
    let tx = conn.transaction()?;
    tx.execute_batch(
        "INSERT INTO zones (id, name, level, created_at) VALUES
             ('vault', 'vault', 'TS', '2026-01-01T00:00:00Z');",
    )?;
    {
        let mut device = tx.prepare(
            "INSERT INTO devices (id, kind, public_key, zone, created_at)
             VALUES (?1, 'cabinet', ?2, 'vault', '2026-01-01T00:00:00Z')",
        )?;
        let mut status = tx.prepare(
            "INSERT INTO device_status (device_id, last_heartbeat_ms, health_json)
             VALUES (?1, ?2, '{}')",
        )?;
        for d in 0..CABINETS {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(d as u64 + 1).to_be_bytes());
            device.execute(params![format!("cab-{d}"), &key[..]])?;
            // The last two are silent for a minute; the others spoke a second ago.
            let heard = if d >= CABINETS - 2 {
                now - 60_000
            } else {
                now - 1_000
            };
            status.execute(params![format!("cab-{d}"), heard])?;
        }
        let mut person = tx.prepare(
            "INSERT INTO people (id, name, department, category, training_valid_until,
                                 commitment_signed_on, created_at)
             VALUES (?1, ?2, 'R&D', 'core', '2099-12-31', '2025-01-01', '2026-01-01T00:00:00Z')",
        )?;
        for p in 1..=PEOPLE {
            person.execute(params![p as i64, format!("Person {p}")])?;
        }
        let mut carrier = tx.prepare(
            "INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, home_device,
                                   state, holder, missing_since_ms, created_at)
             VALUES (?1, ?2, 'paper', 'S', 'title', 'unit', ?3, ?4, ?5, ?6,
                     '2026-01-01T00:00:00Z')",
        )?;
        let mut tag = tx.prepare("INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)")?;
        let mut signout = tx.prepare(
            "INSERT INTO signouts (id, requester, borrower, purpose, due_at_ms, may_leave, state,
                                   created_at, issued_at_ms)
             VALUES (?1, 1, ?2, 'work', ?3, 0, 'out', '2026-01-01T00:00:00Z', ?4)",
        )?;
        let mut on =
            tx.prepare("INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (?1, ?1)")?;
        let mut removal = tx.prepare(
            "INSERT INTO pending_removals (device_id, carrier_id, removed_at_ms) VALUES (?1, ?2, ?3)",
        )?;
        for i in 1..=carriers {
            let id = i as i64;
            let home = format!("cab-{}", i % CABINETS);
            // Carriers 1..=open are out; of them the first DUE are overdue. The next DUE are
            // missing for 61 days, the next DUE were taken from their cabinet 10 minutes ago.
            let out = i <= open;
            let missing = i > open && i <= open + DUE;
            let removed = i > open + DUE && i <= open + 2 * DUE;
            let holder = out.then(|| (i % PEOPLE) as i64 + 1);
            let state = if out {
                "out"
            } else if missing {
                "missing"
            } else {
                "in_storage"
            };
            carrier.execute(params![
                id,
                format!("CU-{i}"),
                home,
                state,
                holder,
                missing.then_some(now - 61 * DAY_MS),
            ])?;
            tag.execute(params![format!("epc:3074257BF7{i:014X}"), id])?;
            if out {
                let due = if i <= DUE {
                    now - DAY_MS
                } else {
                    now + (i as i64 % 30 + 1) * DAY_MS
                };
                signout.execute(params![id, holder, due, now - 2 * DAY_MS])?;
                on.execute([id])?;
            }
            if removed {
                removal.execute(params![home, id, now - 600_000])?;
            }
        }
    }
    // No ANALYZE: a deployed server never runs it, so the plans here are the ones it gets.
    tx.commit()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn scale(carriers: usize, open: usize, sweeps: usize) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    custos_server::cli::initialise(&data, "admin", "bench admin password".to_owned())
        .await
        .expect("init");
    let started = Instant::now();
    let started_ms = unix_ms_now();
    let mut conn = Connection::open(data.join(DB_FILE)).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    populate(&mut conn, carriers, open).unwrap();
    let size = std::fs::metadata(data.join(DB_FILE)).unwrap().len();
    println!(
        "\n{carriers} carriers, {open} open sign-outs: populated in {:.1} s ({} MiB)",
        started.elapsed().as_secs_f64(),
        size >> 20
    );
    for (name, sql) in DUE_SET_QUERIES {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([0_i64], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            !plan.contains("SCAN carriers") && !plan.contains("SCAN signouts"),
            "{name} scans: {plan}"
        );
        println!("  plan {name}: {plan}");
    }
    // Filling took a while: the 48 speaking cabinets spoke a second ago, as of now.
    conn.execute(
        "UPDATE device_status SET last_heartbeat_ms = ?1 WHERE last_heartbeat_ms >= ?2",
        params![unix_ms_now() - 1_000, started_ms - 2_000],
    )
    .unwrap();
    drop(conn);

    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    let store = Store::open(&data.join(DB_FILE), StoreOptions::default())
        .await
        .unwrap();
    let key = ServerKey::load(&data.join(KEY_FILE)).unwrap();
    let state = AppState::new(store, key, Settings::from(&config));
    let mut times = Vec::with_capacity(sweeps);
    let mut raised = 0;
    let mut marked = 0;
    for _ in 0..sweeps {
        let t = Instant::now();
        let outcome = jobs::sweep_once(&state).await.unwrap();
        times.push(t.elapsed());
        raised += outcome.raised;
        marked += outcome.marked_missing;
    }
    let list: Vec<String> = times.iter().map(|t| format!("{:.2}", ms(*t))).collect();
    let first = times[0];
    times.sort_unstable();
    let median = times[times.len() / 2];
    println!("  sweeps (ms): {}", list.join(" "));
    println!(
        "  {sweeps} sweeps: first {:.2} ms, median {:.2} ms, max {:.2} ms; \
         alerts raised {raised}, carriers marked missing {marked}",
        ms(first),
        ms(median),
        ms(*times.last().unwrap())
    );
    let kinds: Vec<(String, i64)> = state
        .store()
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT kind, count(*) FROM alerts GROUP BY kind ORDER BY kind")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    println!("  alerts by kind: {kinds:?}");
    // Overdue 5, cabinet removals 5 (each also `missing`), leak deadlines 5, silent readers 2.
    assert_eq!(raised, 4 * DUE + 2, "the handful due, each once");
    median
}

#[tokio::main]
async fn main() {
    let sweeps = sweeps_arg();
    let large = scale(1_000_000, 100_000, sweeps).await;
    let small = scale(100_000, 10_000, sweeps).await;
    println!(
        "\nmedian sweep: {:.2} ms with 1,000,000 carriers, {:.2} ms with 100,000 (ratio {:.2})",
        ms(large),
        ms(small),
        large.as_secs_f64() / small.as_secs_f64()
    );
}
