//! The `custos-sim` binary as a child process: ready lines, stdout, signals and cleanup.

mod common;

use std::net::SocketAddr;

use common::{ControlClient, SimProcess, TempDir, init_tracing, open_host, read_n, within};
use tokio_modbus::prelude::*;

#[tokio::test]
async fn gate_io_prints_ready_and_coil_changes() {
    init_tracing();
    let dir = TempDir::new("bin-gate");
    let control = dir.join("gate.sock");
    let mut sim = SimProcess::spawn(&[
        "gate-io",
        "--listen",
        "127.0.0.1:0",
        "--control",
        control.to_str().unwrap(),
    ]);
    let addr: SocketAddr = sim.ready("gate-io").await.parse().unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the real port is printed");

    let mut ctx = within("connect", tcp::connect_slave(addr, Slave(1)))
        .await
        .unwrap();
    within("write", ctx.write_single_coil(2, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sim.next_line().await.as_deref(),
        Some(r#"{"coil":2,"value":true}"#)
    );
    within("write again", ctx.write_single_coil(2, true))
        .await
        .unwrap()
        .unwrap();
    within("write", ctx.write_single_coil(0, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sim.next_line().await.as_deref(),
        Some(r#"{"coil":0,"value":true}"#),
        "no line for the unchanged coil 2"
    );

    let mut ctl = ControlClient::connect(&control).await;
    ctl.ok(r#"{"op":"input","n":1,"value":false}"#).await;
    let inputs = within("read", ctx.read_discrete_inputs(0, 3)).await;
    assert_eq!(inputs.unwrap(), Ok(vec![true, false, true]));
    ctl.refused("garbage").await;

    let status = sim.terminate().await;
    assert!(status.success(), "{status}");
    assert!(
        std::fs::symlink_metadata(&control).is_err(),
        "control socket removed"
    );
}

#[tokio::test]
async fn gate_io_survives_a_closed_stdout() {
    init_tracing();
    let mut sim = SimProcess::spawn(&["gate-io", "--listen", "127.0.0.1:0"]);
    let addr: SocketAddr = sim.ready("gate-io").await.parse().unwrap();
    sim.close_stdout();
    let mut ctx = within("connect", tcp::connect_slave(addr, Slave(1)))
        .await
        .unwrap();
    for value in [true, false, true] {
        within("write", ctx.write_single_coil(1, value))
            .await
            .unwrap()
            .unwrap();
    }
    let coils = within("read", ctx.read_coils(1, 1)).await;
    assert_eq!(coils.unwrap(), Ok(vec![true]));
    assert!(sim.is_running());
    assert!(sim.terminate().await.success());
}

#[tokio::test]
async fn barcode_over_the_link_and_cleanup() {
    init_tracing();
    let dir = TempDir::new("bin-barcode");
    let link = dir.join("scanner");
    let control = dir.join("scanner.sock");
    let mut sim = SimProcess::spawn(&[
        "barcode",
        "--link",
        link.to_str().unwrap(),
        "--control",
        control.to_str().unwrap(),
        "--terminator",
        "crlf",
        "--aim",
        "]C0",
    ]);
    assert_eq!(sim.ready("barcode").await, link.to_str().unwrap());
    assert!(std::fs::read_link(&link).unwrap().starts_with("/dev/pts"));
    let mut host = open_host(&link);
    let mut ctl = ControlClient::connect(&control).await;
    ctl.ok("{\"op\":\"scan\",\"text\":\"CU-7\\u001d42\"}").await;
    assert_eq!(read_n(&mut host, 12).await, b"]C0CU-7\x1D42\r\n");
    let status = sim.terminate().await;
    assert!(status.success(), "{status}");
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    assert!(
        std::fs::symlink_metadata(&control).is_err(),
        "socket removed"
    );
}

#[tokio::test]
async fn modbus_reader_answers_as_its_unit() {
    init_tracing();
    let dir = TempDir::new("bin-flat");
    let link = dir.join("reader");
    let control = dir.join("reader.sock");
    let mut sim = SimProcess::spawn(&[
        "modbus-reader",
        "--link",
        link.to_str().unwrap(),
        "--unit",
        "7",
        "--control",
        control.to_str().unwrap(),
    ]);
    assert_eq!(sim.ready("modbus-reader").await, link.to_str().unwrap());
    let mut ctl = ControlClient::connect(&control).await;
    ctl.ok(r#"{"op":"card","hex":"04A1B2C3D4E5F6"}"#).await;
    let mut ctx = rtu::attach_slave(open_host(&link), Slave(7));
    let uid = within("read uid", ctx.read_holding_registers(6, 4)).await;
    assert_eq!(uid.unwrap(), Ok(vec![0x0004, 0xA1B2, 0xC3D4, 0xE5F6]));
    drop(ctx);
    assert!(sim.terminate().await.success());
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
}

#[tokio::test]
async fn refuses_to_clobber_files_and_reports_bad_arguments() {
    init_tracing();
    let dir = TempDir::new("bin-bad");
    let file = dir.join("precious");
    std::fs::write(&file, b"data").unwrap();

    let mut sim = SimProcess::spawn(&["barcode", "--link", file.to_str().unwrap()]);
    assert_eq!(sim.next_line().await, None, "no ready line");
    assert!(!sim.wait().await.success());

    let mut sim = SimProcess::spawn(&[
        "gate-io",
        "--listen",
        "127.0.0.1:0",
        "--control",
        file.to_str().unwrap(),
    ]);
    assert_eq!(sim.next_line().await, None, "no ready line");
    assert!(!sim.wait().await.success());
    assert_eq!(std::fs::read(&file).unwrap(), b"data");

    for args in [
        &["modbus-reader", "--link", "x", "--unit", "0"][..],
        &["barcode", "--link", "x", "--aim", "C0"],
        &["barcode", "--link", "x", "--terminator", "tab"],
        &["uhf-reader"],
    ] {
        let mut sim = SimProcess::spawn(args);
        assert_eq!(sim.next_line().await, None, "{args:?}: no ready line");
        let status = sim.wait().await;
        assert_eq!(status.code(), Some(2), "{args:?}: usage error");
    }
}
