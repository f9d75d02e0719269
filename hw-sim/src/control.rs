//! The control socket: JSON lines in, one `{"ok":...}` line out per request.
//!
//! Tests and the demo steer a simulated device through a Unix socket. Each line is one
//! [`ControlOp`]; the answer is `{"ok":true}` or `{"ok":false,"error":"..."}`. Parsing happens here,
//! so a device only ever sees well-typed ops; a malformed line, an unknown op or a bad field is
//! answered with an error and never reaches the device, so its state cannot change.
//!
//! Several clients may be connected at once. Their requests are funnelled through one channel
//! ([`ControlRequest`]) to the task that owns the device, so ops are applied one at a time, in the
//! order they arrive, and each client gets the answer to its own request. Blank lines are
//! ignored (no answer), so `printf '...\r\n' | nc -U` works too.

use std::fmt;
use std::io;
use std::num::NonZeroU8;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::SimError;

/// Longest request line accepted, in bytes (without the newline).
pub const MAX_LINE: usize = 64 * 1024;

/// One control operation, as sent on the control socket (`{"op":"...", ...}`).
///
/// Every device accepts the subset that makes sense for it and answers the others with
/// [`ControlError::Unsupported`]. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlOp {
    /// Replaces the tags in the field of one antenna (UHF readers). Antennas are 1-based.
    Field {
        /// The antenna, from 1.
        antenna: NonZeroU8,
        /// EPCs in hex, one per tag; an empty list empties that antenna's field.
        tags: Vec<HexBytes>,
    },
    /// Empties the field: no tags on any antenna, no card on a card reader.
    ///
    /// (A struct variant without fields rather than a unit variant: serde ignores unknown fields
    /// next to the tag of a unit variant, `deny_unknown_fields` notwithstanding.)
    Clear {},
    /// Unplugs one antenna (UHF readers).
    Disconnect {
        /// The antenna, from 1.
        antenna: NonZeroU8,
    },
    /// Plugs one antenna back in (UHF readers).
    Connect {
        /// The antenna, from 1.
        antenna: NonZeroU8,
    },
    /// Stops (`true`) or resumes (`false`) every answer and report of a serial device.
    Silence {
        /// Whether the device is silent.
        on: bool,
    },
    /// Writes these raw bytes to the host, once, whatever the device's protocol.
    Garbage {
        /// The bytes, in hex.
        hex: HexBytes,
    },
    /// Scans a barcode: the scanner sends this text with its prefix and terminator.
    Scan {
        /// The barcode's content.
        text: String,
    },
    /// Presents a card (EM4100, Modbus card readers).
    Card {
        /// The card's UID in hex.
        hex: HexBytes,
    },
    /// Sets a discrete input of the gate I/O module (0-based).
    Input {
        /// The input, from 0.
        n: u16,
        /// Its new value.
        value: bool,
    },
}

impl ControlOp {
    /// The op's wire name, as in `{"op":"..."}`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ControlOp::Field { .. } => "field",
            ControlOp::Clear {} => "clear",
            ControlOp::Disconnect { .. } => "disconnect",
            ControlOp::Connect { .. } => "connect",
            ControlOp::Silence { .. } => "silence",
            ControlOp::Garbage { .. } => "garbage",
            ControlOp::Scan { .. } => "scan",
            ControlOp::Card { .. } => "card",
            ControlOp::Input { .. } => "input",
        }
    }

    /// The error a device named `device` answers for an op it does not support.
    #[must_use]
    pub fn unsupported(&self, device: &'static str) -> ControlError {
        ControlError::Unsupported {
            device,
            op: self.name(),
        }
    }
}

/// Parses one request line (JSON, without the newline).
///
/// # Errors
/// [`ControlError::Malformed`] with serde's description (bad JSON, unknown op, unknown or
/// missing field, wrong type, bad hex).
pub fn parse_op(line: &str) -> Result<ControlOp, ControlError> {
    serde_json::from_str(line).map_err(|e| ControlError::Malformed(e.to_string()))
}

/// Bytes written as a hex string on the wire (`"00FF"`; either case accepted, upper case written).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses hex digits (an even number of them, no separators).
    ///
    /// # Errors
    /// A short description of the first problem.
    pub fn parse(text: &str) -> Result<HexBytes, &'static str> {
        if text.len() % 2 != 0 {
            return Err("odd number of hex digits");
        }
        text.as_bytes()
            .chunks_exact(2)
            .map(|pair| match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
                _ => Err("not a hex digit"),
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(HexBytes)
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({self})")
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        HexBytes::parse(&text).map_err(|e| serde::de::Error::custom(format!("bad hex: {e}")))
    }
}

/// Why a control request was refused. The `Display` text is what the client sees in `"error"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The line is not a valid op (bad JSON, unknown op, unknown/missing field, bad value).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The line is longer than [`MAX_LINE`].
    #[error("request line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// The device does not do this op.
    #[error("{device} does not support op {op:?}")]
    Unsupported {
        /// The device kind, e.g. `gate-io`.
        device: &'static str,
        /// The op's wire name.
        op: &'static str,
    },
    /// The op is known but a field's value is not acceptable to this device.
    #[error("bad {field}: {reason}")]
    BadField {
        /// The field's name on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The device has stopped; nothing will handle the request.
    #[error("device stopped")]
    DeviceStopped,
}

impl ControlError {
    /// Shorthand for [`ControlError::BadField`].
    pub fn bad_field(field: &'static str, reason: impl Into<String>) -> ControlError {
        ControlError::BadField {
            field,
            reason: reason.into(),
        }
    }
}

/// The answer line: `{"ok":true}` or `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the op was applied.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Result<(), ControlError>> for ControlReply {
    fn from(result: Result<(), ControlError>) -> ControlReply {
        match result {
            Ok(()) => ControlReply {
                ok: true,
                error: None,
            },
            Err(e) => ControlReply {
                ok: false,
                error: Some(e.to_string()),
            },
        }
    }
}

impl ControlReply {
    /// The reply as one JSON line, newline included.
    #[must_use]
    pub fn to_line(&self) -> String {
        // Serialising a struct of a bool and an optional string cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| r#"{"ok":false}"#.into());
        line.push('\n');
        line
    }
}

/// One parsed op on its way to the task that owns the device, with the way back to the client.
#[derive(Debug)]
pub struct ControlRequest {
    /// The op.
    pub op: ControlOp,
    /// Where the device's answer goes.
    pub reply: oneshot::Sender<Result<(), ControlError>>,
}

/// A bound control socket. Dropping it removes the socket file.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds the Unix socket at `path`. A stale socket file (nobody accepting) is replaced; a live
    /// one or any other kind of file is refused. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`SimError::ControlInUse`], [`SimError::ControlOccupied`] or [`SimError::Control`].
    pub fn bind(path: impl AsRef<Path>) -> Result<ControlSocket, SimError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| SimError::Control {
            path: path.clone(),
            source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                    return Err(SimError::ControlInUse(path));
                }
                tracing::info!(path = %path.display(), "replacing stale control socket");
                std::fs::remove_file(&path).map_err(io_err)?;
            }
            Ok(_) => return Err(SimError::ControlOccupied(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let listener = UnixListener::bind(&path).map_err(io_err)?;
        Ok(ControlSocket { listener, path })
    }

    /// The socket's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts clients until dropped, sending each request to `ops`. Returns only if accepting
    /// fails; client errors just end that client. Dropping the future disconnects every client.
    ///
    /// # Errors
    /// The error of `accept`.
    pub async fn serve(&self, ops: mpsc::Sender<ControlRequest>) -> io::Result<()> {
        let mut clients = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted?;
                    tracing::debug!("control client connected");
                    clients.spawn(serve_client(stream, ops.clone()));
                }
                Some(_) = clients.join_next() => {}
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), "cannot remove control socket: {e}");
                }
            }
            _ => {}
        }
    }
}

/// Serves `control` if there is one, otherwise never finishes.
///
/// # Errors
/// The error of [`ControlSocket::serve`].
pub async fn serve_optional(
    control: Option<&ControlSocket>,
    ops: mpsc::Sender<ControlRequest>,
) -> io::Result<()> {
    match control {
        Some(control) => control.serve(ops).await,
        None => std::future::pending().await,
    }
}

/// The error to stop a device with when its control socket stopped accepting.
pub(crate) fn control_failure(control: Option<&ControlSocket>, res: io::Result<()>) -> SimError {
    let source = res
        .err()
        .unwrap_or_else(|| io::Error::other("control socket closed"));
    SimError::Control {
        path: control.map(|c| c.path().to_path_buf()).unwrap_or_default(),
        source,
    }
}

async fn serve_client(stream: UnixStream, ops: mpsc::Sender<ControlRequest>) {
    let (read, mut write) = stream.into_split();
    let mut lines = LineReader::new(read);
    loop {
        let result = match lines.next().await {
            Ok(Some(Line::Text(line))) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                match parse_op(line) {
                    Ok(op) => dispatch(&ops, op).await,
                    Err(e) => Err(e),
                }
            }
            Ok(Some(Line::TooLong)) => Err(ControlError::LineTooLong),
            Ok(Some(Line::NotUtf8)) => Err(ControlError::Malformed("not UTF-8".into())),
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("control client read failed: {e}");
                break;
            }
        };
        if let Err(e) = &result {
            tracing::info!("control request refused: {e}");
        }
        let reply = ControlReply::from(result).to_line();
        if let Err(e) = write.write_all(reply.as_bytes()).await {
            tracing::debug!("control client write failed: {e}");
            break;
        }
    }
    tracing::debug!("control client disconnected");
}

async fn dispatch(ops: &mpsc::Sender<ControlRequest>, op: ControlOp) -> Result<(), ControlError> {
    tracing::debug!(?op, "control request");
    let (reply, answer) = oneshot::channel();
    ops.send(ControlRequest { op, reply })
        .await
        .map_err(|_| ControlError::DeviceStopped)?;
    answer.await.unwrap_or(Err(ControlError::DeviceStopped))
}

enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

/// Reads newline-terminated lines of at most [`MAX_LINE`] bytes; a longer line is skipped up to
/// its newline and reported once, so a client cannot make us buffer without bound.
struct LineReader<R> {
    inner: BufReader<R>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        LineReader {
            inner: BufReader::new(inner),
        }
    }

    async fn next(&mut self) -> io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            // Discard the rest of the line.
            loop {
                buf.clear();
                let n = (&mut self.inner)
                    .take(limit)
                    .read_until(b'\n', &mut buf)
                    .await?;
                if n == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(match String::from_utf8(buf) {
            Ok(text) => Line::Text(text),
            Err(_) => Line::NotUtf8,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn op_names() -> BTreeSet<&'static str> {
        [
            "field",
            "clear",
            "disconnect",
            "connect",
            "silence",
            "garbage",
            "scan",
            "card",
            "input",
        ]
        .into_iter()
        .collect()
    }

    fn nz(n: u8) -> NonZeroU8 {
        NonZeroU8::new(n).unwrap()
    }

    /// Every example of INTERFACES.md, "Simulator control", parses to the op it describes.
    #[test]
    fn interface_examples_parse() {
        let cases = [
            (
                r#"{"op":"field","antenna":1,"tags":["3474257BF40000000000162E"]}"#,
                ControlOp::Field {
                    antenna: nz(1),
                    tags: vec![HexBytes(vec![
                        0x34, 0x74, 0x25, 0x7B, 0xF4, 0, 0, 0, 0, 0, 0x16, 0x2E,
                    ])],
                },
            ),
            (r#"{"op":"clear"}"#, ControlOp::Clear {}),
            (
                r#"{"op":"disconnect","antenna":2}"#,
                ControlOp::Disconnect { antenna: nz(2) },
            ),
            (
                r#"{"op":"connect","antenna":2}"#,
                ControlOp::Connect { antenna: nz(2) },
            ),
            (
                r#"{"op":"silence","on":true}"#,
                ControlOp::Silence { on: true },
            ),
            (
                r#"{"op":"garbage","hex":"00FF"}"#,
                ControlOp::Garbage {
                    hex: HexBytes(vec![0x00, 0xFF]),
                },
            ),
            (
                r#"{"op":"scan","text":"CU-1"}"#,
                ControlOp::Scan {
                    text: "CU-1".into(),
                },
            ),
            (
                r#"{"op":"card","hex":"1A00B54E12"}"#,
                ControlOp::Card {
                    hex: HexBytes(vec![0x1A, 0x00, 0xB5, 0x4E, 0x12]),
                },
            ),
            (
                r#"{"op":"input","n":0,"value":true}"#,
                ControlOp::Input { n: 0, value: true },
            ),
        ];
        let mut seen = BTreeSet::new();
        for (line, want) in cases {
            let op = parse_op(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(op, want, "{line}");
            seen.insert(op.name());
            // Serialising gives JSON that parses back to the same op.
            let again = serde_json::to_string(&op).unwrap();
            assert_eq!(parse_op(&again).unwrap(), want, "{again}");
        }
        assert_eq!(seen, op_names(), "every op is covered");
    }

    #[test]
    fn lower_case_hex_is_accepted_and_written_upper() {
        let op = parse_op(r#"{"op":"garbage","hex":"a0ff"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"op":"garbage","hex":"A0FF"}"#
        );
    }

    #[test]
    fn bad_requests_are_malformed_with_a_reason() {
        let cases = [
            ("not json", "expected"),
            (r#"{"op":"launch"}"#, "unknown variant"),
            (r#"{"antenna":1}"#, "missing field `op`"),
            (r#"{"op":"silence"}"#, "missing field `on`"),
            (r#"{"op":"silence","on":"yes"}"#, "invalid type"),
            (r#"{"op":"silence","on":true,"extra":1}"#, "unknown field"),
            (r#"{"op":"clear","extra":1}"#, "unknown field"),
            (r#"{"op":"garbage","hex":"0"}"#, "odd number"),
            (r#"{"op":"garbage","hex":"zz"}"#, "not a hex digit"),
            (r#"{"op":"connect","antenna":0}"#, "nonzero"),
            (r#"{"op":"input","n":-1,"value":true}"#, "invalid value"),
            (r#"{"op":"input","n":70000,"value":true}"#, "invalid value"),
        ];
        for (line, needle) in cases {
            match parse_op(line) {
                Err(ControlError::Malformed(msg)) => {
                    assert!(msg.contains(needle), "{line}: {msg:?} lacks {needle:?}");
                }
                other => panic!("{line}: expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn replies_have_the_documented_shape() {
        assert_eq!(ControlReply::from(Ok(())).to_line(), "{\"ok\":true}\n");
        let refused = ControlReply::from(Err(ControlOp::Clear {}.unsupported("gate-io")));
        assert_eq!(
            refused.to_line(),
            "{\"ok\":false,\"error\":\"gate-io does not support op \\\"clear\\\"\"}\n"
        );
    }

    fn any_op() -> impl Strategy<Value = ControlOp> {
        let hex = || proptest::collection::vec(any::<u8>(), 0..16).prop_map(HexBytes);
        let antenna = || (1u8..=255).prop_map(nz);
        prop_oneof![
            (antenna(), proptest::collection::vec(hex(), 0..4))
                .prop_map(|(antenna, tags)| ControlOp::Field { antenna, tags }),
            Just(ControlOp::Clear {}),
            antenna().prop_map(|antenna| ControlOp::Disconnect { antenna }),
            antenna().prop_map(|antenna| ControlOp::Connect { antenna }),
            any::<bool>().prop_map(|on| ControlOp::Silence { on }),
            hex().prop_map(|hex| ControlOp::Garbage { hex }),
            any::<String>().prop_map(|text| ControlOp::Scan { text }),
            hex().prop_map(|hex| ControlOp::Card { hex }),
            (any::<u16>(), any::<bool>()).prop_map(|(n, value)| ControlOp::Input { n, value }),
        ]
    }

    proptest! {
        /// Any op serialises to one JSON line that parses back to the same op.
        #[test]
        fn ops_round_trip(op in any_op()) {
            let line = serde_json::to_string(&op).unwrap();
            prop_assert!(!line.contains('\n'));
            prop_assert_eq!(parse_op(&line).unwrap(), op);
        }

        /// Any line is either an op or a Malformed error; parsing never panics.
        #[test]
        fn arbitrary_lines_never_panic(line in any::<String>()) {
            match parse_op(&line) {
                Ok(_) | Err(ControlError::Malformed(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// Hex text of any bytes parses back to them, in either case.
        #[test]
        fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let upper = HexBytes(bytes.clone()).to_string();
            prop_assert_eq!(HexBytes::parse(&upper).unwrap().0, bytes.clone());
            prop_assert_eq!(HexBytes::parse(&upper.to_lowercase()).unwrap().0, bytes);
        }
    }

    #[tokio::test]
    async fn line_reader_bounds_lines() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend(b"\nafter\nno-newline");
        let mut reader = LineReader::new(&input[..]);
        assert!(matches!(reader.next().await.unwrap(), Some(Line::Text(t)) if t == "short"));
        assert!(matches!(reader.next().await.unwrap(), Some(Line::TooLong)));
        assert!(matches!(reader.next().await.unwrap(), Some(Line::Text(t)) if t == "after"));
        assert!(matches!(reader.next().await.unwrap(), Some(Line::Text(t)) if t == "no-newline"));
        assert!(reader.next().await.unwrap().is_none());
    }
}
