//! Decode throughput of the UHF 0xA0 reply decoder inside `codec::StreamDecoder`.
//!
//! The stream is what a busy gate reader sends: 100 000 real-time inventory tag records with
//! random 96-bit EPCs, and before about 1 % of them a few random garbage bytes (line noise,
//! partial frames after a reconnect). Throughput is reported in frames per second.
//!
//! Run: `cargo bench -p custos-protocol --bench decode -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use custos_protocol::codec::StreamDecoder;
use custos_protocol::epc::Epc;
use custos_protocol::uhf::{
    self, Inventory, MAX_FRAME_LEN, Response, TagRecord, UhfError, decode_response,
};

/// Tag frames in the stream.
const FRAMES: usize = 100_000;

/// Stream decoder capacity: a few serial reads' worth.
const CAPACITY: usize = 4096;

/// A small deterministic generator (xorshift64*), so every run decodes the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

/// The byte stream: tag frames with garbage before about 1 % of them.
fn stream() -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(FRAMES * 22);
    let mut frame = [0u8; MAX_FRAME_LEN];
    for i in 0..FRAMES {
        if rng.next() % 100 == 0 {
            for _ in 0..1 + rng.next() % 8 {
                out.push(rng.byte());
            }
        }
        let mut epc = [0u8; 12];
        epc.iter_mut().for_each(|b| *b = rng.byte());
        let tag = TagRecord::new(
            Epc::new(&epc).expect("12 bytes fit an EPC"),
            1 + (i % 4) as u8,
            rng.byte() & 0x7F,
            rng.byte() % 50,
        );
        let reply = Response::Tag {
            inventory: Inventory::RealTime,
            tag,
        };
        let n = uhf::encode_response(1, &reply, &mut frame).expect("a tag frame fits 257 bytes");
        out.extend_from_slice(&frame[..n]);
    }
    out
}

/// Decodes the whole stream as a daemon would; returns (tags, errors).
fn decode_all(stream: &[u8]) -> (usize, usize) {
    let mut decoder: StreamDecoder<(u8, Response), UhfError> =
        StreamDecoder::new(decode_response, CAPACITY);
    let (mut tags, mut errors) = (0, 0);
    let mut pos = 0;
    loop {
        pos += decoder.push(&stream[pos..]);
        while let Some(result) = decoder.next_frame() {
            match result {
                Ok((_, Response::Tag { tag, .. })) => {
                    black_box(&tag);
                    tags += 1;
                }
                Ok(_) => {}
                Err(_) => errors += 1,
            }
        }
        if pos == stream.len() {
            return (tags, errors);
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    let stream = stream();
    let (tags, errors) = decode_all(&stream);
    // Garbage may, rarely, hide a frame; it must not hide more than the garbage bursts.
    assert!(
        tags >= FRAMES - FRAMES / 100,
        "only {tags} of {FRAMES} tags decoded"
    );
    assert!(errors > 0, "the stream should contain garbage");

    let mut group = c.benchmark_group("uhf_a0");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("stream_100k_tag_frames_1pct_garbage", |b| {
        b.iter(|| decode_all(black_box(&stream)))
    });
    group.finish();

    let mut one = [0u8; MAX_FRAME_LEN];
    let tag = TagRecord::new(
        Epc::from_hex("3074257BF7194E4000001A85").expect("hex"),
        1,
        75,
        7,
    );
    let reply = Response::Tag {
        inventory: Inventory::RealTime,
        tag,
    };
    let n = uhf::encode_response(1, &reply, &mut one).expect("fits");
    let mut group = c.benchmark_group("uhf_a0");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_response_one_tag_frame", |b| {
        b.iter(|| decode_response(black_box(&one[..n])))
    });
    group.finish();
}

/// LLRP: 100,000 RO_ACCESS_REPORTs of one TagReportData each (EPC-96, AntennaID, PeakRSSI,
/// FirstSeenTimestampUTC: what an Impinj reader sends with N = 1), decoded through
/// `StreamDecoder` + `llrp::decode` from 64 KiB TCP reads. Throughput in reports per second.
fn bench_llrp(c: &mut Criterion) {
    use custos_protocol::llrp::{self, Body, EpcField, Message, TagReport};
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut wire = Vec::new();
    for i in 0..FRAMES {
        let mut epc = [0u8; 12];
        epc.iter_mut().for_each(|b| *b = rng.byte());
        let mut tag = TagReport::new(EpcField::Epc96(epc));
        tag.antenna = Some(1 + (i % 4) as u16);
        tag.peak_rssi = Some(-50);
        tag.first_seen_utc = Some(1_700_000_000_000_000 + i as u64);
        let m = Message::new(i as u32, Body::RoAccessReport(vec![tag]));
        llrp::encode(&m, &mut wire).expect("encodes");
    }
    let decode_all = |wire: &[u8]| {
        let mut d = StreamDecoder::new(llrp::decode, 1 << 16);
        let mut tags = 0usize;
        for chunk in wire.chunks(1 << 16) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let n = d.push(rest);
                rest = &rest[n..];
                while let Some(r) = d.next_frame() {
                    if let Ok(Message {
                        body: Body::RoAccessReport(t),
                        ..
                    }) = r
                    {
                        tags += t.len();
                    }
                }
            }
        }
        tags
    };
    assert_eq!(decode_all(&wire), FRAMES);
    let mut group = c.benchmark_group("llrp");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("stream_100k_ro_access_reports", |b| {
        b.iter(|| decode_all(black_box(&wire)))
    });
    group.finish();
}

criterion_group!(benches, bench_decode, bench_llrp);
criterion_main!(benches);
