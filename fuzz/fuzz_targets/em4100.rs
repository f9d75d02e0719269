//! Fuzz `em4100::decode` against the decoder contract (see `check_decoder`).
#![no_main]

use custos_protocol::em4100;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    custos_protocol_fuzz::check_decoder(em4100::decode, em4100::MAX_FRAME_LEN, data);
});
