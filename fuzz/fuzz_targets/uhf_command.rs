//! Fuzz `uhf::decode_command` against the decoder contract (see `check_decoder`).
#![no_main]

use custos_protocol::uhf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    custos_protocol_fuzz::check_decoder(uhf::decode_command, uhf::MAX_FRAME_LEN, data);
});
