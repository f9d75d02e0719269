//! Fuzz `modbus_map::rtu::decode_request` against the decoder contract (see `check_decoder`).
#![no_main]

use custos_protocol::modbus_map;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    custos_protocol_fuzz::check_decoder(
        modbus_map::rtu::decode_request,
        modbus_map::rtu::MAX_ADU_LEN,
        data,
    );
});
