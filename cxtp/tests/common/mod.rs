//! Proptest strategies shared by the integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use edgemob_cxtp::{
    AuthAlgorithm, AuthToken, Cdb, Context, CtReq, Ctaa, Ctar, Ctc, Ctd, Ctdr, Fpt, KeyMaterial,
    Message, Pctd, Status,
};
use proptest::prelude::*;

pub fn ip(v4: bool) -> BoxedStrategy<IpAddr> {
    if v4 {
        any::<[u8; 4]>()
            .prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
            .boxed()
    } else {
        any::<[u8; 16]>()
            .prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
            .boxed()
    }
}

pub fn any_ip() -> BoxedStrategy<IpAddr> {
    any::<bool>().prop_flat_map(ip).boxed()
}

pub fn bytes(len: impl Strategy<Value = usize>) -> impl Strategy<Value = Bytes> {
    len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
        .prop_map(Bytes::from)
}

/// A CDB in canonical form (data already padded), so it decodes back equal.
pub fn cdb() -> impl Strategy<Value = Cdb> {
    (
        any::<u16>(),
        proptest::option::of(any::<u32>()),
        0usize..=254,
    )
        .prop_flat_map(|(fpt, presence, words)| {
            // head (4) + presence (0/4) + data must be a multiple of 8.
            let len = if presence.is_some() {
                words * 8
            } else {
                words * 8 + 4
            };
            bytes(Just(len)).prop_map(move |data| Cdb {
                fpt: Fpt(fpt),
                presence,
                data,
            })
        })
}

pub fn cdbs() -> impl Strategy<Value = Vec<Cdb>> {
    proptest::collection::vec(cdb(), 0..8)
}

pub fn statuses() -> impl Strategy<Value = Vec<(Fpt, Status)>> {
    proptest::collection::vec(
        (any::<u16>(), any::<u8>()).prop_map(|(f, s)| (Fpt(f), Status(s))),
        0..64,
    )
}

pub fn key() -> impl Strategy<Value = KeyMaterial> {
    (any::<u16>(), bytes(0usize..300)).prop_map(|(a, key)| KeyMaterial {
        algorithm: AuthAlgorithm(a),
        key,
    })
}

pub fn ctar() -> impl Strategy<Value = Ctar> {
    any::<bool>().prop_flat_map(|v4| {
        (
            any::<bool>(),
            ip(v4),
            ip(v4),
            any::<u32>(),
            any::<u32>(),
            cdbs(),
        )
            .prop_map(|(ack_requested, mn, other_ar, seq, token, requests)| Ctar {
                ack_requested,
                mn,
                other_ar,
                seq,
                token: AuthToken(token),
                requests,
            })
    })
}

pub fn ctaa() -> impl Strategy<Value = Ctaa> {
    (any_ip(), statuses()).prop_map(|(mn, failures)| Ctaa { mn, failures })
}

pub fn ctd() -> impl Strategy<Value = Ctd> {
    (any::<bool>(), any::<u32>(), any_ip(), cdbs()).prop_map(
        |(ack_requested, elapsed_ms, mn, cdbs)| Ctd {
            ack_requested,
            elapsed_ms,
            mn,
            cdbs,
        },
    )
}

pub fn pctd() -> impl Strategy<Value = Pctd> {
    (any::<bool>(), any::<u32>(), any_ip(), key(), cdbs()).prop_map(
        |(ack_requested, elapsed_ms, mn, key, cdbs)| Pctd {
            ack_requested,
            elapsed_ms,
            mn,
            key,
            cdbs,
        },
    )
}

pub fn ctdr() -> impl Strategy<Value = Ctdr> {
    (any::<bool>(), any_ip(), statuses()).prop_map(|(all_received, mn, statuses)| Ctdr {
        all_received,
        mn,
        statuses,
    })
}

pub fn ctc() -> impl Strategy<Value = Ctc> {
    any_ip().prop_map(|mn| Ctc { mn })
}

pub fn ct_req() -> impl Strategy<Value = CtReq> {
    (any_ip(), any::<u32>(), any::<u32>(), cdbs()).prop_map(|(mn, seq, token, requests)| CtReq {
        mn,
        seq,
        token: AuthToken(token),
        requests,
    })
}

pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        ctar().prop_map(Message::Ctar),
        ctaa().prop_map(Message::Ctaa),
        ctd().prop_map(Message::Ctd),
        pctd().prop_map(Message::Pctd),
        ctdr().prop_map(Message::Ctdr),
        ctc().prop_map(Message::Ctc),
        ct_req().prop_map(Message::CtReq),
    ]
}

/// FPTs that exercise every path: edgemob codes (segmented) mostly, some
/// service codes, and occasionally an IANA code (single opaque CDB).
pub fn context() -> impl Strategy<Value = Context> {
    prop_oneof![
        4 => (prop_oneof![Just(Fpt::TCP_CONNECTION_IMAGE), Just(Fpt::SERVICE_APP_CONTEXT),
                          (0u16..0x1EFF).prop_map(|o| Fpt::service(o).unwrap_or(Fpt::SERVICE_APP_CONTEXT))],
              prop_oneof![0usize..64, 0usize..5_000, 0usize..150_000])
            .prop_flat_map(|(fpt, len)| bytes(Just(len)).prop_map(move |d| Context::new(fpt, d))),
        1 => (1u16..0xE000, 0usize..=254).prop_flat_map(|(code, words)| {
            // Opaque contexts round-trip exactly when 4 + len is a multiple of 8.
            bytes(Just(words * 8 + 4)).prop_map(move |d| Context::new(Fpt(code), d))
        }),
    ]
}

pub fn contexts() -> impl Strategy<Value = Vec<Context>> {
    proptest::collection::vec(context(), 0..6)
}
