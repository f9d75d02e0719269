//! Driver for "flat" Modbus RTU card readers, see [`custos_protocol::modbus_map::reader`].
//!
//! The transport is tokio-modbus (`rtu::attach_slave` on the port, unit = `address`). Every
//! poll (each `poll_interval`): read the new-read coil; if set, read the UID holding registers,
//! clear the coil, and report the card. The register map is [`FlatReaderMap::default`] (UID in
//! 4 holding registers from 6, flag in coil 0: the convention of the published vector), as the
//! reader settings carry no map.
//!
//! Every tokio-modbus call runs under `reply_timeout`: its RTU client waits for ever on a
//! silent peer. A timeout is NoReply and ends the session (a late reply would otherwise be
//! taken for the answer to the next request); a transport error is SerialLost. A Modbus
//! exception means the reader answered but refused (a wrong map, say): the reader is degraded
//! and polling goes on.
//!
//! # What a UID is reported as
//!
//! The uplink knows two scanned codes: barcode text and EM4100 cards (10 hex digits). Flat
//! readers right-align a shorter UID with leading zeros (`00 00 00 1A 00 B5 4E 12`), so a UID
//! whose bytes before the last five are all zero is an EM4100-sized id and is reported as
//! [`ScannedCode::EmCard`] with those five bytes (`1A00B54E12`), exactly what an EM4100 module
//! at a desk would report for the same card. A longer UID (a 7-byte MIFARE UID, say) fits
//! neither code: reporting its hex as "barcode text" would make it look like a scanned label.
//! It is not reported as a scan; the reader is degraded with a fault naming the UID, so the
//! unsupported card is visible in health and logs. An all-zero UID is "no card" and ignored.

use std::future::Future;

use custos_protocol::em4100::Card;
use custos_protocol::modbus_map::{CardBytes, FlatReaderMap};
use custos_protocol::uplink::ScannedCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::prelude::rtu;
use tokio_modbus::{ExceptionCode, Slave};

use super::health::Reporter;
use super::{Protocol, ReaderError, ReaderInfo, ReaderSettings};
use crate::model::{ReaderOutput, now_ms};

/// What a UID read from the registers is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Uid {
    /// All zero: no card.
    NoCard,
    /// An EM4100-sized id.
    EmCard(Card),
    /// A longer UID, which no scanned code can carry.
    Unsupported(CardBytes),
}

/// Classifies a UID (see the module docs).
pub(crate) fn classify(uid: &CardBytes) -> Uid {
    let bytes = uid.as_bytes();
    if uid.is_zero() {
        return Uid::NoCard;
    }
    let split = bytes.len().saturating_sub(5);
    let (head, tail) = bytes.split_at(split);
    if head.iter().any(|&b| b != 0) {
        return Uid::Unsupported(*uid);
    }
    let mut five = [0u8; 5];
    five[5 - tail.len()..].copy_from_slice(tail);
    Uid::EmCard(Card {
        version: five[0],
        number: u32::from_be_bytes([five[1], five[2], five[3], five[4]]),
    })
}

/// One tokio-modbus call under the reply timeout: `Err` for a link failure, `Ok(Err)` for an
/// exception from the reader.
async fn call<T>(
    settings: &ReaderSettings,
    reporter: &Reporter,
    op: &'static str,
    request: impl Future<Output = tokio_modbus::Result<T>>,
) -> Result<Result<T, ExceptionCode>, ReaderError> {
    match tokio::time::timeout(settings.reply_timeout, request).await {
        Err(_) => Err(ReaderError::NoReply(settings.reply_timeout)),
        Ok(Err(e)) => Err(ReaderError::Modbus(e)),
        Ok(Ok(reply)) => {
            reporter.frame_ok();
            // Any answer, an exception too, shows the link works.
            reporter.answered().await?;
            if let Err(code) = &reply {
                tracing::debug!(op, %code, "modbus exception");
            }
            Ok(reply)
        }
    }
}

fn attach<S>(io: S, settings: &ReaderSettings) -> Context
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    rtu::attach_slave(io, Slave(settings.address))
}

/// Runs a session until it fails.
pub(crate) async fn session<S>(io: S, settings: &ReaderSettings, reporter: &Reporter) -> ReaderError
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut ctx = attach(io, settings);
    let map = FlatReaderMap::default();
    let mut exception = false;
    let mut ticks = tokio::time::interval(settings.poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = poll(&mut ctx, settings, reporter, &map).await;
        let result = match outcome {
            Err(e) => return e,
            Ok(result) => result,
        };
        let update = match result {
            Err((op, code)) => {
                exception = true;
                reporter
                    .other(Some(format!("{op}: modbus exception {code}")))
                    .await
            }
            Ok(()) if exception => {
                exception = false;
                reporter.other(None).await
            }
            Ok(()) => Ok(()),
        };
        if let Err(e) = update {
            return e;
        }
    }
}

/// One poll. `Ok(Err)`: the reader answered a call with an exception.
async fn poll(
    ctx: &mut Context,
    settings: &ReaderSettings,
    reporter: &Reporter,
    map: &FlatReaderMap,
) -> Result<Result<(), (&'static str, ExceptionCode)>, ReaderError> {
    if let Some(coil) = map.new_read_coil {
        let flag = match call(
            settings,
            reporter,
            "read new-read coil",
            ctx.read_coils(coil, 1),
        )
        .await?
        {
            Ok(bits) => bits.first().copied().unwrap_or(false),
            Err(code) => return Ok(Err(("read new-read coil", code))),
        };
        if !flag {
            return Ok(Ok(()));
        }
    }
    let block = map.uid_block();
    let registers = match call(
        settings,
        reporter,
        "read uid registers",
        ctx.read_holding_registers(block.start, block.count),
    )
    .await?
    {
        Ok(registers) => registers,
        Err(code) => return Ok(Err(("read uid registers", code))),
    };
    if let Some(clear) = map.clear_flag() {
        if let Err(code) = call(
            settings,
            reporter,
            "clear new-read coil",
            ctx.write_single_coil(clear.coil, clear.value),
        )
        .await?
        {
            return Ok(Err(("clear new-read coil", code)));
        }
    }
    let uid = match map.decode_uid(&registers) {
        Ok(uid) => uid,
        Err(e) => {
            // The reader sent a block of the wrong size: treat it like a refusal.
            tracing::warn!(%e, "uid block");
            reporter.other(Some(format!("uid registers: {e}"))).await?;
            return Ok(Ok(()));
        }
    };
    match classify(&uid) {
        Uid::NoCard => Ok(Ok(())),
        Uid::EmCard(card) => {
            reporter.other(None).await?;
            reporter
                .emit(ReaderOutput::Scan {
                    reader: reporter.name().clone(),
                    at_ms: now_ms(),
                    code: ScannedCode::EmCard {
                        id: card.id_hex().as_str().to_owned(),
                    },
                })
                .await?;
            Ok(Ok(()))
        }
        Uid::Unsupported(uid) => {
            tracing::warn!(%uid, "card uid is longer than an em4100 id; not reported");
            reporter
                .other(Some(format!(
                    "card uid {uid} is not an em4100 id and cannot be reported"
                )))
                .await?;
            Ok(Ok(()))
        }
    }
}

/// Reads the UID registers once (`custosd check`).
pub(crate) async fn identify<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<ReaderInfo, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut ctx = attach(io, settings);
    let block = FlatReaderMap::default().uid_block();
    let registers = call(
        settings,
        reporter,
        "read uid registers",
        ctx.read_holding_registers(block.start, block.count),
    )
    .await?
    .map_err(|code| ReaderError::Refused {
        command: "read uid registers",
        reason: code.to_string(),
    })?;
    Ok(ReaderInfo {
        protocol: Protocol::ModbusFlat,
        firmware: None,
        detail: format!(
            "modbus unit {} answers: {} uid registers from {} read ({:04X?})",
            settings.address, block.count, block.start, registers
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use custos_protocol::codec::StreamDecoder;
    use custos_protocol::modbus_map::rtu::{self as rtu_map, Request, RequestAdu};
    use custos_protocol::uplink::{HealthState, ReaderFault};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    use super::super::run_reader_on;
    use super::super::testing::{hex, next_non_ok, wait_fault};
    use super::*;

    fn settings() -> ReaderSettings {
        ReaderSettings::new("desk-rs485", Protocol::ModbusFlat, "/dev/null")
    }

    fn card_bytes(registers: &[u16]) -> CardBytes {
        FlatReaderMap {
            uid_registers: registers.len() as u16,
            ..FlatReaderMap::default()
        }
        .decode_uid(registers)
        .unwrap()
    }

    #[test]
    fn uids_map_to_em_cards_only_when_they_fit_five_bytes() {
        let em = card_bytes(&[0x0000, 0x001A, 0x00B5, 0x4E12]);
        assert_eq!(classify(&em), Uid::EmCard("1A00B54E12".parse().unwrap()));
        // A version byte of zero is still five bytes.
        let zero_version = card_bytes(&[0x0000, 0x0000, 0x1234, 0x5678]);
        assert_eq!(
            classify(&zero_version),
            Uid::EmCard("0012345678".parse().unwrap())
        );
        // Two registers (4 bytes) are right-aligned into five.
        let short = card_bytes(&[0x1234, 0x5678]);
        assert_eq!(classify(&short), Uid::EmCard("0012345678".parse().unwrap()));
        let mifare = card_bytes(&[0x0004, 0xA1B2, 0xC3D4, 0xE5F6]);
        assert!(matches!(classify(&mifare), Uid::Unsupported(_)));
        assert_eq!(classify(&card_bytes(&[0; 4])), Uid::NoCard);
    }

    /// A fake RTU card reader: coil 0 and holding registers 6..10, answering unit 1.
    #[derive(Clone, Default)]
    struct Device {
        flag: Arc<Mutex<bool>>,
        uid: Arc<Mutex<[u16; 4]>>,
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
        silent: Arc<Mutex<bool>>,
    }

    fn rtu_reply(unit: u8, pdu: &[u8]) -> Vec<u8> {
        let mut adu = vec![unit];
        adu.extend_from_slice(pdu);
        let crc = rtu_map::crc16(&adu);
        adu.extend_from_slice(&crc.to_le_bytes());
        adu
    }

    impl Device {
        async fn serve(self, mut io: DuplexStream) {
            let mut decoder = StreamDecoder::new(rtu_map::decode_request, rtu_map::MAX_ADU_LEN);
            let mut buf = [0u8; 256];
            let mut raw = Vec::new();
            loop {
                let n = match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                raw.extend_from_slice(&buf[..n]);
                decoder.push(&buf[..n]);
                while let Some(frame) = decoder.next_frame() {
                    let Ok(RequestAdu { unit, request }) = frame else {
                        continue;
                    };
                    self.requests.lock().unwrap().push(std::mem::take(&mut raw));
                    if *self.silent.lock().unwrap() {
                        continue;
                    }
                    let pdu = match request {
                        Request::ReadCoils { address: 0, .. } => {
                            vec![0x01, 0x01, u8::from(*self.flag.lock().unwrap())]
                        }
                        Request::ReadHoldingRegisters {
                            address: 6,
                            count: 4,
                        } => {
                            let mut pdu = vec![0x03, 8];
                            for r in *self.uid.lock().unwrap() {
                                pdu.extend_from_slice(&r.to_be_bytes());
                            }
                            pdu
                        }
                        Request::WriteSingleCoil { address: 0, value } => {
                            *self.flag.lock().unwrap() = value;
                            let v: u16 = if value { 0xFF00 } else { 0 };
                            let mut pdu = vec![0x05, 0, 0];
                            pdu.extend_from_slice(&v.to_be_bytes());
                            pdu
                        }
                        // Illegal data address.
                        other => vec![other.function() | 0x80, 0x02],
                    };
                    io.write_all(&rtu_reply(unit, &pdu)).await.unwrap();
                }
            }
        }
    }

    fn start(device: Device) -> (mpsc::Receiver<ReaderOutput>, tokio::task::JoinHandle<()>) {
        let (host, dev) = tokio::io::duplex(1024);
        tokio::spawn(device.serve(dev));
        let (out, rx) = mpsc::channel(64);
        let mut link = Some(host);
        let connect = move || {
            let next = link.take().ok_or(ReaderError::Closed);
            async move { next }
        };
        let task = tokio::spawn(run_reader_on(
            settings(),
            out,
            std::future::pending(),
            connect,
        ));
        (rx, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_read_is_fetched_cleared_and_reported_as_an_em_card() {
        let device = Device::default();
        *device.uid.lock().unwrap() = [0x0000, 0x001A, 0x00B5, 0x4E12];
        let (mut rx, _task) = start(device.clone());
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        *device.flag.lock().unwrap() = true;
        let scan = next_non_ok(&mut rx).await;
        match scan {
            ReaderOutput::Scan { code, .. } => assert_eq!(
                code,
                ScannedCode::EmCard {
                    id: "1A00B54E12".into()
                }
            ),
            other => panic!("{other:?}"),
        }
        assert!(!*device.flag.lock().unwrap(), "flag cleared");
        let requests = device.requests.lock().unwrap().clone();
        // Read coil 0 (unit 1): 01 01 00 00 00 01 + CRC FD CA.
        assert_eq!(requests[0], hex("01 01 00 00 00 01 FD CA"));
        // modbus.txt: "01 03 00 06 00 04 A4 08 | read 4 holding registers from 6"
        let at = requests
            .iter()
            .position(|r| r[1] == 0x03)
            .expect("uid read");
        assert_eq!(requests[at], hex("01 03 00 06 00 04 A4 08"));
        // Then write coil 0 off: 01 05 00 00 00 00 + CRC CD CA.
        assert_eq!(requests[at + 1], hex("01 05 00 00 00 00 CD CA"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_uid_degrades_instead_of_posing_as_a_barcode() {
        let device = Device::default();
        *device.uid.lock().unwrap() = [0x0004, 0xA1B2, 0xC3D4, 0xE5F6];
        *device.flag.lock().unwrap() = true;
        let (mut rx, _task) = start(device);
        match next_non_ok(&mut rx).await {
            ReaderOutput::Health { health, .. } => {
                assert_eq!(health.state, HealthState::Degraded);
                let Some(ReaderFault::Other { detail }) = health.fault else {
                    panic!("{health:?}")
                };
                assert!(detail.contains("0004A1B2C3D4E5F6"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_reader_is_no_reply_not_a_hang() {
        let device = Device::default();
        *device.silent.lock().unwrap() = true;
        let (mut rx, _task) = start(device);
        let start = tokio::time::Instant::now();
        let h = wait_fault(&mut rx, &ReaderFault::NoReply).await;
        assert_eq!(h.state, HealthState::Fault);
        assert!(tokio::time::Instant::now() - start <= settings().reply_timeout * 2);
    }
}
