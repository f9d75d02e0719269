//! `custos-sim uhf-reader` against a host written from the public 0xA0 frame description alone
//! (`A0 Len Addr Cmd Data.. Check`, Check = two's complement of the byte sum): no code of
//! custos-protocol is used on the host side, so the simulator is checked byte for byte.

mod common;

use common::{ControlClient, SimProcess, TempDir, init_tracing, open_host, read_n, within};
use tokio::io::AsyncWriteExt;

/// Host-side framing from the protocol document.
fn frame(addr: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0xA0, (data.len() + 3) as u8, addr, cmd];
    f.extend_from_slice(data);
    let sum = f.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    f.push(sum.wrapping_neg());
    f
}

/// Reads one whole frame and checks its checksum.
async fn read_frame(host: &mut tokio_serial::SerialStream) -> Vec<u8> {
    let head = read_n(host, 2).await;
    assert_eq!(head[0], 0xA0, "head byte");
    let mut f = head.clone();
    f.extend(read_n(host, head[1] as usize).await);
    assert_eq!(
        f.iter().fold(0u8, |a, b| a.wrapping_add(*b)),
        0,
        "checksum of {f:02X?}"
    );
    f
}

#[tokio::test]
async fn answers_a_host_written_from_the_protocol_document() {
    init_tracing();
    let dir = TempDir::new("bin-uhf");
    let link = dir.join("uhf");
    let control = dir.join("uhf.sock");
    let mut sim = SimProcess::spawn(&[
        "uhf-reader",
        "--protocol",
        "uhf-a0",
        "--link",
        link.to_str().unwrap(),
        "--control",
        control.to_str().unwrap(),
    ]);
    assert_eq!(sim.ready("uhf-reader").await, link.display().to_string());
    let mut host = open_host(&link);

    // Get firmware version: the vector pair, byte for byte.
    host.write_all(&frame(0x01, 0x72, &[])).await.unwrap();
    assert_eq!(
        read_frame(&mut host).await,
        [0xA0, 0x05, 0x01, 0x72, 0x08, 0x01, 0xDF]
    );

    // Two tags on antenna 2, one on antenna 1.
    let mut ctl = ControlClient::connect(&control).await;
    ctl.ok(r#"{"op":"field","antenna":2,"tags":["3474257BF40000000000162E","3074257BF7194E4000001A85"]}"#)
        .await;
    ctl.ok(r#"{"op":"field","antenna":1,"tags":["E2003098881900722140369E"]}"#)
        .await;

    // Set work antenna 2 (byte 0x01) → command success 0x10.
    host.write_all(&frame(0x01, 0x74, &[0x01])).await.unwrap();
    assert_eq!(read_frame(&mut host).await, frame(0x01, 0x74, &[0x10]));

    // Real-time inventory: one tag frame per tag, then the end-of-round frame (Len 0x0A).
    host.write_all(&frame(0x01, 0x89, &[0x01])).await.unwrap();
    let mut epcs = Vec::new();
    loop {
        let f = within("inventory frame", read_frame(&mut host)).await;
        assert_eq!((f[2], f[3]), (0x01, 0x89), "address and command");
        match f[1] {
            0x0A => {
                assert_eq!(f[4], 0x01, "summary names the work antenna");
                let total = u32::from_be_bytes([f[7], f[8], f[9], f[10]]);
                assert_eq!(total, 2, "two reads in the round");
                break;
            }
            len if len > 0x0A => {
                // FreqAnt, PC (2), EPC, RSSI: antenna = (FreqAnt & 3) + 1 + 4 * (RSSI >> 7).
                let pc = u16::from_be_bytes([f[5], f[6]]);
                let epc_len = usize::from((pc >> 11) & 0x1F) * 2;
                let rssi = f[7 + epc_len];
                assert_eq!((f[4] & 3) + 1 + 4 * (rssi >> 7), 2, "antenna 2");
                epcs.push(f[7..7 + epc_len].to_vec());
            }
            other => panic!("unexpected frame length {other:#04x}: {f:02X?}"),
        }
    }
    epcs.sort();
    assert_eq!(
        epcs,
        [
            vec![
                0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85
            ],
            vec![
                0x34, 0x74, 0x25, 0x7B, 0xF4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x2E
            ],
        ]
    );

    // An unplugged work antenna answers error 0x22 (antenna missing).
    ctl.ok(r#"{"op":"disconnect","antenna":2}"#).await;
    host.write_all(&frame(0x01, 0x89, &[0x01])).await.unwrap();
    assert_eq!(read_frame(&mut host).await, frame(0x01, 0x89, &[0x22]));

    // A frame with a bad checksum is dropped silently; the next good one is answered.
    let mut bad = frame(0x01, 0x72, &[]);
    *bad.last_mut().unwrap() ^= 0xFF;
    host.write_all(&bad).await.unwrap();
    host.write_all(&frame(0x01, 0x72, &[])).await.unwrap();
    assert_eq!(
        read_frame(&mut host).await,
        [0xA0, 0x05, 0x01, 0x72, 0x08, 0x01, 0xDF]
    );

    let status = sim.terminate().await;
    assert!(status.success(), "{status}");
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
}

/// CRC-16/MCRF4XX (poly 0x8408 reflected, init 0xFFFF, no final xor), from the CHAFON manual.
fn mcrf4xx(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for b in bytes {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[tokio::test]
async fn chafon_reader_answers_reader_info_and_inventory() {
    init_tracing();
    let dir = TempDir::new("bin-chafon");
    let link = dir.join("chafon");
    let control = dir.join("chafon.sock");
    let mut sim = SimProcess::spawn(&[
        "uhf-reader",
        "--protocol",
        "uhf-chafon",
        "--link",
        link.to_str().unwrap(),
        "--control",
        control.to_str().unwrap(),
    ]);
    sim.ready("uhf-reader").await;
    let mut host = open_host(&link);
    // Get reader info (vector `04 00 21 D9 6A`).
    host.write_all(&[0x04, 0x00, 0x21, 0xD9, 0x6A])
        .await
        .unwrap();
    let info = within("reader info", read_chafon(&mut host)).await;
    assert_eq!(
        (info[1], info[2], info[3]),
        (0x00, 0x21, 0x00),
        "address, command, status ok"
    );

    let mut ctl = ControlClient::connect(&control).await;
    ctl.ok(r#"{"op":"field","antenna":1,"tags":["000000000000000000000313"]}"#)
        .await;
    // Inventory (vector `04 00 01 DB 4B`): the tag comes back in some reply frame.
    host.write_all(&[0x04, 0x00, 0x01, 0xDB, 0x4B])
        .await
        .unwrap();
    let mut found = false;
    for _ in 0..8 {
        let f = within("inventory reply", read_chafon(&mut host)).await;
        assert_eq!(f[2], 0x01, "inventory reply");
        found |= f
            .windows(12)
            .any(|w| w == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0x13]);
        if f[3] != 0x03 {
            break; // status 0x03 = more data follows
        }
    }
    assert!(found, "tag reported");
    assert!(sim.terminate().await.success());
}

/// Reads one CHAFON reply (`Len Adr reCmd Status Data.. CRC`) and checks its CRC.
async fn read_chafon(host: &mut tokio_serial::SerialStream) -> Vec<u8> {
    let len = read_n(host, 1).await[0];
    let mut f = vec![len];
    f.extend(read_n(host, usize::from(len)).await);
    let n = f.len();
    assert_eq!(
        mcrf4xx(&f[..n - 2]).to_le_bytes(),
        [f[n - 2], f[n - 1]],
        "crc of {f:02X?}"
    );
    f
}
