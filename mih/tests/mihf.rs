//! The MIHF state machine, driven deterministically with a fake clock.

mod common;

use common::*;
use edgemob_mih::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn id(s: &str) -> MihfId {
    MihfId::try_from(s).unwrap()
}

fn pair() -> (Mihf, Mihf) {
    (
        Mihf::new(MihfConfig::new(id("enbc1"))),
        Mihf::new(MihfConfig::new(id("enbc2"))),
    )
}

fn drain(m: &mut Mihf) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| m.poll_transmit().map(|t| t.payload)).collect()
}

fn events(m: &mut Mihf) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn indication_then_response_gives_a_confirm_with_a_piggybacked_ack() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    let req = drain(&mut a);
    assert_eq!(req.len(), 1);
    assert_ne!(req[0][0] & 0x08, 0, "requests ask for an ACK by default");
    b.handle_datagram(&req[0], t0).unwrap();
    let ev = events(&mut b);
    let [
        Event::Indication {
            peer,
            tid: t,
            message: Message::N2nHoCommitIndication(_),
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!((peer, *t), (&id("enbc1"), tid));
    b.respond(peer, *t, sample_commit_response(Status::SUCCESS), t0)
        .unwrap();
    let rsp = drain(&mut b);
    assert_eq!(rsp.len(), 1, "ACK piggybacked, no separate ACK frame");
    let f = Frame::decode(&rsp[0]).unwrap();
    assert!(f.flags.ack_rsp);
    assert!(
        !f.flags.ack_req,
        "a response carrying the ACK asks for none: a lost one is recovered by the request's retransmission"
    );
    assert_eq!(f.mid(), Mid(0x3809));
    a.handle_datagram(&rsp[0], t0).unwrap();
    assert!(matches!(
        &events(&mut a)[..],
        [Event::Confirm { message: Message::N2nHoCommitConfirm(r), tid: x, .. }] if r.status.is_success() && *x == tid
    ));
    assert!(drain(&mut a).is_empty(), "two frames per transaction");
    assert_eq!(a.pending_requests(), 0);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn a_slow_user_makes_the_mihf_ack_first_and_answer_later() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    for f in drain(&mut a) {
        b.handle_datagram(&f, t0).unwrap();
    }
    let ack = drain(&mut b);
    assert_eq!(ack.len(), 1);
    let f = Frame::decode(&ack[0]).unwrap();
    assert_eq!(f.body, Body::Ack(Mid(0x3409)));
    assert_eq!(f.tid, tid);
    a.handle_datagram(&ack[0], t0).unwrap();
    // acknowledged: no retransmission even long after the interval
    a.handle_timeout(t0 + 50 * MS);
    assert!(drain(&mut a).is_empty());
    // the response arrives later, without ACK-Rsp
    b.respond(
        &id("enbc1"),
        tid,
        sample_commit_response(Status::REJECTED),
        t0 + 60 * MS,
    )
    .unwrap();
    let rsp = drain(&mut b);
    assert!(!Frame::decode(&rsp[0]).unwrap().flags.ack_rsp);
    a.handle_datagram(&rsp[0], t0 + 60 * MS).unwrap();
    assert!(matches!(
        &events(&mut a)[..],
        [Event::Confirm { message: Message::N2nHoCommitConfirm(r), .. }] if r.status == Status::REJECTED
    ));
}

#[test]
fn unacknowledged_requests_are_retransmitted_then_time_out() {
    let t0 = Instant::now();
    let mut cfg = MihfConfig::new(id("enbc1"));
    cfg.retransmit_interval = 5 * MS;
    cfg.max_retransmissions = 2;
    let mut a = Mihf::new(cfg);
    let tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    let first = drain(&mut a);
    assert_eq!(a.poll_timeout(), Some(t0 + 5 * MS));
    a.handle_timeout(t0 + 4 * MS);
    assert!(drain(&mut a).is_empty(), "not yet");
    a.handle_timeout(t0 + 5 * MS);
    assert_eq!(drain(&mut a), first, "the same frame again");
    a.handle_timeout(t0 + 10 * MS);
    assert_eq!(drain(&mut a), first);
    assert!(events(&mut a).is_empty());
    a.handle_timeout(t0 + 15 * MS);
    assert!(drain(&mut a).is_empty());
    assert_eq!(
        events(&mut a),
        vec![Event::Timeout {
            peer: id("enbc2"),
            tid,
            mid: Mid(0x3409),
            acknowledged: false
        }]
    );
    assert_eq!(a.stats().retransmissions, 2);
    assert_eq!(a.stats().timeouts, 1);
    assert_eq!(a.pending_requests(), 0);
}

#[test]
fn acknowledged_but_unanswered_requests_time_out_at_the_response_deadline() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    for f in drain(&mut a) {
        b.handle_datagram(&f, t0).unwrap();
    }
    for f in drain(&mut b) {
        a.handle_datagram(&f, t0).unwrap();
    }
    let deadline = t0 + a.config().response_timeout;
    assert_eq!(a.poll_timeout(), Some(deadline));
    a.handle_timeout(deadline);
    assert_eq!(
        events(&mut a),
        vec![Event::Timeout {
            peer: id("enbc2"),
            tid,
            mid: Mid(0x3409),
            acknowledged: true
        }]
    );
    // a response arriving after the timeout is ignored and counted
    b.respond(
        &id("enbc1"),
        tid,
        sample_commit_response(Status::SUCCESS),
        deadline,
    )
    .unwrap();
    for f in drain(&mut b) {
        a.handle_datagram(&f, deadline).unwrap();
    }
    assert!(events(&mut a).is_empty());
    assert_eq!(a.stats().unexpected, 1);
}

#[test]
fn a_retransmitted_request_is_answered_from_the_cache_not_the_user() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    let req = drain(&mut a);
    b.handle_datagram(&req[0], t0).unwrap();
    assert_eq!(events(&mut b).len(), 1);
    b.respond(
        &id("enbc1"),
        tid,
        sample_commit_response(Status::SUCCESS),
        t0,
    )
    .unwrap();
    let rsp = drain(&mut b); // lost on the way
    // the requester retransmits
    a.handle_timeout(t0 + 10 * MS);
    let again = drain(&mut a);
    assert_eq!(again, req);
    b.handle_datagram(&again[0], t0 + 10 * MS).unwrap();
    assert!(events(&mut b).is_empty(), "the user is not asked twice");
    let cached = drain(&mut b);
    assert_eq!(cached, rsp);
    assert_eq!(b.stats().duplicates, 1);
    a.handle_datagram(&cached[0], t0 + 10 * MS).unwrap();
    assert!(matches!(&events(&mut a)[..], [Event::Confirm { .. }]));
}

#[test]
fn a_response_is_retransmitted_until_acknowledged() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    for f in drain(&mut a) {
        b.handle_datagram(&f, t0).unwrap();
    }
    for f in drain(&mut b) {
        a.handle_datagram(&f, t0).unwrap(); // the stand-alone ACK
    }
    b.respond(
        &id("enbc1"),
        tid,
        sample_commit_response(Status::SUCCESS),
        t0,
    )
    .unwrap();
    let rsp = drain(&mut b); // lost
    assert_ne!(rsp[0][0] & 0x08, 0, "responses ask for an ACK");
    b.handle_timeout(t0 + 10 * MS);
    let again = drain(&mut b);
    assert_eq!(again, rsp);
    a.handle_datagram(&again[0], t0 + 10 * MS).unwrap();
    assert!(matches!(&events(&mut a)[..], [Event::Confirm { .. }]));
    let ack = drain(&mut a);
    assert!(matches!(
        Frame::decode(&ack[0]).unwrap().body,
        Body::Ack(Mid(0x3809))
    ));
    b.handle_datagram(&ack[0], t0 + 11 * MS).unwrap();
    b.handle_timeout(t0 + 100 * MS);
    assert!(
        drain(&mut b).is_empty(),
        "acknowledged: no more retransmissions"
    );
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn a_retransmission_while_the_user_thinks_is_only_acknowledged_again() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    let _tid = a
        .send_request(id("enbc2"), sample_commit_request(), t0)
        .unwrap();
    let req = drain(&mut a);
    b.handle_datagram(&req[0], t0).unwrap();
    let _lost_ack = drain(&mut b);
    b.handle_datagram(&req[0], t0 + 10 * MS).unwrap();
    assert_eq!(events(&mut b).len(), 1, "one indication only");
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    assert!(matches!(Frame::decode(&out[0]).unwrap().body, Body::Ack(_)));
}

#[test]
fn a_reused_tid_with_a_new_request_is_a_new_transaction() {
    let t0 = Instant::now();
    let (_, mut b) = pair();
    let mk = |cell| {
        let Message::N2nHoCommitRequest(mut r) = sample_commit_request() else {
            unreachable!()
        };
        r.poa = LinkAddr::Cell3g {
            plmn: [0, 0xF1, 0x10],
            cell_id: cell,
        };
        Frame::message(
            id("enbc1"),
            id("enbc2"),
            Tid::new(7),
            Message::N2nHoCommitRequest(r),
        )
        .to_vec()
        .unwrap()
    };
    b.handle_datagram(&mk(1), t0).unwrap();
    b.respond(
        &id("enbc1"),
        Tid::new(7),
        sample_commit_response(Status::SUCCESS),
        t0,
    )
    .unwrap();
    b.handle_datagram(&mk(2), t0 + MS).unwrap();
    assert_eq!(events(&mut b).len(), 2);
}

#[test]
fn remembered_answers_expire() {
    let t0 = Instant::now();
    let mut cfg = MihfConfig::new(id("enbc2"));
    cfg.answered_ttl = 100 * MS;
    let mut b = Mihf::new(cfg);
    let req = Frame::message(
        id("enbc1"),
        id("enbc2"),
        Tid::new(7),
        sample_commit_request(),
    )
    .to_vec()
    .unwrap();
    b.handle_datagram(&req, t0).unwrap();
    b.respond(
        &id("enbc1"),
        Tid::new(7),
        sample_commit_response(Status::SUCCESS),
        t0,
    )
    .unwrap();
    b.handle_datagram(&req, t0 + 200 * MS).unwrap();
    assert_eq!(events(&mut b).len(), 2, "forgotten, so a new indication");
}

#[test]
fn respond_checks_the_transaction_and_the_message() {
    let t0 = Instant::now();
    let (_, mut b) = pair();
    assert!(matches!(
        b.respond(
            &id("enbc1"),
            Tid::new(1),
            sample_commit_response(Status::SUCCESS),
            t0
        ),
        Err(RespondError::NoSuchTransaction { .. })
    ));
    let req = Frame::message(
        id("enbc1"),
        id("enbc2"),
        Tid::new(1),
        sample_commit_request(),
    )
    .to_vec()
    .unwrap();
    b.handle_datagram(&req, t0).unwrap();
    let wrong = Message::CapabilityDiscoverResponse(CapabilityDiscoverResponse {
        status: Status::SUCCESS,
        events: None,
        commands: None,
        query_types: None,
        transports: None,
    });
    assert!(matches!(
        b.respond(&id("enbc1"), Tid::new(1), wrong, t0),
        Err(RespondError::WrongResponse { .. })
    ));
    assert!(matches!(
        b.respond(&id("enbc1"), Tid::new(1), sample_commit_request(), t0),
        Err(RespondError::WrongResponse { .. })
    ));
    b.respond(
        &id("enbc1"),
        Tid::new(1),
        sample_commit_response(Status::SUCCESS),
        t0,
    )
    .unwrap();
    assert!(matches!(
        b.respond(
            &id("enbc1"),
            Tid::new(1),
            sample_commit_response(Status::SUCCESS),
            t0
        ),
        Err(RespondError::NoSuchTransaction { .. })
    ));
}

#[test]
fn only_requests_can_be_sent_as_requests() {
    let (mut a, _) = pair();
    assert!(matches!(
        a.send_request(
            id("enbc2"),
            sample_commit_response(Status::SUCCESS),
            Instant::now()
        ),
        Err(SendError::NotARequest("MIH_N2N_HO_Commit.response"))
    ));
}

#[test]
fn tids_are_12_bit_unique_among_pending_and_bounded() {
    let t0 = Instant::now();
    let mut cfg = MihfConfig::new(id("enbc1"));
    cfg.max_pending_per_peer = 4095;
    let mut a = Mihf::new(cfg);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4095 {
        let tid = a
            .send_request(id("enbc2"), sample_commit_request(), t0)
            .unwrap();
        assert!(tid.get() <= 0x0FFF);
        assert!(seen.insert(tid), "TID {tid} reused while pending");
    }
    assert!(matches!(
        a.send_request(id("enbc2"), sample_commit_request(), t0),
        Err(SendError::TooManyPending { pending: 4095, .. })
    ));
    // another peer has its own TID space
    a.send_request(id("enbc3"), sample_commit_request(), t0)
        .unwrap();
}

#[test]
fn garbage_and_misaddressed_frames_are_counted_and_ignored() {
    let t0 = Instant::now();
    let (_, mut b) = pair();
    assert!(b.handle_datagram(b"\x10\x00garbage", t0).is_err());
    let other = Frame::message(
        id("enbc1"),
        id("enbc9"),
        Tid::new(1),
        sample_commit_request(),
    )
    .to_vec()
    .unwrap();
    b.handle_datagram(&other, t0).unwrap();
    assert!(events(&mut b).is_empty());
    assert!(drain(&mut b).is_empty());
    let s = b.stats();
    assert_eq!((s.malformed, s.misaddressed, s.frames_in), (1, 1, 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Over a lossy link, every request ends in exactly one confirm or one
    /// timeout, and the target's user sees each request at most once.
    #[test]
    fn lossy_links_never_lose_or_duplicate_outcomes(
        drops in proptest::collection::vec(any::<bool>(), 64),
        n in 1usize..6,
        slow_user in any::<bool>(),
    ) {
        let mut clock = Instant::now();
        let (mut a, mut b) = pair();
        let mut drop_it = drops.into_iter().cycle();
        let tids: Vec<Tid> = (0..n)
            .map(|_| a.send_request(id("enbc2"), sample_commit_request(), clock).unwrap())
            .collect();
        let mut indications = std::collections::HashMap::<Tid, usize>::new();
        let mut outcomes = std::collections::HashMap::<Tid, usize>::new();
        for _ in 0..1000 {
            for f in drain(&mut a) {
                if !drop_it.next().unwrap() { let _ = b.handle_datagram(&f, clock); }
            }
            let mut asked = Vec::new();
            for e in events(&mut b) {
                if let Event::Indication { peer, tid, .. } = e {
                    *indications.entry(tid).or_default() += 1;
                    asked.push((peer, tid));
                }
            }
            // A slow user answers only after the MIHF has flushed its ACKs.
            if slow_user {
                for f in drain(&mut b) {
                    if !drop_it.next().unwrap() { let _ = a.handle_datagram(&f, clock); }
                }
            }
            for (peer, tid) in asked {
                b.respond(&peer, tid, sample_commit_response(Status::SUCCESS), clock).unwrap();
            }
            for f in drain(&mut b) {
                if !drop_it.next().unwrap() { let _ = a.handle_datagram(&f, clock); }
            }
            for e in events(&mut a) {
                match e {
                    Event::Confirm { tid, .. } | Event::Timeout { tid, .. } => {
                        *outcomes.entry(tid).or_default() += 1
                    }
                    Event::Indication { .. } => prop_assert!(false, "unexpected indication"),
                }
            }
            if a.pending_requests() == 0 { break; }
            clock += MS;
            a.handle_timeout(clock);
            b.handle_timeout(clock);
        }
        for e in events(&mut a) {
            if let Event::Confirm { tid, .. } | Event::Timeout { tid, .. } = e {
                *outcomes.entry(tid).or_default() += 1
            }
        }
        prop_assert_eq!(a.pending_requests(), 0);
        for tid in tids {
            prop_assert_eq!(outcomes.get(&tid).copied(), Some(1));
            prop_assert!(indications.get(&tid).copied().unwrap_or(0) <= 1);
        }
    }
}
