//! The flat Modbus reader over a real pty: a tokio-modbus RTU client, and raw frames from
//! /work/shared/vectors/modbus.txt.

mod common;

use std::path::PathBuf;

use common::{
    ControlClient, QUIET, TempDir, assert_quiet, init_tracing, open_host, read_n, within,
};
use custos_sim::flat_reader::{FlatReader, FlatReaderMap, run_modbus_reader};
use custos_sim::{ControlSocket, PtyLink, SimError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_modbus::prelude::*;

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), appended low byte first.
fn with_crc(frame: &[u8]) -> Vec<u8> {
    let mut crc: u16 = 0xFFFF;
    for &byte in frame {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    let mut out = frame.to_vec();
    out.extend(crc.to_le_bytes());
    out
}

/// modbus.txt: "01 03 00 06 00 04 A4 08 | read 4 holding registers from 6 (card UID on simple
/// RS-485 readers), unit 1".
const READ_UID: [u8; 8] = [0x01, 0x03, 0x00, 0x06, 0x00, 0x04, 0xA4, 0x08];

#[test]
fn the_test_crc_matches_the_vectors() {
    assert_eq!(with_crc(&READ_UID[..6]), READ_UID);
    assert_eq!(
        with_crc(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]),
        [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD]
    );
    assert_eq!(
        with_crc(&[0x01, 0x06, 0x00, 0x04, 0x00, 0x01]),
        [0x01, 0x06, 0x00, 0x04, 0x00, 0x01, 0x09, 0xCB]
    );
}

struct Running {
    _dir: TempDir,
    link: PathBuf,
    control: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), SimError>>,
}

fn start(unit: u8) -> Running {
    init_tracing();
    let dir = TempDir::new("flat");
    let link = dir.join("reader");
    let control = dir.join("reader.sock");
    let pty = PtyLink::open(&link).unwrap();
    let socket = ControlSocket::bind(&control).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let reader = FlatReader::new(unit, FlatReaderMap::default());
    let task = tokio::spawn(run_modbus_reader(reader, pty, Some(socket), async {
        let _ = stopped.await;
    }));
    Running {
        _dir: dir,
        link,
        control,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        within("stop", self.task).await.unwrap().unwrap();
        assert!(std::fs::symlink_metadata(&self.link).is_err());
    }
}

#[tokio::test]
async fn rtu_client_reads_a_presented_card() {
    let sim = start(1);
    let mut ctl = ControlClient::connect(&sim.control).await;
    let mut ctx = rtu::attach_slave(open_host(&sim.link), Slave(1));

    let uid = within("read uid", ctx.read_holding_registers(6, 4)).await;
    assert_eq!(uid.unwrap(), Ok(vec![0; 4]));
    let new_read = within("read coil", ctx.read_coils(0, 1)).await;
    assert_eq!(new_read.unwrap(), Ok(vec![false]));

    ctl.ok(r#"{"op":"card","hex":"1A00B54E12"}"#).await;
    let uid = within("read uid", ctx.read_holding_registers(6, 4)).await;
    assert_eq!(uid.unwrap(), Ok(vec![0x0000, 0x001A, 0x00B5, 0x4E12]));
    let new_read = within("read coil", ctx.read_coils(0, 1)).await;
    assert_eq!(new_read.unwrap(), Ok(vec![true]));
    within("clear coil", ctx.write_single_coil(0, false))
        .await
        .unwrap()
        .unwrap();
    let new_read = within("read coil", ctx.read_coils(0, 1)).await;
    assert_eq!(new_read.unwrap(), Ok(vec![false]));

    let write_uid = within("write uid", ctx.write_single_register(7, 1)).await;
    assert_eq!(write_uid.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    let inputs = within("read inputs", ctx.read_input_registers(0, 1)).await;
    assert_eq!(inputs.unwrap(), Err(ExceptionCode::IllegalFunction));

    let error = ctl
        .refused(r#"{"op":"card","hex":"010203040506070809"}"#)
        .await;
    assert!(error.contains("1 to 8 bytes"), "{error}");
    let error = ctl.refused(r#"{"op":"input","n":0,"value":true}"#).await;
    assert!(error.contains("modbus-reader does not support"), "{error}");
    ctl.ok(r#"{"op":"clear"}"#).await;
    let uid = within("read uid", ctx.read_holding_registers(6, 4)).await;
    assert_eq!(uid.unwrap(), Ok(vec![0; 4]));
    drop(ctx);
    sim.stop().await;
}

#[tokio::test]
async fn raw_vector_frames_get_exact_answers() {
    let sim = start(1);
    let mut ctl = ControlClient::connect(&sim.control).await;
    let mut host = open_host(&sim.link);
    ctl.ok(r#"{"op":"card","hex":"1A00B54E12"}"#).await;

    host.write_all(&READ_UID).await.unwrap();
    let want = with_crc(&[
        0x01, 0x03, 0x08, 0x00, 0x00, 0x00, 0x1A, 0x00, 0xB5, 0x4E, 0x12,
    ]);
    assert_eq!(read_n(&mut host, want.len()).await, want);

    // "01 06 00 04 00 01 09 CB | write register 4 = 1": echoed back.
    let write = [0x01, 0x06, 0x00, 0x04, 0x00, 0x01, 0x09, 0xCB];
    host.write_all(&write).await.unwrap();
    assert_eq!(read_n(&mut host, write.len()).await, write);

    // Line noise before a frame is skipped.
    host.write_all(&[0xAA, 0x55]).await.unwrap();
    host.write_all(&READ_UID).await.unwrap();
    assert_eq!(read_n(&mut host, want.len()).await, want);
    sim.stop().await;
}

#[tokio::test]
async fn other_units_silence_and_garbage() {
    let sim = start(5);
    let mut ctl = ControlClient::connect(&sim.control).await;
    let mut host = open_host(&sim.link);
    let read_coil = |unit: u8| with_crc(&[unit, 0x01, 0x00, 0x00, 0x00, 0x01]);
    let answer = with_crc(&[0x05, 0x01, 0x01, 0x00]);

    host.write_all(&read_coil(1)).await.unwrap();
    assert_quiet(&mut host).await;
    host.write_all(&read_coil(5)).await.unwrap();
    assert_eq!(read_n(&mut host, answer.len()).await, answer);

    ctl.ok(r#"{"op":"silence","on":true}"#).await;
    host.write_all(&read_coil(5)).await.unwrap();
    assert_quiet(&mut host).await;
    ctl.ok(r#"{"op":"garbage","hex":"00FF01"}"#).await;
    assert_eq!(read_n(&mut host, 3).await, [0x00, 0xFF, 0x01]);
    ctl.ok(r#"{"op":"silence","on":false}"#).await;
    host.write_all(&read_coil(5)).await.unwrap();
    assert_eq!(read_n(&mut host, answer.len()).await, answer);
    sim.stop().await;
}

#[tokio::test]
async fn a_malformed_pdu_does_not_kill_the_reader() {
    let sim = start(1);
    let mut host = open_host(&sim.link);
    // CRC-valid "write single coil 0 = 0x1234": tokio-modbus refuses the PDU and its server
    // stops; the simulator restarts it.
    host.write_all(&with_crc(&[0x01, 0x05, 0x00, 0x00, 0x12, 0x34]))
        .await
        .unwrap();
    // Requests sent while the server restarts may be lost with the old one's buffer, as on a
    // real bus the host asks again until it gets an answer.
    let want = with_crc(&[0x01, 0x03, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut answered = false;
    for _ in 0..20 {
        host.write_all(&READ_UID).await.unwrap();
        let mut got = vec![0; want.len()];
        let read = tokio::time::timeout(QUIET, host.read_exact(&mut got)).await;
        if let Ok(read) = read {
            read.unwrap();
            assert_eq!(got, want);
            answered = true;
            break;
        }
    }
    assert!(answered, "the reader never answered again");
    sim.stop().await;
}
