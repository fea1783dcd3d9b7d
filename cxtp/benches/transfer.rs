//! Encode + decode round trips of whole transfers, and the same through a
//! pair of endpoints (framing, reassembly and events included).

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edgemob_cxtp::transfer::{EncodeOptions, Limits, decode_transfer, encode_transfer};
use edgemob_cxtp::{Config, Context, Endpoint, Event, Fpt};

const MN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
const SIZES: [(&str, usize); 3] = [("1KB", 1_000), ("100KB", 100 * 1024), ("1MiB", 1 << 20)];

fn contexts(len: usize) -> Vec<Context> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    vec![Context::new(Fpt::SERVICE_APP_CONTEXT, data)]
}

fn codec_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("transfer_codec_round_trip");
    let limits = Limits {
        max_transfer_bytes: 64 << 20,
        max_contexts: 65_535,
    };
    let opts = EncodeOptions {
        ack_requested: true,
        max_transfer_bytes: 64 << 20,
        ..EncodeOptions::default()
    };
    for (name, len) in SIZES {
        let ctxs = contexts(len);
        let mut buf = BytesMut::new();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &ctxs, |b, ctxs| {
            b.iter(|| {
                encode_transfer(MN, ctxs, &opts, &mut buf).expect("encodes");
                let frames = buf.split().freeze();
                let got = decode_transfer(&frames, limits).expect("decodes");
                black_box(got.contexts.len())
            })
        });
    }
    group.finish();
}

fn endpoint_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint_transfer");
    let now = Instant::now();
    for (name, len) in SIZES {
        let ctxs = contexts(len);
        let (mut src, mut dst) = (
            Endpoint::new(Config::default()),
            Endpoint::new(Config::default()),
        );
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &ctxs, |b, ctxs| {
            b.iter(|| {
                src.start_transfer(MN, ctxs, now).expect("starts");
                while let Some(frame) = src.poll_transmit() {
                    dst.handle_input(&frame, now).expect("in sync");
                }
                let Some(Event::ContextsArrived { contexts, .. }) = dst.poll_event() else {
                    panic!("no arrival");
                };
                black_box(contexts);
                dst.reply(MN, vec![]).expect("replies");
                while let Some(frame) = dst.poll_transmit() {
                    src.handle_input(&frame, now).expect("in sync");
                }
                black_box(src.poll_event())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codec_round_trip, endpoint_round_trip);
criterion_main!(benches);
