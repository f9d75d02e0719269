//! Driver for UHF readers of the CHAFON / UHFReader18 / UHFReader288 family, see
//! [`custos_protocol::chafon`].
//!
//! On connect (at start and after every reconnect): get reader information (0x21; the answer
//! proves the link and gives the reader's power, inventory scan time and, from a UHFReader288,
//! its antenna configuration), and set the power (0x2F) when `power_dbm` is configured and
//! differs (a refusal degrades the reader, reading goes on).
//!
//! # Configured, not trusted
//!
//! A reader out of the box uses antenna 1 only; a gate whose outer antenna is 2 would never see
//! an exit, and a driver that trusts the stored settings would call that "Ok". So the driver
//! sets what the configuration needs and reads it back:
//! - a UHFReader288 (reader information with the antenna byte): when its antenna mask is not
//!   exactly the configured antennas, "set antenna configuration" (0x3F) and read the reader
//!   information again; every configured antenna the read-back does not show enabled is an
//!   `AntennaMissing` fault naming it (for a gate's reader a fault, not a degradation);
//! - a UHFReader18 (no antenna byte) has antenna 1 only: any other configured antenna is
//!   missing;
//! - the reply form must match `chafon_form` when it is configured: the reader information
//!   tells the generations apart (the 288 family appends the antenna byte), and a reader of the
//!   other form is a `ProtocolMismatch`, not an endless "no reply". Bytes that answer the
//!   reader information but decode as nothing (another protocol, a wrong baud rate) are a
//!   mismatch too.
//!
//! Then poll every `poll_interval`: with one antenna, an inventory without parameters (0x01,
//! the configured settings, which both generations accept); with several (a gate, a cabinet
//! with several shelves) on a UHFReader288, one inventory per antenna naming it (Target/Ant),
//! so an antenna that stops answering (0xF8) is reported by number at once. Replies with status 0x03 "more data follows" are
//! followed by more frames of the same round; 0x01/0x02/0x04 end it, and so does the ack
//! "0xFB no tag". The reader may take its scan time (`scan_time` × 100 ms) before it answers,
//! so the deadline is `reply_timeout` plus that, from the last frame.
//!
//! Scan-mode / real-time-mode pushes (reCmd 0xEE) are accepted at any time, between polls too;
//! heartbeats only show the reader is alive.
//!
//! Tags: the UHFReader288 form names the antenna (from the reply's mask) and the RSSI; for the
//! UHFReader18 form (or a mask naming several antennas) the antenna is the first configured
//! one, and the RSSI is 0. An antenna error (0xF8) is `AntennaMissing` for the only configured
//! antenna, or an `Other` fault when several are configured (the reply does not say which).
//!
//! Decoding uses `chafon_form` when configured; otherwise the decoder tells the forms apart
//! (preferring the UHFReader288 form when a frame fits both). As the protocol has no start
//! byte, the link flushes pending bytes after 100 ms of silence (see `link.rs`).

use std::convert::Infallible;
use std::time::Duration;

use custos_protocol::chafon::{
    self, ChafonError, Command, CommandFrame, InventoryForm, InventoryParams, InventoryReply,
    InventoryStatus, RawCommand, ReaderInfo as ChafonInfo, Response, ResponseFrame, ScanReport,
    ScanTarget, Status, TagRecord,
};
use custos_protocol::codec::Decoded;
use custos_protocol::uplink::ReaderFault;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::health::Reporter;
use super::link::{Codec, Link};
use super::{Protocol, ReaderError, ReaderInfo, ReaderSettings};
use crate::model::{ReaderOutput, TagRead, now_ms};

/// Silence after which pending bytes are decoded to the end: the manual has the bytes of one
/// block less than 15 ms apart; USB serial adapters add up to 16 ms of latency.
const LINE_GAP: Duration = Duration::from_millis(100);

/// The scan time of a per-antenna inventory, in units of 100 ms: the least the readers accept,
/// so a gate's antennas are each visited often.
const PER_ANTENNA_SCAN_TIME: u8 = 3;

/// Q value of a per-antenna inventory (Q = 4: a few tags at a time, as at a portal).
const PER_ANTENNA_Q: u8 = 0x04;

/// Session of a per-antenna inventory: S0, so a tag answers every round while it is in the
/// field (a walk through a gate is short).
const PER_ANTENNA_SESSION: u8 = 0x00;

type ChafonLink<S> = Link<S, ResponseFrame, ChafonError>;

/// How the inventory rounds of a session name antennas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounds {
    /// One inventory without parameters: the reader's (configured) antennas.
    Stored,
    /// One inventory per configured antenna, naming it.
    PerAntenna,
}

/// The mask bit of a 1-based antenna (bit 0 antenna 1).
fn antenna_bit(antenna: u8) -> u8 {
    1u8.checked_shl(u32::from(antenna.saturating_sub(1)))
        .unwrap_or(0)
}

/// The mask of every configured antenna.
fn antenna_mask(settings: &ReaderSettings) -> u8 {
    settings
        .inventory_antennas()
        .iter()
        .fold(0, |mask, a| mask | antenna_bit(*a))
}

/// The form a reader's information shows: the UHFReader288 family appends the antenna byte.
fn form_of(info: &ChafonInfo) -> InventoryForm {
    match info.extension {
        Some(_) => InventoryForm::Reader288,
        None => InventoryForm::Reader18,
    }
}

fn form_name(form: InventoryForm) -> &'static str {
    match form {
        InventoryForm::Reader18 => "18",
        InventoryForm::Reader288 => "288",
    }
}

/// Refuses a reader whose information shows the other reply form than `chafon_form`.
fn check_form(settings: &ReaderSettings, info: &ChafonInfo) -> Result<(), ReaderError> {
    let seen = form_of(info);
    match settings.chafon_form {
        Some(configured) if configured != seen => Err(ReaderError::ProtocolMismatch(format!(
            "chafon_form = \"{}\" is configured, but the reader (type {:#04x}) answers in the \
             UHFReader{} form",
            form_name(configured),
            info.reader_type,
            form_name(seen)
        ))),
        _ => Ok(()),
    }
}

fn decoder(form: Option<InventoryForm>) -> fn(&[u8]) -> Decoded<ResponseFrame, ChafonError> {
    match form {
        Some(InventoryForm::Reader18) => chafon::decode_response_reader18,
        Some(InventoryForm::Reader288) => chafon::decode_response_reader288,
        None => chafon::decode_response,
    }
}

fn link<S: AsyncRead + AsyncWrite + Unpin>(io: S, settings: &ReaderSettings) -> ChafonLink<S> {
    Link::new(
        io,
        Codec {
            decode: decoder(settings.chafon_form),
            capacity: 2 * chafon::MAX_FRAME_LEN,
            is_checksum: |e| matches!(e, ChafonError::BadCrc { .. }),
            gap: Some(LINE_GAP),
        },
        settings.reply_timeout,
    )
}

fn address_matches(configured: u8, from: u8) -> bool {
    configured == chafon::BROADCAST_ADDRESS || configured == from
}

/// The antenna a tag without one is attributed to.
fn default_antenna(settings: &ReaderSettings) -> u8 {
    settings.inventory_antennas()[0]
}

/// Runs a session until it fails.
pub(crate) async fn session<S>(io: S, settings: &ReaderSettings, reporter: &Reporter) -> ReaderError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut link = link(io, settings);
    let Err(e) = run(&mut link, settings, reporter).await;
    e
}

/// Asks the reader information once (`custosd check`).
pub(crate) async fn identify<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<ReaderInfo, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut link = link(io, settings);
    let info = reader_info(&mut link, settings, reporter).await?;
    check_form(settings, &info)?;
    let antennas = match info.extension {
        Some(ext) => format!(
            "antennas enabled now {} (the daemon sets {} at start)",
            antenna_list(ext.antenna),
            antenna_list(antenna_mask(settings))
        ),
        None => "UHFReader18 form: antenna 1 only".to_owned(),
    };
    Ok(ReaderInfo {
        protocol: Protocol::UhfChafon,
        firmware: Some((info.firmware_major, info.firmware_minor)),
        detail: format!(
            "reader at address {:#04x} answers: firmware {}, type {:#04x}, power {} dBm, \
             scan time {} ms, {antennas}",
            settings.address,
            info.firmware_version(),
            info.reader_type,
            info.power_dbm,
            u32::from(info.scan_time) * 100
        ),
    })
}

/// The antennas of a mask as people write them: "1, 2" ("none" for an empty mask).
fn antenna_list(mask: u8) -> String {
    let list: Vec<String> = (1..=8u8)
        .filter(|a| mask & antenna_bit(*a) != 0)
        .map(|a| a.to_string())
        .collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

async fn run<S>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<Infallible, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let info = reader_info(link, settings, reporter).await?;
    tracing::info!(firmware = %info.firmware_version(), power = info.power_dbm, "chafon reader answers");
    check_form(settings, &info)?;
    reporter.answered().await?;
    if let Some(dbm) = settings.power_dbm {
        configure_power(link, settings, reporter, &info, dbm).await?;
    }
    let enabled = configure_antennas(link, settings, reporter, &info).await?;
    // Antennas the reader does not use keep the fault `configure_antennas` gave them until the
    // next session sets them again; polling them would only replace it with a refusal.
    let antennas: Vec<u8> = settings
        .inventory_antennas()
        .into_iter()
        .filter(|a| enabled & antenna_bit(*a) != 0)
        .collect();
    let rounds = if settings.inventory_antennas().len() > 1
        && info.extension.is_some()
        && !antennas.is_empty()
    {
        Rounds::PerAntenna
    } else {
        Rounds::Stored
    };
    let scan_time = match rounds {
        Rounds::Stored => info.scan_time,
        Rounds::PerAntenna => PER_ANTENNA_SCAN_TIME,
    };
    let round_timeout = link.reply_timeout() + Duration::from_millis(100) * u32::from(scan_time);
    loop {
        let next_poll = Instant::now() + settings.poll_interval;
        match rounds {
            Rounds::Stored => {
                inventory(link, settings, reporter, round_timeout, None, enabled).await?;
            }
            Rounds::PerAntenna => {
                for &antenna in &antennas {
                    let target = Some(antenna);
                    inventory(link, settings, reporter, round_timeout, target, enabled).await?;
                }
            }
        }
        // Between polls, take whatever the reader pushes.
        loop {
            match link.next_frame_until(reporter, Some(next_poll)).await {
                Ok(frame) => handle_push(settings, reporter, frame).await?,
                Err(ReaderError::NoReply(_)) => break,
                Err(e) => return Err(e),
            }
        }
    }
}

async fn send<S>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    command: Command,
) -> Result<(), ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = [0u8; chafon::MAX_FRAME_LEN];
    let frame = CommandFrame {
        address: settings.address,
        command,
    };
    let len = chafon::encode_command(&frame, &mut buf)?;
    link.send(&buf[..len]).await
}

/// Sends `command` and waits for the first reply `accept` takes, handling pushes meanwhile.
async fn request<S, T>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    command: Command,
    mut accept: impl FnMut(&Response) -> Option<T>,
) -> Result<T, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    send(link, settings, command).await?;
    let deadline = Instant::now() + link.reply_timeout();
    loop {
        let frame = link.next_frame_until(reporter, Some(deadline)).await?;
        if !address_matches(settings.address, frame.address) {
            continue;
        }
        if let Some(t) = accept(&frame.response) {
            return Ok(t);
        }
        handle_push(settings, reporter, frame).await?;
    }
}

/// A reply timeout to the reader information (the first question of every session) while
/// bytes arrived that decoded as nothing: the reader speaks, but not the configured protocol
/// (an 0xA0 reader, a wrong baud rate). Any other error stays as it is. (Only there: later in a
/// session, line noise followed by a dead reader is a dead reader.)
fn mismatch_if_garbage(
    error: ReaderError,
    reporter: &Reporter,
    garbage_before: u64,
    settings: &ReaderSettings,
) -> ReaderError {
    let garbage = reporter.garbage().saturating_sub(garbage_before);
    match error {
        ReaderError::NoReply(_) if garbage > 0 => ReaderError::ProtocolMismatch(format!(
            "{garbage} bytes arrived within the reply timeout but none parsed as a CHAFON reply \
             (chafon_form {}, {} baud)",
            settings.chafon_form.map_or("auto", form_name),
            settings.baud
        )),
        other => other,
    }
}

/// Sets the configured antennas on a UHFReader288 and reads them back (see the module docs);
/// reports every configured antenna that is not enabled. Answers the mask of the enabled ones.
async fn configure_antennas<S>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    info: &ChafonInfo,
) -> Result<u8, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let wanted = antenna_mask(settings);
    let enabled = match info.extension {
        // A UHFReader18 has antenna 1, and nothing to configure.
        None => antenna_bit(1),
        Some(ext) if ext.antenna == wanted => ext.antenna,
        Some(ext) => {
            tracing::info!(
                stored = format!("{:#04x}", ext.antenna),
                wanted = format!("{wanted:#04x}"),
                "setting the antenna configuration"
            );
            let raw = RawCommand::new(chafon::CMD_SET_ANTENNAS, &[wanted])
                .map_err(|_| ReaderError::Settings("antenna mask"))?;
            let status = request(link, settings, reporter, Command::Other(raw), |r| match r {
                Response::Ack {
                    command: chafon::CMD_SET_ANTENNAS,
                    status,
                } => Some(*status),
                _ => None,
            })
            .await?;
            if status != Status::Success {
                tracing::warn!(%status, "reader refused the antenna configuration");
            }
            let back = reader_info(link, settings, reporter).await?;
            back.extension.map_or(0, |e| e.antenna)
        }
    };
    for antenna in settings.inventory_antennas() {
        let fault = if enabled & antenna_bit(antenna) == 0 {
            tracing::error!(
                antenna,
                enabled = format!("{enabled:#04x}"),
                "a configured antenna is not enabled on the reader: it is never read"
            );
            Some(ReaderFault::AntennaMissing { antenna })
        } else {
            None
        };
        reporter.antenna_fault(antenna, fault).await?;
    }
    Ok(enabled)
}

async fn reader_info<S>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<ChafonInfo, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let garbage = reporter.garbage();
    let reply = request(link, settings, reporter, Command::ReaderInfo, |r| match r {
        Response::ReaderInfo(info) => Some(Ok(*info)),
        Response::Ack {
            command: chafon::CMD_READER_INFO,
            status,
        } => Some(Err(*status)),
        _ => None,
    })
    .await
    .map_err(|e| mismatch_if_garbage(e, reporter, garbage, settings))?;
    reply.map_err(|status| ReaderError::Refused {
        command: "reader information",
        reason: status.to_string(),
    })
}

async fn configure_power<S>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    info: &ChafonInfo,
    dbm: u8,
) -> Result<(), ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if info.power_dbm == dbm {
        return reporter.other(None).await;
    }
    let status = request(
        link,
        settings,
        reporter,
        Command::SetPower { dbm },
        |r| match r {
            Response::Ack {
                command: chafon::CMD_SET_POWER,
                status,
            } => Some(*status),
            _ => None,
        },
    )
    .await?;
    if status == Status::Success {
        tracing::info!(dbm, "output power set");
        reporter.other(None).await
    } else {
        tracing::warn!(dbm, %status, "reader refused the output power");
        reporter
            .other(Some(format!("set power {dbm} dBm refused: {status}")))
            .await
    }
}

/// One inventory round, of the reader's antennas or of the `target` one: the command, then
/// frames until the round ends. `enabled` is the reader's antenna mask: a round never clears
/// the fault of an antenna the reader does not use.
async fn inventory<S>(
    link: &mut ChafonLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    round_timeout: Duration,
    target: Option<u8>,
    enabled: u8,
) -> Result<(), ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let params = target.map(|antenna| InventoryParams {
        scan: Some(ScanTarget::antenna(antenna, PER_ANTENNA_SCAN_TIME)),
        ..InventoryParams::new(PER_ANTENNA_Q, PER_ANTENNA_SESSION)
    });
    send(link, settings, Command::Inventory { params }).await?;
    let antenna = target.unwrap_or_else(|| default_antenna(settings));
    let ok = if enabled & antenna_bit(antenna) == 0 {
        Some(ReaderFault::AntennaMissing { antenna })
    } else {
        None
    };
    loop {
        let deadline = Instant::now() + round_timeout;
        let frame = link.next_frame_until(reporter, Some(deadline)).await?;
        if !address_matches(settings.address, frame.address) {
            continue;
        }
        match &frame.response {
            Response::Inventory(reply) => {
                emit_reply(settings, reporter, reply).await?;
                if reply.status() != InventoryStatus::MoreData {
                    return reporter.antenna_fault(antenna, ok).await;
                }
            }
            Response::Ack {
                command: chafon::CMD_INVENTORY,
                status,
            } => {
                let fault = match status {
                    Status::NoTag => ok,
                    Status::AntennaError
                        if target.is_some() || settings.inventory_antennas().len() == 1 =>
                    {
                        Some(ReaderFault::AntennaMissing { antenna })
                    }
                    other => Some(ReaderFault::Other {
                        detail: format!("inventory failed: {other}"),
                    }),
                };
                return reporter.antenna_fault(antenna, fault).await;
            }
            _ => handle_push(settings, reporter, frame).await?,
        }
    }
}

/// A frame that answers no command: pushes are read, anything else is ignored.
async fn handle_push(
    settings: &ReaderSettings,
    reporter: &Reporter,
    frame: ResponseFrame,
) -> Result<(), ReaderError> {
    if !address_matches(settings.address, frame.address) {
        return Ok(());
    }
    match frame.response {
        Response::Scan(ScanReport::Tag { tag, .. }) => emit_tag(settings, reporter, &tag).await,
        Response::Scan(ScanReport::Heartbeat(beat)) => {
            tracing::trace!(packet = beat.packet_number, "heartbeat");
            Ok(())
        }
        other => {
            tracing::debug!(?other, "ignored an unsolicited frame");
            Ok(())
        }
    }
}

async fn emit_reply(
    settings: &ReaderSettings,
    reporter: &Reporter,
    reply: &InventoryReply,
) -> Result<(), ReaderError> {
    for tag in reply.tags() {
        emit_tag(settings, reporter, tag).await?;
    }
    Ok(())
}

async fn emit_tag(
    settings: &ReaderSettings,
    reporter: &Reporter,
    tag: &TagRecord,
) -> Result<(), ReaderError> {
    let read = TagRead {
        at_ms: now_ms(),
        epc: tag.epc,
        antenna: tag.antenna.unwrap_or_else(|| default_antenna(settings)),
        rssi: tag.rssi.unwrap_or(0),
    };
    reporter
        .emit(ReaderOutput::Tag {
            reader: reporter.name().clone(),
            read,
        })
        .await
}

#[cfg(test)]
mod tests {
    use custos_protocol::codec::StreamDecoder;
    use custos_protocol::epc::Epc;
    use custos_protocol::uplink::HealthState;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    use super::super::run_reader_on;
    use super::super::testing::{hex, next_non_ok, wait_fault};
    use super::*;

    const EPC: &str = "000000000000000000000313";

    fn settings() -> ReaderSettings {
        ReaderSettings {
            address: 0,
            ..ReaderSettings::new("cab-1", Protocol::UhfChafon, "/dev/null")
        }
    }

    struct FakeReader {
        io: DuplexStream,
        commands: StreamDecoder<CommandFrame, ChafonError>,
    }

    impl FakeReader {
        fn new(io: DuplexStream) -> Self {
            Self {
                io,
                commands: StreamDecoder::new(chafon::decode_command, chafon::MAX_FRAME_LEN),
            }
        }

        async fn raw_command(&mut self) -> Vec<u8> {
            let mut buf = [0u8; 64];
            let mut raw = Vec::new();
            loop {
                let n = self.io.read(&mut buf).await.expect("read");
                assert!(n > 0, "driver closed the link");
                raw.extend_from_slice(&buf[..n]);
                self.commands.push(&buf[..n]);
                if let Some(frame) = self.commands.next_frame() {
                    frame.expect("driver sent a valid frame");
                    return raw;
                }
            }
        }

        async fn reply(&mut self, response: Response) {
            let mut buf = [0u8; chafon::MAX_FRAME_LEN];
            let frame = ResponseFrame {
                address: 0,
                response,
            };
            let len = chafon::encode_response(&frame, &mut buf).unwrap();
            self.io.write_all(&buf[..len]).await.unwrap();
        }

        async fn raw(&mut self, bytes: &[u8]) {
            self.io.write_all(bytes).await.unwrap();
        }

        /// Answers with the captured reader information, but antenna mask `mask`.
        async fn info_with_antennas(&mut self, mask: u8) {
            let captured = hex("11 00 21 00 00 16 0C 03 4E 00 1E 0A 01 00 00 00 E6 51");
            let Decoded::Frame { frame, .. } = chafon::decode_response(&captured) else {
                panic!("the captured reply decodes");
            };
            let Response::ReaderInfo(mut info) = frame.response else {
                panic!("reader information");
            };
            if let Some(ext) = info.extension.as_mut() {
                ext.antenna = mask;
            }
            self.reply(Response::ReaderInfo(info)).await;
        }

        /// Answers the reader-information query with the captured reply of the vector file.
        async fn info(&mut self) {
            // uhf-chafon.txt: "04 00 21 D9 6A | host: get reader info, address 0"
            assert_eq!(self.raw_command().await, hex("04 00 21 D9 6A"));
            self.raw(&hex(
                "11 00 21 00 00 16 0C 03 4E 00 1E 0A 01 00 00 00 E6 51",
            ))
            .await;
        }
    }

    fn start(
        settings: ReaderSettings,
    ) -> (
        mpsc::Receiver<ReaderOutput>,
        FakeReader,
        tokio::task::JoinHandle<()>,
    ) {
        let (host, dev) = tokio::io::duplex(4096);
        let (out, rx) = mpsc::channel(64);
        let mut link = Some(host);
        let connect = move || {
            let next = link.take().ok_or(ReaderError::Closed);
            async move { next }
        };
        let task = tokio::spawn(run_reader_on(
            settings,
            out,
            std::future::pending(),
            connect,
        ));
        (rx, FakeReader::new(dev), task)
    }

    fn tag_of(o: ReaderOutput) -> TagRead {
        match o {
            ReaderOutput::Tag { read, .. } => read,
            other => panic!("expected a tag, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polls_inventory_and_reads_both_forms_and_more_data() {
        let (mut rx, mut fake, _task) = start(settings());
        fake.info().await;
        // uhf-chafon.txt: "04 00 01 DB 4B | host: inventory, address 0"
        assert_eq!(fake.raw_command().await, hex("04 00 01 DB 4B"));
        // Status 3 (more data) in the 288 form, then the 18 form, then "done, 0 tags".
        fake.raw(&hex(
            "15 00 01 03 01 01 0C 00 00 00 00 00 00 00 00 00 00 03 13 6B B1 A5",
        ))
        .await;
        fake.raw(&hex(
            "13 00 01 03 01 0C 00 00 00 00 00 00 00 00 00 00 03 13 3F 39",
        ))
        .await;
        fake.raw(&hex("07 00 01 01 01 00 1E 4B")).await;

        let a = tag_of(next_non_ok(&mut rx).await);
        assert_eq!(a.epc, Epc::from_hex(EPC).unwrap());
        assert_eq!((a.antenna, a.rssi), (1, 0x6B));
        let b = tag_of(next_non_ok(&mut rx).await);
        assert_eq!((b.antenna, b.rssi), (1, 0));
        // The next poll comes one poll interval after the previous one.
        let before = Instant::now();
        assert_eq!(fake.raw_command().await, hex("04 00 01 DB 4B"));
        assert!(Instant::now() - before <= settings().poll_interval);
    }

    #[tokio::test(start_paused = true)]
    async fn pushes_are_taken_between_polls_and_garbage_is_survived() {
        let (mut rx, mut fake, _task) = start(settings());
        fake.info().await;
        fake.raw_command().await;
        fake.reply(Response::Ack {
            command: chafon::CMD_INVENTORY,
            status: Status::NoTag,
        })
        .await;
        // A stray large length byte and a bad CRC, then a scan-mode push (288 form, antenna 2).
        fake.raw(&hex("FF")).await;
        fake.raw(&hex(
            "15 00 01 03 01 01 0C 00 00 00 00 00 00 00 00 00 00 03 13 6B B1 A6",
        ))
        .await;
        let epc = Epc::from_hex(EPC).unwrap();
        fake.reply(Response::Scan(ScanReport::tag288(0x02, epc, 0x50)))
            .await;
        let read = tag_of(next_non_ok(&mut rx).await);
        assert_eq!((read.epc, read.antenna, read.rssi), (epc, 2, 0x50));
        // The fake stops answering polls: NoReply, with the counters.
        let h = wait_fault(&mut rx, &ReaderFault::NoReply).await;
        assert_eq!(h.state, HealthState::Fault);
        // The bad frame, and every length byte inside it whose frame fits the buffer.
        assert!(h.checksum_errors >= 1, "{h:?}");
        // "FF" and the 22 bytes of the bad frame.
        assert_eq!(h.dropped_bytes, 1 + 22);
    }

    #[tokio::test(start_paused = true)]
    async fn antenna_error_is_antenna_missing_and_power_is_set() {
        let (mut rx, mut fake, _task) = start(ReaderSettings {
            antennas: vec![3],
            power_dbm: Some(20),
            ..settings()
        });
        fake.info().await;
        // The reader is at 30 dBm (0x1E): set 20. 05 00 2F 14 + CRC.
        let set = fake.raw_command().await;
        assert_eq!(set[..4], hex("05 00 2F 14"));
        fake.reply(Response::Ack {
            command: chafon::CMD_SET_POWER,
            status: Status::Success,
        })
        .await;
        // The reader uses antenna 1 (0x01): enable antenna 3 (0x04), then read it back.
        let set = fake.raw_command().await;
        assert_eq!(set[..4], hex("05 00 3F 04"));
        fake.reply(Response::Ack {
            command: chafon::CMD_SET_ANTENNAS,
            status: Status::Success,
        })
        .await;
        assert_eq!(fake.raw_command().await, hex("04 00 21 D9 6A"));
        fake.info_with_antennas(0x04).await;
        fake.raw_command().await;
        fake.reply(Response::Ack {
            command: chafon::CMD_INVENTORY,
            status: Status::AntennaError,
        })
        .await;
        // Its only antenna missing: the reader is blind.
        let h = wait_fault(&mut rx, &ReaderFault::AntennaMissing { antenna: 3 }).await;
        assert_eq!(h.state, HealthState::Fault);
    }

    /// A reader that keeps a configured antenna disabled (it refuses the configuration, and the
    /// read-back says so) is an antenna fault naming it before any inventory; for a gate's
    /// reader a fault.
    #[tokio::test(start_paused = true)]
    async fn an_antenna_the_read_back_does_not_show_is_missing() {
        let (mut rx, mut fake, _task) = start(ReaderSettings {
            antennas: vec![1, 2],
            gate: true,
            ..settings()
        });
        fake.info().await;
        let set = fake.raw_command().await;
        assert_eq!(set[..4], hex("05 00 3F 03"));
        fake.reply(Response::Ack {
            command: chafon::CMD_SET_ANTENNAS,
            status: Status::ParameterError,
        })
        .await;
        fake.info().await;
        let h = wait_fault(&mut rx, &ReaderFault::AntennaMissing { antenna: 2 }).await;
        assert_eq!(h.state, HealthState::Fault);
        // Then antenna 1 alone is polled, by name (Target A, Ant 0x80).
        let poll = fake.raw_command().await;
        assert_eq!(poll[2], chafon::CMD_INVENTORY);
        assert!(poll.windows(2).any(|w| w == [0x00, 0x80]), "{poll:02X?}");
    }

    /// `chafon_form = "18"` with a UHFReader288 answering (its information carries the antenna
    /// byte): a protocol mismatch, before any inventory.
    #[tokio::test(start_paused = true)]
    async fn the_other_form_is_a_protocol_mismatch() {
        let (mut rx, mut fake, _task) = start(ReaderSettings {
            chafon_form: Some(InventoryForm::Reader18),
            ..settings()
        });
        fake.info().await;
        loop {
            if let ReaderOutput::Health { health, .. } = rx.recv().await.unwrap() {
                if let Some(ReaderFault::ProtocolMismatch { detail }) = health.fault {
                    assert!(detail.contains("UHFReader288"), "{detail}");
                    break;
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identify_reports_the_reader_information() {
        let (host, dev) = tokio::io::duplex(1024);
        let check = tokio::spawn(async move { super::super::check_on(&settings(), host).await });
        let mut fake = FakeReader::new(dev);
        fake.info().await;
        let info = check.await.unwrap().unwrap();
        assert_eq!(info.firmware, Some((0x00, 0x16)));
        assert!(info.detail.contains("30 dBm"), "{}", info.detail);
    }
}
