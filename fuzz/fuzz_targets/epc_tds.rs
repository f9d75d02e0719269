//! Fuzz the GS1 TDS decoder: no EPC may panic it; whatever decodes must re-encode to the same
//! bytes and survive a tag-URI round trip.
#![no_main]

use custos_protocol::epc::{Epc, tds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(epc) = Epc::new(&data[..data.len().min(custos_protocol::epc::MAX_EPC_BYTES)]) else {
        return;
    };
    if let Ok(Some(identity)) = tds::decode(&epc) {
        let again = tds::encode(&identity).expect("a decoded identity encodes");
        assert_eq!(&again.as_bytes()[..12], &epc.as_bytes()[..12]);
        let parsed = tds::parse_tag_uri(&identity.tag_uri()).expect("own tag uri parses");
        assert_eq!(parsed, identity);
    }
});
