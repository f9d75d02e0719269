//! Ingest throughput through the real stack, beside bare SQLite inserts of the same rows.
//!
//! ```sh
//! cargo bench -p custos-server --bench ingest            # defaults below
//! cargo bench -p custos-server --bench ingest -- --secs 10 --clients 4 --batch 100
//! ```
//!
//! 1. **Server.** `cli::initialise` a temporary data directory (a real SQLite file), open the
//!    store and [`launch`] the server on 127.0.0.1:0, exactly as `serve` does. Zones and one
//!    gate per client are registered over HTTP; people with badges, carriers with EPC tags and
//!    the sign-outs of half of them are seeded with SQL in one write job (set-up, not measured).
//!    Each client is one gate: a tokio task with one keep-alive HTTP/1.1 connection (hyper)
//!    that posts its gate's batches one after another, each `--batch` passage events with one
//!    carrier tag, signed with the gate's Ed25519 key. The batches are built and signed before
//!    the clock starts (a daemon does that on its own machine); the clients share the 2 cores
//!    with the server all the same. Of the passages, `--unauthorised` percent take a carrier
//!    that is not signed out through the gate outwards (an `unauthorized_removal` alarm and
//!    alert), the others are an outward passage of a signed-out carrier with its borrower's
//!    badge, or an inward passage (allowed). Every answer is checked: 200, the ack acknowledges
//!    the batch, and the alarms counted equal the unauthorised passages sent. Latency is per
//!    batch, from sending the request to the last byte of the answer.
//! 2. **Bare inserts.** The same events, in the same order, into a fresh file with the same
//!    schema and pragmas (WAL, `synchronous=FULL`, foreign keys): per event one `events` row
//!    (with the same body and verdict JSON), one `carrier_events` row and the carrier's
//!    `last_seen` update; per batch the `device_epochs` upsert and one COMMIT. No lookups, no
//!    rules, no alerts, no audit, no HTTP, no signatures. Then the same with
//!    `synchronous=NORMAL`, to show what durability costs.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    Batch, BatchAck, Direction, Event, EventBody, Outcome, SIGNATURE_HEADER, SignedKind,
    TagSighting, signing_bytes,
};
use custos_server::config::Config;
use custos_server::keys::{KEY_FILE, ServerKey};
use custos_server::store::{DB_FILE, Store, StoreOptions, migrations};
use custos_server::{AppState, Settings, launch};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use tokio::net::TcpStream;

const ADMIN_PASSWORD: &str = "bench admin password";
const DAY_MS: i64 = 86_400_000;

/// Command-line settings.
#[derive(Debug, Clone, Copy)]
struct Args {
    /// Seconds of posting.
    secs: u64,
    /// Concurrent clients (one gate each).
    clients: usize,
    /// Passage events per batch.
    batch: usize,
    /// Carriers per gate.
    carriers: usize,
    /// Percent of the carriers that are out on a sign-out that lets them leave.
    signed_out: usize,
    /// People with badges (the borrowers).
    people: usize,
    /// Percent of passages that are unauthorised removals.
    unauthorised: u64,
    /// Upper bound of events prepared per client per second of `secs`.
    cap_per_sec: usize,
}

fn args() -> Args {
    let mut a = Args {
        secs: 10,
        clients: 4,
        batch: 100,
        carriers: 5_000,
        signed_out: 10,
        people: 1_000,
        unauthorised: 5,
        cap_per_sec: 30_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--secs" => a.secs = value(),
            "--clients" => a.clients = value() as usize,
            "--batch" => a.batch = value() as usize,
            "--carriers" => a.carriers = value() as usize,
            "--signed-out" => a.signed_out = value() as usize,
            "--people" => a.people = value() as usize,
            "--unauthorised" => a.unauthorised = value(),
            "--cap-per-sec" => a.cap_per_sec = value() as usize,
            // cargo bench passes --bench; filters are not used here.
            _ => {}
        }
    }
    assert!((1..=256).contains(&a.batch), "--batch is 1 to 256");
    assert!(a.clients >= 1 && a.people >= 1 && (1..100).contains(&a.signed_out));
    assert!(a.out_per_gate() >= 1 && a.out_per_gate() < a.carriers);
    a
}

impl Args {
    /// Carriers `0..out_per_gate()` of each gate are signed out, the others in storage.
    fn out_per_gate(&self) -> usize {
        self.carriers * self.signed_out / 100
    }
}

fn unix_ms_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// The EPC of carrier `g` (global index) or badge `p` (distinct prefixes).
fn carrier_epc(g: usize) -> Epc {
    Epc::from_hex(&format!("3074257BF7{g:014X}")).unwrap()
}

fn badge_epc(p: usize) -> Epc {
    Epc::from_hex(&format!("E2000000{p:016X}")).unwrap()
}

/// The global index of carrier `i` of gate `d`.
fn carrier_index(args: &Args, d: usize, i: usize) -> usize {
    d * args.carriers + i
}

fn borrower_of(args: &Args, g: usize) -> usize {
    g % args.people
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One prepared request.
struct Prepared {
    batch: Batch,
    body: Bytes,
    signature: String,
    unauthorised: usize,
}

/// The batches of gate `d`, numbered from seq 1 of epoch 1.
fn prepare(args: &Args, d: usize, key: &Ed25519KeyPair, count: usize) -> Vec<Prepared> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (d as u64 + 1));
    let device = format!("gate-{d}");
    let mut at_ms = unix_ms_now();
    let mut seq = 0u64;
    (0..count)
        .map(|_| {
            let mut unauthorised = 0;
            let events = (0..args.batch)
                .map(|_| {
                    seq += 1;
                    at_ms += 1;
                    let roll = rng.next() % 100;
                    let out = args.out_per_gate();
                    let (i, direction, badge) = if roll < args.unauthorised {
                        unauthorised += 1;
                        (out + rng.below(args.carriers - out), Direction::Out, None)
                    } else if roll < 50 + args.unauthorised / 2 {
                        let i = rng.below(out);
                        let g = carrier_index(args, d, i);
                        (i, Direction::Out, Some(borrower_of(args, g)))
                    } else {
                        (rng.below(args.carriers), Direction::In, None)
                    };
                    let sighting = |epc: Epc| TagSighting {
                        epc,
                        antenna_first: 1,
                        antenna_last: 3,
                        reads: 6,
                        peak_rssi: 190,
                        first_ms: at_ms - 500,
                        last_ms: at_ms,
                    };
                    Event {
                        seq,
                        at_ms,
                        body: EventBody::Passage {
                            reader: "uhf-main".into(),
                            direction,
                            tags: vec![sighting(carrier_epc(carrier_index(args, d, i)))],
                            badges: badge.map(|p| sighting(badge_epc(p))).into_iter().collect(),
                            local_verdict: None,
                        },
                    }
                })
                .collect();
            let batch = Batch {
                device_id: device.clone(),
                epoch: 1,
                events,
            };
            let body = serde_json::to_vec(&batch).unwrap();
            let signature = STANDARD.encode(key.sign(&signing_bytes(SignedKind::Batch, &body)));
            Prepared {
                batch,
                body: Bytes::from(body),
                signature,
                unauthorised,
            }
        })
        .collect()
}

/// Zones, one gate per client (`gate-D`), for the bare-insert file (the server registers its
/// gates over HTTP).
fn seed_devices(conn: &Connection, args: &Args, keys: &[Ed25519KeyPair]) -> rusqlite::Result<()> {
    conn.execute_batch(
        "INSERT INTO zones (id, name, level, created_at) VALUES
             ('vault', 'vault', 'S', '2026-01-01T00:00:00Z'),
             ('street', 'street', 'public', '2026-01-01T00:00:00Z');",
    )?;
    for (d, key) in keys.iter().enumerate().take(args.clients) {
        conn.execute(
            "INSERT INTO devices (id, kind, public_key, inside_zone, outside_zone, created_at)
             VALUES (?1, 'gate', ?2, 'vault', 'street', '2026-01-01T00:00:00Z')",
            params![format!("gate-{d}"), key.public_key().as_ref()],
        )?;
    }
    Ok(())
}

/// Carriers with their tags; with `custody`, also people with badges and a sign-out for each
/// of the first `out_per_gate()` carriers of each gate (may leave, due tomorrow).
fn seed_carriers(conn: &Connection, args: &Args, custody: bool) -> rusqlite::Result<()> {
    let now = unix_ms_now();
    if custody {
        let mut person = conn.prepare(
            "INSERT INTO people (id, name, department, category, badge_tag, training_valid_until,
                                 commitment_signed_on, created_at)
             VALUES (?1, ?2, 'R&D', 'core', ?3, '2099-12-31', '2025-01-01', '2026-01-01T00:00:00Z')",
        )?;
        for p in 0..args.people {
            person.execute(params![
                p as i64 + 1,
                format!("Person {p}"),
                badge_epc(p).to_string()
            ])?;
        }
    }
    let mut carrier = conn.prepare(
        "INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, state, holder,
                               created_at)
         VALUES (?1, ?2, 'paper', 'S', 'title', 'unit', ?3, ?4, '2026-01-01T00:00:00Z')",
    )?;
    let mut tag = conn.prepare("INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)")?;
    let mut signout = conn.prepare(
        "INSERT INTO signouts (id, requester, borrower, purpose, due_at_ms, may_leave, state,
                               created_at, issued_at_ms)
         VALUES (?1, 1, ?2, 'work', ?3, 1, 'out', '2026-01-01T00:00:00Z', ?4)",
    )?;
    let mut on =
        conn.prepare("INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (?1, ?1)")?;
    for d in 0..args.clients {
        for i in 0..args.carriers {
            let g = carrier_index(args, d, i);
            let id = g as i64 + 1;
            let out = custody && i < args.out_per_gate();
            let holder = out.then(|| borrower_of(args, g) as i64 + 1);
            carrier.execute(params![
                id,
                format!("B{d}-{i}"),
                if out { "out" } else { "in_storage" },
                holder
            ])?;
            tag.execute(params![format!("epc:{}", carrier_epc(g)), id])?;
            if out {
                signout.execute(params![id, holder, now + DAY_MS, now])?;
                on.execute([id])?;
            }
        }
    }
    Ok(())
}

/// What one client saw.
#[derive(Default)]
struct ClientRun {
    latencies: Vec<Duration>,
    events: usize,
    alarms: usize,
    expected_alarms: usize,
    /// Per posted batch: each event's stored verdict JSON (for the bare inserts).
    verdicts: Vec<Vec<String>>,
}

async fn client(
    addr: SocketAddr,
    batches: Arc<Vec<Prepared>>,
    deadline: Instant,
) -> Result<ClientRun, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut run = ClientRun::default();
    for prepared in batches.iter() {
        if Instant::now() >= deadline {
            break;
        }
        let path = format!("/api/v1/devices/{}/batches", prepared.batch.device_id);
        let request = Request::post(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &prepared.signature)
            .body(Full::new(prepared.body.clone()))
            .map_err(|e| e.to_string())?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let started = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        run.latencies.push(started.elapsed());
        if status != 200 {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        let ack: BatchAck = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        ack.check_answers(&prepared.batch)
            .map_err(|e| e.to_string())?;
        run.events += prepared.batch.events.len();
        run.expected_alarms += prepared.unauthorised;
        run.alarms += ack
            .verdicts
            .iter()
            .filter(|v| matches!(v.outcome, Outcome::Alarm { .. }))
            .count();
        run.verdicts.push(
            ack.verdicts
                .iter()
                .map(|v| serde_json::to_string(&v.outcome).unwrap())
                .collect(),
        );
    }
    Ok(run)
}

/// CPU time (user + system) of this process's threads named `name`, or of the whole process
/// for `None`, from /proc (clock ticks of 10 ms).
fn cpu_time(name: Option<&str>) -> Duration {
    let ticks = |stat: &str| -> u64 {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let total = match name {
        None => ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default()),
        Some(name) => std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm"))
                            .is_ok_and(|c| c.trim() == name)
                    })
                    .map(|t| {
                        ticks(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default())
                    })
                    .sum()
            })
            .unwrap_or(0),
    };
    Duration::from_millis(total * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Insert `work` (batches with their verdicts) the bare way into a fresh file; events/s.
fn bare_inserts(
    dir: &Path,
    args: &Args,
    keys: &[Ed25519KeyPair],
    work: &[(&Batch, &[String])],
    synchronous: &str,
) -> (f64, usize) {
    let path = dir.join(format!("bare-{synchronous}.db"));
    let mut conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))
    .unwrap();
    migrations::migrate(&mut conn).unwrap();
    let tx = conn.transaction().unwrap();
    seed_devices(&tx, args, keys).unwrap();
    seed_carriers(&tx, args, false).unwrap();
    tx.commit().unwrap();
    // The JSON the server stores, made before the clock starts: only inserts are timed.
    let rows: Vec<Vec<(String, String, Option<i64>)>> = work
        .iter()
        .map(|(batch, _)| {
            batch
                .events
                .iter()
                .map(|e| {
                    let EventBody::Passage {
                        direction, tags, ..
                    } = &e.body
                    else {
                        unreachable!("only passages are generated")
                    };
                    let tag = format!("epc:{}", tags[0].epc);
                    let carrier = conn
                        .query_row(
                            "SELECT carrier_id FROM carrier_tags WHERE tag = ?1",
                            [&tag],
                            |r| r.get(0),
                        )
                        .ok();
                    let direction = direction.as_str();
                    (
                        serde_json::to_string(&e.body).unwrap(),
                        direction.to_owned(),
                        carrier,
                    )
                })
                .collect()
        })
        .collect();
    let received = unix_ms_now();
    let started = Instant::now();
    let mut events = 0;
    for ((batch, verdicts), rows) in work.iter().zip(&rows) {
        let tx = conn.transaction().unwrap();
        {
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO events (device_id, epoch, seq, at_ms, received_at_ms, kind,
                                         body_json, verdict_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'passage', ?6, ?7)",
                )
                .unwrap();
            let mut carrier_event = tx
                .prepare_cached(
                    "INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id,
                                                 direction)
                     VALUES (?1, ?2, ?3, 'passage', ?4, ?5)",
                )
                .unwrap();
            let mut seen = tx
                .prepare_cached(
                    "UPDATE carriers SET last_seen_device = ?2, last_seen_at_ms = ?3
                     WHERE id = ?1 AND (last_seen_at_ms IS NULL OR last_seen_at_ms <= ?3)",
                )
                .unwrap();
            for ((e, (body, direction, carrier)), verdict) in
                batch.events.iter().zip(rows).zip(verdicts.iter())
            {
                event
                    .execute(params![
                        batch.device_id,
                        batch.epoch as i64,
                        e.seq as i64,
                        e.at_ms,
                        received,
                        body,
                        verdict
                    ])
                    .unwrap();
                let id = tx.last_insert_rowid();
                if let Some(carrier) = carrier {
                    carrier_event
                        .execute(params![carrier, id, e.at_ms, batch.device_id, direction])
                        .unwrap();
                    seen.execute(params![carrier, batch.device_id, e.at_ms])
                        .unwrap();
                }
            }
            tx.prepare_cached(
                "INSERT INTO device_epochs (device_id, epoch, acked_through, first_seen_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, epoch) DO UPDATE SET acked_through = excluded.acked_through",
            )
            .unwrap()
            .execute(params![
                batch.device_id,
                batch.epoch as i64,
                batch.events.last().unwrap().seq as i64,
                received
            ])
            .unwrap();
        }
        tx.commit().unwrap();
        events += batch.events.len();
    }
    let secs = started.elapsed().as_secs_f64();
    (events as f64 / secs, events)
}

#[tokio::main]
async fn main() {
    let args = args();
    println!("ingest bench: {args:?}");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    custos_server::cli::initialise(&data, "admin", ADMIN_PASSWORD.to_owned())
        .await
        .expect("init");
    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    let store = Store::open(&data.join(DB_FILE), StoreOptions::default())
        .await
        .unwrap();
    let key = ServerKey::load(&data.join(KEY_FILE)).unwrap();
    let state = AppState::new(store, key, Settings::from(&config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(launch(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    // Registration over HTTP.
    let keys: Vec<Ed25519KeyPair> = (0..args.clients)
        .map(|_| {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
        })
        .collect();
    let token = post(
        addr,
        "/api/v1/session",
        None,
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (id, level) in [("vault", "S"), ("street", "public")] {
        post(
            addr,
            "/api/v1/zones",
            Some(&token),
            json!({"id": id, "name": id, "level": level}),
        )
        .await;
    }
    for (d, key) in keys.iter().enumerate() {
        post(
            addr,
            "/api/v1/devices",
            Some(&token),
            json!({"id": format!("gate-{d}"), "kind": "gate", "inside_zone": "vault",
                   "outside_zone": "street",
                   "public_key": STANDARD.encode(key.public_key().as_ref())}),
        )
        .await;
    }
    let seeded = Instant::now();
    state
        .store()
        .write(move |c| Ok(seed_carriers(c, &args, true)?))
        .await
        .unwrap();
    println!(
        "seeded {} carriers ({} signed out), {} people in {:.1} s",
        args.clients * args.carriers,
        args.clients * args.out_per_gate(),
        args.people,
        seeded.elapsed().as_secs_f64()
    );

    let per_client = (args.secs as usize * args.cap_per_sec).div_ceil(args.batch);
    let prepared_at = Instant::now();
    let batches: Vec<Arc<Vec<Prepared>>> = keys
        .iter()
        .enumerate()
        .map(|(d, key)| Arc::new(prepare(&args, d, key, per_client)))
        .collect();
    println!(
        "prepared {} signed batches per client in {:.1} s",
        per_client,
        prepared_at.elapsed().as_secs_f64()
    );

    let (writer_before, process_before) = (cpu_time(Some("custos-store-wr")), cpu_time(None));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let tasks: Vec<_> = batches
        .iter()
        .map(|b| tokio::spawn(client(addr, Arc::clone(b), deadline)))
        .collect();
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.unwrap().expect("client run"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let writer_cpu = cpu_time(Some("custos-store-wr")) - writer_before;
    let process_cpu = cpu_time(None) - process_before;
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let mut latencies: Vec<Duration> = runs.iter().flat_map(|r| r.latencies.clone()).collect();
    latencies.sort_unstable();
    let events: usize = runs.iter().map(|r| r.events).sum();
    let alarms: usize = runs.iter().map(|r| r.alarms).sum();
    let expected: usize = runs.iter().map(|r| r.expected_alarms).sum();
    assert_eq!(
        alarms, expected,
        "every unauthorised passage alarmed, nothing else"
    );
    let server_rate = events as f64 / elapsed;
    let stored: i64 = Connection::open(data.join(DB_FILE))
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        stored as usize, events,
        "every acknowledged event is stored"
    );
    println!();
    println!(
        "server: {events} events in {} batches over {elapsed:.2} s from {} clients: \
         {server_rate:.0} events/s, {:.0} batches/s; alarms {alarms} ({:.1}%)",
        latencies.len(),
        args.clients,
        latencies.len() as f64 / elapsed,
        100.0 * alarms as f64 / events as f64
    );
    println!(
        "        CPU per event: store writer thread {:.1} us ({:.0}% of one core busy), \
         whole process (server and clients) {:.1} us",
        writer_cpu.as_secs_f64() * 1e6 / events as f64,
        100.0 * writer_cpu.as_secs_f64() / elapsed,
        process_cpu.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "        latency per batch of {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.batch,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default())
    );

    // The same batches, in round-robin order of the clients, the bare way.
    let mut work: Vec<(&Batch, &[String])> = Vec::new();
    let longest = runs.iter().map(|r| r.verdicts.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (run, prepared) in runs.iter().zip(&batches) {
            if let Some(v) = run.verdicts.get(i) {
                work.push((&prepared[i].batch, v.as_slice()));
            }
        }
    }
    let (full, n) = bare_inserts(tmp.path(), &args, &keys, &work, "FULL");
    let (normal, _) = bare_inserts(tmp.path(), &args, &keys, &work, "NORMAL");
    println!(
        "bare inserts of the same {n} events (one transaction per batch): \
         synchronous=FULL {full:.0} events/s, synchronous=NORMAL {normal:.0} events/s"
    );
    println!(
        "ratio server / bare (both synchronous=FULL): {:.2}",
        server_rate / full
    );
}

async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: Value) -> Value {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}
