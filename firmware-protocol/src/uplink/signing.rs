//! Exactly which bytes are signed. Frozen: see the "Signatures" section of the module doc.

/// The HTTP header carrying the Ed25519 signature of a body: standard base64 with padding
/// (RFC 4648, section 4) of the [`SIGNATURE_LEN`] signature bytes. Header names are
/// case-insensitive; this is the form to send.
pub const SIGNATURE_HEADER: &str = "custos-signature";

/// The length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Which message a signature is for; each has its own context, so a signature over one kind of
/// message never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignedKind {
    /// A [`super::Batch`], signed by the device.
    Batch,
    /// A [`super::BatchAck`], signed by the server.
    BatchAck,
    /// A [`super::Heartbeat`], signed by the device.
    Heartbeat,
    /// A [`super::HeartbeatAck`], signed by the server.
    HeartbeatAck,
    /// A [`super::PolicyRequest`], signed by the device.
    PolicyRequest,
    /// A [`super::GatePolicy`], signed by the server.
    Policy,
}

impl SignedKind {
    /// The domain-separation prefix: `custos-uplink-v1 NUL kind NUL`. Frozen; a new layout gets
    /// a new version string, never an edit of these.
    pub const fn context(self) -> &'static [u8] {
        match self {
            SignedKind::Batch => b"custos-uplink-v1\0batch\0",
            SignedKind::BatchAck => b"custos-uplink-v1\0ack\0",
            SignedKind::Heartbeat => b"custos-uplink-v1\0heartbeat\0",
            SignedKind::HeartbeatAck => b"custos-uplink-v1\0heartbeat_ack\0",
            SignedKind::PolicyRequest => b"custos-uplink-v1\0policy_request\0",
            SignedKind::Policy => b"custos-uplink-v1\0policy\0",
        }
    }
}

/// The message that is signed and verified: [`SignedKind::context`] followed by `body`, the HTTP
/// body exactly as transmitted.
///
/// Verify over the raw received bytes before parsing them; never re-serialise a parsed message
/// to check its signature (JSON is not canonical, the bytes are what is signed).
pub fn signing_bytes(kind: SignedKind, body: &[u8]) -> Vec<u8> {
    let context = kind.context();
    let mut out = Vec::with_capacity(context.len() + body.len());
    out.extend_from_slice(context);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_frozen() {
        let all = [
            (SignedKind::Batch, &b"custos-uplink-v1\x00batch\x00"[..]),
            (SignedKind::BatchAck, b"custos-uplink-v1\x00ack\x00"),
            (SignedKind::Heartbeat, b"custos-uplink-v1\x00heartbeat\x00"),
            (
                SignedKind::HeartbeatAck,
                b"custos-uplink-v1\x00heartbeat_ack\x00",
            ),
            (
                SignedKind::PolicyRequest,
                b"custos-uplink-v1\x00policy_request\x00",
            ),
            (SignedKind::Policy, b"custos-uplink-v1\x00policy\x00"),
        ];
        for (kind, context) in all {
            assert_eq!(kind.context(), context, "{kind:?}");
        }
        // No context is a prefix of another, so (kind, body) pairs never collide.
        for (a, ca) in all {
            for (b, cb) in all {
                assert!(a == b || !cb.starts_with(ca), "{a:?} prefixes {b:?}");
            }
        }
        assert_eq!(SIGNATURE_HEADER, "custos-signature");
    }

    #[test]
    fn signing_bytes_are_context_then_body() {
        assert_eq!(
            signing_bytes(SignedKind::Heartbeat, b"{}"),
            b"custos-uplink-v1\0heartbeat\0{}"
        );
        assert_eq!(
            signing_bytes(SignedKind::Policy, b""),
            SignedKind::Policy.context()
        );
    }

    /// Known answer: the exact JSON of a fixed small batch and the exact bytes signed for it.
    /// Any change to a field name, field order, enum tag or the signing layout fails here.
    #[cfg(feature = "serde")]
    #[test]
    fn batch_signing_bytes_known_answer() {
        use crate::epc::Epc;
        use crate::uplink::{
            AlarmReason, Batch, Direction, Event, EventBody, LocalVerdict, ScannedCode, TagSighting,
        };

        let batch = Batch {
            device_id: "gate-1".into(),
            epoch: 3,
            events: vec![
                Event {
                    seq: 41,
                    at_ms: 1_767_225_600_000,
                    body: EventBody::Passage {
                        reader: "uhf-main".into(),
                        direction: Direction::Out,
                        tags: vec![TagSighting {
                            epc: Epc::from_hex("3474257BF40000000000162E").unwrap(),
                            antenna_first: 1,
                            antenna_last: 3,
                            reads: 12,
                            peak_rssi: 201,
                            first_ms: 1_767_225_599_200,
                            last_ms: 1_767_225_599_900,
                        }],
                        badges: vec![],
                        local_verdict: Some(LocalVerdict {
                            alarm: true,
                            policy_version: 9,
                            reason: Some(AlarmReason::UnauthorizedRemoval),
                        }),
                    },
                },
                Event {
                    seq: 42,
                    at_ms: 1_767_225_601_000,
                    body: EventBody::Scan {
                        reader: "desk".into(),
                        code: ScannedCode::EmCard {
                            id: "1A00B54E12".into(),
                        },
                    },
                },
            ],
        };
        assert_eq!(batch.validate(), Ok(()));
        const JSON: &str = concat!(
            r#"{"device_id":"gate-1","epoch":3,"events":["#,
            r#"{"seq":41,"at_ms":1767225600000,"body":{"type":"passage","reader":"uhf-main","#,
            r#""direction":"out","tags":[{"epc":"3474257BF40000000000162E","antenna_first":1,"#,
            r#""antenna_last":3,"reads":12,"peak_rssi":201,"first_ms":1767225599200,"#,
            r#""last_ms":1767225599900}],"badges":[],"local_verdict":{"alarm":true,"#,
            r#""policy_version":9,"reason":"unauthorized_removal"}}},"#,
            r#"{"seq":42,"at_ms":1767225601000,"body":{"type":"scan","reader":"desk","#,
            r#""code":{"type":"em_card","id":"1A00B54E12"}}}]}"#,
        );
        let body = serde_json::to_vec(&batch).unwrap();
        assert_eq!(String::from_utf8(body.clone()).unwrap(), JSON);
        let signed = signing_bytes(SignedKind::Batch, &body);
        let mut expected = b"custos-uplink-v1\x00batch\x00".to_vec();
        expected.extend_from_slice(JSON.as_bytes());
        assert_eq!(signed, expected);
        assert_eq!(signed.len(), 23 + JSON.len());
        assert_eq!(&signed[..23], b"custos-uplink-v1\x00batch\x00");
        // The receiver parses the very bytes that were signed back into the same batch.
        let back: Batch = serde_json::from_slice(&signed[23..]).unwrap();
        assert_eq!(back, batch);
    }
}
