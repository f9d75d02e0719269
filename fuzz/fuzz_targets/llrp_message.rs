//! Fuzz `llrp::decode` against the decoder contract (see `check_decoder`), with a stream buffer
//! far below `MAX_MESSAGE_LEN` so that over-long length fields are exercised too.
#![no_main]

use custos_protocol::llrp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    custos_protocol_fuzz::check_decoder(llrp::decode, 4096, data);
});
