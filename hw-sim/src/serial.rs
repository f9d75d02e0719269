//! Serial devices: a pure state machine per device, one generic driver for all of them.
//!
//! A device implements [`SerialDevice`]: bytes from the host, control ops and timer expiries go
//! in through `handle_*` calls that carry the current time; bytes for the host come out of
//! [`SerialDevice::poll_transmit`]; the next moment the device wants to act comes out of
//! [`SerialDevice::poll_timeout`]. It never touches a clock, a socket or a task, so:
//! - [`run_serial_device`] drives it over a real pty ([`PtyLink`]) and a control socket;
//! - [`VirtualSerial`] drives the very same code on a virtual clock in tests.
//!
//! Both wrap the device in [`WithFaults`], which implements the fault injection every serial
//! device shares (`silence`, `garbage`), so a device only handles its own ops.
//!
//! The host side of a serial line is not flow-controlled: a device that talks while nobody reads
//! would fill the pty. The driver keeps at most [`MAX_PENDING_WRITES`] chunks queued for the pty
//! and drops (with a warning) what does not fit, like a UART overrunning a closed port.
//!
//! # Line rate
//!
//! A pty carries bytes as fast as both ends can move them; a real serial line does not. With a
//! [`LineRate`] ([`run_serial_device_with`], or the process-wide [`set_default_line_rate`]) the
//! driver delivers the device's output no faster than the line would: each piece of output
//! (at most [`PACED_PIECE`] bytes) is written when its last byte would have left a UART that
//! started sending as soon as the line was free and the bytes were there. Pieces follow each
//! other without gaps while output is queued, so a device with a lot to say keeps the line at
//! exactly its rate (115200 baud 8N1: 11,520 bytes/s), as a reader reporting many tags does.
//! Only the device-to-host direction is paced; the host's commands are short.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::SimError;
use crate::control::{
    ControlError, ControlOp, ControlRequest, ControlSocket, control_failure, serve_optional,
};
use crate::pty::PtyLink;
use crate::time::Millis;

/// Largest `garbage` op, in bytes.
pub const MAX_GARBAGE: usize = 4096;

/// Chunks of output the driver queues for the pty before it starts dropping them.
pub const MAX_PENDING_WRITES: usize = 256;

/// The most bytes a paced driver writes at once (about 2.8 ms of a 115200 baud line), so a long
/// answer reaches the host as a stream, not in one burst at its end.
pub const PACED_PIECE: usize = 32;

/// The speed of a simulated serial line, in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineRate {
    bytes_per_sec: u32,
}

impl LineRate {
    /// A UART at `baud` with 8 data bits, no parity and 1 stop bit: 10 bits per byte on the
    /// wire (start + 8 + stop), so 115200 baud carries 11,520 bytes/s. At least 1 byte/s.
    #[must_use]
    pub const fn uart_8n1(baud: u32) -> LineRate {
        let bytes = baud / 10;
        LineRate {
            bytes_per_sec: if bytes == 0 { 1 } else { bytes },
        }
    }

    /// Bytes per second.
    #[must_use]
    pub const fn bytes_per_sec(self) -> u32 {
        self.bytes_per_sec
    }

    /// How long `bytes` bytes take on the line.
    #[must_use]
    pub fn duration_of(self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 / f64::from(self.bytes_per_sec))
    }
}

/// How [`run_serial_device_with`] runs the line.
#[derive(Debug, Clone, Default)]
pub struct LineOptions {
    /// Pace the device's output to this rate (`None`: as fast as the pty takes it).
    pub rate: Option<LineRate>,
    /// Counts the bytes written to the host, if given (for benchmarks).
    pub sent: Option<Arc<AtomicU64>>,
}

/// The process-wide line rate of drivers started with [`run_serial_device`] (bytes/s; 0: none).
static DEFAULT_LINE_RATE: AtomicU32 = AtomicU32::new(0);

/// Sets the line rate that [`run_serial_device`] uses from now on, in this whole process
/// (`None`: unpaced, the default). For a benchmark that builds a whole site
/// ([`crate::site::Site`]) whose readers should talk at the wire speed of real ones; drivers
/// already running keep their rate.
pub fn set_default_line_rate(rate: Option<LineRate>) {
    DEFAULT_LINE_RATE.store(rate.map_or(0, LineRate::bytes_per_sec), Ordering::Relaxed);
}

/// The line rate [`run_serial_device`] uses now (see [`set_default_line_rate`]).
#[must_use]
pub fn default_line_rate() -> Option<LineRate> {
    match DEFAULT_LINE_RATE.load(Ordering::Relaxed) {
        0 => None,
        bytes_per_sec => Some(LineRate { bytes_per_sec }),
    }
}

/// A device on a serial line, as a pure state machine.
///
/// Contract: the driver calls `poll_transmit` after every `handle_*` call and calls
/// `handle_timeout(now)` once `now >= poll_timeout()`; after that call `poll_timeout` must be
/// later than `now` (or `None`), otherwise the device is polled in a loop.
pub trait SerialDevice: Send + 'static {
    /// The device kind as in the ready line and in errors, e.g. `barcode`.
    const KIND: &'static str;

    /// Bytes arrived from the host.
    fn handle_input(&mut self, now: Millis, bytes: &[u8]);

    /// A control op arrived. `silence` and `garbage` never get here (see [`WithFaults`]).
    ///
    /// # Errors
    /// [`ControlError::Unsupported`] for ops the device does not do, [`ControlError::BadField`]
    /// for values it refuses; the device's state must then be unchanged.
    fn handle_control(&mut self, now: Millis, op: ControlOp) -> Result<(), ControlError>;

    /// The moment from [`SerialDevice::poll_timeout`] has come.
    fn handle_timeout(&mut self, now: Millis) {
        let _ = now;
    }

    /// When the device next wants [`SerialDevice::handle_timeout`], if ever.
    fn poll_timeout(&self) -> Option<Millis> {
        None
    }

    /// Appends the bytes the device has to send to the host since the last call.
    fn poll_transmit(&mut self, out: &mut Vec<u8>);
}

/// Wraps a device with the faults common to serial devices:
/// - `{"op":"silence","on":true}`: the device neither hears nor answers (as if its cable were
///   pulled): input is dropped, output is discarded, timers keep running. `on:false` resumes.
/// - `{"op":"garbage","hex":"..."}`: the bytes go to the host once, ahead of the device's next
///   output, even while silent (the op exists to inject exactly those bytes).
#[derive(Debug)]
pub struct WithFaults<D> {
    device: D,
    silent: bool,
    garbage: Vec<u8>,
    discard: Vec<u8>,
}

impl<D: SerialDevice> WithFaults<D> {
    /// Wraps `device`, not silent.
    pub fn new(device: D) -> Self {
        WithFaults {
            device,
            silent: false,
            garbage: Vec::new(),
            discard: Vec::new(),
        }
    }

    /// The wrapped device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The wrapped device, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Whether the device is silenced.
    pub fn is_silent(&self) -> bool {
        self.silent
    }
}

/// Checks the bytes of a `garbage` op.
///
/// # Errors
/// [`ControlError::BadField`] for no bytes or more than [`MAX_GARBAGE`].
pub fn check_garbage(bytes: &[u8]) -> Result<(), ControlError> {
    if bytes.is_empty() {
        return Err(ControlError::bad_field("hex", "no bytes"));
    }
    if bytes.len() > MAX_GARBAGE {
        return Err(ControlError::bad_field(
            "hex",
            format!("more than {MAX_GARBAGE} bytes"),
        ));
    }
    Ok(())
}

impl<D: SerialDevice> SerialDevice for WithFaults<D> {
    const KIND: &'static str = D::KIND;

    fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if !self.silent {
            self.device.handle_input(now, bytes);
        }
    }

    fn handle_control(&mut self, now: Millis, op: ControlOp) -> Result<(), ControlError> {
        match op {
            ControlOp::Silence { on } => {
                self.silent = on;
                tracing::info!(device = D::KIND, silent = on, "silence");
                Ok(())
            }
            ControlOp::Garbage { hex } => {
                check_garbage(hex.as_bytes())?;
                self.garbage.extend_from_slice(hex.as_bytes());
                Ok(())
            }
            op => self.device.handle_control(now, op),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.device.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.device.poll_timeout()
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.garbage);
        if self.silent {
            self.device.poll_transmit(&mut self.discard);
            self.discard.clear();
        } else {
            self.device.poll_transmit(out);
        }
    }
}

/// A serial device on a virtual clock, for tests: the same [`WithFaults`] wrapping and the same
/// call order as [`run_serial_device`], with time advanced by hand.
#[derive(Debug)]
pub struct VirtualSerial<D> {
    device: WithFaults<D>,
    now: Millis,
    to_host: Vec<u8>,
}

impl<D: SerialDevice> VirtualSerial<D> {
    /// Starts `device` at time zero.
    pub fn new(device: D) -> Self {
        VirtualSerial {
            device: WithFaults::new(device),
            now: Millis::ZERO,
            to_host: Vec::new(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The device (inside its fault wrapper).
    pub fn device(&self) -> &WithFaults<D> {
        &self.device
    }

    /// The device, mutably.
    pub fn device_mut(&mut self) -> &mut WithFaults<D> {
        &mut self.device
    }

    /// The host writes `bytes` now.
    pub fn host_write(&mut self, bytes: &[u8]) {
        self.device.handle_input(self.now, bytes);
        self.device.poll_transmit(&mut self.to_host);
    }

    /// A control op arrives now.
    ///
    /// # Errors
    /// The device's refusal.
    pub fn control(&mut self, op: ControlOp) -> Result<(), ControlError> {
        let result = self.device.handle_control(self.now, op);
        self.device.poll_transmit(&mut self.to_host);
        result
    }

    /// Lets `ms` milliseconds pass, firing every timeout that falls within them, in order.
    ///
    /// # Panics
    /// If the device breaks the [`SerialDevice`] contract by asking for a timeout at or before
    /// the moment it was just handled, many times in a row.
    pub fn advance(&mut self, ms: u64) {
        let until = self.now + ms;
        let mut stuck = 0;
        while let Some(at) = self.device.poll_timeout() {
            if at > until {
                break;
            }
            if at <= self.now {
                stuck += 1;
                assert!(
                    stuck < 10_000,
                    "{} asks for timeouts at {at} forever",
                    D::KIND
                );
            } else {
                stuck = 0;
            }
            self.now = self.now.max(at);
            self.device.handle_timeout(self.now);
            self.device.poll_transmit(&mut self.to_host);
        }
        self.now = until;
    }

    /// Takes every byte sent to the host so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_host)
    }
}

/// Runs `device` on `link` until `shutdown` completes, taking control ops from `control` if
/// given. Dropping `link` afterwards (it is consumed) closes the pty and removes its symlink.
/// The line runs at the process-wide [`default_line_rate`] as it is when this is called (unpaced
/// unless set), not when the future is first polled.
///
/// # Errors
/// [`SimError::Serial`] if the pty fails, [`SimError::Control`] if the control socket cannot
/// accept, [`SimError::Pty`] if no handle on the pty can be made.
pub fn run_serial_device<D: SerialDevice>(
    device: D,
    link: PtyLink,
    control: Option<ControlSocket>,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = Result<(), SimError>> {
    let options = LineOptions {
        rate: default_line_rate(),
        sent: None,
    };
    run_serial_device_with(device, link, control, shutdown, options)
}

/// [`run_serial_device`] with explicit [`LineOptions`]: a line rate, a byte counter.
///
/// # Errors
/// As [`run_serial_device`].
pub async fn run_serial_device_with<D: SerialDevice>(
    device: D,
    link: PtyLink,
    control: Option<ControlSocket>,
    shutdown: impl Future<Output = ()>,
    options: LineOptions,
) -> Result<(), SimError> {
    let (mut reader, writer) = tokio::io::split(link.open_stream()?);
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(MAX_PENDING_WRITES);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlRequest>(16);
    let write_loop = write_all_from(writer, out_rx, options);
    let control_loop = serve_optional(control.as_ref(), ctl_tx);
    tokio::pin!(shutdown, write_loop, control_loop);

    let mut device = WithFaults::new(device);
    let start = Instant::now();
    let now = || Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    tracing::info!(device = D::KIND, "serial device running");
    loop {
        let deadline = device
            .poll_timeout()
            .map(|at| start + std::time::Duration::from_millis(at.0));
        tokio::select! {
            () = &mut shutdown => break,
            res = &mut write_loop => return Err(SimError::Serial(res)),
            res = &mut control_loop => {
                return Err(control_failure(control.as_ref(), res));
            }
            read = reader.read(&mut buf) => match read {
                Ok(0) => return Err(SimError::Serial(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    tracing::trace!(device = D::KIND, bytes = n, "from host");
                    device.handle_input(now(), &buf[..n]);
                }
                Err(e) => return Err(SimError::Serial(e)),
            },
            Some(ControlRequest { op, reply }) = ctl_rx.recv() => {
                let _ = reply.send(device.handle_control(now(), op));
            }
            () = sleep_until_opt(deadline) => device.handle_timeout(now()),
        }
        device.poll_transmit(&mut out);
        if !out.is_empty() {
            let chunk = std::mem::take(&mut out);
            if let Err(mpsc::error::TrySendError::Full(chunk)) = out_tx.try_send(chunk) {
                tracing::warn!(
                    device = D::KIND,
                    dropped = chunk.len(),
                    "host is not reading; output dropped"
                );
            }
        }
    }
    tracing::info!(device = D::KIND, "serial device stopped");
    Ok(())
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes every chunk from `chunks` to `writer`, paced to `options.rate` if set (see the module
/// docs); returns the error that ends it (never `Ok`, the channel's sender lives as long as the
/// driver).
async fn write_all_from<W: tokio::io::AsyncWrite + Unpin>(
    mut writer: W,
    mut chunks: mpsc::Receiver<Vec<u8>>,
    options: LineOptions,
) -> std::io::Error {
    // When the simulated UART finishes sending what was handed to it so far.
    let mut line_free = Instant::now();
    while let Some(chunk) = chunks.recv().await {
        let handed_over = Instant::now();
        let piece_len = if options.rate.is_some() {
            PACED_PIECE
        } else {
            chunk.len().max(1)
        };
        for piece in chunk.chunks(piece_len) {
            if let Some(rate) = options.rate {
                // The UART starts on the piece once the line is free and the bytes are there;
                // the host has it when its last byte is through. Timer lateness does not add
                // up: the next piece starts from when this one was due, not from when it went.
                let done = line_free.max(handed_over) + rate.duration_of(piece.len());
                tokio::time::sleep_until(done).await;
                line_free = done;
            }
            let written = async {
                writer.write_all(piece).await?;
                writer.flush().await
            };
            if let Err(e) = written.await {
                return e;
            }
            if let Some(sent) = &options.sent {
                sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
            }
        }
    }
    std::io::Error::other("output channel closed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::HexBytes;

    /// A test device: echoes input in upper case and, once started by `clear`, sends `T` every
    /// 100 ms.
    #[derive(Debug, Default)]
    struct Ticker {
        next: Option<Millis>,
        out: Vec<u8>,
        ticks_at: Vec<Millis>,
    }

    impl SerialDevice for Ticker {
        const KIND: &'static str = "ticker";

        fn handle_input(&mut self, _now: Millis, bytes: &[u8]) {
            self.out.extend(bytes.to_ascii_uppercase());
        }

        fn handle_control(&mut self, now: Millis, op: ControlOp) -> Result<(), ControlError> {
            match op {
                ControlOp::Clear {} => {
                    self.next = Some(now + 100);
                    Ok(())
                }
                op => Err(op.unsupported(Self::KIND)),
            }
        }

        fn handle_timeout(&mut self, now: Millis) {
            self.ticks_at.push(now);
            self.out.push(b'T');
            self.next = Some(now + 100);
        }

        fn poll_timeout(&self) -> Option<Millis> {
            self.next
        }

        fn poll_transmit(&mut self, out: &mut Vec<u8>) {
            out.append(&mut self.out);
        }
    }

    #[test]
    fn uart_8n1_carries_a_tenth_of_the_baud_rate() {
        let rate = LineRate::uart_8n1(115_200);
        assert_eq!(rate.bytes_per_sec(), 11_520);
        let frame = rate.duration_of(21).as_secs_f64();
        assert!((frame - 21.0 / 11_520.0).abs() < 1e-9, "{frame}");
        assert_eq!(LineRate::uart_8n1(5).bytes_per_sec(), 1, "never zero");
    }

    /// Property: a paced line delivers every byte, in order, and never faster than its rate
    /// (1,152 bytes at 11,520 bytes/s take at least 100 ms, however they are chunked).
    #[tokio::test]
    async fn a_paced_line_is_never_faster_than_its_rate() {
        let (mut host, sim) = tokio::io::duplex(64 * 1024);
        let (tx, rx) = mpsc::channel(8);
        let sent = Arc::new(AtomicU64::new(0));
        let options = LineOptions {
            rate: Some(LineRate::uart_8n1(115_200)),
            sent: Some(sent.clone()),
        };
        let started = Instant::now();
        let writer = tokio::spawn(write_all_from(sim, rx, options));
        let first: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        tx.send(first.clone()).await.unwrap();
        tx.send(vec![0xAA; 152]).await.unwrap();
        let mut got = vec![0u8; 1152];
        host.read_exact(&mut got).await.unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100), "too fast: {took:?}");
        assert!(took < Duration::from_secs(5), "far too slow: {took:?}");
        assert_eq!(&got[..1000], &first[..]);
        assert!(got[1000..].iter().all(|b| *b == 0xAA));
        assert_eq!(sent.load(Ordering::Relaxed), 1152);
        writer.abort();
    }

    #[tokio::test]
    async fn an_unpaced_line_passes_chunks_whole() {
        let (mut host, sim) = tokio::io::duplex(64 * 1024);
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_all_from(sim, rx, LineOptions::default()));
        tx.send(vec![1, 2, 3]).await.unwrap();
        let mut got = [0u8; 3];
        host.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [1, 2, 3]);
        writer.abort();
    }

    #[test]
    fn timeouts_fire_in_order_on_the_virtual_clock() {
        let mut sim = VirtualSerial::new(Ticker::default());
        sim.advance(1000);
        assert!(sim.take_output().is_empty(), "not started: no ticks");
        sim.control(ControlOp::Clear {}).unwrap();
        sim.advance(350);
        assert_eq!(sim.take_output(), b"TTT");
        assert_eq!(
            sim.device().device().ticks_at,
            [Millis(1100), Millis(1200), Millis(1300)]
        );
        assert_eq!(sim.now(), Millis(1350));
        sim.advance(50);
        assert_eq!(sim.take_output(), b"T", "the tick at exactly 1400 fires");
    }

    #[test]
    fn silence_drops_input_and_output_but_not_garbage() {
        let mut sim = VirtualSerial::new(Ticker::default());
        sim.host_write(b"ab");
        assert_eq!(sim.take_output(), b"AB");
        sim.control(ControlOp::Silence { on: true }).unwrap();
        assert!(sim.device().is_silent());
        sim.host_write(b"cd");
        sim.control(ControlOp::Clear {}).unwrap();
        sim.advance(250);
        assert!(sim.take_output().is_empty(), "silent: no echo, no ticks");
        sim.control(ControlOp::Garbage {
            hex: HexBytes(vec![0x00, 0xFF]),
        })
        .unwrap();
        assert_eq!(sim.take_output(), [0x00, 0xFF]);
        sim.control(ControlOp::Silence { on: false }).unwrap();
        sim.host_write(b"e");
        assert_eq!(sim.take_output(), b"E", "input while silent was never seen");
        sim.advance(100);
        assert_eq!(sim.take_output(), b"T", "timers kept running while silent");
    }

    #[test]
    fn garbage_is_checked_and_unsupported_ops_pass_through() {
        let mut sim = VirtualSerial::new(Ticker::default());
        let empty = sim.control(ControlOp::Garbage {
            hex: HexBytes(vec![]),
        });
        assert!(matches!(
            empty,
            Err(ControlError::BadField { field: "hex", .. })
        ));
        let huge = sim.control(ControlOp::Garbage {
            hex: HexBytes(vec![0; MAX_GARBAGE + 1]),
        });
        assert!(matches!(
            huge,
            Err(ControlError::BadField { field: "hex", .. })
        ));
        assert!(sim.take_output().is_empty());
        let scan = sim.control(ControlOp::Scan { text: "x".into() });
        assert_eq!(
            scan,
            Err(ControlError::Unsupported {
                device: "ticker",
                op: "scan"
            })
        );
    }
}
