//! Witness heads: the real server hands its latest signed audit head to the gate in its acks,
//! and the real daemon keeps it (verified with its pinned server key) in its data directory,
//! where `custos-server audit verify --witness FILE` checks the trail against it (issue #9,
//! audit anchors outside the database).

use custos_daemon::keys::PublicKey;
use custos_daemon::witness::{FILE_NAME, Witness};
use custos_e2e::bins::binaries;
use custos_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_keeps_the_servers_signed_audit_head_from_its_acks() -> anyhow::Result<()> {
    let site = Site::start(SiteOptions {
        gate: true,
        ..SiteOptions::default()
    })
    .await?;
    // A heartbeat answered after this point carried the head the server signed at start.
    site.wait_heartbeat(GATE, "a heartbeat", |_| true).await?;
    let gate = site.gate();
    let witness_file = gate.data_dir.join(FILE_NAME);
    let server_key: PublicKey = site.server_key.parse()?;
    let head = poll_some("the gate to witness an audit head", STEP, || {
        let witness_file = witness_file.clone();
        async move {
            if !witness_file.exists() {
                return Ok(None);
            }
            // `open` verifies the head's signature with the server key.
            Ok(Witness::open(gate.data_dir.as_path(), server_key)?
                .held()
                .copied())
        }
    })
    .await?;
    let db = site.server_db()?;
    let stored: Vec<u8> = db.query_row(
        "SELECT hash FROM audit_heads WHERE entry_id = ?1",
        [i64::try_from(head.seq)?],
        |r| r.get(0),
    )?;
    assert_eq!(
        stored,
        head.hash.to_vec(),
        "the witnessed head is the server's"
    );

    let out = tokio::process::Command::new(&binaries().server)
        .args(["audit", "verify", "--data-dir"])
        .arg(&site.server_dir)
        .arg("--witness")
        .arg(&witness_file)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("audit chain intact"), "{stdout}");
    Ok(())
}
