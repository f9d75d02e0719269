//! Fuzz the server's view of an uplink body: arbitrary bytes must parse to an error or to a
//! batch whose validation answers without panicking.
#![no_main]

use custos_protocol::uplink::Batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<Batch>(data) {
        let _ = batch.validate();
    }
});
