//! Two endpoints driven against each other with a fake clock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::auth::{AuthAlgorithm, AuthToken};
use crate::cdb::Cdb;
use crate::error::DecodeError;
use crate::message::CtReq;

const MN1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const MN2: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const MN3: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3));
const MS: Duration = Duration::from_millis(1);

fn data(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_add(seed).rotate_left(3))
        .collect::<Vec<_>>()
        .into()
}

fn ctx(fpt: Fpt, len: usize, seed: u8) -> Context {
    Context::new(fpt, data(len, seed))
}

fn pair() -> (Endpoint, Endpoint) {
    (
        Endpoint::new(Config::default()),
        Endpoint::new(Config::default()),
    )
}

/// Moves every queued frame from `from` to `to`; returns how many.
fn pump(from: &mut Endpoint, to: &mut Endpoint, now: Instant) -> usize {
    let mut n = 0;
    while let Some(frame) = from.poll_transmit() {
        to.handle_input(&frame, now).expect("in sync");
        n += 1;
    }
    n
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn arrived(ev: &Event) -> (IpAddr, &[Context]) {
    match ev {
        Event::ContextsArrived { mn, contexts, .. } => (*mn, contexts),
        other => panic!("expected ContextsArrived, got {other:?}"),
    }
}

#[test]
fn transfer_then_ctdr_with_s_bit() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    let contexts = vec![
        ctx(Fpt::TCP_CONNECTION_IMAGE, 1_500, 1),
        ctx(Fpt::TCP_CONNECTION_IMAGE, 700, 2),
        ctx(Fpt::SERVICE_APP_CONTEXT, 100 * 1024, 3),
    ];
    src.start_transfer(MN1, &contexts, t0).expect("starts");
    assert!(src.is_sending(MN1));
    assert_eq!(
        pump(&mut src, &mut dst, t0 + MS),
        2,
        "100 KB takes two CTDs"
    );
    let ev = events(&mut dst);
    assert_eq!(ev.len(), 1);
    let (mn, got) = arrived(&ev[0]);
    assert_eq!(mn, MN1);
    assert_eq!(got, &contexts[..]);
    assert!(matches!(
        ev[0],
        Event::ContextsArrived {
            ack_requested: true,
            key: None,
            ..
        }
    ));

    let statuses = vec![
        (Fpt::TCP_CONNECTION_IMAGE, Status::SUCCESS),
        (Fpt::SERVICE_APP_CONTEXT, Status::SUCCESS),
    ];
    dst.reply(MN1, statuses.clone()).expect("replies");
    let ctdr = dst.poll_transmit().expect("CTDR queued");
    assert_eq!(ctdr[1] & 0x40, 0x40, "S bit set");
    src.handle_input(&ctdr, t0 + 2 * MS).expect("in sync");
    assert_eq!(
        events(&mut src),
        [Event::TransferAcked {
            mn: MN1,
            statuses,
            all_ok: true
        }]
    );
    assert!(!src.is_sending(MN1));
    assert_eq!(src.poll_timeout(), None);
    assert_eq!(src.stats().transfers_acked, 1);
    assert_eq!(dst.stats().transfers_arrived, 1);
}

#[test]
fn failed_status_clears_s_bit() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    src.start_transfer(MN1, [ctx(Fpt::TCP_CONNECTION_IMAGE, 10, 0)], t0)
        .expect("starts");
    pump(&mut src, &mut dst, t0);
    events(&mut dst);
    dst.reply(
        MN1,
        vec![(Fpt::TCP_CONNECTION_IMAGE, Status::RESTORE_FAILED)],
    )
    .expect("replies");
    let ctdr = dst.poll_transmit().expect("CTDR");
    assert_eq!(ctdr[1] & 0x40, 0, "S bit clear");
    src.handle_input(&ctdr, t0).expect("in sync");
    assert!(matches!(
        events(&mut src)[..],
        [Event::TransferAcked { all_ok: false, .. }]
    ));
}

#[test]
fn second_transfer_for_same_mn_is_refused() {
    let t0 = Instant::now();
    let (mut src, _) = pair();
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 5, 0)], t0)
        .expect("starts");
    assert_eq!(
        src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 5, 0)], t0),
        Err(EndpointError::TransferInFlight { mn: MN1 })
    );
    src.start_transfer(MN2, [ctx(Fpt::SERVICE_APP_CONTEXT, 5, 0)], t0)
        .expect("other MN ok");
}

#[test]
fn sender_times_out_and_cancels() {
    let t0 = Instant::now();
    let config = Config::with_budget(5 * MS);
    let (mut src, mut dst) = (Endpoint::new(config), Endpoint::new(config));
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 100, 0)], t0)
        .expect("starts");
    assert_eq!(src.poll_timeout(), Some(t0 + 5 * MS));
    pump(&mut src, &mut dst, t0);
    events(&mut dst);

    src.handle_timeout(t0 + 4 * MS);
    assert!(events(&mut src).is_empty(), "not due yet");
    src.handle_timeout(t0 + 5 * MS);
    assert_eq!(events(&mut src), [Event::TransferTimedOut { mn: MN1 }]);
    assert!(!src.is_sending(MN1));
    assert_eq!(src.poll_timeout(), None);

    // The CTC tells the receiver to undo.
    pump(&mut src, &mut dst, t0 + 6 * MS);
    assert_eq!(events(&mut dst), [Event::TransferCancelled { mn: MN1 }]);
    assert!(!dst.is_receiving(MN1));
    assert_eq!(
        dst.reply(MN1, vec![]),
        Err(EndpointError::NoIncomingTransfer { mn: MN1 })
    );
}

#[test]
fn late_and_duplicate_ctdr_are_reported() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 100, 0)], t0)
        .expect("starts");
    pump(&mut src, &mut dst, t0);
    events(&mut dst);
    dst.reply(MN1, vec![(Fpt::SERVICE_APP_CONTEXT, Status::SUCCESS)])
        .expect("replies");
    let ctdr = dst.poll_transmit().expect("CTDR");
    src.handle_input(&ctdr, t0).expect("in sync");
    src.handle_input(&ctdr, t0).expect("in sync");
    let ev = events(&mut src);
    assert!(matches!(ev[0], Event::TransferAcked { all_ok: true, .. }));
    assert!(matches!(
        ev[1],
        Event::UnexpectedCtdr {
            mn: MN1,
            all_ok: true,
            ..
        }
    ));

    // Late: the transfer already timed out.
    src.start_transfer(MN2, [ctx(Fpt::SERVICE_APP_CONTEXT, 1, 0)], t0)
        .expect("starts");
    pump(&mut src, &mut dst, t0);
    events(&mut dst);
    src.handle_timeout(t0 + Duration::from_millis(200));
    assert_eq!(events(&mut src), [Event::TransferTimedOut { mn: MN2 }]);
    dst.reply(MN2, vec![]).expect("replies");
    let late = dst.poll_transmit().expect("CTDR");
    src.handle_input(&late, t0 + Duration::from_millis(201))
        .expect("in sync");
    assert!(matches!(
        events(&mut src)[..],
        [Event::UnexpectedCtdr { mn: MN2, .. }]
    ));
    assert_eq!(src.stats().unexpected_ctdrs, 2);
}

#[test]
fn receiver_cancel_reaches_sender() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 10, 0)], t0)
        .expect("starts");
    pump(&mut src, &mut dst, t0);
    events(&mut dst);
    dst.cancel(MN1).expect("cancels");
    assert_eq!(dst.cancel(MN1), Err(EndpointError::NoTransfer { mn: MN1 }));
    pump(&mut dst, &mut src, t0);
    assert_eq!(events(&mut src), [Event::TransferCancelled { mn: MN1 }]);
    assert!(!src.is_sending(MN1));
    assert_eq!(src.poll_timeout(), None, "no timer left");
}

#[test]
fn sender_cancel_mid_transfer_drops_partial_and_stale_ctds() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 300_000, 0)], t0)
        .expect("starts");
    let first = src.poll_transmit().expect("CTD 0");
    let second = src.poll_transmit().expect("CTD 1");
    dst.handle_input(&first, t0).expect("in sync");
    assert!(dst.is_receiving(MN1));
    src.cancel(MN1).expect("cancels");
    // Control goes first; nothing of the transfer is left to send.
    let ctc = src.poll_transmit().expect("CTC");
    assert_eq!(src.poll_transmit(), None);
    // A CTD already in flight arrives before the CTC, then the CTC.
    dst.handle_input(&second, t0).expect("in sync");
    dst.handle_input(&ctc, t0).expect("in sync");
    assert_eq!(events(&mut dst), [Event::TransferCancelled { mn: MN1 }]);
    assert!(!dst.is_receiving(MN1));
    // Another leftover continuation is dropped as stale, silently.
    dst.handle_input(&second, t0).expect("in sync");
    assert!(events(&mut dst).is_empty());
    assert_eq!(dst.stats().stale_ctds, 1);
}

#[test]
fn stalled_reassembly_times_out_and_tells_sender() {
    let t0 = Instant::now();
    let config = Config::with_budget(3 * MS);
    let (mut src, mut dst) = (Endpoint::new(Config::default()), Endpoint::new(config));
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 200_000, 0)], t0)
        .expect("starts");
    let first = src.poll_transmit().expect("CTD 0");
    dst.handle_input(&first, t0 + MS).expect("in sync");
    assert_eq!(dst.poll_timeout(), Some(t0 + 4 * MS));
    dst.handle_timeout(t0 + 3 * MS);
    assert!(dst.is_receiving(MN1));
    dst.handle_timeout(t0 + 4 * MS);
    assert_eq!(events(&mut dst), [Event::ReassemblyTimedOut { mn: MN1 }]);
    assert!(!dst.is_receiving(MN1));
    // The S=0 CTDR lets the (slow) sender roll back at once.
    let ctdr = dst.poll_transmit().expect("failure CTDR");
    src.handle_input(&ctdr, t0 + 5 * MS).expect("in sync");
    assert_eq!(
        events(&mut src),
        [Event::TransferAcked {
            mn: MN1,
            statuses: vec![],
            all_ok: false
        }]
    );
    assert_eq!(src.poll_transmit(), None, "remaining CTDs dropped");
}

#[test]
fn progress_refreshes_reassembly_deadline() {
    let t0 = Instant::now();
    let config = Config::with_budget(3 * MS);
    let (mut src, mut dst) = (Endpoint::new(Config::default()), Endpoint::new(config));
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 200_000, 0)], t0)
        .expect("starts");
    let mut now = t0;
    while let Some(frame) = src.poll_transmit() {
        now += 2 * MS;
        dst.handle_timeout(now);
        dst.handle_input(&frame, now).expect("in sync");
    }
    let ev = events(&mut dst);
    assert_eq!(ev.len(), 1);
    assert_eq!(arrived(&ev[0]).1[0].data.len(), 200_000);
}

#[test]
fn interleaved_transfers_reassemble_per_mn() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    let big = vec![
        ctx(Fpt::SERVICE_APP_CONTEXT, 250_000, 1),
        ctx(Fpt::TCP_CONNECTION_IMAGE, 3, 2),
    ];
    let small = vec![ctx(Fpt::SERVICE_APP_CONTEXT, 1_000, 3)];
    let medium = vec![ctx(Fpt::TCP_CONNECTION_IMAGE, 70_000, 4)];
    src.start_transfer(MN1, &big, t0).expect("starts");
    src.start_transfer(MN2, &small, t0).expect("starts");
    src.start_transfer(MN3, &medium, t0).expect("starts");
    let frames: Vec<Bytes> = std::iter::from_fn(|| src.poll_transmit()).collect();
    assert_eq!(frames.len(), 4 + 1 + 2);
    // Round-robin: MN2's single CTD goes out second, not after MN1's 4 CTDs.
    assert_eq!(Message::decode_bytes(&frames[1]).expect("valid").mn(), MN2);
    for f in &frames {
        dst.handle_input(f, t0).expect("in sync");
    }
    let ev = events(&mut dst);
    assert_eq!(ev.len(), 3);
    let mut got: Vec<(IpAddr, Vec<Context>)> = ev
        .iter()
        .map(|e| (arrived(e).0, arrived(e).1.to_vec()))
        .collect();
    got.sort_by_key(|(mn, _)| *mn);
    assert_eq!(got, vec![(MN1, big), (MN2, small), (MN3, medium)]);
    for mn in [MN1, MN2, MN3] {
        dst.reply(mn, vec![]).expect("replies");
    }
    pump(&mut dst, &mut src, t0);
    assert_eq!(events(&mut src).len(), 3);
    assert_eq!(src.poll_timeout(), None);
}

#[test]
fn plain_ctd_supersedes_unfinished_transfer() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 100_000, 0)], t0)
        .expect("starts");
    dst.handle_input(&src.poll_transmit().expect("CTD 0"), t0)
        .expect("in sync");
    let mut other = Endpoint::new(Config::default());
    other
        .start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 10, 5)], t0)
        .expect("starts");
    pump(&mut other, &mut dst, t0);
    let ev = events(&mut dst);
    assert_eq!(
        ev[0],
        Event::TransferFailed {
            mn: MN1,
            error: TransferError::Superseded
        }
    );
    assert_eq!(arrived(&ev[1]).1[0].data, data(10, 5));
}

#[test]
fn receiver_enforces_max_transfer_size() {
    let t0 = Instant::now();
    let small = Config {
        max_transfer_bytes: 64 * 1024,
        ..Config::default()
    };
    let (mut src, mut dst) = (Endpoint::new(Config::default()), Endpoint::new(small));
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 1 << 20, 0)], t0)
        .expect("starts");
    dst.handle_input(&src.poll_transmit().expect("CTD 0"), t0)
        .expect("in sync");
    assert_eq!(
        events(&mut dst),
        [Event::TransferFailed {
            mn: MN1,
            error: TransferError::TooLarge {
                claimed: 1 << 20,
                limit: 64 * 1024
            }
        }]
    );
    // Later CTDs of the refused transfer are stale.
    pump(&mut src, &mut dst, t0);
    assert!(events(&mut dst).is_empty());
    assert!(dst.stats().stale_ctds >= 15);
    pump(&mut dst, &mut src, t0);
    assert!(matches!(
        events(&mut src)[..],
        [Event::TransferAcked { all_ok: false, .. }]
    ));
}

#[test]
fn sender_refuses_oversize_transfer() {
    let config = Config {
        max_transfer_bytes: 1000,
        ..Config::default()
    };
    let mut src = Endpoint::new(config);
    assert_eq!(
        src.start_transfer(
            MN1,
            [ctx(Fpt::SERVICE_APP_CONTEXT, 1001, 0)],
            Instant::now()
        ),
        Err(EndpointError::Transfer(TransferError::TooLarge {
            claimed: 1001,
            limit: 1000
        }))
    );
    assert!(!src.is_sending(MN1));
}

#[test]
fn malformed_frame_is_skipped_but_bad_version_breaks_the_stream() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    // Valid header, unknown type 9, 8 octets.
    dst.handle_input(&[0x29, 0, 0, 8, 1, 2, 3, 4], t0)
        .expect("framing intact");
    // CTC with a truncated IPv6 address.
    dst.handle_input(&[0x26, 0x00, 0, 8, 1, 2, 3, 4], t0)
        .expect("framing intact");
    let ev = events(&mut dst);
    assert_eq!(
        ev[0],
        Event::MalformedMessage {
            error: DecodeError::UnknownType(9)
        }
    );
    assert!(matches!(
        ev[1],
        Event::MalformedMessage {
            error: DecodeError::Truncated { .. }
        }
    ));
    assert_eq!(dst.stats().malformed_frames, 2);
    // Still usable.
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 10, 0)], t0)
        .expect("starts");
    pump(&mut src, &mut dst, t0);
    assert!(matches!(
        events(&mut dst)[..],
        [Event::ContextsArrived { .. }]
    ));
    // Version 7: framing lost for good.
    let err = dst.handle_input(&[0xE3, 0, 0, 8], t0).expect_err("lost");
    assert_eq!(err.cause, DecodeError::BadVersion(7));
    assert!(dst.handle_input(&[], t0).is_err());
    assert_eq!(dst.reply(MN1, vec![]), Err(EndpointError::StreamBroken));
    assert_eq!(
        dst.start_transfer(MN2, [ctx(Fpt::SERVICE_APP_CONTEXT, 1, 0)], t0),
        Err(EndpointError::StreamBroken)
    );
}

#[test]
fn input_in_tiny_chunks() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    let contexts = vec![ctx(Fpt::SERVICE_APP_CONTEXT, 80_000, 7)];
    src.start_transfer(MN3, &contexts, t0).expect("starts");
    let stream: Vec<u8> = std::iter::from_fn(|| src.poll_transmit())
        .flat_map(|b| b.to_vec())
        .collect();
    for chunk in stream.chunks(7) {
        dst.handle_input(chunk, t0).expect("in sync");
    }
    let ev = events(&mut dst);
    assert_eq!(arrived(&ev[0]).1, &contexts[..]);
}

#[test]
fn predictive_transfer_delivers_key() {
    let t0 = Instant::now();
    let (mut src, mut dst) = pair();
    let key = KeyMaterial {
        algorithm: AuthAlgorithm::HMAC_SHA1,
        key: Bytes::from_static(b"mn-ar shared key"),
    };
    src.start_predictive_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 10, 0)], &key, t0)
        .expect("starts");
    let frame = src.poll_transmit().expect("PCTD");
    assert_eq!(frame[0] & 0x1F, 4, "type PCTD");
    dst.handle_input(&frame, t0).expect("in sync");
    assert!(
        matches!(&events(&mut dst)[..], [Event::ContextsArrived { key: Some(k), .. }] if *k == key)
    );
}

#[test]
fn other_messages_are_passed_up() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let req = Message::CtReq(CtReq {
        mn: MN1,
        seq: 77,
        token: AuthToken::NULL,
        requests: vec![Cdb::request(Fpt::TCP_CONNECTION_IMAGE)],
    });
    a.send(&req).expect("queued");
    pump(&mut a, &mut b, t0);
    assert_eq!(events(&mut b), [Event::MessageReceived(req)]);
}

#[test]
fn huge_timeouts_do_not_overflow_the_clock() {
    let config = Config::with_budget(Duration::MAX);
    let mut src = Endpoint::new(config);
    let t0 = Instant::now();
    src.start_transfer(MN1, [ctx(Fpt::SERVICE_APP_CONTEXT, 1, 0)], t0)
        .expect("starts");
    assert!(
        src.poll_timeout()
            .is_some_and(|t| t > t0 + Duration::from_secs(3600))
    );
}
