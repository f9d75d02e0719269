//! Fuzz `chafon::decode_response` against the decoder contract (see `check_decoder`).
#![no_main]

use custos_protocol::chafon;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    custos_protocol_fuzz::check_decoder(chafon::decode_response, chafon::MAX_FRAME_LEN, data);
});
