//! Driver for UHF readers of the 0xA0 family (R2000/Indy modules), see
//! [`custos_protocol::uhf`].
//!
//! On connect: ask the firmware version (0x72; the reader answering proves the link), then,
//! when `power_dbm` is configured, ask the output power (0x77) and set it (0x76) only if it
//! differs: the reader saves power to flash, and flash should not be rewritten at every
//! reconnect. A refused power setting degrades the reader but does not stop it reading.
//!
//! Then, for ever, for each configured antenna: set the work antenna (0x74, 0-based id), run
//! one real-time inventory round (0x89, repeat [`INVENTORY_REPEAT`]) and read its tag records
//! until the end-of-round summary or an inventory error. Error 0x22 is an
//! [`ReaderFault::AntennaMissing`] for that antenna, which is then skipped for this cycle while
//! the others keep reading; a good round clears it. A reader silent for `reply_timeout` (per
//! frame) ends the session with NoReply.
//!
//! Frames from other bus addresses are ignored unless the configured address is 0xFF.

use std::convert::Infallible;
use std::time::Duration;

use custos_protocol::uhf::{
    self, Command, ErrorCode, Inventory, OutputPower, Response, UhfError, cmd,
};
use custos_protocol::uplink::ReaderFault;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::health::Reporter;
use super::link::{Codec, Link};
use super::{Protocol, ReaderError, ReaderInfo, ReaderSettings};
use crate::model::{ReaderOutput, TagRead, now_ms};

/// Inventory rounds per 0x89 command: one, so antennas alternate quickly at a gate.
pub(crate) const INVENTORY_REPEAT: u8 = 1;

/// The pause after a cycle in which no antenna could inventory, so a reader with every
/// antenna unplugged is not hammered with commands.
const BLIND_PAUSE: Duration = Duration::from_millis(500);

type UhfLink<S> = Link<S, (u8, Response), UhfError>;

fn link<S: AsyncRead + AsyncWrite + Unpin>(io: S, settings: &ReaderSettings) -> UhfLink<S> {
    Link::new(
        io,
        Codec {
            decode: uhf::decode_response,
            capacity: 2 * uhf::MAX_FRAME_LEN,
            is_checksum: |e| matches!(e, UhfError::Checksum { .. }),
            gap: None,
        },
        settings.reply_timeout,
    )
}

/// Whether a frame from `from` is for a driver configured with `configured`.
fn address_matches(configured: u8, from: u8) -> bool {
    configured == 0xFF || configured == from
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

/// Asks the firmware version and output power once (`custosd check`).
pub(crate) async fn identify<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<ReaderInfo, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut link = link(io, settings);
    let (major, minor) = firmware_version(&mut link, settings, reporter).await?;
    let power = output_power(&mut link, settings, reporter).await?;
    let power = match power {
        Some(p) => format!("output power {:?} dBm", p.as_bytes()),
        None => "output power unknown".to_owned(),
    };
    Ok(ReaderInfo {
        protocol: Protocol::UhfA0,
        firmware: Some((major, minor)),
        detail: format!(
            "reader at address {:#04x} answers: firmware {major}.{minor}, {power}",
            settings.address
        ),
    })
}

async fn run<S>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<Infallible, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (major, minor) = firmware_version(link, settings, reporter).await?;
    tracing::info!(firmware = %format_args!("{major}.{minor}"), "uhf-a0 reader answers");
    reporter.answered().await?;
    if let Some(dbm) = settings.power_dbm {
        configure_power(link, settings, reporter, dbm).await?;
    }
    let antennas = settings.inventory_antennas();
    loop {
        let mut any_round = false;
        for &antenna in &antennas {
            any_round |= inventory_antenna(link, settings, reporter, antenna).await?;
        }
        if !any_round {
            tokio::time::sleep(BLIND_PAUSE).await;
        }
    }
}

/// Sends `command` and waits for the first reply `accept` takes, within the reply timeout.
async fn request<S, T>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    command: &Command,
    mut accept: impl FnMut(&Response) -> Option<T>,
) -> Result<T, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    send(link, settings, command).await?;
    let deadline = Instant::now() + link.reply_timeout();
    loop {
        let (from, response) = link.next_frame_until(reporter, Some(deadline)).await?;
        if !address_matches(settings.address, from) {
            continue;
        }
        match accept(&response) {
            Some(t) => return Ok(t),
            None => tracing::debug!(?response, "ignored a reply to another command"),
        }
    }
}

async fn send<S>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    command: &Command,
) -> Result<(), ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = [0u8; uhf::MAX_FRAME_LEN];
    let len = uhf::encode_command(settings.address, command, &mut buf)?;
    link.send(&buf[..len]).await
}

async fn firmware_version<S>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<(u8, u8), ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = request(
        link,
        settings,
        reporter,
        &Command::QueryFirmwareVersion,
        |r| match r {
            Response::FirmwareVersion { major, minor } => Some(Ok((*major, *minor))),
            Response::Status {
                command: cmd::QUERY_FIRMWARE_VERSION,
                code,
            } => Some(Err(*code)),
            _ => None,
        },
    )
    .await?;
    reply.map_err(|code| ReaderError::Refused {
        command: "firmware version",
        reason: code.to_string(),
    })
}

async fn output_power<S>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<Option<OutputPower>, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    request(
        link,
        settings,
        reporter,
        &Command::QueryOutputPower,
        |r| match r {
            Response::OutputPower(p) => Some(Some(*p)),
            Response::Status {
                command: cmd::QUERY_OUTPUT_POWER,
                ..
            } => Some(None),
            _ => None,
        },
    )
    .await
}

async fn configure_power<S>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    dbm: u8,
) -> Result<(), ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let current = output_power(link, settings, reporter).await?;
    if current.is_some_and(|p| p.as_bytes().iter().all(|&b| b == dbm)) {
        tracing::debug!(dbm, "output power already set");
        return reporter.other(None).await;
    }
    let code = request(
        link,
        settings,
        reporter,
        &Command::SetOutputPower(OutputPower::All(dbm)),
        |r| match r {
            Response::Status {
                command: cmd::SET_OUTPUT_POWER,
                code,
            } => Some(*code),
            _ => None,
        },
    )
    .await?;
    if code.is_success() {
        tracing::info!(dbm, "output power set");
        reporter.other(None).await
    } else {
        tracing::warn!(dbm, %code, "reader refused the output power");
        reporter
            .other(Some(format!("set output power {dbm} dBm refused: {code}")))
            .await
    }
}

/// One inventory round on one antenna; `Ok(true)` if the round completed.
async fn inventory_antenna<S>(
    link: &mut UhfLink<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    antenna: u8,
) -> Result<bool, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let select = Command::SetWorkAntenna {
        antenna_id: antenna - 1,
    };
    let code = request(link, settings, reporter, &select, |r| match r {
        Response::Status {
            command: cmd::SET_WORK_ANTENNA,
            code,
        } => Some(*code),
        _ => None,
    })
    .await?;
    if !code.is_success() {
        reporter
            .antenna_fault(
                antenna,
                Some(antenna_fault(antenna, "set work antenna", code)),
            )
            .await?;
        return Ok(false);
    }
    send(
        link,
        settings,
        &Command::RealTimeInventory {
            repeat: INVENTORY_REPEAT,
        },
    )
    .await?;
    loop {
        // The deadline runs from the last frame: a round with many tags may take long.
        let deadline = Instant::now() + link.reply_timeout();
        let (from, response) = link.next_frame_until(reporter, Some(deadline)).await?;
        if !address_matches(settings.address, from) {
            continue;
        }
        match response {
            Response::Tag {
                inventory: Inventory::RealTime,
                tag,
            } => {
                let read = TagRead {
                    at_ms: now_ms(),
                    epc: tag.epc,
                    antenna: tag.antenna(),
                    rssi: tag.rssi(),
                };
                reporter
                    .emit(ReaderOutput::Tag {
                        reader: reporter.name().clone(),
                        read,
                    })
                    .await?;
            }
            Response::RealTimeRoundEnd(stats) => {
                tracing::trace!(antenna, reads = stats.total_reads, "round end");
                reporter.antenna_fault(antenna, None).await?;
                return Ok(true);
            }
            Response::InventoryError {
                inventory: Inventory::RealTime,
                code,
            } => {
                tracing::debug!(antenna, %code, "inventory error");
                reporter
                    .antenna_fault(antenna, Some(antenna_fault(antenna, "inventory", code)))
                    .await?;
                return Ok(false);
            }
            other => tracing::debug!(?other, "ignored a frame during inventory"),
        }
    }
}

fn antenna_fault(antenna: u8, what: &str, code: ErrorCode) -> ReaderFault {
    if code == ErrorCode::AntennaMissing {
        ReaderFault::AntennaMissing { antenna }
    } else {
        ReaderFault::Other {
            detail: format!("antenna {antenna}: {what} failed: {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use custos_protocol::codec::StreamDecoder;
    use custos_protocol::epc::Epc;
    use custos_protocol::uhf::{RoundStats, TagRecord};
    use custos_protocol::uplink::{HealthState, ReaderFault};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    use super::super::testing::{hex, next_non_ok, trace, wait_fault, wait_ok};
    use super::super::{ReaderSettings, run_reader_on};
    use super::*;

    const EPC_A: &str = "3074257BF7194E4000001A85";
    const EPC_B: &str = "E2003098881900722140369E";

    fn settings(antennas: Vec<u8>) -> ReaderSettings {
        ReaderSettings {
            address: 1,
            antennas,
            ..ReaderSettings::new("uhf-main", Protocol::UhfA0, "/dev/null")
        }
    }

    /// The reader's side of a duplex: decodes host commands, sends encoded responses.
    struct FakeReader {
        io: DuplexStream,
        commands: StreamDecoder<(u8, Command), UhfError>,
    }

    impl FakeReader {
        fn new(io: DuplexStream) -> Self {
            Self {
                io,
                commands: StreamDecoder::new(uhf::decode_command, uhf::MAX_FRAME_LEN),
            }
        }

        /// The raw bytes of the next command (checked to decode as one frame).
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

        async fn command(&mut self) -> Command {
            let raw = self.raw_command().await;
            match uhf::decode_command(&raw) {
                custos_protocol::codec::Decoded::Frame { frame, .. } => frame.1,
                other => panic!("not a command: {other:?}"),
            }
        }

        async fn reply(&mut self, response: Response) {
            let mut buf = [0u8; uhf::MAX_FRAME_LEN];
            let len = uhf::encode_response(1, &response, &mut buf).unwrap();
            self.io.write_all(&buf[..len]).await.unwrap();
        }

        async fn raw(&mut self, bytes: &[u8]) {
            self.io.write_all(bytes).await.unwrap();
        }

        async fn ok(&mut self, command: u8) {
            self.reply(Response::Status {
                command,
                code: ErrorCode::Success,
            })
            .await;
        }

        fn tag(epc: &str, antenna: u8) -> Response {
            Response::Tag {
                inventory: Inventory::RealTime,
                tag: TagRecord::new(Epc::from_hex(epc).unwrap(), antenna, 0x40, 7),
            }
        }

        fn round_end(antenna_id: u8) -> Response {
            Response::RealTimeRoundEnd(RoundStats {
                antenna_id,
                read_rate: 100,
                total_reads: 1,
            })
        }

        /// Answers one antenna's set-antenna and inventory with these frames.
        async fn round(&mut self, antenna: u8, frames: Vec<Response>) {
            assert_eq!(
                self.command().await,
                Command::SetWorkAntenna {
                    antenna_id: antenna - 1
                }
            );
            self.ok(cmd::SET_WORK_ANTENNA).await;
            assert_eq!(
                self.command().await,
                Command::RealTimeInventory {
                    repeat: INVENTORY_REPEAT
                }
            );
            for f in frames {
                self.reply(f).await;
            }
        }

        async fn version(&mut self) {
            assert_eq!(self.command().await, Command::QueryFirmwareVersion);
            self.reply(Response::FirmwareVersion { major: 8, minor: 1 })
                .await;
        }
    }

    /// Starts a reader task whose sessions get the given duplex ends, one per connect.
    fn start(
        settings: ReaderSettings,
    ) -> (
        mpsc::Receiver<ReaderOutput>,
        mpsc::UnboundedSender<DuplexStream>,
        tokio::task::JoinHandle<()>,
    ) {
        let (out, rx) = mpsc::channel(64);
        let (links_tx, links_rx) = mpsc::unbounded_channel::<DuplexStream>();
        let links = std::sync::Arc::new(tokio::sync::Mutex::new(links_rx));
        let connect = move || {
            let links = links.clone();
            async move {
                links
                    .lock()
                    .await
                    .try_recv()
                    .map_err(|_| ReaderError::Io(std::io::ErrorKind::NotFound.into()))
            }
        };
        let task = tokio::spawn(run_reader_on(
            settings,
            out,
            std::future::pending(),
            connect,
        ));
        (rx, links_tx, task)
    }

    fn tag_of(o: ReaderOutput) -> TagRead {
        match o {
            ReaderOutput::Tag { read, .. } => read,
            other => panic!("expected a tag, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sends_the_known_command_bytes_and_reports_tags() {
        trace();
        let (host, dev) = tokio::io::duplex(1024);
        let (mut rx, links, _task) = start(settings(vec![1, 2]));
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);

        // uhf-a0.txt: "A0 03 01 72 EA | host: get firmware version, address 1"
        assert_eq!(fake.raw_command().await, hex("A0 03 01 72 EA"));
        fake.raw(&hex("A0 05 01 72 08 01 DF")).await;
        // uhf-a0.txt: "A0 04 01 74 00 E7 | host: set work antenna 0"
        assert_eq!(fake.raw_command().await, hex("A0 04 01 74 00 E7"));
        fake.raw(&hex("A0 04 01 74 10 D7")).await;
        // Real-time inventory, repeat 1: A0+04+01+89+01 = 0x12F, check 0xD1.
        assert_eq!(fake.raw_command().await, hex("A0 04 01 89 01 D1"));
        // The captured tag record of the vector file, then the end of the round.
        fake.raw(&hex(
            "A0 13 01 89 1C 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B AB",
        ))
        .await;
        fake.raw(&hex("A0 0A 01 89 00 00 64 00 00 01 F4 73")).await;
        // Antenna 2 is antenna id 1.
        assert_eq!(fake.raw_command().await, hex("A0 04 01 74 01 E6"));
        fake.ok(cmd::SET_WORK_ANTENNA).await;
        assert_eq!(fake.raw_command().await, hex("A0 04 01 89 01 D1"));
        fake.reply(FakeReader::tag(EPC_B, 2)).await;
        fake.reply(FakeReader::round_end(1)).await;

        let ok = wait_ok(&mut rx).await;
        assert_eq!(ok.fault, None);
        let first = tag_of(next_non_ok(&mut rx).await);
        assert_eq!(first.epc, Epc::from_hex(EPC_A).unwrap());
        assert_eq!((first.antenna, first.rssi), (1, 0x4B));
        assert!(first.at_ms > 1_600_000_000_000);
        let second = tag_of(next_non_ok(&mut rx).await);
        assert_eq!(
            (second.epc, second.antenna),
            (Epc::from_hex(EPC_B).unwrap(), 2)
        );
        // The cycle starts over with antenna 1.
        assert_eq!(fake.raw_command().await, hex("A0 04 01 74 00 E7"));
    }

    #[tokio::test(start_paused = true)]
    async fn configured_power_is_set_only_when_it_differs() {
        let (host, dev) = tokio::io::duplex(1024);
        let (mut rx, links, _task) = start(ReaderSettings {
            power_dbm: Some(30),
            ..settings(vec![1])
        });
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        fake.version().await;
        assert_eq!(fake.command().await, Command::QueryOutputPower);
        fake.reply(Response::OutputPower(OutputPower::All(20)))
            .await;
        // A0 04 01 76 1E: sum 0x139, check 0xC7.
        assert_eq!(fake.raw_command().await, hex("A0 04 01 76 1E C7"));
        fake.reply(Response::Status {
            command: cmd::SET_OUTPUT_POWER,
            code: ErrorCode::OutputPowerOutOfRange,
        })
        .await;
        // Refused: degraded, but inventory goes on.
        fake.round(1, vec![FakeReader::tag(EPC_A, 1), FakeReader::round_end(0)])
            .await;
        let degraded = next_non_ok(&mut rx).await;
        match degraded {
            ReaderOutput::Health { health, .. } => {
                assert_eq!(health.state, HealthState::Degraded);
                assert!(matches!(health.fault, Some(ReaderFault::Other { .. })));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(tag_of(next_non_ok(&mut rx).await).antenna, 1);

        // After a reconnect a reader already at 30 dBm is not written again.
        drop(fake);
        let (host, dev) = tokio::io::duplex(1024);
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        fake.version().await;
        assert_eq!(fake.command().await, Command::QueryOutputPower);
        fake.reply(Response::OutputPower(OutputPower::All(30)))
            .await;
        assert_eq!(
            fake.command().await,
            Command::SetWorkAntenna { antenna_id: 0 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn garbage_between_frames_still_yields_reads_and_is_counted() {
        let (host, dev) = tokio::io::duplex(1024);
        let (mut rx, links, _task) = start(settings(vec![1]));
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        fake.raw_command().await;
        fake.raw(&hex("00 FF 13")).await;
        fake.raw(&hex("A0 05 01 72 08 01 DF")).await;
        fake.round(1, vec![]).await;
        // uhf-a0.txt BAD line: checksum wrong; then garbage, then the good record.
        fake.raw(&hex(
            "A0 13 01 89 1C 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B AC",
        ))
        .await;
        fake.raw(&hex("12 34 A0 01")).await;
        fake.reply(FakeReader::tag(EPC_A, 1)).await;
        fake.raw(&hex("FF")).await;
        fake.reply(FakeReader::round_end(0)).await;

        let read = tag_of(next_non_ok(&mut rx).await);
        assert_eq!(read.epc, Epc::from_hex(EPC_A).unwrap());
        // The fake stops answering: the NoReply report carries the counters of the session.
        let h = wait_fault(&mut rx, &ReaderFault::NoReply).await;
        // Version, set antenna, tag, round end.
        assert_eq!(h.frames_ok, 4);
        assert_eq!(h.checksum_errors, 1);
        // 3 leading bytes; the bad frame's 21 bytes (1 for the checksum, 20 up to the next
        // head byte); "12 34"; "A0 01" (length below 3, then not a head); "FF".
        assert_eq!(h.dropped_bytes, 3 + 21 + 2 + 2 + 1);
        assert!(h.last_read_ms.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_reader_is_no_reply_within_the_timeout_then_reconnects() {
        let (host, dev) = tokio::io::duplex(1024);
        let (mut rx, links, _task) = start(settings(vec![1]));
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        let start = Instant::now();
        fake.raw_command().await;
        let h = wait_fault(&mut rx, &ReaderFault::NoReply).await;
        assert_eq!(h.state, HealthState::Fault);
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_millis(500), "{waited:?}");
        assert!(waited < Duration::from_millis(600), "{waited:?}");

        // The next connect finds a reader that answers: Ok again.
        let (host, dev) = tokio::io::duplex(1024);
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        fake.version().await;
        wait_ok(&mut rx).await;
    }

    #[tokio::test(start_paused = true)]
    async fn reconnect_backoff_doubles_to_the_cap_while_the_port_is_gone() {
        let attempts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (out, mut rx) = mpsc::channel(64);
        let connect = {
            let attempts = attempts.clone();
            move || {
                attempts.lock().unwrap().push(Instant::now());
                async { Err::<DuplexStream, _>(ReaderError::Closed) }
            }
        };
        let s = ReaderSettings {
            backoff_max: Duration::from_millis(300),
            ..settings(vec![1])
        };
        let start = Instant::now();
        let task = tokio::spawn(run_reader_on(s, out, std::future::pending(), connect));
        let h = wait_fault(&mut rx, &ReaderFault::SerialLost).await;
        assert_eq!(h.state, HealthState::Fault);
        // The same fault is not reported again until the periodic report at 2 s.
        let again = wait_fault(&mut rx, &ReaderFault::SerialLost).await;
        assert_eq!(again.state, HealthState::Fault);
        assert_eq!(Instant::now() - start, super::super::HEALTH_INTERVAL);
        task.abort();
        let ms: Vec<u128> = attempts
            .lock()
            .unwrap()
            .iter()
            .map(|t| (*t - start).as_millis())
            .collect();
        assert_eq!(ms[..6], [0, 100, 300, 600, 900, 1200]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_antenna_is_reported_and_the_others_keep_reading() {
        let (host, dev) = tokio::io::duplex(1024);
        let (mut rx, links, _task) = start(settings(vec![1, 2]));
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        fake.version().await;
        fake.round(1, vec![]).await;
        // uhf-a0.txt: "A0 04 01 89 22 B0 | reader: inventory error 0x22 antenna missing"
        fake.raw(&hex("A0 04 01 89 22 B0")).await;
        fake.round(2, vec![FakeReader::tag(EPC_B, 2), FakeReader::round_end(1)])
            .await;

        let h = wait_fault(&mut rx, &ReaderFault::AntennaMissing { antenna: 1 }).await;
        assert_eq!(h.state, HealthState::Degraded);
        assert_eq!(tag_of(next_non_ok(&mut rx).await).antenna, 2);
        // Next cycle antenna 1 is back: Ok again.
        fake.round(1, vec![FakeReader::round_end(0)]).await;
        wait_ok(&mut rx).await;
    }

    #[tokio::test(start_paused = true)]
    async fn every_antenna_missing_is_a_blind_reader() {
        let (host, dev) = tokio::io::duplex(1024);
        let (mut rx, links, _task) = start(settings(vec![1]));
        links.send(host).unwrap();
        let mut fake = FakeReader::new(dev);
        fake.version().await;
        fake.round(
            1,
            vec![Response::InventoryError {
                inventory: Inventory::RealTime,
                code: ErrorCode::AntennaMissing,
            }],
        )
        .await;
        let h = wait_fault(&mut rx, &ReaderFault::AntennaMissing { antenna: 1 }).await;
        assert_eq!(h.state, HealthState::Fault);
        // The driver pauses, then tries again.
        let start = Instant::now();
        assert_eq!(
            fake.command().await,
            Command::SetWorkAntenna { antenna_id: 0 }
        );
        assert!(Instant::now() - start >= BLIND_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn identify_asks_version_and_power() {
        let (host, dev) = tokio::io::duplex(1024);
        let s = settings(vec![1]);
        let check = tokio::spawn(async move { super::super::check_on(&s, host).await });
        let mut fake = FakeReader::new(dev);
        fake.version().await;
        assert_eq!(fake.command().await, Command::QueryOutputPower);
        fake.reply(Response::OutputPower(OutputPower::All(30)))
            .await;
        let info = check.await.unwrap().unwrap();
        assert_eq!(info.firmware, Some((8, 1)));
        assert!(info.detail.contains("8.1"), "{}", info.detail);

        // A silent reader fails the check with NoReply.
        let (host, _dev) = tokio::io::duplex(1024);
        let err = super::super::check_on(&settings(vec![1]), host)
            .await
            .unwrap_err();
        assert!(matches!(err, ReaderError::NoReply(_)), "{err}");
    }

    /// Over a real pty: the driver opens the slave path with the daemon's own constructor.
    #[tokio::test]
    async fn reads_tags_over_a_real_pty() {
        use tokio_serial::{SerialPort, SerialStream};
        trace();
        // Keep our slave end open (closing the last one makes the master read EIO); `pair`
        // takes neither TIOCEXCL nor a flock on it, so the driver can open the path too.
        let (master, slave) = SerialStream::pair().expect("pty pair");
        let path = slave.name().expect("pty path");
        let (out, mut rx) = mpsc::channel(64);
        let s = ReaderSettings {
            port: path.into(),
            ..settings(vec![1])
        };
        let task = tokio::spawn(super::super::run_reader(s, out, std::future::pending()));

        let (mut m_read, m_write) = tokio::io::split(master);
        let mut decoder = StreamDecoder::new(uhf::decode_command, uhf::MAX_FRAME_LEN);
        let mut m_write = m_write;
        let mut buf = [0u8; 256];
        let mut tags = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tags < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no reads over the pty"
            );
            let n = tokio::time::timeout(Duration::from_secs(5), m_read.read(&mut buf))
                .await
                .expect("driver talks")
                .unwrap();
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame() {
                let Ok((_, command)) = frame else { continue };
                let replies = match command {
                    Command::QueryFirmwareVersion => {
                        vec![Response::FirmwareVersion { major: 8, minor: 1 }]
                    }
                    Command::SetWorkAntenna { .. } => vec![Response::Status {
                        command: cmd::SET_WORK_ANTENNA,
                        code: ErrorCode::Success,
                    }],
                    Command::RealTimeInventory { .. } => {
                        tags += 1;
                        vec![FakeReader::tag(EPC_A, 1), FakeReader::round_end(0)]
                    }
                    other => panic!("unexpected {other:?}"),
                };
                for r in replies {
                    let mut out = [0u8; uhf::MAX_FRAME_LEN];
                    let len = uhf::encode_response(1, &r, &mut out).unwrap();
                    m_write.write_all(&out[..len]).await.unwrap();
                }
            }
        }
        let read = loop {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a read")
                .expect("task alive")
            {
                ReaderOutput::Tag { read, .. } => break read,
                _ => continue,
            }
        };
        assert_eq!(read.epc, Epc::from_hex(EPC_A).unwrap());
        task.abort();
    }
}
