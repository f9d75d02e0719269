//! What every decoder fuzz target checks: the decoder contract of `custos_protocol::codec`.

use custos_protocol::codec::{Decoded, StreamDecoder};

/// Runs `decode` on `data` directly and through a [`StreamDecoder`] of `capacity` bytes, split
/// at the first byte's value, asserting the contract: a frame uses between 1 and all of the
/// input bytes, an invalid start is skipped by at least one byte, and the reassembler's buffer
/// never holds more than its capacity. Any panic is a bug.
pub fn check_decoder<F, E>(decode: fn(&[u8]) -> Decoded<F, E>, capacity: usize, data: &[u8]) {
    match decode(data) {
        Decoded::Frame { len, .. } => assert!(len >= 1 && len <= data.len()),
        Decoded::NeedMore => {}
        Decoded::Invalid { skip, .. } => assert!(skip >= 1),
    }
    let mut stream = StreamDecoder::new(decode, capacity);
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for part in [&data[..split], &data[split..]] {
        let mut rest = part;
        while !rest.is_empty() {
            let taken = stream.push(rest);
            rest = &rest[taken..];
            while stream.next_frame().is_some() {}
        }
    }
    assert!(stream.pending() <= capacity);
}
