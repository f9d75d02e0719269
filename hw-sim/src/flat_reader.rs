//! A "flat" Modbus RTU RFID reader: the last card's UID sits in holding registers.
//!
//! Simple RS-485 card readers (13.56 MHz and 125 kHz modules with a Modbus face) expose the last
//! UID in a block of holding registers and raise a "new read" coil that the host polls and clears
//! by writing 0. Layout by default ([`FlatReaderMap::default`]): UID in holding registers 6..=9,
//! big-endian, right-aligned and zero-padded (UID `1A00B54E12` reads as `0000 001A 00B5 4E12`);
//! "new read" is coil 0; holding registers 0..16 and coils 0..8 exist. Registers outside the UID
//! block are plain storage (writable, as configuration registers of such modules are); the UID
//! block is read-only (writing it is IllegalDataAddress). Function codes 0x01, 0x05, 0x0F, 0x03,
//! 0x06, 0x10; anything else is IllegalFunction.
//!
//! Bus behaviour: only requests to the reader's unit are answered; broadcasts (unit 0) are applied
//! if they are writes and never answered.
//!
//! Control ops: `card` (`{"op":"card","hex":"1A00B54E12"}`, 1 to 8 bytes), `clear` (card removed:
//! UID block zeroed, "new read" cleared), `silence` (no answers at all, input is ignored),
//! `garbage` (raw bytes to the host).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use crate::SimError;
use crate::control::{
    ControlError, ControlOp, ControlRequest, ControlSocket, control_failure, serve_optional,
};
use crate::modbus::{
    MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_BITS, MAX_WRITE_REGISTERS, checked_index,
    checked_range,
};
use crate::pty::PtyLink;
use crate::serial::check_garbage;

/// Where a flat reader keeps what. Kept as plain data so the shared register map of
/// `custos_protocol::modbus_map` can be converted into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatReaderMap {
    /// First holding register of the UID block (0-based protocol address).
    pub uid_start: u16,
    /// Registers in the UID block; the longest UID is twice this many bytes.
    pub uid_registers: u16,
    /// The "new read" coil, set when a card is presented and cleared by the host.
    pub new_read_coil: u16,
    /// Holding registers the device has (grown to hold the UID block if smaller).
    pub holding_registers: u16,
    /// Coils the device has (grown to hold the "new read" coil if smaller).
    pub coils: u16,
}

impl Default for FlatReaderMap {
    /// UID in holding registers 6..=9 (see /work/shared/vectors/modbus.txt: "read 4 holding
    /// registers from 6 (card UID on simple RS-485 readers)"), "new read" at coil 0.
    fn default() -> Self {
        FlatReaderMap {
            uid_start: 6,
            uid_registers: 4,
            new_read_coil: 0,
            holding_registers: 16,
            coils: 8,
        }
    }
}

impl FlatReaderMap {
    fn uid_block(&self) -> std::ops::Range<usize> {
        let start = usize::from(self.uid_start);
        start..start + usize::from(self.uid_registers)
    }

    /// The longest UID the map can hold, in bytes.
    #[must_use]
    pub fn max_uid_len(&self) -> usize {
        usize::from(self.uid_registers) * 2
    }
}

/// The reader's state machine. Nothing in it is timed, so it takes no clock.
#[derive(Debug, Clone)]
pub struct FlatReader {
    unit: u8,
    map: FlatReaderMap,
    holding: Vec<u16>,
    coils: Vec<bool>,
    silent: bool,
    garbage: Vec<u8>,
    reads: u64,
}

impl FlatReader {
    /// The device kind in the ready line.
    pub const KIND: &'static str = "modbus-reader";

    /// A reader answering as Modbus unit `unit` (1..=247 on a real bus), no card presented.
    #[must_use]
    pub fn new(unit: u8, map: FlatReaderMap) -> Self {
        let holding = usize::from(map.holding_registers).max(map.uid_block().end);
        let coils = usize::from(map.coils).max(usize::from(map.new_read_coil) + 1);
        FlatReader {
            unit,
            map,
            holding: vec![0; holding],
            coils: vec![false; coils],
            silent: false,
            garbage: Vec::new(),
            reads: 0,
        }
    }

    /// The unit the reader answers as.
    #[must_use]
    pub fn unit(&self) -> u8 {
        self.unit
    }

    /// The register map.
    #[must_use]
    pub fn map(&self) -> &FlatReaderMap {
        &self.map
    }

    /// The UID block as the host reads it.
    #[must_use]
    pub fn uid_registers(&self) -> &[u16] {
        &self.holding[self.map.uid_block()]
    }

    /// Whether the "new read" coil is set.
    #[must_use]
    pub fn new_read(&self) -> bool {
        self.coils[usize::from(self.map.new_read_coil)]
    }

    /// How many cards were presented.
    #[must_use]
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Presents a card: its UID goes into the UID block and "new read" is set.
    ///
    /// # Errors
    /// [`ControlError::BadField`] (`hex`) for an empty UID or one longer than the block; nothing
    /// changes then.
    pub fn present(&mut self, uid: &[u8]) -> Result<(), ControlError> {
        let max = self.map.max_uid_len();
        if uid.is_empty() || uid.len() > max {
            return Err(ControlError::bad_field(
                "hex",
                format!("a UID has 1 to {max} bytes, not {}", uid.len()),
            ));
        }
        let mut padded = vec![0u8; max - uid.len()];
        padded.extend_from_slice(uid);
        let block = self.map.uid_block();
        for (register, pair) in self.holding[block].iter_mut().zip(padded.chunks_exact(2)) {
            *register = u16::from_be_bytes([pair[0], pair[1]]);
        }
        self.coils[usize::from(self.map.new_read_coil)] = true;
        self.reads += 1;
        tracing::info!(uid = %crate::control::HexBytes(uid.to_vec()), "card presented");
        Ok(())
    }

    /// Removes the card: UID block zeroed, "new read" cleared.
    pub fn clear(&mut self) {
        let block = self.map.uid_block();
        self.holding[block].fill(0);
        self.coils[usize::from(self.map.new_read_coil)] = false;
    }

    /// Answers one request seen on the bus; `None` means no answer is sent (another unit, a
    /// broadcast, or the reader is silenced).
    pub fn handle_request(
        &mut self,
        unit: u8,
        request: &Request<'_>,
    ) -> Option<Result<Response, ExceptionCode>> {
        if self.silent {
            return None;
        }
        if unit == 0 {
            let is_write = matches!(
                request,
                Request::WriteSingleCoil(..)
                    | Request::WriteMultipleCoils(..)
                    | Request::WriteSingleRegister(..)
                    | Request::WriteMultipleRegisters(..)
            );
            if is_write {
                let _ = self.answer(request);
            }
            return None;
        }
        if unit != self.unit {
            return None;
        }
        Some(self.answer(request))
    }

    fn answer(&mut self, request: &Request<'_>) -> Result<Response, ExceptionCode> {
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
            Request::WriteSingleCoil(addr, value) => {
                let index = checked_index(*addr, self.coils.len())?;
                self.coils[index] = *value;
                Ok(Response::WriteSingleCoil(*addr, *value))
            }
            Request::WriteMultipleCoils(addr, values) => {
                let range = checked_range(*addr, values.len(), MAX_WRITE_BITS, self.coils.len())?;
                self.coils[range.clone()].copy_from_slice(values);
                Ok(Response::WriteMultipleCoils(*addr, quantity(&range)))
            }
            Request::ReadHoldingRegisters(addr, quantity) => {
                let range = checked_range(
                    *addr,
                    usize::from(*quantity),
                    MAX_READ_REGISTERS,
                    self.holding.len(),
                )?;
                Ok(Response::ReadHoldingRegisters(self.holding[range].to_vec()))
            }
            Request::WriteSingleRegister(addr, value) => {
                let index = checked_index(*addr, self.holding.len())?;
                self.check_writable(index..index + 1)?;
                self.holding[index] = *value;
                Ok(Response::WriteSingleRegister(*addr, *value))
            }
            Request::WriteMultipleRegisters(addr, values) => {
                let range =
                    checked_range(*addr, values.len(), MAX_WRITE_REGISTERS, self.holding.len())?;
                self.check_writable(range.clone())?;
                self.holding[range.clone()].copy_from_slice(values);
                Ok(Response::WriteMultipleRegisters(*addr, quantity(&range)))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    fn check_writable(&self, range: std::ops::Range<usize>) -> Result<(), ExceptionCode> {
        let uid = self.map.uid_block();
        if range.start < uid.end && uid.start < range.end {
            Err(ExceptionCode::IllegalDataAddress)
        } else {
            Ok(())
        }
    }

    /// Applies a control op: `card`, `clear`, `silence`, `garbage`.
    ///
    /// # Errors
    /// [`ControlError::Unsupported`] for other ops, [`ControlError::BadField`] for bad values.
    pub fn handle_control(&mut self, op: ControlOp) -> Result<(), ControlError> {
        match op {
            ControlOp::Card { hex } => self.present(hex.as_bytes()),
            ControlOp::Clear {} => {
                self.clear();
                Ok(())
            }
            ControlOp::Silence { on } => {
                self.silent = on;
                tracing::info!(silent = on, "silence");
                Ok(())
            }
            ControlOp::Garbage { hex } => {
                check_garbage(hex.as_bytes())?;
                self.garbage.extend_from_slice(hex.as_bytes());
                Ok(())
            }
            op => Err(op.unsupported(Self::KIND)),
        }
    }

    /// Appends raw bytes due to the host (from `garbage`) since the last call.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.garbage);
    }
}

/// A range checked against the Modbus write limits has at most 1968 entries.
fn quantity(range: &std::ops::Range<usize>) -> u16 {
    u16::try_from(range.len()).unwrap_or(u16::MAX)
}

#[derive(Debug, Clone)]
struct FlatReaderService {
    shared: Arc<Mutex<FlatReader>>,
}

fn lock(shared: &Mutex<FlatReader>) -> MutexGuard<'_, FlatReader> {
    // The state machine does not panic while locked; should it ever, its state is still usable.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl tokio_modbus::server::Service for FlatReaderService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        let answer = lock(&self.shared).handle_request(request.slave, &request.request);
        tracing::debug!(unit = request.slave, request = ?request.request, ?answer, "modbus request");
        std::future::ready(answer.transpose())
    }
}

/// How long to wait before restarting the RTU server after it failed.
const RESTART_DELAY: Duration = Duration::from_millis(100);

/// Serves `reader` as a Modbus RTU slave on `link` until `shutdown` completes, taking control ops
/// from `control`. The RTU server of tokio-modbus gives up on a request it cannot decode (a
/// CRC-valid frame with a malformed PDU); it is then restarted on a fresh handle of the pty.
///
/// # Errors
/// [`SimError::Pty`] if no handle on the pty can be made, [`SimError::Serial`] if writing to it
/// fails, [`SimError::Control`] if the control socket fails.
pub async fn run_modbus_reader(
    reader: FlatReader,
    link: PtyLink,
    control: Option<ControlSocket>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let unit = reader.unit();
    let shared = Arc::new(Mutex::new(reader));
    let service = FlatReaderService {
        shared: Arc::clone(&shared),
    };
    let mut raw = link.open_stream()?;
    let serve = async {
        loop {
            let stream = match link.open_stream() {
                Ok(stream) => stream,
                Err(e) => return e,
            };
            let server = tokio_modbus::server::rtu::Server::new(stream);
            match server.serve_forever(service.clone()).await {
                Ok(()) => tracing::warn!("modbus rtu server stopped; restarting"),
                Err(e) => tracing::warn!("modbus rtu server failed: {e}; restarting"),
            }
            tokio::time::sleep(RESTART_DELAY).await;
        }
    };
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlRequest>(16);
    let control_loop = serve_optional(control.as_ref(), ctl_tx);
    tokio::pin!(shutdown, serve, control_loop);
    tracing::info!(unit, "modbus reader running");
    let mut out = Vec::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            e = &mut serve => return Err(e),
            res = &mut control_loop => return Err(control_failure(control.as_ref(), res)),
            Some(ControlRequest { op, reply }) = ctl_rx.recv() => {
                let result = {
                    let mut reader = lock(&shared);
                    let result = reader.handle_control(op);
                    reader.poll_transmit(&mut out);
                    result
                };
                if !out.is_empty() {
                    let written = async {
                        raw.write_all(&out).await?;
                        raw.flush().await
                    };
                    written.await.map_err(SimError::Serial)?;
                    out.clear();
                }
                let _ = reply.send(result);
            }
        }
    }
    tracing::info!("modbus reader stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::control::HexBytes;

    fn card(hex: &str) -> ControlOp {
        ControlOp::Card {
            hex: HexBytes::parse(hex).unwrap(),
        }
    }

    fn reader() -> FlatReader {
        FlatReader::new(1, FlatReaderMap::default())
    }

    #[test]
    fn a_card_fills_the_uid_block_right_aligned() {
        let mut reader = reader();
        assert!(!reader.new_read());
        reader.handle_control(card("1A00B54E12")).unwrap();
        assert_eq!(reader.uid_registers(), [0x0000, 0x001A, 0x00B5, 0x4E12]);
        assert!(reader.new_read());
        // The host reads exactly the vector's request: 4 registers from 6, unit 1.
        assert_eq!(
            reader.handle_request(1, &Request::ReadHoldingRegisters(6, 4)),
            Some(Ok(Response::ReadHoldingRegisters(vec![
                0x0000, 0x001A, 0x00B5, 0x4E12
            ])))
        );
        reader.handle_control(card("0102030405060708")).unwrap();
        assert_eq!(reader.uid_registers(), [0x0102, 0x0304, 0x0506, 0x0708]);
        assert_eq!(reader.reads(), 2);
    }

    #[test]
    fn the_host_clears_new_read() {
        let mut reader = reader();
        reader.handle_control(card("04A1B2C3")).unwrap();
        assert_eq!(
            reader.handle_request(1, &Request::ReadCoils(0, 1)),
            Some(Ok(Response::ReadCoils(vec![true])))
        );
        assert_eq!(
            reader.handle_request(1, &Request::WriteSingleCoil(0, false)),
            Some(Ok(Response::WriteSingleCoil(0, false)))
        );
        assert!(!reader.new_read());
        assert_eq!(reader.uid_registers(), [0, 0, 0x04A1, 0xB2C3], "UID stays");
        reader.handle_control(ControlOp::Clear {}).unwrap();
        assert_eq!(reader.uid_registers(), [0; 4]);
    }

    #[test]
    fn bad_cards_are_refused_and_change_nothing() {
        let mut reader = reader();
        reader.handle_control(card("11")).unwrap();
        for hex in ["", "010203040506070809"] {
            let result = reader.handle_control(card(hex));
            assert!(
                matches!(&result, Err(ControlError::BadField { field: "hex", .. })),
                "{hex}: {result:?}"
            );
        }
        assert_eq!(reader.uid_registers(), [0, 0, 0, 0x0011]);
        assert_eq!(reader.reads(), 1);
        assert_eq!(
            reader.handle_control(ControlOp::Scan { text: "x".into() }),
            Err(ControlError::Unsupported {
                device: "modbus-reader",
                op: "scan"
            })
        );
    }

    #[test]
    fn only_its_unit_is_answered_and_broadcast_writes_apply() {
        let mut reader = reader();
        reader.handle_control(card("99")).unwrap();
        assert_eq!(reader.handle_request(2, &Request::ReadCoils(0, 1)), None);
        assert_eq!(
            reader.handle_request(2, &Request::WriteSingleCoil(0, false)),
            None
        );
        assert!(reader.new_read(), "another unit's write is not applied");
        assert_eq!(
            reader.handle_request(0, &Request::WriteSingleCoil(0, false)),
            None
        );
        assert!(!reader.new_read(), "a broadcast write is applied");
    }

    #[test]
    fn registers_outside_the_uid_are_storage_and_the_uid_is_read_only() {
        let mut reader = reader();
        assert_eq!(
            reader.handle_request(1, &Request::WriteSingleRegister(4, 1)),
            Some(Ok(Response::WriteSingleRegister(4, 1)))
        );
        assert_eq!(
            reader.handle_request(1, &Request::ReadHoldingRegisters(4, 1)),
            Some(Ok(Response::ReadHoldingRegisters(vec![1])))
        );
        let cases = [
            (
                Request::WriteSingleRegister(6, 1),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteMultipleRegisters(4, Cow::Owned(vec![1, 2, 3])),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::ReadHoldingRegisters(14, 4),
                ExceptionCode::IllegalDataAddress,
            ),
            (Request::ReadCoils(8, 1), ExceptionCode::IllegalDataAddress),
            (
                Request::ReadHoldingRegisters(0, 0),
                ExceptionCode::IllegalDataValue,
            ),
            (
                Request::ReadInputRegisters(0, 1),
                ExceptionCode::IllegalFunction,
            ),
            (
                Request::ReadDiscreteInputs(0, 1),
                ExceptionCode::IllegalFunction,
            ),
        ];
        for (request, exception) in cases {
            assert_eq!(
                reader.handle_request(1, &request),
                Some(Err(exception)),
                "{request:?}"
            );
        }
        assert_eq!(reader.uid_registers(), [0; 4]);
        assert_eq!(
            reader.handle_request(
                1,
                &Request::WriteMultipleRegisters(10, Cow::Owned(vec![7, 8]))
            ),
            Some(Ok(Response::WriteMultipleRegisters(10, 2)))
        );
    }

    #[test]
    fn silence_and_garbage() {
        let mut reader = reader();
        reader
            .handle_control(ControlOp::Silence { on: true })
            .unwrap();
        assert_eq!(reader.handle_request(1, &Request::ReadCoils(0, 1)), None);
        reader
            .handle_control(ControlOp::Garbage {
                hex: HexBytes(vec![0xDE, 0xAD]),
            })
            .unwrap();
        let mut out = Vec::new();
        reader.poll_transmit(&mut out);
        assert_eq!(out, [0xDE, 0xAD], "garbage is sent even while silent");
        reader
            .handle_control(ControlOp::Silence { on: false })
            .unwrap();
        assert!(
            reader
                .handle_request(1, &Request::ReadCoils(0, 1))
                .is_some()
        );
    }

    #[test]
    fn a_small_map_grows_to_hold_its_uid_block() {
        let map = FlatReaderMap {
            uid_start: 20,
            uid_registers: 2,
            new_read_coil: 9,
            holding_registers: 4,
            coils: 1,
        };
        let mut reader = FlatReader::new(3, map);
        reader.handle_control(card("A1B2C3D4")).unwrap();
        assert_eq!(
            reader.handle_request(3, &Request::ReadHoldingRegisters(20, 2)),
            Some(Ok(Response::ReadHoldingRegisters(vec![0xA1B2, 0xC3D4])))
        );
        assert_eq!(
            reader.handle_request(3, &Request::ReadCoils(9, 1)),
            Some(Ok(Response::ReadCoils(vec![true])))
        );
    }
}
