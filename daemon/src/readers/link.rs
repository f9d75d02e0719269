//! A byte link to a reader: a stream plus a [`StreamDecoder`], with deadlines and counters.
//!
//! Every serial driver except Modbus reads through [`Link::next_frame_until`]. It decodes what
//! is buffered first, reads more only when needed, counts decoded frames, checksum errors and
//! dropped bytes into the [`Reporter`], and turns a silent peer into
//! [`ReaderError::NoReply`] at the deadline, end of file into [`ReaderError::Closed`] and an
//! I/O error into [`ReaderError::Io`]. Garbage never ends a session: it is dropped and counted.
//!
//! Protocols without a head byte (CHAFON) resynchronise badly on a stray large length byte:
//! the decoder waits for bytes that may never come, holding back a real reply behind it. With
//! a `gap` set, a silence that long while bytes are pending means no frame is in flight (as the
//! 3.5-character gap of Modbus RTU), so the pending bytes are decoded to the end at once: what
//! decodes is kept, every prefix still "incomplete" loses its first byte, counted as dropped.
//! To do that without reaching into the decoder, the link keeps a copy of the latest bytes it
//! pushed; the decoder's pending bytes are always their suffix.

use std::collections::VecDeque;
use std::time::Duration;

use custos_protocol::codec::{Decoded, StreamDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::ReaderError;
use super::health::Reporter;

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How a protocol's frames are found in a byte stream.
pub(crate) struct Codec<F, E> {
    /// The decoder function.
    pub(crate) decode: fn(&[u8]) -> Decoded<F, E>,
    /// Decoder capacity: at least the longest frame.
    pub(crate) capacity: usize,
    /// Whether an error is a checksum error (counted apart from other garbage).
    pub(crate) is_checksum: fn(&E) -> bool,
    /// Silence after which pending bytes are decoded to the end (see the module docs).
    pub(crate) gap: Option<Duration>,
}

/// A stream to a reader with its decoder.
pub(crate) struct Link<S, F, E> {
    io: S,
    codec: Codec<F, E>,
    decoder: StreamDecoder<F, E>,
    /// The latest bytes pushed into the decoder (at least its pending bytes), for `gap`.
    recent: Vec<u8>,
    /// Frames found by a gap flush, handed out before anything else.
    ready: VecDeque<F>,
    /// The decoder's dropped count already passed to the reporter.
    reported_dropped: u64,
    reply_timeout: Duration,
    buf: Vec<u8>,
}

impl<S, F, E> Link<S, F, E>
where
    S: AsyncRead + AsyncWrite + Unpin,
    E: std::fmt::Display,
{
    /// A link over `io`; a read or write that takes longer than `reply_timeout` is a NoReply.
    pub(crate) fn new(io: S, codec: Codec<F, E>, reply_timeout: Duration) -> Self {
        let decoder = StreamDecoder::new(codec.decode, codec.capacity);
        let buf = vec![0; codec.capacity];
        Self {
            io,
            codec,
            decoder,
            recent: Vec::new(),
            ready: VecDeque::new(),
            reported_dropped: 0,
            reply_timeout,
            buf,
        }
    }

    /// The reply timeout this link was made with.
    pub(crate) fn reply_timeout(&self) -> Duration {
        self.reply_timeout
    }

    /// Writes a whole frame; a peer that does not take it within the reply timeout is NoReply.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), ReaderError> {
        tracing::trace!(bytes = %Hex(bytes), "send");
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.reply_timeout, write).await {
            Ok(result) => result.map_err(ReaderError::Io),
            Err(_) => Err(ReaderError::NoReply(self.reply_timeout)),
        }
    }

    /// The next frame, waiting at most until `deadline` (for ever with `None`).
    pub(crate) async fn next_frame_until(
        &mut self,
        reporter: &Reporter,
        deadline: Option<Instant>,
    ) -> Result<F, ReaderError> {
        loop {
            if let Some(frame) = self.decode_buffered(reporter) {
                return Ok(frame);
            }
            let pending = self.decoder.pending();
            let gap = match self.codec.gap {
                Some(gap) if pending > 0 => Some(Instant::now() + gap),
                _ => None,
            };
            // Never read more than the decoder can take, so `push` takes everything. The
            // decoder keeps less than its capacity pending; `max(1)` keeps a zero-length read
            // (which would look like end of file) impossible all the same.
            let room = self.codec.capacity.saturating_sub(pending).max(1);
            tokio::select! {
                read = self.io.read(&mut self.buf[..room]) => {
                    let n = match read {
                        Ok(0) => return Err(ReaderError::Closed),
                        Ok(n) => n,
                        Err(e) => return Err(ReaderError::Io(e)),
                    };
                    tracing::trace!(bytes = %Hex(&self.buf[..n]), "received");
                    let taken = self.decoder.push(&self.buf[..n]);
                    self.remember(n);
                    // `room` makes this impossible; count rather than lose silently.
                    reporter.dropped((n - taken) as u64);
                }
                () = until(deadline) => return Err(ReaderError::NoReply(self.reply_timeout)),
                () = until(gap) => self.flush_at_gap(reporter),
            }
        }
    }

    /// A frame from what is already buffered, counting errors and drops on the way.
    fn decode_buffered(&mut self, reporter: &Reporter) -> Option<F> {
        if let Some(frame) = self.ready.pop_front() {
            reporter.frame_ok();
            return Some(frame);
        }
        let mut found = None;
        while let Some(result) = self.decoder.next_frame() {
            match result {
                Ok(frame) => {
                    reporter.frame_ok();
                    found = Some(frame);
                    break;
                }
                Err(error) => {
                    if (self.codec.is_checksum)(&error) {
                        reporter.checksum_error();
                    }
                    tracing::debug!(%error, "dropped bytes from reader");
                }
            }
        }
        let dropped = self.decoder.dropped_bytes();
        reporter.dropped(dropped - self.reported_dropped);
        self.reported_dropped = dropped;
        found
    }

    /// Keeps the last `n` bytes of `buf` in `recent`, bounded to twice the capacity.
    fn remember(&mut self, n: usize) {
        if self.codec.gap.is_none() {
            return;
        }
        self.recent.extend_from_slice(&self.buf[..n]);
        let keep = self.codec.capacity;
        if self.recent.len() > 2 * keep {
            self.recent.drain(..self.recent.len() - keep);
        }
    }

    /// Silence with bytes pending: decode them to the end (see the module docs).
    fn flush_at_gap(&mut self, reporter: &Reporter) {
        let pending = self.decoder.pending();
        let start = self.recent.len().saturating_sub(pending);
        let bytes = self.recent.split_off(start);
        self.recent.clear();
        self.decoder.clear();
        let mut at = 0;
        let mut dropped = 0u64;
        while at < bytes.len() {
            match (self.codec.decode)(&bytes[at..]) {
                Decoded::Frame { frame, len } => {
                    self.ready.push_back(frame);
                    at += len.max(1);
                }
                Decoded::NeedMore => {
                    at += 1;
                    dropped += 1;
                }
                Decoded::Invalid { error, skip } => {
                    if (self.codec.is_checksum)(&error) {
                        reporter.checksum_error();
                    }
                    let skip = skip.clamp(1, bytes.len() - at);
                    at += skip;
                    dropped += skip as u64;
                }
            }
        }
        tracing::debug!(
            pending,
            dropped,
            frames = self.ready.len(),
            "line silent: flushed pending bytes"
        );
        reporter.dropped(dropped);
    }
}

/// Upper-case hex for trace logs.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    /// Frames are `0x7E len payload.. sum` (sum of payload); no head byte inside garbage.
    fn toy(buf: &[u8]) -> Decoded<Vec<u8>, &'static str> {
        match buf {
            [] | [0x7E] => Decoded::NeedMore,
            [0x7E, n, rest @ ..] => {
                let n = *n as usize;
                if rest.len() < n + 1 {
                    return Decoded::NeedMore;
                }
                let sum = rest[..n].iter().fold(0u8, |a, b| a.wrapping_add(*b));
                if sum == rest[n] {
                    Decoded::Frame {
                        frame: rest[..n].to_vec(),
                        len: n + 3,
                    }
                } else {
                    Decoded::Invalid {
                        error: "checksum",
                        skip: 1,
                    }
                }
            }
            _ => Decoded::Invalid {
                error: "head",
                skip: 1,
            },
        }
    }

    fn codec(gap: Option<Duration>) -> Codec<Vec<u8>, &'static str> {
        Codec {
            decode: toy,
            capacity: 64,
            is_checksum: |e| *e == "checksum",
            gap,
        }
    }

    fn reporter() -> Reporter {
        let (tx, rx) = mpsc::channel(4);
        std::mem::forget(rx);
        Reporter::new("t".into(), tx, 1)
    }

    #[tokio::test(start_paused = true)]
    async fn frames_after_garbage_are_found_and_counted() {
        let (a, mut b) = tokio::io::duplex(256);
        let r = reporter();
        let mut link = Link::new(a, codec(None), Duration::from_millis(500));
        b.write_all(&[0x00, 0x7E, 0x01, 0x05, 0x06, 0x7E, 0x01, 0x05, 0x05])
            .await
            .unwrap();
        assert_eq!(link.next_frame_until(&r, None).await.unwrap(), vec![5]);
        let h = r.snapshot();
        assert_eq!((h.frames_ok, h.checksum_errors), (1, 1));
        // 0x00, then 0x7E and 0x01 of the bad frame, then 0x05 0x06 as non-head bytes.
        assert_eq!(h.dropped_bytes, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_no_reply_at_the_deadline_and_eof_is_closed() {
        let (a, b) = tokio::io::duplex(256);
        let r = reporter();
        let mut link = Link::new(a, codec(None), Duration::from_millis(500));
        let start = Instant::now();
        let deadline = start + Duration::from_millis(500);
        let err = link.next_frame_until(&r, Some(deadline)).await.unwrap_err();
        assert!(matches!(err, ReaderError::NoReply(_)), "{err:?}");
        assert_eq!(Instant::now() - start, Duration::from_millis(500));
        drop(b);
        let err = link.next_frame_until(&r, None).await.unwrap_err();
        assert!(matches!(err, ReaderError::Closed), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_releases_a_frame_held_behind_a_stray_length() {
        let (a, mut b) = tokio::io::duplex(256);
        let r = reporter();
        let mut link = Link::new(a, codec(Some(Duration::from_millis(100))), Duration::MAX);
        // 0x7E 0x30 announces 48 bytes that never come; a real frame follows.
        b.write_all(&[0x7E, 0x30, 0x7E, 0x02, 0x01, 0x02, 0x03])
            .await
            .unwrap();
        let start = Instant::now();
        assert_eq!(link.next_frame_until(&r, None).await.unwrap(), vec![1, 2]);
        assert_eq!(Instant::now() - start, Duration::from_millis(100));
        assert_eq!(r.snapshot().dropped_bytes, 2);
        // The link keeps working afterwards.
        b.write_all(&[0x7E, 0x01, 0x09, 0x09]).await.unwrap();
        assert_eq!(link.next_frame_until(&r, None).await.unwrap(), vec![9]);
    }
}
