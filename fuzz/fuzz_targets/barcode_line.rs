//! Fuzz `custos_protocol::barcode::decode_line`: no input may panic it, and its answers must keep the decoder contract.
#![no_main]

use custos_protocol::codec::{Decoded, StreamDecoder};
use libfuzzer_sys::fuzz_target;

/// A line plus a CR LF terminator.
const CAP: usize = custos_protocol::barcode::MAX_LINE + 2;

fuzz_target!(|data: &[u8]| {
    match custos_protocol::barcode::decode_line(data) {
        Decoded::Frame { len, .. } => assert!(len >= 1 && len <= data.len()),
        Decoded::NeedMore => {}
        Decoded::Invalid { skip, .. } => assert!(skip >= 1),
    }
    // The same bytes through the stream reassembler, split at the first byte's value.
    let mut stream = StreamDecoder::new(custos_protocol::barcode::decode_line, CAP);
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    for part in [&data[..split], &data[split..]] {
        let mut rest = part;
        while !rest.is_empty() {
            let taken = stream.push(rest);
            rest = &rest[taken..];
            while stream.next_frame().is_some() {}
        }
    }
    assert!(stream.pending() <= CAP);
});
