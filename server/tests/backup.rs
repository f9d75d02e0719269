//! `custos-server backup` while the server takes writes (people created through the API and
//! signed device event batches), then `restore` into an empty data
//! directory: every write acknowledged before the backup began is in the restored database,
//! and `audit verify` finds the restored trail intact. A backup whose trail was edited is
//! refused and leaves the target empty.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::binary::{run, text};
use common::{ADMIN_PASSWORD, Server, raw_exchange};
use custos_protocol::uplink::{
    Batch, Event, EventBody, SIGNATURE_HEADER, SignedKind, signing_bytes,
};
use custos_server::domain::role::Role;
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;
use tokio::sync::Mutex;

/// Register cabinet `cab-1` (in zone `vault`) with a key made here; the key.
async fn cabinet(server: &Server) -> Ed25519KeyPair {
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    let r = server
        .call(
            Method::POST,
            "/api/v1/zones",
            Some(&admin),
            Some(json!({"id": "vault", "name": "vault", "level": "S"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let r = server
        .call(
            Method::POST,
            "/api/v1/devices",
            Some(&admin),
            Some(json!({"id": "cab-1", "kind": "cabinet", "zone": "vault",
                        "public_key": STANDARD.encode(key.public_key().as_ref())})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    key
}

/// Send cabinet counts (one event per signed batch, sequence 1, 2, ...) until `stop`; the
/// sequence numbers the server acknowledged (200), in order.
fn event_load(
    server: &Server,
    key: Ed25519KeyPair,
    acked: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let addr = server.addr;
    let now_ms = server.now().unix() * 1000;
    tokio::spawn(async move {
        let mut seq = 0_u64;
        while !stop.load(Ordering::SeqCst) {
            seq += 1;
            let at_ms = now_ms + i64::try_from(seq).unwrap();
            let body = serde_json::to_vec(&Batch {
                device_id: "cab-1".into(),
                epoch: 1,
                events: vec![Event {
                    seq,
                    at_ms,
                    body: EventBody::CabinetSnapshot {
                        reader: "shelves".into(),
                        present: vec![],
                        added: vec![],
                        removed: vec![],
                    },
                }],
            })
            .unwrap();
            let sig = STANDARD.encode(key.sign(&signing_bytes(SignedKind::Batch, &body)).as_ref());
            let reply = raw_exchange(
                addr,
                Method::POST,
                "/api/v1/devices/cab-1/batches",
                &[
                    ("content-type", "application/json"),
                    (SIGNATURE_HEADER, &sig),
                ],
                body,
            )
            .await;
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.bytes)
            );
            acked.lock().await.push(i64::try_from(seq).unwrap());
        }
    })
}

/// Create people as fast as the server answers until `stop`; the ids of the acknowledged
/// (201) creations, in order.
fn write_load(
    server: &Server,
    token: String,
    acked: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let addr = server.addr;
    tokio::spawn(async move {
        let mut n = 0_u32;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let reply = common::call(
                addr,
                Method::POST,
                "/api/v1/people",
                Some(&token),
                Some(json!({"name": format!("载荷{n}"), "department": "一处", "category": "general"})),
            )
            .await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
            let id: i64 = reply.body["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("an id");
            acked.lock().await.push(id);
        }
    })
}

async fn wait_for_acks(acked: &Mutex<Vec<i64>>, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().await.len() < at_least {
        assert!(Instant::now() < deadline, "the write load made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ids(db: &std::path::Path, sql: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_acknowledged_write_and_an_intact_trail() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let officer = tokens[&Role::SecurityOfficer].clone();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(&server, officer, Arc::clone(&acked), Arc::clone(&stop));
    let events = Arc::new(Mutex::new(Vec::new()));
    let key = cabinet(&server).await;
    let event_task = event_load(&server, key, Arc::clone(&events), Arc::clone(&stop));
    wait_for_acks(&acked, 20).await;
    wait_for_acks(&events, 20).await;

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("custos.backup");
    let before: Vec<i64> = acked.lock().await.clone();
    let events_before: Vec<i64> = events.lock().await.clone();
    let data = server.dir.path().to_str().unwrap().to_owned();
    let out = file.to_str().unwrap().to_owned();
    let backup =
        tokio::task::spawn_blocking(move || run(&["backup", "--data-dir", &data, "--out", &out]))
            .await
            .unwrap();
    assert!(backup.status.success(), "backup: {}", text(&backup.stderr));
    // Writes went on during the backup.
    let during = acked.lock().await.len();
    wait_for_acks(&acked, during + 5).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    event_task.await.unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "a backup holds secrets");

    let again = run(&[
        "backup",
        "--data-dir",
        server.dir.path().to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );

    let restored = tmp.path().join("restored");
    let out = run(&[
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "restore: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit chain intact"),
        "{}",
        text(&out.stdout)
    );

    let db = restored.join("custos.db");
    let people = ids(&db, "SELECT id FROM people ORDER BY id");
    for id in &before {
        assert!(
            people.contains(id),
            "acknowledged person {id} missing after restore"
        );
    }
    let seqs = ids(
        &db,
        "SELECT seq FROM events WHERE device_id = 'cab-1' ORDER BY seq",
    );
    for seq in &events_before {
        assert!(
            seqs.contains(seq),
            "acknowledged event {seq} missing after restore"
        );
    }
    let verify = run(&["audit", "verify", "--data-dir", restored.to_str().unwrap()]);
    assert!(verify.status.success(), "verify: {}", text(&verify.stdout));

    let twice = run(&[
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(!twice.status.success());
    assert!(
        text(&twice.stderr).contains("not empty"),
        "{}",
        text(&twice.stderr)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_backup_with_an_edited_trail_is_not_restored() {
    let server = Server::start().await;
    let _ = server.tokens_per_role().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("custos.backup");
    let out = run(&[
        "backup",
        "--data-dir",
        server.dir.path().to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET actor = 'user:someone-else' WHERE id = 2;",
        )
        .unwrap();
    }
    let target = tmp.path().join("target");
    let out = run(&[
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "a broken trail must be refused");
    assert!(
        text(&out.stderr).contains("broken"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing left behind"
    );
    server.stop().await.unwrap();
}
