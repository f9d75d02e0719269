//! A simulated LLRP reader (an Impinj/Zebra-style fixed UHF reader) on a real TCP listener.
//!
//! [`LlrpReader`] is the pure state machine: client messages, control ops and the current time
//! go in; messages to the client and GPO changes come out. [`run_llrp_reader`] is the thin tokio
//! driver: one client at a time (a second one is told "a client-initiated connection already
//! exists" in its ConnectionAttemptEvent and closed, as LLRP 1.1 §13.2.2 says), a report every
//! [`REPORT_PERIOD`] while a ROSpec is active, a KEEPALIVE at the period the client set.
//!
//! What it does with each message (all others: ERROR_MESSAGE M_UnsupportedMessage):
//! - GET_READER_CAPABILITIES: 4 antennas, 4 GPIs, 4 GPOs, Impinj's enterprise number.
//! - SET_READER_CONFIG: factory reset (ROSpecs deleted, keepalive off, GPOs low), keepalive,
//!   GPO writes (each change printed as `{"gpo":1,"value":true}`), the rest accepted.
//! - ADD/ENABLE/START/STOP/DISABLE/DELETE_ROSPEC with the state rules of §10.2 (ID 0 = all
//!   for enable, disable and delete).
//! - KEEPALIVE_ACK: nothing. CLOSE_CONNECTION: a response, then the connection is closed.
//!
//! Control ops: `field`, `clear`, `disconnect`/`connect` (an AntennaEvent is sent), `silence`
//! (no answers, reports or keepalives; the connection stays open), `garbage` (raw bytes to the
//! client), `input` (`n` is the 1-based GPI port; a GPIEvent is sent on a change).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use custos_protocol::codec::StreamDecoder;
use custos_protocol::llrp::{
    self, Body, ConnectionStatus, DeviceCapabilities, EpcField, EventData, Message, ReaderEvent,
    Status, StatusCode, TagReport, Timestamp,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::SimError;
use crate::control::{
    ControlError, ControlOp, ControlRequest, ControlSocket, control_failure, serve_optional,
};

/// Antennas, GPIs and GPOs of the simulated reader.
pub const PORTS: u16 = 4;
/// How often an active ROSpec reports what is in the field.
pub const REPORT_PERIOD: Duration = Duration::from_millis(100);
/// Impinj's IANA enterprise number, as DeviceManufacturerName.
pub const MANUFACTURER: u32 = 25882;

/// A GPO that changed, as printed on stdout: `{"gpo":1,"value":true}` (ports 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpoChange {
    /// The GPO port, from 1.
    pub gpo: u16,
    /// Its new state.
    pub value: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpecState {
    Disabled,
    Inactive,
    Active,
}

/// What the state machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message to the client.
    Send(Message),
    /// Write these raw bytes to the client.
    Raw(Vec<u8>),
    /// Close the client connection.
    Close,
    /// A GPO changed.
    Gpo(GpoChange),
}

/// The simulated reader's state.
#[derive(Debug, Default)]
pub struct LlrpReader {
    fields: BTreeMap<u8, Vec<Vec<u8>>>,
    unplugged: BTreeSet<u8>,
    gpi: BTreeMap<u16, bool>,
    gpo: BTreeMap<u16, bool>,
    rospecs: BTreeMap<u32, (llrp::RoSpec, SpecState)>,
    keepalive_ms: u32,
    silent: bool,
    connected: bool,
    next_id: u32,
}

impl LlrpReader {
    /// The device name in the ready line.
    pub const KIND: &'static str = "llrp-reader";

    /// A reader with empty fields, every antenna plugged in, GPIs and GPOs low.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    fn event(&mut self, now_us: u64, events: Vec<ReaderEvent>) -> Output {
        let id = self.id();
        Output::Send(Message::new(
            id,
            Body::ReaderEventNotification(EventData {
                timestamp: Timestamp::Utc(now_us),
                events,
            }),
        ))
    }

    /// A client connected: the ConnectionAttemptEvent (§13.2.2), success or refusal.
    pub fn connect(&mut self, now_us: u64) -> Vec<Output> {
        if self.connected {
            let refusal = ReaderEvent::ConnectionAttempt(ConnectionStatus::ClientInitiatedExists);
            return vec![self.event(now_us, vec![refusal]), Output::Close];
        }
        self.connected = true;
        vec![self.event(
            now_us,
            vec![ReaderEvent::ConnectionAttempt(ConnectionStatus::Success)],
        )]
    }

    /// The client went away: its ROSpecs keep their definitions but stop (§13.2.2 leaves this
    /// to the reader; Impinj readers stop inventory until the next client starts it).
    pub fn disconnected(&mut self) {
        self.connected = false;
        self.keepalive_ms = 0;
        for (_, state) in self.rospecs.values_mut() {
            if *state == SpecState::Active {
                *state = SpecState::Inactive;
            }
        }
    }

    /// The keepalive period the client asked for (0: none).
    #[must_use]
    pub fn keepalive_ms(&self) -> u32 {
        if self.silent { 0 } else { self.keepalive_ms }
    }

    /// A keepalive to send now, unless silent.
    pub fn keepalive(&mut self) -> Option<Message> {
        if self.silent || self.keepalive_ms == 0 || !self.connected {
            return None;
        }
        let id = self.id();
        Some(Message::new(id, Body::Keepalive))
    }

    fn set_gpo(&mut self, port: u16, high: bool, out: &mut Vec<Output>) {
        let old = self.gpo.insert(port, high).unwrap_or(false);
        if old != high {
            out.push(Output::Gpo(GpoChange {
                gpo: port,
                value: high,
            }));
        }
    }

    fn set_state(&mut self, id: u32, from: &[SpecState], to: SpecState) -> Status {
        let ids: Vec<u32> = if id == 0 {
            self.rospecs.keys().copied().collect()
        } else {
            vec![id]
        };
        for id in ids {
            match self.rospecs.get_mut(&id) {
                None => return error(StatusCode::AInvalid, format!("no ROSpec {id}")),
                Some((_, state)) if from.contains(state) => *state = to,
                Some((_, state)) => {
                    return error(
                        StatusCode::AInvalid,
                        format!("ROSpec {id} is {state:?}, not {from:?}"),
                    );
                }
            }
        }
        Status::success()
    }

    /// Answers one client message.
    pub fn handle_message(&mut self, msg: Message) -> Vec<Output> {
        if self.silent {
            return Vec::new();
        }
        let id = msg.id;
        let mut out = Vec::new();
        let reply = match msg.body {
            Body::GetReaderCapabilities { .. } => Body::GetReaderCapabilitiesResponse {
                status: Status::success(),
                general: Some(DeviceCapabilities {
                    max_antennas: PORTS,
                    manufacturer: MANUFACTURER,
                    model: 2001,
                    firmware: "custos-sim".into(),
                    gpis: PORTS,
                    gpos: PORTS,
                }),
            },
            Body::SetReaderConfig(cfg) => {
                let mut status = Status::success();
                if cfg.reset_to_factory_default {
                    self.rospecs.clear();
                    self.keepalive_ms = 0;
                    for port in 1..=PORTS {
                        self.set_gpo(port, false, &mut out);
                    }
                }
                if let Some(ms) = cfg.keepalive_ms {
                    self.keepalive_ms = ms;
                }
                for (port, high) in cfg.gpo {
                    if (1..=PORTS).contains(&port) {
                        self.set_gpo(port, high, &mut out);
                    } else {
                        status = error(StatusCode::AOutOfRange, format!("no GPO port {port}"));
                    }
                }
                Body::SetReaderConfigResponse(status)
            }
            Body::AddRoSpec(spec) => {
                let status = match self.rospecs.entry(spec.id) {
                    _ if spec.id == 0 => error(StatusCode::AInvalid, "ROSpecID 0"),
                    std::collections::btree_map::Entry::Occupied(_) => error(
                        StatusCode::AInvalid,
                        format!("ROSpec {} already exists", spec.id),
                    ),
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert((spec, SpecState::Disabled));
                        Status::success()
                    }
                };
                Body::AddRoSpecResponse(status)
            }
            Body::EnableRoSpec(r) => Body::EnableRoSpecResponse(self.set_state(
                r,
                &[SpecState::Disabled, SpecState::Inactive],
                SpecState::Inactive,
            )),
            Body::StartRoSpec(r) => Body::StartRoSpecResponse(if r == 0 {
                error(StatusCode::AInvalid, "START_ROSPEC needs an ID")
            } else {
                self.set_state(r, &[SpecState::Inactive], SpecState::Active)
            }),
            Body::StopRoSpec(r) => Body::StopRoSpecResponse(if r == 0 {
                error(StatusCode::AInvalid, "STOP_ROSPEC needs an ID")
            } else {
                self.set_state(r, &[SpecState::Active], SpecState::Inactive)
            }),
            Body::DisableRoSpec(r) => Body::DisableRoSpecResponse(self.set_state(
                r,
                &[SpecState::Disabled, SpecState::Inactive, SpecState::Active],
                SpecState::Disabled,
            )),
            Body::DeleteRoSpec(r) => Body::DeleteRoSpecResponse(if r == 0 {
                self.rospecs.clear();
                Status::success()
            } else if self.rospecs.remove(&r).is_some() {
                Status::success()
            } else {
                error(StatusCode::AInvalid, format!("no ROSpec {r}"))
            }),
            Body::KeepaliveAck => return out,
            Body::CloseConnection => {
                out.push(Output::Send(Message::new(
                    id,
                    Body::CloseConnectionResponse(Status::success()),
                )));
                out.push(Output::Close);
                return out;
            }
            other => Body::ErrorMessage(error(
                StatusCode::MUnsupportedMessage,
                format!("message type {} not supported", other.msg_type()),
            )),
        };
        out.push(Output::Send(Message::new(id, reply)));
        out
    }

    /// The report of one period: every tag in the field of every plugged-in antenna an
    /// active ROSpec inventories, `None` when there is nothing to report.
    pub fn report(&mut self, now_us: u64) -> Option<Message> {
        if self.silent || !self.connected {
            return None;
        }
        let mut antennas = BTreeSet::new();
        let mut rospec = 0;
        for (id, (spec, state)) in &self.rospecs {
            if *state != SpecState::Active {
                continue;
            }
            rospec = *id;
            for ai in &spec.ai_specs {
                if ai.antennas.contains(&0) {
                    antennas.extend(1..=PORTS as u8);
                }
                antennas.extend(ai.antennas.iter().filter_map(|a| u8::try_from(*a).ok()));
            }
        }
        let mut tags = Vec::new();
        for a in antennas.difference(&self.unplugged) {
            for epc in self.fields.get(a).into_iter().flatten() {
                let mut t = TagReport::new(EpcField::from_bytes(epc));
                t.rospec_id = Some(rospec);
                t.antenna = Some(u16::from(*a));
                t.peak_rssi = Some(-55);
                t.first_seen_utc = Some(now_us);
                t.seen_count = Some(1);
                tags.push(t);
            }
        }
        if tags.is_empty() {
            return None;
        }
        let id = self.id();
        Some(Message::new(id, Body::RoAccessReport(tags)))
    }

    /// Applies a control op.
    ///
    /// # Errors
    /// A bad field (antenna or GPI port out of range) or an op this device does not do.
    pub fn handle_control(
        &mut self,
        op: ControlOp,
        now_us: u64,
    ) -> Result<Vec<Output>, ControlError> {
        let antenna = |a: std::num::NonZeroU8| {
            if u16::from(a.get()) <= PORTS {
                Ok(a.get())
            } else {
                Err(ControlError::bad_field("antenna", "the reader has 4"))
            }
        };
        let mut out = Vec::new();
        match op {
            ControlOp::Field { antenna: a, tags } => {
                let a = antenna(a)?;
                if tags.iter().any(|t| t.0.is_empty() || t.0.len() > 62) {
                    return Err(ControlError::bad_field("tags", "an EPC is 1 to 62 bytes"));
                }
                self.fields
                    .insert(a, tags.into_iter().map(|t| t.0).collect());
            }
            ControlOp::Clear {} => self.fields.clear(),
            ControlOp::Disconnect { antenna: a } | ControlOp::Connect { antenna: a } => {
                let a = antenna(a)?;
                let connected = matches!(op, ControlOp::Connect { .. });
                let changed = if connected {
                    self.unplugged.remove(&a)
                } else {
                    self.unplugged.insert(a)
                };
                if changed && self.connected && !self.silent {
                    let e = ReaderEvent::Antenna {
                        antenna: u16::from(a),
                        connected,
                    };
                    out.push(self.event(now_us, vec![e]));
                }
            }
            ControlOp::Silence { on } => self.silent = on,
            ControlOp::Garbage { hex } => {
                if hex.0.is_empty() || hex.0.len() > 4096 {
                    return Err(ControlError::bad_field("hex", "1 to 4096 bytes"));
                }
                out.push(Output::Raw(hex.0));
            }
            ControlOp::Input { n, value } => {
                if !(1..=PORTS).contains(&n) {
                    return Err(ControlError::bad_field("n", "GPI ports are 1 to 4"));
                }
                let old = self.gpi.insert(n, value).unwrap_or(false);
                if old != value && self.connected && !self.silent {
                    let e = ReaderEvent::Gpi {
                        port: n,
                        high: value,
                    };
                    out.push(self.event(now_us, vec![e]));
                }
            }
            other => return Err(other.unsupported(Self::KIND)),
        }
        Ok(out)
    }
}

fn error(code: StatusCode, description: impl Into<String>) -> Status {
    Status {
        code,
        description: description.into(),
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Writes outputs to the client; `Ok(false)` when the connection is to be closed.
async fn apply(
    outputs: Vec<Output>,
    client: &mut TcpStream,
    gpo: &mpsc::UnboundedSender<GpoChange>,
) -> std::io::Result<bool> {
    let mut keep = true;
    for o in outputs {
        match o {
            Output::Send(m) => {
                let mut b = Vec::new();
                if let Err(e) = llrp::encode(&m, &mut b) {
                    tracing::error!("cannot encode {m:?}: {e}");
                    continue;
                }
                client.write_all(&b).await?;
            }
            Output::Raw(b) => client.write_all(&b).await?,
            Output::Close => keep = false,
            Output::Gpo(change) => {
                let _ = gpo.send(change);
            }
        }
    }
    Ok(keep)
}

/// Runs the reader on `listener` until `shutdown`. GPO changes go to `gpo`.
///
/// # Errors
/// The control socket stopped accepting, or the listener failed.
pub async fn run_llrp_reader(
    listener: TcpListener,
    mut reader: LlrpReader,
    control: Option<ControlSocket>,
    gpo: mpsc::UnboundedSender<GpoChange>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlRequest>(16);
    let control_loop = serve_optional(control.as_ref(), ctl_tx);
    tokio::pin!(shutdown, control_loop);
    let mut client: Option<TcpStream> = None;
    let mut decoder = StreamDecoder::new(llrp::decode, llrp::MAX_MESSAGE_LEN);
    let mut buf = vec![0u8; 16 * 1024];
    let mut reports = tokio::time::interval(REPORT_PERIOD);
    let mut next_keepalive = tokio::time::Instant::now();
    tracing::info!("llrp-reader running");
    loop {
        let keepalive_ms = reader.keepalive_ms();
        let keepalive_at = next_keepalive;
        let has_client = client.is_some();
        let read = async {
            match client.as_mut() {
                Some(c) => c.read(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        let mut close = false;
        tokio::select! {
            () = &mut shutdown => break,
            res = &mut control_loop => return Err(control_failure(control.as_ref(), res)),
            accepted = listener.accept() => {
                let (mut stream, peer) = accepted.map_err(|source| SimError::Listen {
                    addr: "llrp listener".into(),
                    source,
                })?;
                let outputs = reader.connect(now_us());
                if client.is_some() {
                    tracing::info!(%peer, "second llrp client refused");
                    let _ = apply(outputs, &mut stream, &gpo).await;
                } else {
                    tracing::info!(%peer, "llrp client connected");
                    decoder.clear();
                    close = !apply(outputs, &mut stream, &gpo).await.unwrap_or(false);
                    client = Some(stream);
                }
            }
            n = read => {
                match n {
                    Ok(0) | Err(_) => close = true,
                    Ok(n) => {
                        let mut rest = &buf[..n];
                        let mut outputs = Vec::new();
                        while !rest.is_empty() {
                            let taken = decoder.push(rest);
                            rest = &rest[taken..];
                            while let Some(frame) = decoder.next_frame() {
                                match frame {
                                    Ok(m) => outputs.extend(reader.handle_message(m)),
                                    Err(e) => {
                                        tracing::info!("undecodable llrp message: {e}");
                                        close = true;
                                    }
                                }
                            }
                        }
                        if let Some(c) = client.as_mut() {
                            close |= !apply(outputs, c, &gpo).await.unwrap_or(false);
                        }
                    }
                }
            }
            _ = reports.tick() => {
                if let (Some(m), Some(c)) = (reader.report(now_us()), client.as_mut()) {
                    close = !apply(vec![Output::Send(m)], c, &gpo).await.unwrap_or(false);
                }
            }
            () = tokio::time::sleep_until(keepalive_at), if keepalive_ms > 0 && has_client => {
                next_keepalive = tokio::time::Instant::now()
                    + Duration::from_millis(u64::from(keepalive_ms));
                if let (Some(m), Some(c)) = (reader.keepalive(), client.as_mut()) {
                    close = !apply(vec![Output::Send(m)], c, &gpo).await.unwrap_or(false);
                }
            }
            Some(ControlRequest { op, reply }) = ctl_rx.recv() => {
                match reader.handle_control(op, now_us()) {
                    Ok(outputs) => {
                        if let Some(c) = client.as_mut() {
                            close = !apply(outputs, c, &gpo).await.unwrap_or(false);
                        } else {
                            for o in outputs {
                                if let Output::Gpo(change) = o {
                                    let _ = gpo.send(change);
                                }
                            }
                        }
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
        if keepalive_ms == 0 && reader.keepalive_ms() > 0 {
            next_keepalive = tokio::time::Instant::now()
                + Duration::from_millis(u64::from(reader.keepalive_ms()));
        }
        if close {
            if let Some(mut c) = client.take() {
                let _ = c.shutdown().await;
            }
            reader.disconnected();
            tracing::info!("llrp client disconnected");
        }
    }
    tracing::info!("llrp-reader stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU8;

    use custos_protocol::llrp::{AiSpec, ReaderConfig, RoSpec};

    use super::*;
    use crate::control::HexBytes;

    fn sent(out: &[Output]) -> Vec<&Body> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(m) => Some(&m.body),
                _ => None,
            })
            .collect()
    }

    fn rospec(id: u32, antennas: Vec<u16>) -> RoSpec {
        RoSpec {
            id,
            priority: 0,
            state: 0,
            start_trigger: 0,
            stop_trigger: 0,
            stop_duration_ms: 0,
            ai_specs: vec![AiSpec {
                antennas,
                stop_trigger: 0,
                stop_duration_ms: 0,
                inventory_spec_id: 1,
                protocol: 1,
            }],
            report: None,
        }
    }

    fn run(r: &mut LlrpReader, body: Body) -> Vec<Output> {
        r.handle_message(Message::new(7, body))
    }

    fn ok(out: &[Output]) -> bool {
        sent(out)[0].status().is_some_and(Status::is_success)
    }

    #[test]
    fn second_client_is_refused_with_another_connection_status() {
        let mut r = LlrpReader::new();
        let first = r.connect(1);
        assert!(matches!(sent(&first)[0], Body::ReaderEventNotification(d)
            if d.events == [ReaderEvent::ConnectionAttempt(ConnectionStatus::Success)]));
        let second = r.connect(2);
        assert!(matches!(sent(&second)[0], Body::ReaderEventNotification(d)
            if d.events == [ReaderEvent::ConnectionAttempt(ConnectionStatus::ClientInitiatedExists)]));
        assert_eq!(second.last(), Some(&Output::Close));
    }

    #[test]
    fn rospec_life_and_reports_per_antenna() {
        let mut r = LlrpReader::new();
        r.connect(0);
        assert!(ok(&run(&mut r, Body::AddRoSpec(rospec(5, vec![1, 2])))));
        // Starting before enabling is refused.
        assert!(!ok(&run(&mut r, Body::StartRoSpec(5))));
        assert!(ok(&run(&mut r, Body::EnableRoSpec(5))));
        assert!(ok(&run(&mut r, Body::StartRoSpec(5))));
        let epc = HexBytes::parse("3474257BF40000000000162E").unwrap();
        let a2 = NonZeroU8::new(2).unwrap();
        r.handle_control(
            ControlOp::Field {
                antenna: a2,
                tags: vec![epc.clone()],
            },
            0,
        )
        .unwrap();
        r.handle_control(
            ControlOp::Field {
                antenna: NonZeroU8::new(3).unwrap(),
                tags: vec![epc],
            },
            0,
        )
        .unwrap();
        let Some(Message {
            body: Body::RoAccessReport(tags),
            ..
        }) = r.report(9)
        else {
            panic!("no report")
        };
        // Antenna 3 is not in the ROSpec.
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].antenna, Some(2));
        let out = r
            .handle_control(ControlOp::Disconnect { antenna: a2 }, 0)
            .unwrap();
        assert!(matches!(sent(&out)[0], Body::ReaderEventNotification(d)
            if d.events == [ReaderEvent::Antenna { antenna: 2, connected: false }]));
        assert_eq!(r.report(10), None);
        r.handle_control(ControlOp::Silence { on: true }, 0)
            .unwrap();
        assert!(run(&mut r, Body::StopRoSpec(5)).is_empty());
    }

    #[test]
    fn gpo_writes_and_gpi_inputs() {
        let mut r = LlrpReader::new();
        r.connect(0);
        let cfg = ReaderConfig {
            gpo: vec![(1, true), (2, false)],
            ..ReaderConfig::default()
        };
        let out = run(&mut r, Body::SetReaderConfig(cfg));
        assert!(out.contains(&Output::Gpo(GpoChange {
            gpo: 1,
            value: true
        })));
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::Gpo(GpoChange { gpo: 2, .. })))
        );
        let reset = ReaderConfig {
            reset_to_factory_default: true,
            ..ReaderConfig::default()
        };
        let out = run(&mut r, Body::SetReaderConfig(reset));
        assert!(out.contains(&Output::Gpo(GpoChange {
            gpo: 1,
            value: false
        })));
        let out = r
            .handle_control(ControlOp::Input { n: 1, value: true }, 5)
            .unwrap();
        assert!(matches!(sent(&out)[0], Body::ReaderEventNotification(d)
            if d.events == [ReaderEvent::Gpi { port: 1, high: true }]));
        assert!(
            r.handle_control(ControlOp::Input { n: 0, value: true }, 5)
                .is_err()
        );
        assert!(
            r.handle_control(ControlOp::Input { n: 1, value: true }, 5)
                .unwrap()
                .is_empty()
        );
    }
}
