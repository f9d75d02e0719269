//! The pty link: raw bytes both ways, host reconnects, symlink management.

mod common;

use common::{TempDir, init_tracing, open_host, read_n};
use custos_sim::{PtyLink, SimError};
use tokio::io::AsyncWriteExt;

/// Every byte value, with the ones a cooked tty would mangle spelled out first: CR, LF, CR LF,
/// ^C (INTR), ^D (EOF), ^S/^Q (XOFF/XON), ^Z, DEL, NUL, 0xFF.
fn all_bytes() -> Vec<u8> {
    let mut bytes = vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x03, 0x04, 0x13, 0x11, 0x1A, 0x7F, 0x00, 0xFF,
    ];
    bytes.extend(0..=255u8);
    bytes
}

#[tokio::test]
async fn bytes_pass_unmodified_both_ways() {
    init_tracing();
    let dir = TempDir::new("raw");
    let link_path = dir.join("reader");
    let link = PtyLink::open(&link_path).unwrap();
    assert_eq!(
        std::fs::read_link(&link_path).unwrap(),
        link.slave_path(),
        "the link points at the slave"
    );
    let mut master = link.open_stream().unwrap();
    let mut host = open_host(&link_path);
    let bytes = all_bytes();

    host.write_all(&bytes).await.unwrap();
    assert_eq!(
        read_n(&mut master, bytes.len()).await,
        bytes,
        "host → device"
    );

    // With echo on, the host would read its own bytes back before these.
    master.write_all(&bytes).await.unwrap();
    assert_eq!(read_n(&mut host, bytes.len()).await, bytes, "device → host");
}

#[tokio::test]
async fn host_can_close_and_reopen() {
    init_tracing();
    let dir = TempDir::new("reopen");
    let link_path = dir.join("reader");
    let link = PtyLink::open(&link_path).unwrap();
    let mut master = link.open_stream().unwrap();
    for round in 0..3u8 {
        let mut host = open_host(&link_path);
        host.write_all(&[0xA0, round]).await.unwrap();
        assert_eq!(read_n(&mut master, 2).await, [0xA0, round]);
        master.write_all(&[round, 0x0D]).await.unwrap();
        assert_eq!(read_n(&mut host, 2).await, [round, 0x0D]);
        drop(host);
    }
}

#[tokio::test]
async fn stale_symlink_is_replaced_and_removed_on_drop() {
    init_tracing();
    let dir = TempDir::new("stale");
    let link_path = dir.join("reader");
    std::os::unix::fs::symlink("/dev/pts/does-not-exist", &link_path).unwrap();
    let link = PtyLink::open(&link_path).unwrap();
    assert_eq!(std::fs::read_link(&link_path).unwrap(), link.slave_path());
    assert_eq!(link.host_path(), link_path);
    drop(link);
    assert!(
        std::fs::symlink_metadata(&link_path).is_err(),
        "link removed on drop"
    );
}

#[tokio::test]
async fn a_regular_file_is_never_replaced() {
    init_tracing();
    let dir = TempDir::new("occupied");
    let path = dir.join("reader");
    std::fs::write(&path, b"precious").unwrap();
    match PtyLink::open(&path) {
        Err(SimError::LinkOccupied(p)) => assert_eq!(p, path),
        other => panic!("expected LinkOccupied, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[tokio::test]
async fn a_link_taken_over_by_someone_else_is_left_alone() {
    init_tracing();
    let dir = TempDir::new("takeover");
    let link_path = dir.join("reader");
    let first = PtyLink::open(&link_path).unwrap();
    let second = PtyLink::open(&link_path).unwrap();
    drop(first);
    assert_eq!(
        std::fs::read_link(&link_path).unwrap(),
        second.slave_path(),
        "the first link's drop did not remove the second's"
    );
    drop(second);
    assert!(std::fs::symlink_metadata(&link_path).is_err());
}
