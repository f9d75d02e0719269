//! `custos-server backup` while the server takes writes, then `restore` into an empty data
//! directory: every write acknowledged before the backup began is in the restored database,
//! and `audit verify` finds the restored trail intact. A backup whose trail was edited is
//! refused and leaves the target empty.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use common::binary::{run, text};
use custos_server::domain::role::Role;
use hyper::Method;
use serde_json::json;
use tokio::sync::Mutex;

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

fn people_ids(db: &std::path::Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM people ORDER BY id").unwrap();
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
    wait_for_acks(&acked, 20).await;

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("custos.backup");
    let before: Vec<i64> = acked.lock().await.clone();
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

    let ids = people_ids(&restored.join("custos.db"));
    for id in &before {
        assert!(
            ids.contains(id),
            "acknowledged person {id} missing after restore"
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
