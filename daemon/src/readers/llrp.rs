//! `llrp`: fixed UHF readers speaking GS1 LLRP 1.1 over TCP (Impinj R700/Speedway, Zebra
//! FX7500/FX9600), through [`custos_protocol::llrp`].
//!
//! A session:
//! 1. wait for the READER_EVENT_NOTIFICATION with the ConnectionAttemptEvent (LLRP 1.1 §13.2.2);
//!    a status other than Success ("a client-initiated connection already exists": another
//!    client holds the reader) ends the session with [`ReaderError::Refused`], which is
//!    reported as a fault naming the reason and retried with the capped backoff — never
//!    silently;
//! 2. SET_READER_CONFIG: reset to factory defaults, then the keepalive period, GPI and antenna
//!    event notifications, GPOs low (the reader is configured, not trusted);
//! 3. DELETE_ROSPEC 0 (its status ignored: there may be none), ADD_ROSPEC of one ROSpec over the
//!    configured antennas reporting every tag read (N = 1) with AntennaID, PeakRSSI and
//!    FirstSeenTimestampUTC, ENABLE_ROSPEC, START_ROSPEC, each answered with M_Success or the
//!    session ends with the reader's status;
//! 4. then tag reports go to smoothing as reads, KEEPALIVEs are acknowledged, antenna events
//!    set or clear an antenna fault, GPI events go out as [`ReaderOutput::Input`]s, and GPO
//!    commands from the gate are written with SET_READER_CONFIG.
//!
//! The watchdog: any message from the reader proves it alive; none within
//! [`ReaderSettings::watchdog`] (three keepalive periods) ends the session with NoReply, so a
//! silent reader is a `reader_fault` within seconds. A closed or reset connection (a killed or
//! rebooting reader) ends it at once.

use std::convert::Infallible;
use std::time::Duration;

use custos_protocol::epc::Epc;
use custos_protocol::llrp::{
    self, AiSpec, Body, ConnectionStatus, LlrpError, Message, ReaderConfig, ReaderEvent,
    ReportSpec, RoSpec, content, event_type,
};
use custos_protocol::uplink::ReaderFault;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::health::Reporter;
use super::link::{Codec, Link};
use super::{Protocol, ReaderError, ReaderInfo, ReaderSettings};
use crate::model::{ReaderOutput, TagRead, now_ms};

/// The ROSpecID this driver adds.
pub const ROSPEC_ID: u32 = 1;

/// A command to the reader from the rest of the daemon: set a GPO (1-based port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpoCommand {
    /// The GPO port, from 1.
    pub port: u16,
    /// High or low.
    pub high: bool,
}

type LlrpLink<S> = Link<S, Message, LlrpError>;

struct Session<S> {
    link: LlrpLink<S>,
    next_id: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(io: S, settings: &ReaderSettings) -> Self {
        let link = Link::new(
            io,
            Codec {
                decode: llrp::decode,
                capacity: llrp::MAX_MESSAGE_LEN,
                is_checksum: |_| false,
                gap: None,
            },
            settings.reply_timeout,
        );
        Self { link, next_id: 0 }
    }

    async fn send(&mut self, body: Body) -> Result<u32, ReaderError> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.send_as(id, body).await?;
        Ok(id)
    }

    async fn send_as(&mut self, id: u32, body: Body) -> Result<(), ReaderError> {
        let mut bytes = Vec::new();
        llrp::encode(&Message::new(id, body), &mut bytes).map_err(|e| ReaderError::Refused {
            command: "encode",
            reason: e.to_string(),
        })?;
        self.link.send(&bytes).await
    }

    /// Sends `body` and waits for the response with its id; other messages meanwhile are
    /// handled as in the main loop.
    async fn call(
        &mut self,
        command: &'static str,
        body: Body,
        settings: &ReaderSettings,
        reporter: &Reporter,
        check_status: bool,
    ) -> Result<Body, ReaderError> {
        let id = self.send(body).await?;
        let deadline = Instant::now() + settings.reply_timeout;
        loop {
            let m = self.link.next_frame_until(reporter, Some(deadline)).await?;
            reporter.frame_ok();
            if m.id == id && m.body.status().is_some() {
                let refused = m.body.status().filter(|s| check_status && !s.is_success());
                if let Some(s) = refused {
                    return Err(ReaderError::Refused {
                        command,
                        reason: format!("{:?} {}", s.code, s.description),
                    });
                }
                return Ok(m.body);
            }
            self.handle(m, settings, reporter).await?;
        }
    }

    /// Handles a message that is not the response awaited.
    async fn handle(
        &mut self,
        m: Message,
        settings: &ReaderSettings,
        reporter: &Reporter,
    ) -> Result<(), ReaderError> {
        match m.body {
            Body::Keepalive => self.send_as(m.id, Body::KeepaliveAck).await?,
            Body::RoAccessReport(tags) => {
                // Reads per antenna of this report, traced as the serial drivers trace their
                // rounds ("round end"): what tests and operators follow a walk by.
                let mut per_antenna: std::collections::BTreeMap<u8, usize> =
                    std::collections::BTreeMap::new();
                for t in tags {
                    let Ok(epc) = Epc::new(t.epc.bytes()) else {
                        continue;
                    };
                    let antenna = t
                        .antenna
                        .and_then(|a| u8::try_from(a).ok())
                        .unwrap_or_else(|| settings.inventory_antennas()[0]);
                    // PeakRSSI in dBm (-128..=127) onto the daemon's "higher is stronger" byte.
                    let rssi = t.peak_rssi.map_or(0, |d| (i16::from(d) + 128) as u8);
                    let read = TagRead {
                        at_ms: now_ms(),
                        epc,
                        antenna,
                        rssi,
                    };
                    *per_antenna.entry(antenna).or_default() += 1;
                    reporter
                        .emit(ReaderOutput::Tag {
                            reader: reporter.name().clone(),
                            read,
                        })
                        .await?;
                }
                for (antenna, reads) in per_antenna {
                    tracing::trace!(antenna, reads, "round end");
                }
            }
            Body::ReaderEventNotification(data) => {
                for e in data.events {
                    match e {
                        ReaderEvent::Antenna { antenna, connected } => {
                            let Ok(a) = u8::try_from(antenna) else {
                                continue;
                            };
                            if !settings.inventory_antennas().contains(&a) {
                                continue;
                            }
                            tracing::warn!(antenna, connected, "llrp antenna event");
                            let fault =
                                (!connected).then_some(ReaderFault::AntennaMissing { antenna: a });
                            reporter.antenna_fault(a, fault).await?;
                        }
                        ReaderEvent::Gpi { port, high } => {
                            reporter
                                .emit(ReaderOutput::Input {
                                    reader: reporter.name().clone(),
                                    port,
                                    high,
                                })
                                .await?;
                        }
                        ReaderEvent::ConnectionClose => return Err(ReaderError::Closed),
                        ReaderEvent::ConnectionAttempt(status) => {
                            tracing::warn!(
                                ?status,
                                "another client tried to connect to the reader"
                            );
                        }
                    }
                }
            }
            Body::ErrorMessage(s) => {
                tracing::warn!(code = ?s.code, description = %s.description, "llrp reader error message");
            }
            other => tracing::debug!(msg_type = other.msg_type(), "ignored llrp message"),
        }
        Ok(())
    }

    /// Waits for the ConnectionAttemptEvent; anything but Success is a refusal.
    async fn connected(
        &mut self,
        settings: &ReaderSettings,
        reporter: &Reporter,
    ) -> Result<(), ReaderError> {
        let deadline = Instant::now() + settings.watchdog;
        loop {
            let m = self.link.next_frame_until(reporter, Some(deadline)).await?;
            reporter.frame_ok();
            if let Body::ReaderEventNotification(d) = &m.body {
                for e in &d.events {
                    if let ReaderEvent::ConnectionAttempt(status) = e {
                        return match status {
                            ConnectionStatus::Success => Ok(()),
                            other => Err(ReaderError::Refused {
                                command: "connection",
                                reason: format!(
                                    "ConnectionAttemptEvent {other:?}: another client holds the reader"
                                ),
                            }),
                        };
                    }
                }
            }
        }
    }

    /// Resets and configures the reader and starts the ROSpec.
    async fn configure(
        &mut self,
        settings: &ReaderSettings,
        reporter: &Reporter,
    ) -> Result<(), ReaderError> {
        let keepalive_ms = u32::try_from(settings.keepalive.as_millis()).unwrap_or(u32::MAX);
        let config = ReaderConfig {
            reset_to_factory_default: true,
            event_notifications: vec![
                (event_type::GPI, true),
                (event_type::ANTENNA, true),
                (event_type::READER_EXCEPTION, true),
            ],
            keepalive_ms: Some(keepalive_ms),
            ..ReaderConfig::default()
        };
        self.call(
            "SET_READER_CONFIG",
            Body::SetReaderConfig(config),
            settings,
            reporter,
            true,
        )
        .await?;
        self.call(
            "DELETE_ROSPEC",
            Body::DeleteRoSpec(0),
            settings,
            reporter,
            false,
        )
        .await?;
        let spec = RoSpec {
            id: ROSPEC_ID,
            priority: 0,
            state: 0,
            start_trigger: 0,
            stop_trigger: 0,
            stop_duration_ms: 0,
            ai_specs: vec![AiSpec {
                antennas: settings
                    .inventory_antennas()
                    .into_iter()
                    .map(u16::from)
                    .collect(),
                stop_trigger: 0,
                stop_duration_ms: 0,
                inventory_spec_id: 1,
                protocol: 1,
            }],
            report: Some(ReportSpec {
                trigger: 1,
                n: 1,
                content: content::ROSPEC_ID
                    | content::ANTENNA_ID
                    | content::PEAK_RSSI
                    | content::FIRST_SEEN,
            }),
        };
        self.call(
            "ADD_ROSPEC",
            Body::AddRoSpec(spec),
            settings,
            reporter,
            true,
        )
        .await?;
        self.call(
            "ENABLE_ROSPEC",
            Body::EnableRoSpec(ROSPEC_ID),
            settings,
            reporter,
            true,
        )
        .await?;
        self.call(
            "START_ROSPEC",
            Body::StartRoSpec(ROSPEC_ID),
            settings,
            reporter,
            true,
        )
        .await?;
        Ok(())
    }

    async fn write_gpo(&mut self, cmd: GpoCommand) -> Result<(), ReaderError> {
        let config = ReaderConfig {
            gpo: vec![(cmd.port, cmd.high)],
            ..ReaderConfig::default()
        };
        // The response is checked in the main loop like any other message.
        self.send(Body::SetReaderConfig(config)).await.map(drop)
    }
}

/// Runs a session until it fails.
pub(crate) async fn session<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
    gpo: Option<&mut mpsc::Receiver<GpoCommand>>,
) -> ReaderError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session::new(io, settings);
    let Err(e) = run(&mut session, settings, reporter, gpo).await;
    e
}

async fn run<S>(
    s: &mut Session<S>,
    settings: &ReaderSettings,
    reporter: &Reporter,
    mut gpo: Option<&mut mpsc::Receiver<GpoCommand>>,
) -> Result<Infallible, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.connected(settings, reporter).await?;
    s.configure(settings, reporter).await?;
    tracing::info!("llrp reader configured; ROSpec started");
    reporter.answered().await?;
    loop {
        let deadline = Instant::now() + settings.watchdog;
        let next_gpo = async {
            match gpo.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = s.link.next_frame_until(reporter, Some(deadline)) => {
                let m = m.map_err(|e| match e {
                    ReaderError::NoReply(_) => ReaderError::NoReply(settings.watchdog),
                    e => e,
                })?;
                reporter.frame_ok();
                if let Some(status) = m.body.status().filter(|st| !st.is_success()) {
                    tracing::warn!(code = ?status.code, description = %status.description, "llrp reader refused a command");
                }
                s.handle(m, settings, reporter).await?;
            }
            Some(cmd) = next_gpo => s.write_gpo(cmd).await?,
        }
    }
}

/// Connects once, asks the capabilities and closes (`custosd check`).
pub(crate) async fn identify<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<ReaderInfo, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut s = Session::new(io, settings);
    s.connected(settings, reporter).await?;
    let body = s
        .call(
            "GET_READER_CAPABILITIES",
            Body::GetReaderCapabilities { requested: 1 },
            settings,
            reporter,
            true,
        )
        .await?;
    let _ = s.send(Body::CloseConnection).await;
    let detail = match body {
        Body::GetReaderCapabilitiesResponse {
            general: Some(g), ..
        } => format!(
            "LLRP reader at {} answers: manufacturer {}, model {}, firmware {:?}, {} antennas, \
             {} GPIs, {} GPOs",
            settings.network.as_deref().unwrap_or("?"),
            g.manufacturer,
            g.model,
            g.firmware,
            g.max_antennas,
            g.gpis,
            g.gpos
        ),
        _ => format!(
            "LLRP reader at {} answers (no device capabilities)",
            settings.network.as_deref().unwrap_or("?")
        ),
    };
    Ok(ReaderInfo {
        protocol: Protocol::Llrp,
        firmware: None,
        detail,
    })
}

/// The default watchdog for a keepalive period: three periods, at least one second.
pub fn watchdog_for(keepalive: Duration) -> Duration {
    (keepalive * 3).max(Duration::from_secs(1))
}

/// Which GPOs of an LLRP reader drive the gate's alarm light and sounder (1-based ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpoMap {
    /// The alarm light's GPO.
    pub alarm_light: Option<u16>,
    /// The sounder's GPO.
    pub sounder: Option<u16>,
}

/// The alarm on an LLRP reader's GPOs, the alternative to the Modbus gate I/O module: runs the
/// same pure [`Alarm`](crate::actuators::Alarm) as the Modbus [`AlarmDriver`]
/// (crate::actuators::AlarmDriver) behind an [`AlarmHandle::detached`]
/// (crate::actuators::AlarmHandle::detached) handle, and hands every change, and the whole state
/// every [`REFRESH_INTERVAL`](crate::actuators::REFRESH_INTERVAL) (a reader that reconnected was
/// reset, its GPOs low), to the reader's session as [`GpoCommand`]s. "Written" in the status
/// means handed to the session; the reader's answer is checked there. No lock or barrier: a
/// reader's GPOs are the light and the sounder only.
pub async fn run_gpo_alarm(
    mut commands: mpsc::Receiver<crate::actuators::AlarmCommand>,
    status: tokio::sync::watch::Sender<crate::actuators::AlarmStatus>,
    gpo: mpsc::Sender<GpoCommand>,
    map: GpoMap,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use crate::actuators::{Alarm, AlarmCommand, REFRESH_INTERVAL};
    tokio::pin!(shutdown);
    let mut alarm = Alarm::new();
    let mut refresh = tokio::time::interval(REFRESH_INTERVAL);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written = None;
    loop {
        let mut force = false;
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            command = commands.recv() => match command {
                None => return,
                Some(AlarmCommand::Sound { duration, lock_door }) => {
                    tracing::info!(?duration, "alarm (reader GPO)");
                    alarm.sound(Instant::now(), duration, lock_door);
                }
                Some(AlarmCommand::Silence) => {
                    alarm.silence();
                }
            },
            () = super::link::until(alarm.deadline()) => {
                alarm.poll(Instant::now());
            }
            _ = refresh.tick() => force = true,
        }
        let wanted = alarm.outputs();
        if !force && written == Some(wanted) {
            continue;
        }
        let mut link_up = true;
        for (port, high) in [
            (map.alarm_light, wanted.alarm_light),
            (map.sounder, wanted.sounder),
        ] {
            if let Some(port) = port {
                // A full queue means the session is down: the refresh sends the state again.
                link_up &= gpo.try_send(GpoCommand { port, high }).is_ok();
            }
        }
        written = link_up.then_some(wanted);
        let at = Instant::now();
        status.send_modify(|s| {
            s.wanted = wanted;
            s.written = written;
            s.link_up = link_up;
            if link_up {
                s.last_write = Some(Duration::ZERO);
                s.written_at = Some(at);
            }
        });
    }
}
