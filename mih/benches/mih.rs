//! Encode + decode of an MIH_N2N_HO_Commit request as edgemob sends it.
use criterion::{Criterion, criterion_group, criterion_main};
use edgemob_mih::*;
use std::hint::black_box;

fn request() -> Frame {
    let id = |s: &str| MihfId::try_from(s).unwrap();
    Frame::message(
        id("enbc1@edgemob"),
        id("enbc2@edgemob"),
        Tid::new(42),
        Message::N2nHoCommitRequest(N2nHoCommitRequest {
            mn_mihf_id: id("imsi-001010000000001"),
            mn_link_id: LinkId {
                link_type: LinkType::WIRELESS_OTHER,
                addr: LinkAddr::Cell3g {
                    plmn: [0x00, 0xF1, 0x10],
                    cell_id: 1,
                },
            },
            poa: LinkAddr::Cell3g {
                plmn: [0x00, 0xF1, 0x10],
                cell_id: 2,
            },
            requested_resources: None,
            edgemob: Some(EdgemobInfo {
                migration_id: Some(7),
                ue_address: Some("10.77.0.2".parse().unwrap()),
                source_cell: Some(1),
                services: vec![ServiceDemand {
                    name: "video".into(),
                    fpts: vec![0xE000, 0xE001],
                    context_bytes: 75_000,
                    connections: 1,
                }],
                reason: None,
                connections: vec![MovingConnection {
                    local: "10.77.0.1:80".parse().unwrap(),
                    peer: "10.77.1.2:40000".parse().unwrap(),
                }],
            }),
        }),
    )
}

fn bench(c: &mut Criterion) {
    let frame = request();
    let mut buf = Vec::with_capacity(256);
    c.bench_function("n2n_ho_commit_request encode+decode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&frame).encode(&mut buf).unwrap();
            black_box(Frame::decode(black_box(&buf)).unwrap())
        })
    });
    c.bench_function("n2n_ho_commit_request encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&frame).encode(&mut buf).unwrap();
        })
    });
    buf.clear();
    frame.encode(&mut buf).unwrap();
    c.bench_function("n2n_ho_commit_request decode", |b| {
        b.iter(|| black_box(Frame::decode(black_box(&buf)).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
