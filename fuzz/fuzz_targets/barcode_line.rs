//! Fuzz `barcode::decode_line` against the decoder contract (see `check_decoder`).
#![no_main]

use custos_protocol::barcode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    custos_protocol_fuzz::check_decoder(barcode::decode_line, barcode::MAX_LINE + 2, data);
});
