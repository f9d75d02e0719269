//! gate-io over real Modbus TCP on port 0, driven by a tokio-modbus client.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::{ControlClient, TempDir, init_tracing, within};
use custos_sim::gate_io::{
    ALARM_LIGHT_COIL, CoilChange, DOOR_LOCK_COIL, GateIo, INNER_BEAM_INPUT, run_gate_io,
};
use custos_sim::{ControlSocket, SimError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

struct Running {
    _dir: TempDir,
    addr: SocketAddr,
    control: PathBuf,
    changes: mpsc::UnboundedReceiver<CoilChange>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), SimError>>,
}

async fn start() -> Running {
    init_tracing();
    let dir = TempDir::new("gate");
    let control = dir.join("gate.sock");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let socket = ControlSocket::bind(&control).unwrap();
    let (changes_tx, changes) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_gate_io(
        listener,
        GateIo::default(),
        Some(socket),
        changes_tx,
        async {
            let _ = stopped.await;
        },
    ));
    Running {
        _dir: dir,
        addr,
        control,
        changes,
        stop,
        task,
    }
}

async fn client(addr: SocketAddr) -> Context {
    within("modbus connect", tcp::connect_slave(addr, Slave(1)))
        .await
        .unwrap()
}

#[tokio::test]
async fn coils_and_inputs_over_tcp() {
    let mut sim = start().await;
    let mut ctx = client(sim.addr).await;

    let coils = within("read coils", ctx.read_coils(0, 8)).await;
    assert_eq!(coils.unwrap(), Ok(vec![false; 8]));
    let inputs = within("read inputs", ctx.read_discrete_inputs(0, 8)).await;
    assert_eq!(
        inputs.unwrap(),
        Ok(vec![true, true, true, false, false, false, false, false]),
        "photo-eyes and door contact closed"
    );

    within("write coil", ctx.write_single_coil(ALARM_LIGHT_COIL, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        within("change", sim.changes.recv()).await,
        Some(CoilChange {
            coil: 0,
            value: true
        })
    );
    within(
        "write coils",
        ctx.write_multiple_coils(1, &[false, true, true]),
    )
    .await
    .unwrap()
    .unwrap();
    let coils = within("read coils", ctx.read_coils(0, 4)).await;
    assert_eq!(coils.unwrap(), Ok(vec![true, false, true, true]));
    // Coil 1 was written false but was false already: only 2 and 3 changed.
    for coil in [DOOR_LOCK_COIL, 3] {
        assert_eq!(
            within("change", sim.changes.recv()).await,
            Some(CoilChange { coil, value: true })
        );
    }
    assert!(sim.changes.try_recv().is_err(), "no other change reported");

    // The control socket cuts the inner beam.
    let mut ctl = ControlClient::connect(&sim.control).await;
    ctl.ok(&format!(
        r#"{{"op":"input","n":{INNER_BEAM_INPUT},"value":false}}"#
    ))
    .await;
    let inputs = within("read inputs", ctx.read_discrete_inputs(0, 2)).await;
    assert_eq!(inputs.unwrap(), Ok(vec![false, true]));
    let error = ctl.refused(r#"{"op":"input","n":8,"value":true}"#).await;
    assert!(error.contains("input 8 does not exist"), "{error}");
    let error = ctl.refused(r#"{"op":"scan","text":"x"}"#).await;
    assert!(error.contains("gate-io does not support"), "{error}");

    sim.stop.send(()).unwrap();
    within("stop", sim.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn exceptions_for_bad_addresses_and_functions() {
    let sim = start().await;
    let mut ctx = client(sim.addr).await;
    let cases = [
        (
            within("read coils", ctx.read_coils(8, 1)).await,
            ExceptionCode::IllegalDataAddress,
        ),
        (
            within("read coils", ctx.read_coils(6, 4)).await,
            ExceptionCode::IllegalDataAddress,
        ),
        (
            within("read inputs", ctx.read_discrete_inputs(100, 1)).await,
            ExceptionCode::IllegalDataAddress,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.unwrap(), Err(want));
    }
    let write = within("write coil", ctx.write_single_coil(9, true)).await;
    assert_eq!(write.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    let registers = within("read registers", ctx.read_holding_registers(0, 1)).await;
    assert_eq!(registers.unwrap(), Err(ExceptionCode::IllegalFunction));
    let write = within("write register", ctx.write_single_register(0, 1)).await;
    assert_eq!(write.unwrap(), Err(ExceptionCode::IllegalFunction));
    // The connection is still good after the exceptions.
    let coils = within("read coils", ctx.read_coils(0, 1)).await;
    assert_eq!(coils.unwrap(), Ok(vec![false]));
}

#[tokio::test]
async fn several_clients_share_one_module() {
    let mut sim = start().await;
    let mut a = client(sim.addr).await;
    let mut b = client(sim.addr).await;
    within("a writes", a.write_single_coil(DOOR_LOCK_COIL, true))
        .await
        .unwrap()
        .unwrap();
    let seen = within("b reads", b.read_coils(DOOR_LOCK_COIL, 1)).await;
    assert_eq!(seen.unwrap(), Ok(vec![true]));
    within("b writes", b.write_single_coil(DOOR_LOCK_COIL, false))
        .await
        .unwrap()
        .unwrap();
    let seen = within("a reads", a.read_coils(DOOR_LOCK_COIL, 1)).await;
    assert_eq!(seen.unwrap(), Ok(vec![false]));
    let mut changes = Vec::new();
    for _ in 0..2 {
        changes.push(within("change", sim.changes.recv()).await.unwrap());
    }
    assert_eq!(
        changes,
        [
            CoilChange {
                coil: DOOR_LOCK_COIL,
                value: true
            },
            CoilChange {
                coil: DOOR_LOCK_COIL,
                value: false
            }
        ]
    );
}
