//! The gate I/O module: relays and inputs behind Modbus TCP (Moxa ioLogik style).
//!
//! Coils (relay outputs, 0-based protocol addresses): DO0 alarm light, DO1 sounder, DO2 door lock
//! (energised = locked), DO3 barrier, the rest spare; all off at start. Discrete inputs: DI0 and
//! DI1 photo-eyes, DI2 door contact, the rest spare. Photo-eyes are wired normally closed, so an
//! intact beam reads `true` and a cut wire reads as a broken beam; the door contact likewise reads
//! `true` while the door is closed. So DI0..=DI2 start `true`, spare inputs `false`.
//!
//! Function codes: 0x01 read coils, 0x02 read discrete inputs, 0x05 write single coil, 0x0F write
//! multiple coils. Anything else is answered with IllegalFunction; addresses outside the tables
//! with IllegalDataAddress. The unit id is ignored, as on most Modbus TCP I/O modules.
//!
//! Control ops: `input` (`{"op":"input","n":0,"value":false}` cuts the inner beam). Every coil
//! that changes value is reported as a [`CoilChange`] (the binary prints it as
//! `{"coil":0,"value":true}`); writes that leave a coil as it was are not reported.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_modbus::{ExceptionCode, Request, Response};

use crate::SimError;
use crate::control::{
    ControlError, ControlOp, ControlRequest, ControlSocket, control_failure, serve_optional,
};
use crate::modbus::{MAX_READ_BITS, MAX_WRITE_BITS, checked_index, checked_range};

/// Coil DO0: the alarm light.
pub const ALARM_LIGHT_COIL: u16 = 0;
/// Coil DO1: the sounder.
pub const SOUNDER_COIL: u16 = 1;
/// Coil DO2: the door lock (energised = locked).
pub const DOOR_LOCK_COIL: u16 = 2;
/// Coil DO3: the barrier.
pub const BARRIER_COIL: u16 = 3;
/// Discrete input DI0: the inner photo-eye (`true` = beam intact).
pub const INNER_BEAM_INPUT: u16 = 0;
/// Discrete input DI1: the outer photo-eye (`true` = beam intact).
pub const OUTER_BEAM_INPUT: u16 = 1;
/// Discrete input DI2: the door contact (`true` = door closed).
pub const DOOR_CONTACT_INPUT: u16 = 2;

/// A coil that changed value, as printed on stdout: `{"coil":0,"value":true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoilChange {
    /// The coil's 0-based address.
    pub coil: u16,
    /// Its new value.
    pub value: bool,
}

/// The size of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateIoConfig {
    /// Number of coils (relay outputs).
    pub coils: u16,
    /// Number of discrete inputs.
    pub inputs: u16,
}

impl Default for GateIoConfig {
    /// Eight relays and eight inputs, like an ioLogik E1212/E1214-class module.
    fn default() -> Self {
        GateIoConfig {
            coils: 8,
            inputs: 8,
        }
    }
}

/// The module's state machine.
#[derive(Debug, Clone)]
pub struct GateIo {
    coils: Vec<bool>,
    inputs: Vec<bool>,
    events: VecDeque<CoilChange>,
}

impl Default for GateIo {
    fn default() -> Self {
        GateIo::new(GateIoConfig::default())
    }
}

impl GateIo {
    /// The device kind in the ready line.
    pub const KIND: &'static str = "gate-io";

    /// A module of the given size in its start state (see the module docs).
    #[must_use]
    pub fn new(config: GateIoConfig) -> Self {
        let normally_closed = [INNER_BEAM_INPUT, OUTER_BEAM_INPUT, DOOR_CONTACT_INPUT];
        GateIo {
            coils: vec![false; usize::from(config.coils)],
            inputs: (0..config.inputs)
                .map(|n| normally_closed.contains(&n))
                .collect(),
            events: VecDeque::new(),
        }
    }

    /// A coil's value, `None` outside the table.
    #[must_use]
    pub fn coil(&self, n: u16) -> Option<bool> {
        self.coils.get(usize::from(n)).copied()
    }

    /// A discrete input's value, `None` outside the table.
    #[must_use]
    pub fn input(&self, n: u16) -> Option<bool> {
        self.inputs.get(usize::from(n)).copied()
    }

    /// Sets a discrete input.
    ///
    /// # Errors
    /// [`ControlError::BadField`] (`n`) outside the table; nothing changes then.
    pub fn set_input(&mut self, n: u16, value: bool) -> Result<(), ControlError> {
        let count = self.inputs.len();
        let slot = self.inputs.get_mut(usize::from(n)).ok_or_else(|| {
            ControlError::bad_field("n", format!("input {n} does not exist (0..{count})"))
        })?;
        if *slot != value {
            tracing::info!(input = n, value, "discrete input changed");
        }
        *slot = value;
        Ok(())
    }

    /// Answers one Modbus request.
    ///
    /// # Errors
    /// The Modbus exception to answer with.
    pub fn handle_request(&mut self, request: &Request<'_>) -> Result<Response, ExceptionCode> {
        match request {
            Request::ReadCoils(addr, quantity) => {
                let range = checked_range(
                    *addr,
                    usize::from(*quantity),
                    MAX_READ_BITS,
                    self.coils.len(),
                )?;
                Ok(Response::ReadCoils(self.coils[range].to_vec()))
            }
            Request::ReadDiscreteInputs(addr, quantity) => {
                let range = checked_range(
                    *addr,
                    usize::from(*quantity),
                    MAX_READ_BITS,
                    self.inputs.len(),
                )?;
                Ok(Response::ReadDiscreteInputs(self.inputs[range].to_vec()))
            }
            Request::WriteSingleCoil(addr, value) => {
                let index = checked_index(*addr, self.coils.len())?;
                self.write_coil(index, *addr, *value);
                Ok(Response::WriteSingleCoil(*addr, *value))
            }
            Request::WriteMultipleCoils(addr, values) => {
                let range = checked_range(*addr, values.len(), MAX_WRITE_BITS, self.coils.len())?;
                for ((index, coil), value) in range.clone().zip(*addr..).zip(values.iter()) {
                    self.write_coil(index, coil, *value);
                }
                // The range was checked to hold at most MAX_WRITE_BITS coils, so it fits in u16.
                let quantity = u16::try_from(range.len()).unwrap_or(u16::MAX);
                Ok(Response::WriteMultipleCoils(*addr, quantity))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    fn write_coil(&mut self, index: usize, coil: u16, value: bool) {
        if self.coils[index] != value {
            self.coils[index] = value;
            tracing::info!(coil, value, "coil changed");
            self.events.push_back(CoilChange { coil, value });
        }
    }

    /// Applies a control op: only `input` is supported.
    ///
    /// # Errors
    /// [`ControlError::Unsupported`] for other ops, [`ControlError::BadField`] for a bad input.
    pub fn handle_control(&mut self, op: ControlOp) -> Result<(), ControlError> {
        match op {
            ControlOp::Input { n, value } => self.set_input(n, value),
            op => Err(op.unsupported(Self::KIND)),
        }
    }

    /// The next coil change not yet taken, oldest first.
    pub fn poll_event(&mut self) -> Option<CoilChange> {
        self.events.pop_front()
    }
}

/// The module shared by the Modbus connections and the control task. Coil changes are sent
/// while the lock is held, so they come out in the order they happened.
#[derive(Debug)]
struct Shared {
    gate: GateIo,
    events: mpsc::UnboundedSender<CoilChange>,
}

impl Shared {
    fn flush_events(&mut self) {
        while let Some(change) = self.gate.poll_event() {
            // Nobody listening for changes is fine: they are also logged.
            let _ = self.events.send(change);
        }
    }
}

#[derive(Debug, Clone)]
struct GateIoService {
    shared: Arc<Mutex<Shared>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // The state machine does not panic while locked; should it ever, its state is still usable.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl tokio_modbus::server::Service for GateIoService {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        let mut shared = lock(&self.shared);
        let result = shared.gate.handle_request(&request);
        shared.flush_events();
        if let Err(e) = &result {
            tracing::debug!(?request, "modbus exception {e:?}");
        }
        std::future::ready(result)
    }
}

/// Serves `gate` on `listener` (Modbus TCP, any number of clients) until `shutdown` completes,
/// taking control ops from `control` and sending every coil change to `coil_changes`.
///
/// # Errors
/// [`SimError::Modbus`] if accepting connections fails, [`SimError::Control`] if the control
/// socket does.
pub async fn run_gate_io(
    listener: TcpListener,
    gate: GateIo,
    control: Option<ControlSocket>,
    coil_changes: mpsc::UnboundedSender<CoilChange>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let shared = Arc::new(Mutex::new(Shared {
        gate,
        events: coil_changes,
    }));
    let service = GateIoService {
        shared: Arc::clone(&shared),
    };
    let on_connected = move |stream: TcpStream, peer: SocketAddr| {
        let service = service.clone();
        async move {
            tracing::info!(%peer, "modbus client connected");
            Ok(Some((service, stream)))
        }
    };
    let on_process_error = |e: std::io::Error| tracing::info!("modbus connection ended: {e}");
    let server = tokio_modbus::server::tcp::Server::new(listener);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlRequest>(16);
    let serve = server.serve(&on_connected, on_process_error);
    let control_loop = serve_optional(control.as_ref(), ctl_tx);
    tokio::pin!(shutdown, serve, control_loop);
    tracing::info!("gate-io running");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            res = &mut serve => {
                let source = res.err().unwrap_or_else(|| std::io::Error::other("server stopped"));
                return Err(SimError::Modbus(source));
            }
            res = &mut control_loop => return Err(control_failure(control.as_ref(), res)),
            Some(ControlRequest { op, reply }) = ctl_rx.recv() => {
                let mut shared = lock(&shared);
                let result = shared.gate.handle_control(op);
                shared.flush_events();
                let _ = reply.send(result);
            }
        }
    }
    tracing::info!("gate-io stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn start_state_matches_the_wiring() {
        let gate = GateIo::default();
        assert_eq!(
            (0..8).map(|n| gate.coil(n).unwrap()).collect::<Vec<_>>(),
            [false; 8]
        );
        assert_eq!(
            (0..8).map(|n| gate.input(n).unwrap()).collect::<Vec<_>>(),
            [true, true, true, false, false, false, false, false]
        );
        assert_eq!(gate.coil(8), None);
        assert_eq!(gate.input(8), None);
    }

    #[test]
    fn reads_return_the_requested_slice() {
        let mut gate = GateIo::default();
        assert_eq!(
            gate.handle_request(&Request::ReadDiscreteInputs(1, 3)),
            Ok(Response::ReadDiscreteInputs(vec![true, true, false]))
        );
        gate.handle_request(&Request::WriteSingleCoil(DOOR_LOCK_COIL, true))
            .unwrap();
        assert_eq!(
            gate.handle_request(&Request::ReadCoils(0, 8)),
            Ok(Response::ReadCoils(vec![
                false, false, true, false, false, false, false, false
            ]))
        );
    }

    #[test]
    fn only_changes_are_reported() {
        let mut gate = GateIo::default();
        assert_eq!(
            gate.handle_request(&Request::WriteSingleCoil(ALARM_LIGHT_COIL, true)),
            Ok(Response::WriteSingleCoil(0, true))
        );
        assert_eq!(
            gate.poll_event(),
            Some(CoilChange {
                coil: 0,
                value: true
            })
        );
        assert_eq!(gate.poll_event(), None);
        gate.handle_request(&Request::WriteSingleCoil(ALARM_LIGHT_COIL, true))
            .unwrap();
        assert_eq!(gate.poll_event(), None, "same value again: no change");
        let values = Cow::Owned(vec![true, true, false, true]);
        assert_eq!(
            gate.handle_request(&Request::WriteMultipleCoils(0, values)),
            Ok(Response::WriteMultipleCoils(0, 4))
        );
        let events: Vec<_> = std::iter::from_fn(|| gate.poll_event()).collect();
        assert_eq!(
            events,
            [
                CoilChange {
                    coil: SOUNDER_COIL,
                    value: true
                },
                CoilChange {
                    coil: BARRIER_COIL,
                    value: true
                }
            ]
        );
        assert_eq!(
            serde_json::to_string(&events[0]).unwrap(),
            r#"{"coil":1,"value":true}"#
        );
    }

    #[test]
    fn bad_requests_get_exceptions_and_change_nothing() {
        let mut gate = GateIo::default();
        let cases = [
            (Request::ReadCoils(8, 1), ExceptionCode::IllegalDataAddress),
            (Request::ReadCoils(4, 5), ExceptionCode::IllegalDataAddress),
            (Request::ReadCoils(0, 0), ExceptionCode::IllegalDataValue),
            (
                Request::ReadDiscreteInputs(100, 1),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteSingleCoil(8, true),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteMultipleCoils(6, Cow::Owned(vec![true; 3])),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::ReadHoldingRegisters(0, 1),
                ExceptionCode::IllegalFunction,
            ),
            (
                Request::WriteSingleRegister(0, 1),
                ExceptionCode::IllegalFunction,
            ),
            (
                Request::Custom(0x41, Cow::Owned(vec![])),
                ExceptionCode::IllegalFunction,
            ),
        ];
        for (request, exception) in cases {
            assert_eq!(gate.handle_request(&request), Err(exception), "{request:?}");
        }
        assert_eq!(gate.poll_event(), None);
        assert!((0..8).all(|n| gate.coil(n) == Some(false)));
    }

    fn any_request() -> impl proptest::strategy::Strategy<Value = Request<'static>> {
        use proptest::prelude::*;
        let bits = || proptest::collection::vec(any::<bool>(), 0..12);
        prop_oneof![
            (0u16..12, 0u16..12).prop_map(|(a, q)| Request::ReadCoils(a, q)),
            (0u16..12, 0u16..12).prop_map(|(a, q)| Request::ReadDiscreteInputs(a, q)),
            (0u16..12, any::<bool>()).prop_map(|(a, v)| Request::WriteSingleCoil(a, v)),
            (0u16..12, bits()).prop_map(|(a, v)| Request::WriteMultipleCoils(a, Cow::Owned(v))),
            (any::<u16>(), any::<u16>()).prop_map(|(a, v)| Request::WriteSingleRegister(a, v)),
        ]
    }

    proptest::proptest! {
        /// Any request sequence: coils change only through successful writes, every change is
        /// reported exactly once, inputs never change, and nothing panics.
        #[test]
        fn coil_changes_are_reported_exactly(requests in proptest::collection::vec(any_request(), 0..40)) {
            let mut gate = GateIo::default();
            let mut shadow = [false; 8];
            for request in &requests {
                let before = shadow;
                if gate.handle_request(request).is_ok() {
                    match request {
                        Request::WriteSingleCoil(a, v) => shadow[usize::from(*a)] = *v,
                        Request::WriteMultipleCoils(a, values) => {
                            for (i, v) in values.iter().enumerate() {
                                shadow[usize::from(*a) + i] = *v;
                            }
                        }
                        _ => {}
                    }
                }
                let mut expected = before;
                while let Some(change) = gate.poll_event() {
                    let n = usize::from(change.coil);
                    proptest::prop_assert_ne!(expected[n], change.value, "a change, not a repeat");
                    expected[n] = change.value;
                }
                proptest::prop_assert_eq!(expected, shadow);
                for n in 0..8u16 {
                    proptest::prop_assert_eq!(gate.coil(n), Some(shadow[usize::from(n)]));
                }
            }
            proptest::prop_assert_eq!(gate.input(0), Some(true));
        }
    }

    #[test]
    fn control_sets_inputs_only() {
        let mut gate = GateIo::default();
        gate.handle_control(ControlOp::Input {
            n: INNER_BEAM_INPUT,
            value: false,
        })
        .unwrap();
        assert_eq!(gate.input(INNER_BEAM_INPUT), Some(false));
        let out_of_range = gate.handle_control(ControlOp::Input { n: 8, value: true });
        assert!(matches!(
            out_of_range,
            Err(ControlError::BadField { field: "n", .. })
        ));
        assert_eq!(
            gate.handle_control(ControlOp::Clear {}),
            Err(ControlError::Unsupported {
                device: "gate-io",
                op: "clear"
            })
        );
        assert_eq!(
            gate.handle_request(&Request::ReadDiscreteInputs(0, 8)),
            Ok(Response::ReadDiscreteInputs(vec![
                false, true, true, false, false, false, false, false
            ]))
        );
        assert_eq!(gate.poll_event(), None, "inputs are not coil changes");
    }
}
