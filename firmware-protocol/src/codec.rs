//! The shape every decoder in this crate shares, and a bounded stream reassembler.
//!
//! A decoder is a pure function `fn(&[u8]) -> Decoded<F, E>` that looks only at the start of the
//! slice. It answers one of three things:
//! - [`Decoded::Frame`]: a whole frame was parsed from the first `len` bytes;
//! - [`Decoded::NeedMore`]: the bytes so far are a valid beginning of a frame;
//! - [`Decoded::Invalid`]: the start of the slice is not a frame; the caller drops `skip` bytes
//!   (always at least one) and tries again. After a bad checksum that is exactly one byte, so a
//!   real frame that starts inside the rejected one is still found (resynchronisation as in
//!   tokio-modbus' RTU codec).
//!
//! [`StreamDecoder`] wraps such a function over a buffer of fixed capacity: bytes from a serial
//! port go in with [`StreamDecoder::push`], frames come out of [`StreamDecoder::next_frame`], and
//! every byte that had to be dropped is counted. Its memory is bounded by the capacity given at
//! construction, whatever the peer sends.

/// The outcome of one decode attempt at the start of a byte slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<F, E> {
    /// A complete frame occupies the first `len` bytes of the input.
    Frame {
        /// The decoded frame.
        frame: F,
        /// How many bytes of the input the frame used.
        len: usize,
    },
    /// The input is a valid but incomplete beginning of a frame.
    NeedMore,
    /// The input does not start with a valid frame.
    Invalid {
        /// Why the bytes were rejected.
        error: E,
        /// How many bytes to drop before decoding again; always at least 1.
        skip: usize,
    },
}

impl<F, E> Decoded<F, E> {
    /// Maps the frame of a [`Decoded::Frame`], leaving the other outcomes as they are.
    pub fn map<G>(self, f: impl FnOnce(F) -> G) -> Decoded<G, E> {
        match self {
            Decoded::Frame { frame, len } => Decoded::Frame {
                frame: f(frame),
                len,
            },
            Decoded::NeedMore => Decoded::NeedMore,
            Decoded::Invalid { error, skip } => Decoded::Invalid { error, skip },
        }
    }
}

/// An encoder was given a buffer too small for the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffer too small: frame needs {needed} bytes")]
pub struct BufferTooSmall {
    /// The number of bytes the frame needs.
    pub needed: usize,
}

/// A byte stream reassembler over a decoder function, with bounded memory.
///
/// Push bytes as they arrive, then call [`next_frame`](Self::next_frame) until it returns `None`.
/// Errors are returned (so the caller can count them by kind) and the offending bytes are
/// already dropped when they are.
#[derive(Debug, Clone)]
pub struct StreamDecoder<F, E> {
    decode: fn(&[u8]) -> Decoded<F, E>,
    buf: Vec<u8>,
    start: usize,
    capacity: usize,
    dropped: u64,
}

impl<F, E> StreamDecoder<F, E> {
    /// A reassembler that holds at most `capacity` undecoded bytes.
    ///
    /// `capacity` must be at least the longest frame the decoder accepts; a decoder that says
    /// [`Decoded::NeedMore`] on a full buffer has its first byte dropped and counted.
    pub fn new(decode: fn(&[u8]) -> Decoded<F, E>, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            decode,
            buf: Vec::with_capacity(capacity),
            start: 0,
            capacity,
            dropped: 0,
        }
    }

    /// Appends bytes from the link; returns how many were taken.
    ///
    /// Fewer than `bytes.len()` are taken only when the buffer is full; the caller then drains
    /// frames with [`next_frame`](Self::next_frame) and pushes the rest.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        if self.start > 0 && self.buf.len() + bytes.len() > self.capacity {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let room = self.capacity - self.buf.len();
        let taken = room.min(bytes.len());
        self.buf.extend_from_slice(&bytes[..taken]);
        taken
    }

    /// Decodes the next frame from the buffered bytes.
    ///
    /// Returns `None` when more bytes are needed. An `Err` means bytes were dropped; call again.
    pub fn next_frame(&mut self) -> Option<Result<F, E>> {
        let pending = &self.buf[self.start..];
        if pending.is_empty() {
            return None;
        }
        match (self.decode)(pending) {
            Decoded::Frame { frame, len } => {
                self.start += len.clamp(1, pending.len());
                Some(Ok(frame))
            }
            Decoded::NeedMore if pending.len() < self.capacity => None,
            Decoded::NeedMore => {
                // A full buffer that is still "incomplete" cannot become a frame: drop a byte.
                self.start += 1;
                self.dropped += 1;
                self.next_frame()
            }
            Decoded::Invalid { error, skip } => {
                let skip = skip.clamp(1, pending.len());
                self.start += skip;
                self.dropped += skip as u64;
                Some(Err(error))
            }
        }
    }

    /// How many bytes have been dropped as not belonging to any frame.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// How many bytes are buffered and not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Forgets buffered bytes (after a reconnect, say); the dropped count is kept.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy decoder: frames are `0x7E len payload.. sum` where sum is the byte sum of payload.
    fn toy(buf: &[u8]) -> Decoded<Vec<u8>, &'static str> {
        match buf {
            [] => Decoded::NeedMore,
            [0x7E] => Decoded::NeedMore,
            [0x7E, n, rest @ ..] => {
                let n = *n as usize;
                if rest.len() < n + 1 {
                    return Decoded::NeedMore;
                }
                let payload = &rest[..n];
                let sum = payload.iter().fold(0u8, |a, b| a.wrapping_add(*b));
                if sum == rest[n] {
                    Decoded::Frame {
                        frame: payload.to_vec(),
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

    #[test]
    fn finds_frame_after_garbage_and_counts_dropped_bytes() {
        let mut d = StreamDecoder::new(toy, 16);
        assert_eq!(d.push(&[0x00, 0x11, 0x7E, 0x02, 0x01, 0x02, 0x03]), 7);
        assert_eq!(d.next_frame(), Some(Err("head")));
        assert_eq!(d.next_frame(), Some(Err("head")));
        assert_eq!(d.next_frame(), Some(Ok(vec![1, 2])));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.dropped_bytes(), 2);
    }

    #[test]
    fn split_frame_needs_more_then_completes() {
        let mut d = StreamDecoder::new(toy, 16);
        d.push(&[0x7E, 0x01]);
        assert_eq!(d.next_frame(), None);
        d.push(&[0x05, 0x05]);
        assert_eq!(d.next_frame(), Some(Ok(vec![5])));
    }

    #[test]
    fn full_buffer_of_an_endless_prefix_is_dropped_not_kept() {
        let mut d = StreamDecoder::new(toy, 4);
        // 0x7E 0xFF announces 255 bytes that never fit into 4.
        assert_eq!(d.push(&[0x7E, 0xFF, 0x00, 0x00, 0x00]), 4);
        while let Some(r) = d.next_frame() {
            assert!(r.is_err());
        }
        assert!(d.dropped_bytes() >= 1);
        assert!(d.pending() < 4);
    }
}
