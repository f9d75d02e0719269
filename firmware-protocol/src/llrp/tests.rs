//! Known answers from the standard's byte layouts, round trips and arbitrary-bytes properties.
//!
//! Every known answer below was also decoded by an independent implementation (llrpkit 0.3.0,
//! `llrpkit.protocol.decode_message`) to the same values; see the comment of each.

use proptest::prelude::*;

use super::*;
use crate::codec::StreamDecoder;

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

fn one(bytes: &[u8]) -> Message {
    match decode(bytes) {
        Decoded::Frame { frame, len } => {
            assert_eq!(len, bytes.len(), "the whole message is used");
            frame
        }
        other => panic!("not a frame: {other:?}"),
    }
}

fn bytes_of(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode(m, &mut out).expect("encodes");
    out
}

/// KEEPALIVE_ACK (§16.1.36; header §15.1 Figure 11): Rsvd 000, Ver 010 (1.1), Type 72 =
/// 0x0848, Length 10, ID 0x01020304, no body.
#[test]
fn kat_keepalive_ack_header() {
    let b = hex("08 48 00 00 00 0A 01 02 03 04");
    let m = one(&b);
    assert_eq!(m, Message::new(0x0102_0304, Body::KeepaliveAck));
    assert_eq!(bytes_of(&m), b);
    // Version 1 (LLRP 1.0.1): 0x04 in the first byte; KEEPALIVE = 62 = 0x3E.
    let m = one(&hex("04 3E 00 00 00 0A 00 00 00 07"));
    assert_eq!(
        (m.version, m.id, m.body),
        (Version::V1_0_1, 7, Body::Keepalive)
    );
}

/// READER_EVENT_NOTIFICATION (type 63, §16.1.35) with ReaderEventNotificationData (TLV 246,
/// §17.2.7.1) holding UTCTimestamp (TLV 128, u64 µs, §17.2.2.1) and ConnectionAttemptEvent
/// (TLV 256, Status u16, §17.2.7.1.10): what a reader sends first on every connection.
#[test]
fn kat_connection_attempt_event() {
    let b = hex("08 3F 00 00 00 20 00 00 00 00 \
         00 F6 00 16 \
         00 80 00 0C 00 05 E0 0D 6A 80 5B 00 \
         01 00 00 06 00 00");
    let m = one(&b);
    assert_eq!(
        m.body,
        Body::ReaderEventNotification(EventData {
            timestamp: Timestamp::Utc(0x0005_E00D_6A80_5B00),
            events: vec![ReaderEvent::ConnectionAttempt(ConnectionStatus::Success)],
        })
    );
    assert_eq!(bytes_of(&m), b);
    // Status 2: "Failed, a Client initiated connection already exists".
    let mut refused = b.clone();
    refused[31] = 2;
    let Body::ReaderEventNotification(d) = one(&refused).body else {
        panic!("not an event")
    };
    assert_eq!(
        d.events,
        [ReaderEvent::ConnectionAttempt(
            ConnectionStatus::ClientInitiatedExists
        )]
    );
}

/// RO_ACCESS_REPORT (type 61, §16.1.33) with one TagReportData (TLV 240, §17.2.7.3.1): EPC-96
/// (TV 13, 12 bytes, §17.2.7.3.3), AntennaID (TV 1, u16), PeakRSSI (TV 6, s8), and
/// FirstSeenTimestampUTC (TV 2, u64 µs).
#[test]
fn kat_ro_access_report_epc96() {
    let b = hex("08 3D 00 00 00 29 00 00 00 05 \
         00 F0 00 1F \
         8D 34 74 25 7B F4 00 00 00 00 00 16 2E \
         81 00 02 \
         86 C4 \
         82 00 05 E0 0D 6A 80 5B 00");
    let m = one(&b);
    let Body::RoAccessReport(tags) = &m.body else {
        panic!("not a report")
    };
    assert_eq!(tags.len(), 1);
    assert_eq!(
        tags[0].epc.bytes(),
        hex("34 74 25 7B F4 00 00 00 00 00 16 2E")
    );
    assert_eq!(tags[0].antenna, Some(2));
    assert_eq!(tags[0].peak_rssi, Some(-60));
    assert_eq!(tags[0].first_seen_utc, Some(0x0005_E00D_6A80_5B00));
    // Our encoder writes the fields in the standard's order (EPC, …, AntennaID, PeakRSSI, …,
    // FirstSeenTimestampUTC), so the bytes come back as they were.
    assert_eq!(bytes_of(&m), b);
}

/// TagReportData with EPCData (TLV 241, §17.2.7.3.2: EPCLengthBits u16 then the bits) of a
/// 64-bit EPC, then a vendor Custom parameter (TLV 1023, §17.2.8.1: VendorIdentifier u32,
/// ParameterSubtype u32, data; here Impinj's 25882 = 0x651A, subtype 57 ImpinjPeakRSSI, its value arbitrary here) that
/// is skipped, then AntennaID after it.
#[test]
fn kat_epc_data_and_custom_parameter_skipped() {
    let b = hex("08 3D 00 00 00 2D 00 00 00 06 \
         00 F0 00 23 \
         00 F1 00 0E 00 40 E2 00 00 17 01 0B 01 62 \
         03 FF 00 0E 00 00 65 1A 00 00 00 39 EA 60 \
         81 00 03");
    let Body::RoAccessReport(tags) = one(&b).body else {
        panic!("not a report")
    };
    assert_eq!(
        tags[0].epc,
        EpcField::Data {
            bits: 64,
            bytes: hex("E2 00 00 17 01 0B 01 62")
        }
    );
    assert_eq!(tags[0].antenna, Some(3));
}

/// ADD_ROSPEC_RESPONSE (type 30) and ERROR_MESSAGE (type 100), each an LLRPStatus (TLV 287,
/// §17.3.1.1: StatusCode u16, ErrorDescription u16 count + UTF-8).
#[test]
fn kat_llrp_status() {
    let ok = hex("08 1E 00 00 00 12 00 00 00 09 01 1F 00 08 00 00 00 00");
    assert_eq!(
        one(&ok),
        Message::new(9, Body::AddRoSpecResponse(Status::success()))
    );
    assert_eq!(bytes_of(&one(&ok)), ok);
    // M_UnsupportedVersion = 110 = 0x6E, "v3".
    let err = hex("08 64 00 00 00 14 00 00 00 01 01 1F 00 0A 00 6E 00 02 76 33");
    let m = one(&err);
    assert_eq!(
        m.body,
        Body::ErrorMessage(Status {
            code: StatusCode::MUnsupportedVersion,
            description: "v3".into()
        })
    );
    assert_eq!(bytes_of(&m), err);
}

/// The status codes of §17.3.1.1 Table: numbers both ways, unknown numbers kept.
#[test]
fn status_codes_map_both_ways() {
    for (code, n) in STATUS_CODES {
        assert_eq!(StatusCode::from_u16(n), code);
        assert_eq!(code.to_u16(), n);
    }
    assert_eq!(StatusCode::from_u16(7), StatusCode::Unknown(7));
    assert_eq!(StatusCode::Unknown(7).to_u16(), 7);
    assert_eq!(StatusCode::from_u16(401), StatusCode::RDeviceError);
}

/// SET_READER_CONFIG (type 3, §16.1.9) as the daemon sends it: ResetToFactoryDefault (1 bit +
/// 7 reserved), ReaderEventNotificationSpec (TLV 244) with EventNotificationState (TLV 245:
/// EventType u16, state 1 bit) for GPI events (1) and antenna events (8), KeepaliveSpec (TLV
/// 220: type u8 1 = periodic, period u32 ms), GPOWriteData (TLV 219: port u16, data 1 bit).
#[test]
fn kat_set_reader_config() {
    let b = hex("08 03 00 00 00 2D 00 00 00 02 \
         80 \
         00 F4 00 12 00 F5 00 07 00 01 80 00 F5 00 07 00 08 80 \
         00 DC 00 09 01 00 00 03 E8 \
         00 DB 00 07 00 01 00");
    let m = one(&b);
    assert_eq!(
        m.body,
        Body::SetReaderConfig(ReaderConfig {
            reset_to_factory_default: true,
            event_notifications: vec![(event_type::GPI, true), (event_type::ANTENNA, true)],
            keepalive_ms: Some(1000),
            gpo: vec![(1, false)],
            ..ReaderConfig::default()
        })
    );
    assert_eq!(bytes_of(&m), b);
}

/// ADD_ROSPEC (type 20, §16.1.3): ROSpec (TLV 177: ID u32, Priority u8, CurrentState u8),
/// ROBoundarySpec (178) with ROSpecStartTrigger (179, type 1 immediate) and ROSpecStopTrigger
/// (182, type 0 null, duration u32), AISpec (183: AntennaCount u16, IDs, AISpecStopTrigger 184
/// null, InventoryParameterSpec 186: ID u16, ProtocolID 1 = EPCGlobal Class 1 Gen 2),
/// ROReportSpec (237: trigger 2 upon N tags or end of ROSpec, N u16) with
/// TagReportContentSelector (238) enabling AntennaID, PeakRSSI, FirstSeenTimestamp (0x1600).
#[test]
fn kat_add_rospec() {
    let b = hex("08 14 00 00 00 4D 00 00 00 03 \
         00 B1 00 43 00 00 00 01 00 00 \
         00 B2 00 12 00 B3 00 05 01 00 B6 00 09 00 00 00 00 00 \
         00 B7 00 1A 00 02 00 01 00 02 00 B8 00 09 00 00 00 00 00 00 BA 00 07 00 01 01 \
         00 ED 00 0D 02 00 01 00 EE 00 06 16 00");
    let m = one(&b);
    assert_eq!(
        m.body,
        Body::AddRoSpec(RoSpec {
            id: 1,
            priority: 0,
            state: 0,
            start_trigger: 1,
            stop_trigger: 0,
            stop_duration_ms: 0,
            ai_specs: vec![AiSpec {
                antennas: vec![1, 2],
                stop_trigger: 0,
                stop_duration_ms: 0,
                inventory_spec_id: 1,
                protocol: 1,
            }],
            report: Some(ReportSpec {
                trigger: 2,
                n: 1,
                content: content::ANTENNA_ID | content::PEAK_RSSI | content::FIRST_SEEN,
            }),
        })
    );
    assert_eq!(bytes_of(&m), b);
}

/// A vendor CUSTOM_MESSAGE (type 1023, §16.1.39: VendorIdentifier u32, MessageSubtype u8,
/// data) and an unknown message type are framed and skipped, and the next message is found.
#[test]
fn custom_and_unknown_messages_are_skipped() {
    let mut b = hex("0B FF 00 00 00 13 00 00 00 01 00 00 65 1A 15 DE AD BE EF");
    b.extend(hex("08 28 00 00 00 0C 00 00 00 02 AA BB")); // type 40 (ADD_ACCESSSPEC)
    b.extend(hex("08 3E 00 00 00 0A 00 00 00 03"));
    let mut d = StreamDecoder::new(decode, 64);
    d.push(&b);
    let bodies: Vec<Body> = std::iter::from_fn(|| d.next_frame())
        .map(|r| r.expect("frames").body)
        .collect();
    assert_eq!(
        bodies,
        [
            Body::Custom {
                vendor: 25882,
                subtype: 0x15
            },
            Body::Unknown { msg_type: 40 },
            Body::Keepalive
        ]
    );
}

/// A 4 GB length field is refused from its header alone: no waiting, no allocation.
#[test]
fn huge_length_is_refused_at_once() {
    let b = hex("08 3D FF FF FF FF 00 00 00 01");
    assert_eq!(
        decode(&b),
        Decoded::Invalid {
            error: LlrpError::TooLong(0xFFFF_FFFF),
            skip: 1
        }
    );
    assert_eq!(
        decode(&b[..6]),
        Decoded::Invalid {
            error: LlrpError::TooLong(0xFFFF_FFFF),
            skip: 1
        }
    );
    assert!(matches!(
        decode(&hex("08 3D 00 00 00 09")),
        Decoded::Invalid {
            error: LlrpError::LengthTooSmall(9),
            skip: 1
        }
    ));
    assert!(matches!(
        decode(&hex("1C 3D")),
        Decoded::Invalid {
            error: LlrpError::BadVersion(7),
            ..
        }
    ));
}

/// A parameter that claims more bytes than its message has, or an unknown TV type, makes the
/// message invalid as a whole (skipped by its length), never a panic or an over-read.
#[test]
fn bad_parameters_skip_the_message() {
    let b = hex("08 3D 00 00 00 10 00 00 00 01 00 F0 00 FF 8D 34");
    assert_eq!(
        decode(&b),
        Decoded::Invalid {
            error: LlrpError::BadParameterLength {
                param_type: 240,
                len: 255
            },
            skip: 16
        }
    );
    let b = hex("08 3D 00 00 00 0F 00 00 00 01 00 F0 00 05 FF");
    assert!(matches!(
        decode(&b),
        Decoded::Invalid {
            error: LlrpError::UnknownTvParameter(0x7F),
            skip: 15
        }
    ));
    // An EPCData whose bit length is longer than its bytes.
    let b = hex("08 3D 00 00 00 14 00 00 00 01 00 F0 00 0A 00 F1 00 06 00 60");
    assert!(matches!(
        decode(&b),
        Decoded::Invalid {
            error: LlrpError::Truncated("EPC"),
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn arb_status() -> impl Strategy<Value = Status> {
    (any::<u16>(), "[a-z ]{0,12}").prop_map(|(n, d)| Status {
        code: StatusCode::from_u16(n),
        description: d,
    })
}

fn arb_epc() -> impl Strategy<Value = EpcField> {
    prop_oneof![
        any::<[u8; 12]>().prop_map(EpcField::Epc96),
        (0u16..=496).prop_flat_map(|bits| {
            proptest::collection::vec(any::<u8>(), usize::from(bits).div_ceil(8))
                .prop_map(move |bytes| EpcField::Data { bits, bytes })
        }),
    ]
}

fn arb_tag() -> impl Strategy<Value = TagReport> {
    (
        arb_epc(),
        any::<Option<u32>>(),
        any::<Option<u16>>(),
        any::<Option<i8>>(),
        any::<Option<u16>>(),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<Option<u16>>(),
    )
        .prop_map(|(epc, r, a, p, c, f, l, n)| TagReport {
            epc,
            rospec_id: r,
            antenna: a,
            peak_rssi: p,
            channel: c,
            first_seen_utc: f,
            last_seen_utc: l,
            seen_count: n,
        })
}

fn arb_report_spec() -> impl Strategy<Value = ReportSpec> {
    (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(trigger, n, c)| ReportSpec {
        trigger,
        n,
        content: c & content::ALL,
    })
}

fn arb_event() -> impl Strategy<Value = ReaderEvent> {
    prop_oneof![
        any::<u16>().prop_map(|s| ReaderEvent::ConnectionAttempt(ConnectionStatus::from_u16(s))),
        Just(ReaderEvent::ConnectionClose),
        (any::<u16>(), any::<bool>()).prop_map(|(port, high)| ReaderEvent::Gpi { port, high }),
        (any::<u16>(), any::<bool>())
            .prop_map(|(antenna, connected)| ReaderEvent::Antenna { antenna, connected }),
    ]
}

fn arb_body() -> impl Strategy<Value = Body> {
    let config = (
        any::<bool>(),
        proptest::collection::vec(any::<(u16, bool)>(), 0..4),
        proptest::option::of(arb_report_spec()),
        any::<Option<u32>>(),
        proptest::collection::vec(any::<(u16, bool)>(), 0..4),
        proptest::collection::vec(any::<(u16, bool, u8)>(), 0..4),
        any::<Option<bool>>(),
    )
        .prop_map(|(r, e, rep, k, gpo, gpi, h)| {
            Body::SetReaderConfig(ReaderConfig {
                reset_to_factory_default: r,
                event_notifications: e,
                report: rep,
                keepalive_ms: k,
                gpo,
                gpi,
                hold_events_and_reports: h,
            })
        });
    let ai = (
        proptest::collection::vec(any::<u16>(), 0..5),
        any::<u8>(),
        any::<u32>(),
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(|(antennas, st, sd, id, p)| AiSpec {
            antennas,
            stop_trigger: st,
            stop_duration_ms: sd,
            inventory_spec_id: id,
            protocol: p,
        });
    let rospec = (
        any::<(u32, u8, u8, u8, u8, u32)>(),
        proptest::collection::vec(ai, 0..3),
        proptest::option::of(arb_report_spec()),
    )
        .prop_map(|((id, pr, s, st, sp, sd), ai_specs, report)| {
            Body::AddRoSpec(RoSpec {
                id,
                priority: pr,
                state: s,
                start_trigger: st,
                stop_trigger: sp,
                stop_duration_ms: sd,
                ai_specs,
                report,
            })
        });
    let caps = (
        arb_status(),
        proptest::option::of(
            (any::<(u16, u32, u32, u16, u16)>(), "[0-9.]{0,8}").prop_map(
                |((max_antennas, manufacturer, model, gpis, gpos), firmware)| DeviceCapabilities {
                    max_antennas,
                    manufacturer,
                    model,
                    firmware,
                    gpis,
                    gpos,
                },
            ),
        ),
    )
        .prop_map(|(status, general)| Body::GetReaderCapabilitiesResponse { status, general });
    let events = (
        prop_oneof![
            any::<u64>().prop_map(Timestamp::Utc),
            any::<u64>().prop_map(Timestamp::Uptime)
        ],
        proptest::collection::vec(arb_event(), 0..4),
    )
        .prop_map(|(timestamp, events)| {
            Body::ReaderEventNotification(EventData { timestamp, events })
        });
    prop_oneof![
        any::<u8>().prop_map(|requested| Body::GetReaderCapabilities { requested }),
        caps,
        config,
        rospec,
        proptest::collection::vec(arb_tag(), 0..6).prop_map(Body::RoAccessReport),
        events,
        any::<u32>().prop_map(Body::StartRoSpec),
        any::<u32>().prop_map(Body::StopRoSpec),
        any::<u32>().prop_map(Body::EnableRoSpec),
        any::<u32>().prop_map(Body::DeleteRoSpec),
        any::<u32>().prop_map(Body::DisableRoSpec),
        arb_status().prop_map(Body::SetReaderConfigResponse),
        arb_status().prop_map(Body::AddRoSpecResponse),
        arb_status().prop_map(Body::StartRoSpecResponse),
        arb_status().prop_map(Body::StopRoSpecResponse),
        arb_status().prop_map(Body::EnableRoSpecResponse),
        arb_status().prop_map(Body::DeleteRoSpecResponse),
        arb_status().prop_map(Body::DisableRoSpecResponse),
        arb_status().prop_map(Body::ErrorMessage),
        arb_status().prop_map(Body::CloseConnectionResponse),
        Just(Body::Keepalive),
        Just(Body::KeepaliveAck),
        Just(Body::CloseConnection),
        any::<(u32, u8)>().prop_map(|(vendor, subtype)| Body::Custom { vendor, subtype }),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    (any::<bool>(), any::<u32>(), arb_body()).prop_map(|(v1, id, body)| Message {
        version: if v1 { Version::V1_0_1 } else { Version::V1_1 },
        id,
        body,
    })
}

proptest! {
    #[test]
    fn round_trip(m in arb_message()) {
        let b = bytes_of(&m);
        prop_assert_eq!(decode(&b), Decoded::Frame { frame: m, len: b.len() });
        // Every strict prefix asks for more.
        for cut in 0..b.len() {
            prop_assert_eq!(decode(&b[..cut]), Decoded::NeedMore);
        }
    }

    #[test]
    fn stream_of_messages_split_anywhere(
        ms in proptest::collection::vec(arb_message(), 1..5),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = Vec::new();
        for m in &ms {
            encode(m, &mut wire).unwrap();
        }
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        at.push(0);
        at.push(wire.len());
        at.sort_unstable();
        let mut d = StreamDecoder::new(decode, MAX_MESSAGE_LEN);
        let mut got = Vec::new();
        for w in at.windows(2) {
            d.push(&wire[w[0]..w[1]]);
            while let Some(r) = d.next_frame() {
                got.push(r.unwrap());
            }
        }
        prop_assert_eq!(got, ms);
        prop_assert_eq!(d.dropped_bytes(), 0);
    }

    #[test]
    fn arbitrary_bytes_keep_the_contract(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        match decode(&b) {
            Decoded::Frame { len, .. } => prop_assert!(len >= HEADER_LEN && len <= b.len()),
            Decoded::NeedMore => prop_assert!(b.len() < MAX_MESSAGE_LEN),
            Decoded::Invalid { skip, .. } => prop_assert!(skip >= 1 && skip <= b.len().max(1)),
        }
        let mut d = StreamDecoder::new(decode, 128);
        let mut rest = &b[..];
        while !rest.is_empty() {
            let n = d.push(rest);
            rest = &rest[n..];
            while d.next_frame().is_some() {}
        }
        prop_assert!(d.pending() <= 128);
    }

    /// Arbitrary bodies under a sound header: any outcome but a panic, and a frame uses
    /// exactly the announced length.
    #[test]
    fn arbitrary_bodies_under_a_sound_header(
        t in 0u16..1024,
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut b = ((2u16 << 10) | t).to_be_bytes().to_vec();
        b.extend_from_slice(&((body.len() + HEADER_LEN) as u32).to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1]);
        b.extend_from_slice(&body);
        match decode(&b) {
            Decoded::Frame { len, .. } => prop_assert_eq!(len, b.len()),
            Decoded::Invalid { skip, .. } => prop_assert_eq!(skip, b.len()),
            Decoded::NeedMore => prop_assert!(false, "a whole message never needs more"),
        }
    }
}
