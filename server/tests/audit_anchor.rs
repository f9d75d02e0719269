//! The audit trail anchored outside the database (`[audit] anchor_file`,
//! `audit verify --anchor`), against the attacks of issue #9 on a real database file: with the
//! server stopped, drop the append-only triggers and cut the tail together with its signed
//! heads; empty the trail entirely; rewrite the tail and drop its heads. Each passes a plain
//! `audit verify` (the heads lived in the file they protect) and fails with the anchor, which
//! names the missing or diverging range.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::binary::{Serving, run, text};
use custos_server::domain::audit::{EntryFields, entry_hash, hex};
use hyper::Method;
use serde_json::json;

const PASSWORD: &str = "anchor admin password";

/// A data directory with five entries (init's user, a session, three zones) whose heads were
/// signed by a server configured with an anchor file; the directory and the anchor file.
async fn anchored_trail(tmp: &Path) -> (PathBuf, PathBuf) {
    let data = tmp.join("data");
    let anchor = tmp.join("anchor").join("heads");
    std::fs::create_dir_all(anchor.parent().unwrap()).unwrap();
    let pw = tmp.join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = run(&[
        "init",
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-user",
        "root",
        "--admin-password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "init: {}", text(&out.stderr));
    let config = tmp.join("custos.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[audit]\nanchor_file = {:?}\n",
            data.to_str().unwrap(),
            anchor.to_str().unwrap()
        ),
    )
    .unwrap();
    let serving = Serving::start_with(&["serve", "--config", config.to_str().unwrap()]);
    let login = common::call(
        serving.addr,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"username": "root", "password": PASSWORD})),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["token"].as_str().unwrap().to_owned();
    for zone in ["z1", "z2", "z3"] {
        let reply = common::call(
            serving.addr,
            Method::POST,
            "/api/v1/zones",
            Some(&token),
            Some(json!({"id": zone, "name": zone, "level": "S"})),
        )
        .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    serving.terminate();
    (data, anchor)
}

fn verify(data: &Path, anchor: Option<&Path>) -> Output {
    let mut args = vec!["audit", "verify", "--data-dir", data.to_str().unwrap()];
    if let Some(anchor) = anchor {
        args.extend(["--anchor", anchor.to_str().unwrap()]);
    }
    run(&args)
}

/// Run SQL on the stopped server's database with the append-only triggers dropped, as
/// someone holding the file can.
fn tamper(data: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(data.join("custos.db")).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF; DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
         DROP TRIGGER audit_heads_no_update; DROP TRIGGER audit_heads_no_delete; {sql}"
    ))
    .unwrap();
}

fn assert_verdict(out: &Output, code: i32, expected: &str) {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout} {}",
        text(&out.stderr)
    );
    assert!(stdout.contains(expected), "{expected:?} not in {stdout:?}");
}

#[tokio::test]
async fn the_anchor_file_holds_every_signed_head_and_an_intact_trail_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, anchor) = anchored_trail(tmp.path()).await;
    let lines = std::fs::read_to_string(&anchor).unwrap();
    let seqs: Vec<&str> = lines
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(seqs.first(), Some(&"1"), "{lines}");
    assert_eq!(
        seqs.last(),
        Some(&"5"),
        "the head signed at shutdown: {lines}"
    );
    assert_verdict(
        &verify(&data, Some(&anchor)),
        0,
        "intact: 5 entries, signed through entry 5",
    );
}

#[tokio::test]
async fn a_tail_cut_with_its_heads_is_caught_by_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, anchor) = anchored_trail(tmp.path()).await;
    tamper(
        &data,
        "DELETE FROM audit WHERE id > 3; DELETE FROM audit_heads WHERE entry_id > 3;",
    );
    // The attack of issue #9: without the anchor the cut trail checks out.
    assert_verdict(&verify(&data, None), 0, "intact: 3 entries");
    assert_verdict(
        &verify(&data, Some(&anchor)),
        1,
        "first bad entry 4; entries 4..=5 missing",
    );
}

#[tokio::test]
async fn a_wholly_emptied_trail_is_caught_by_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, anchor) = anchored_trail(tmp.path()).await;
    tamper(&data, "DELETE FROM audit; DELETE FROM audit_heads;");
    assert_verdict(&verify(&data, None), 0, "intact: 0 entries");
    assert_verdict(
        &verify(&data, Some(&anchor)),
        1,
        "first bad entry 1; entries 1..=5 missing",
    );
}

#[tokio::test]
async fn a_rewritten_tail_without_its_heads_is_caught_by_the_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, anchor) = anchored_trail(tmp.path()).await;
    // Rewrite entry 5 consistently (new actor, recomputed hash) and drop its signed head.
    let conn = rusqlite::Connection::open(data.join("custos.db")).unwrap();
    let (at, action, subject, before, after, prev): (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Vec<u8>,
    ) = conn
        .query_row(
            "SELECT at, action, subject, before_json, after_json, prev_hash FROM audit WHERE id = 5",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    drop(conn);
    let forged = entry_hash(
        &prev,
        5,
        &EntryFields {
            at: &at,
            actor: "someone-else",
            action: &action,
            subject: &subject,
            before: before.as_deref(),
            after: after.as_deref(),
        },
    );
    tamper(
        &data,
        &format!(
            "UPDATE audit SET actor = 'someone-else', hash = X'{}' WHERE id = 5;
             DELETE FROM audit_heads WHERE entry_id = 5;",
            hex(&forged)
        ),
    );
    assert_verdict(&verify(&data, None), 0, "intact: 5 entries");
    // The anchor confirms entry 1 (the head signed at start); the rewrite is after it.
    assert_verdict(
        &verify(&data, Some(&anchor)),
        1,
        "first bad entry 2; entries 2..=5 diverging",
    );
}

#[tokio::test]
async fn a_forged_anchor_line_is_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, anchor) = anchored_trail(tmp.path()).await;
    let mut lines = std::fs::read_to_string(&anchor).unwrap();
    lines.push_str(&format!("9 {} {}\n", "00".repeat(32), "00".repeat(64)));
    std::fs::write(&anchor, lines).unwrap();
    let out = verify(&data, Some(&anchor));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("signature does not verify"), "{stderr}");
}
