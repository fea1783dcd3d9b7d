//! The source's and the target's state machines wired to each other in
//! memory, with a simulated clock, the way quinn-proto tests a `Pair` of
//! endpoints: the harness plays the MIH and CXTP links, the services and
//! the kernel (which sockets are live where, what is locked), injects a
//! failure at every step of the flow, and checks the end state — the UE's
//! connections live at exactly one eNBC, every service told exactly once,
//! nothing left in the target's lock.

use super::*;
use edgemob_cxtp::{Fpt, Status as CxtpStatus};
use edgemob_session_migrate::FourTuple;
use proptest::prelude::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const SRC_SERVICES: [u64; 2] = [1, 2];
const TGT_SERVICES: [u64; 2] = [11, 12];
const APP_FPT: Fpt = Fpt(0xE002);

fn tuples() -> Vec<FourTuple> {
    (0..2)
        .map(|i| FourTuple {
            local: "10.77.0.1:80".parse().unwrap(),
            peer: format!("10.77.1.2:{}", 40000 + i).parse().unwrap(),
        })
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const OUT_CFG: OutgoingConfig = OutgoingConfig {
    overlap_export: true,
    commit_timeout: Duration::from_millis(200),
    export_timeout: Duration::from_millis(500),
    transfer_timeout: Duration::from_millis(1000),
};

const IN_CFG: IncomingConfig = IncomingConfig {
    commit_hold: Duration::from_millis(2000),
    early_lock_after: Duration::from_millis(2),
    import_timeout: Duration::from_millis(500),
    activate_after: Duration::from_millis(50),
};

/// Where a UE's connection is, as the kernels of both eNBCs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sock {
    Live,
    Frozen,
    Restored,
    Gone,
}

/// How a service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    After(u64),
    RefuseAfter(u64),
    GoneAfter(u64),
    Never,
}

/// Where the target's agent process dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// Silent from the start: the commit is never answered.
    BeforeCommit,
    /// After accepting, before the CTD reaches it.
    AfterAccept,
    /// With the CTD in, before it answers.
    BeforeCtdr,
}

/// What the harness does at each step: delays, and the failure injected.
#[derive(Debug, Clone)]
struct Script {
    overlap: bool,
    link_ms: u64,
    refuse: bool,
    exports: [Answer; 2],
    imports: [Answer; 2],
    dump_fails: bool,
    ctd_lost: bool,
    ctc_lost: bool,
    bad_image: bool,
    restore_fails: bool,
    lock_fails: bool,
    crash: Option<Crash>,
    /// The UE's path reaches the target this long after the trigger,
    /// whatever the agents are doing (the radio handover); otherwise the
    /// operator switches it when the source reports success.
    early_path_switch_ms: Option<u64>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            overlap: true,
            link_ms: 1,
            refuse: false,
            exports: [Answer::After(1), Answer::After(2)],
            imports: [Answer::After(1), Answer::After(1)],
            dump_fails: false,
            ctd_lost: false,
            ctc_lost: false,
            bad_image: false,
            restore_fails: false,
            lock_fails: false,
            crash: None,
            early_path_switch_ms: None,
        }
    }
}

/// A message or event in flight, delivered at its time.
#[derive(Debug)]
enum Ev {
    ToSource(OutInput),
    ToTarget(InInput),
    /// The commit request reaches the target's agent.
    CommitArrives,
    /// The UE's path reaches the target.
    PathSwitch,
    Crash,
}

struct Pair {
    script: Script,
    now: Instant,
    t0: Instant,
    queue: Vec<(Instant, u64, Ev)>,
    seq: u64,
    src: OutgoingMigration,
    tgt: Option<IncomingMigration>,
    crashed: bool,
    switched_early: bool,
    src_sock: Sock,
    tgt_sock: Sock,
    src_locked: bool,
    tgt_locked: HashSet<FourTuple>,
    src_notices: Vec<Notice>,
    tgt_notices: Vec<Notice>,
    tgt_told: bool,
    src_finished: Vec<Finished>,
    tgt_finished: Vec<Finished>,
    ctdr_sent: bool,
    ctdr: Option<Vec<(Fpt, CxtpStatus)>>,
    reported_complete: bool,
}

impl Pair {
    fn new(script: Script) -> Pair {
        let t0 = Instant::now();
        let cfg = OutgoingConfig {
            overlap_export: script.overlap,
            ..OUT_CFG
        };
        let (src, actions) = OutgoingMigration::start(cfg, "enbc2", &SRC_SERVICES, t0);
        let mut p = Pair {
            script,
            now: t0,
            t0,
            queue: Vec::new(),
            seq: 0,
            src,
            tgt: None,
            crashed: false,
            switched_early: false,
            src_sock: Sock::Live,
            tgt_sock: Sock::Gone,
            src_locked: false,
            tgt_locked: HashSet::new(),
            src_notices: Vec::new(),
            tgt_notices: Vec::new(),
            tgt_told: false,
            src_finished: Vec::new(),
            tgt_finished: Vec::new(),
            ctdr_sent: false,
            ctdr: None,
            reported_complete: false,
        };
        if let Some(at) = p.script.early_path_switch_ms {
            p.at(ms(at), Ev::PathSwitch);
        }
        if p.script.crash == Some(Crash::BeforeCommit) {
            p.crashed = true;
        }
        p.src_actions(actions);
        p
    }

    fn at(&mut self, after: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push((self.now + after, self.seq, ev));
    }

    fn link(&self) -> Duration {
        ms(self.script.link_ms)
    }

    fn src_actions(&mut self, actions: Vec<OutAction>) {
        for a in actions {
            match a {
                OutAction::SendCommit => {
                    let d = self.link();
                    self.at(d, Ev::CommitArrives);
                }
                OutAction::RequestExports => {
                    for (i, s) in SRC_SERVICES.iter().enumerate() {
                        let service = *s;
                        let (after, result) = match self.script.exports[i] {
                            Answer::After(n) => (n, Ok(())),
                            Answer::RefuseAfter(n) => (
                                n,
                                Err(MigrationError::ExportRefused {
                                    service: format!("svc{service}"),
                                    why: "busy".into(),
                                }),
                            ),
                            Answer::GoneAfter(n) => (
                                n,
                                Err(MigrationError::ExportServiceGone {
                                    service: format!("svc{service}"),
                                }),
                            ),
                            Answer::Never => continue,
                        };
                        self.at(
                            ms(after),
                            Ev::ToSource(OutInput::Exported { service, result }),
                        );
                    }
                }
                OutAction::Freeze => {
                    assert_eq!(self.src_sock, Sock::Live, "freezing what is not live");
                    let r = if self.script.dump_fails {
                        Err(MigrationError::Dump("cannot dump connection 1".into()))
                    } else {
                        self.src_sock = Sock::Frozen;
                        self.src_locked = true;
                        Ok(2)
                    };
                    let more = self.src.handle(OutInput::Frozen(r), self.now);
                    self.src_actions(more);
                }
                OutAction::SendContexts => {
                    assert_eq!(self.src_sock, Sock::Frozen, "sending sockets not frozen");
                    if !self.script.ctd_lost {
                        let fpts =
                            vec![Fpt::TCP_CONNECTION_IMAGE, Fpt::MIGRATION_MANIFEST, APP_FPT];
                        let arrival = if self.script.bad_image {
                            Err(MigrationError::BadImage {
                                connection: 1,
                                why: "truncated".into(),
                            })
                        } else {
                            Ok(Arrival {
                                services: TGT_SERVICES.to_vec(),
                                tuples: tuples(),
                            })
                        };
                        let d = self.link();
                        self.at(d, Ev::ToTarget(InInput::Arrived { fpts, arrival }));
                    }
                }
                OutAction::CancelTransfer => {
                    if !self.script.ctc_lost {
                        let d = self.link();
                        self.at(d, Ev::ToTarget(InInput::Cancelled));
                    }
                }
                OutAction::Thaw => {
                    assert_eq!(self.src_sock, Sock::Frozen, "thawing what is not frozen");
                    self.src_sock = Sock::Live;
                    self.src_locked = false;
                }
                OutAction::Release => {
                    assert_eq!(self.src_sock, Sock::Frozen, "releasing what is not frozen");
                    self.src_sock = Sock::Gone;
                }
                OutAction::ClearExports => {}
                OutAction::ReportAbandoned => {
                    let d = self.link();
                    self.at(d, Ev::ToTarget(InInput::SourceAbandoned));
                }
                OutAction::Notify(n) => self.src_notices.push(n),
                OutAction::Finish(f) => {
                    if f.outcome == crate::history::Outcome::Completed {
                        // The operator hears and switches the UE's path.
                        let d = self.link();
                        self.at(d, Ev::PathSwitch);
                    }
                    self.src_finished.push(f);
                }
            }
        }
    }

    fn tgt_actions(&mut self, actions: Vec<InAction>) {
        for a in actions {
            match a {
                InAction::Prelock(t) => {
                    self.tgt_locked.extend(t);
                    let more = self
                        .tgt
                        .as_mut()
                        .unwrap()
                        .handle(InInput::Prelocked(true), self.now);
                    self.tgt_actions(more);
                }
                InAction::Unlock(t) => {
                    for x in &t {
                        assert!(self.tgt_locked.remove(x), "unlocking {x:?}, never locked");
                    }
                }
                InAction::AnnounceContexts => {
                    self.tgt_told = true;
                    for (i, s) in TGT_SERVICES.iter().enumerate() {
                        let service = *s;
                        let (after, result) = match self.script.imports[i] {
                            Answer::After(n) => (n, Ok(())),
                            Answer::RefuseAfter(n) => (
                                n,
                                Err(MigrationError::ImportRefused {
                                    service: format!("svc{service}"),
                                    fpt: APP_FPT,
                                    why: "full".into(),
                                }),
                            ),
                            Answer::GoneAfter(n) => (
                                n,
                                Err(MigrationError::ImportServiceGone {
                                    service: format!("svc{service}"),
                                    fpt: APP_FPT,
                                }),
                            ),
                            Answer::Never => continue,
                        };
                        self.at(
                            ms(after),
                            Ev::ToTarget(InInput::Imported { service, result }),
                        );
                    }
                }
                InAction::Restore { lock } => {
                    let r = if self.script.lock_fails {
                        Err(MigrationError::Lock("netlink: no buffer space".into()))
                    } else {
                        self.tgt_locked.extend(lock);
                        assert!(
                            tuples().iter().all(|t| self.tgt_locked.contains(t)),
                            "restoring sockets whose packets are not dropped"
                        );
                        self.tgt_sock = Sock::Restored;
                        if self.script.restore_fails {
                            Err(MigrationError::Restore(
                                "cannot restore 10.77.0.1:80 -> 10.77.1.2:40001".into(),
                            ))
                        } else {
                            Ok(())
                        }
                    };
                    let more = self
                        .tgt
                        .as_mut()
                        .unwrap()
                        .handle(InInput::Restored(r), self.now);
                    self.tgt_actions(more);
                }
                InAction::ReplyCtdr(statuses) => {
                    self.ctdr_sent = true;
                    self.ctdr = Some(statuses.clone());
                    let result = if statuses.iter().all(|(_, s)| s.is_success()) {
                        Ok(())
                    } else {
                        Err(MigrationError::NotInstalled {
                            peer: "enbc2".into(),
                            statuses: format!("{statuses:?}"),
                        })
                    };
                    let d = self.link();
                    self.at(d, Ev::ToSource(OutInput::TransferEnded(result)));
                }
                InAction::Activate => {
                    assert_eq!(self.tgt_sock, Sock::Restored, "activating nothing");
                    assert!(
                        self.tgt_locked.is_empty(),
                        "activating behind the lock: the window probe would be dropped"
                    );
                    self.tgt_sock = Sock::Live;
                }
                InAction::CloseRestored => {
                    assert_ne!(self.tgt_sock, Sock::Live, "closing live sockets");
                    self.tgt_sock = Sock::Gone;
                }
                InAction::ClearImports => {}
                InAction::ReportComplete => self.reported_complete = true,
                InAction::Notify(n) => self.tgt_notices.push(n),
                InAction::Finish(f) => self.tgt_finished.push(f),
            }
        }
    }

    fn step(&mut self) -> bool {
        let next_msg = self.queue.iter().map(|(t, s, _)| (*t, *s)).min();
        let timers = [
            self.src.poll_timeout(),
            self.tgt.as_ref().and_then(|t| t.poll_timeout()),
        ];
        let next_timer = timers.iter().flatten().min().copied();
        let (at, is_msg) = match (next_msg, next_timer) {
            (None, None) => return false,
            (Some((m, _)), Some(t)) if t < m => (t, false),
            (Some((m, _)), _) => (m, true),
            (None, Some(t)) => (t, false),
        };
        assert!(at >= self.now, "time goes forward");
        self.now = at;
        if !is_msg {
            let out = self.src.handle_timeout(at);
            self.src_actions(out);
            if let Some(t) = &mut self.tgt {
                let out = t.handle_timeout(at);
                self.tgt_actions(out);
            }
            return true;
        }
        let key = next_msg.unwrap();
        let i = self
            .queue
            .iter()
            .position(|(t, s, _)| (*t, *s) == key)
            .unwrap();
        let (_, _, ev) = self.queue.remove(i);
        match ev {
            Ev::ToSource(input) => {
                let out = self.src.handle(input, at);
                self.src_actions(out);
            }
            Ev::ToTarget(input) => {
                if self.crashed || self.tgt.is_none() {
                    return true;
                }
                if matches!(input, InInput::Arrived { .. })
                    && self.script.crash == Some(Crash::BeforeCtdr)
                {
                    self.at(ms(1), Ev::Crash);
                }
                let out = self.tgt.as_mut().unwrap().handle(input, at);
                self.tgt_actions(out);
            }
            Ev::CommitArrives => {
                if self.crashed {
                    return true;
                }
                let d = self.link();
                if self.script.refuse {
                    let e = MigrationError::Refused {
                        peer: "enbc2".into(),
                        why: "service video is not registered on enbc2".into(),
                    };
                    self.at(d, Ev::ToSource(OutInput::CommitAnswered(Err(e))));
                    return true;
                }
                self.tgt = Some(IncomingMigration::accept(IN_CFG, "enbc1", tuples(), at));
                if std::mem::take(&mut self.switched_early) {
                    let out = self.tgt.as_mut().unwrap().handle(InInput::PathSwitched, at);
                    self.tgt_actions(out);
                }
                self.at(d, Ev::ToSource(OutInput::CommitAnswered(Ok(()))));
                if self.script.crash == Some(Crash::AfterAccept) {
                    self.at(ms(0), Ev::Crash);
                }
            }
            Ev::PathSwitch => match (&mut self.tgt, self.crashed) {
                (Some(t), false) => {
                    let out = t.handle(InInput::PathSwitched, at);
                    self.tgt_actions(out);
                }
                (None, false) => self.switched_early = true,
                _ => {}
            },
            Ev::Crash => {
                // The process dies: its repair-mode sockets close silently.
                self.crashed = true;
                self.tgt = None;
                if self.tgt_sock != Sock::Live {
                    self.tgt_sock = Sock::Gone;
                }
            }
        }
        true
    }

    /// Runs until nothing is left to happen (bounded).
    fn run(mut self) -> Pair {
        for _ in 0..10_000 {
            if !self.step() {
                return self;
            }
        }
        panic!("the pair did not settle: {:?}", self.src.state());
    }

    fn outcome(&self) -> crate::history::Outcome {
        self.src_finished[0].outcome
    }

    fn src_error(&self) -> Option<&MigrationError> {
        self.src_finished[0].error.as_ref()
    }

    fn tgt_error(&self) -> Option<&MigrationError> {
        self.tgt_finished.first().and_then(|f| f.error.as_ref())
    }

    /// What must hold at the end of every run.
    fn check(&self) {
        use crate::history::Outcome;
        assert!(
            self.src.is_over(),
            "the source ended: {:?}",
            self.src.state()
        );
        assert_eq!(self.src_finished.len(), 1, "the source finished once");
        if let Some(t) = &self.tgt {
            assert!(t.is_over(), "the target ended: {:?}", t.state());
            assert_eq!(self.tgt_finished.len(), 1, "the target finished once");
            assert!(
                self.tgt_locked.is_empty(),
                "the target left {:?} locked",
                self.tgt_locked
            );
        }
        let live = [self.src_sock, self.tgt_sock]
            .iter()
            .filter(|s| **s == Sock::Live)
            .count();
        assert_eq!(
            live, 1,
            "the UE's connections live at exactly one eNBC (source {:?}, target {:?})",
            self.src_sock, self.tgt_sock
        );
        assert_eq!(self.src_notices.len(), 1, "each source service told once");
        if self.outcome() == Outcome::Completed {
            assert_eq!(self.tgt_sock, Sock::Live);
            assert_eq!(self.src_sock, Sock::Gone);
            assert_eq!(self.src_notices[0], Notice::Completed);
            assert_eq!(self.tgt_notices, vec![Notice::Completed]);
            assert!(self.src_error().is_none());
        } else {
            assert_eq!(
                self.src_sock,
                Sock::Live,
                "rolled back: served at the source"
            );
            assert!(
                !self.src_locked,
                "rolled back: nothing locked at the source"
            );
            assert_ne!(self.src_notices[0], Notice::Completed);
            if !self.crashed {
                let told = usize::from(self.tgt_told);
                assert_eq!(self.tgt_notices.len(), told, "target services told once");
                assert!(
                    self.tgt_notices
                        .iter()
                        .all(|n| matches!(n, Notice::Failed(_)))
                );
            }
        }
    }
}

fn run(script: Script) -> Pair {
    let p = Pair::new(script).run();
    p.check();
    p
}

use crate::history::Outcome;

// ------------------------------------------------------------ the happy paths

#[test]
fn a_migration_completes_and_the_connections_live_at_the_target_only() {
    let p = run(Script::default());
    assert_eq!(p.outcome(), Outcome::Completed);
    assert!(
        p.reported_complete,
        "the path switch was reported to the source"
    );
    let ph = p.src_finished[0].phases;
    assert!(ph.mih_commit_ns > 0 && ph.cxtp_ns > 0 && ph.total_ns >= ph.cxtp_ns);
    assert_eq!(p.src_finished[0].connections, 2);
    assert_eq!(p.tgt_finished[0].outcome, Outcome::Completed);
}

#[test]
fn without_overlap_the_exports_wait_for_the_commit() {
    let p = run(Script {
        overlap: false,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::Completed);
}

#[test]
fn slow_services_are_waited_for_within_their_deadline() {
    let p = run(Script {
        exports: [Answer::After(400), Answer::After(1)],
        imports: [Answer::After(1), Answer::After(450)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::Completed);
}

#[test]
fn without_a_path_switch_report_the_target_activates_on_its_timer() {
    // The operator never reports: the target goes live after activate_after
    // and does not tell the source the handover completed.
    let mut p = Pair::new(Script::default());
    loop {
        // Drop the operator's path switch as it comes.
        p.queue.retain(|(_, _, e)| !matches!(e, Ev::PathSwitch));
        if !p.step() {
            break;
        }
    }
    p.check();
    assert_eq!(p.outcome(), Outcome::Completed);
    assert!(!p.reported_complete);
}

// ------------------------------------------------------------ the commit

#[test]
fn a_refusal_ends_it_with_nothing_moved() {
    let p = run(Script {
        refuse: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::Rejected);
    assert!(p.tgt.is_none());
    // The services were asked to export (overlap): they resume.
    assert!(matches!(p.src_notices[0], Notice::RolledBack(_)));
}

#[test]
fn a_refusal_after_the_early_freeze_thaws_the_sockets() {
    // Exports answered at once, the refusal comes late: the freeze ran while
    // the target decided, and the refusal thaws it.
    let p = run(Script {
        refuse: true,
        link_ms: 20,
        exports: [Answer::After(0), Answer::After(0)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::Rejected);
    assert_eq!(p.src_sock, Sock::Live);
}

#[test]
fn a_silent_target_times_the_commit_out() {
    let p = run(Script {
        crash: Some(Crash::BeforeCommit),
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::Failed);
    assert!(matches!(
        p.src_error(),
        Some(MigrationError::CommitTimeout { waited_ms: 200, .. })
    ));
}

#[test]
fn a_commit_timeout_without_overlap_tells_the_services_it_failed() {
    let p = run(Script {
        overlap: false,
        crash: Some(Crash::BeforeCommit),
        ..Script::default()
    });
    assert!(matches!(p.src_notices[0], Notice::Failed(_)));
}

// ------------------------------------------------------------ the export

#[test]
fn an_export_timeout_rolls_back_and_frees_the_target() {
    let p = run(Script {
        exports: [Answer::After(1), Answer::Never],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(
        p.src_error(),
        Some(MigrationError::ExportTimeout { .. })
    ));
    // The target accepted; the source's MIH_N2N_HO_Complete(failure) ends it.
    assert!(matches!(
        p.tgt_error(),
        Some(MigrationError::SourceAbandoned { .. })
    ));
}

#[test]
fn an_export_refusal_rolls_back() {
    let p = run(Script {
        exports: [Answer::RefuseAfter(1), Answer::After(1)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(
        p.src_error(),
        Some(MigrationError::ExportRefused { .. })
    ));
}

#[test]
fn a_service_gone_during_the_export_rolls_back() {
    let p = run(Script {
        exports: [Answer::After(1), Answer::GoneAfter(1)],
        ..Script::default()
    });
    assert!(matches!(
        p.src_error(),
        Some(MigrationError::ExportServiceGone { .. })
    ));
}

#[test]
fn an_export_failure_before_the_answer_abandons_the_acceptance() {
    // The export fails while the commit is out; the target accepts later
    // and is told to drop it, before its CTD hold runs out.
    let p = run(Script {
        link_ms: 10,
        exports: [Answer::RefuseAfter(0), Answer::After(1)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(
        p.tgt_error(),
        Some(MigrationError::SourceAbandoned { .. })
    ));
    let tgt_total = p.tgt_finished[0].phases.total_ns;
    assert!(tgt_total < 100_000_000, "dropped at once, not after 2 s");
}

// ------------------------------------------------------------ the sockets

#[test]
fn a_dump_failure_rolls_back_with_the_sockets_live() {
    let p = run(Script {
        dump_fails: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(p.src_error(), Some(MigrationError::Dump(_))));
}

// ------------------------------------------------------------ the transfer

#[test]
fn a_lost_ctd_times_out_and_the_cancel_frees_the_target() {
    let p = run(Script {
        ctd_lost: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(p.src_error(), Some(MigrationError::NoCtdr { .. })));
    assert!(matches!(
        p.tgt_error(),
        Some(MigrationError::SourceCancelled { .. })
    ));
}

#[test]
fn a_lost_ctd_and_a_lost_cancel_expire_at_the_target() {
    let p = run(Script {
        ctd_lost: true,
        ctc_lost: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(
        p.tgt_error(),
        Some(MigrationError::CtdNeverCame { .. })
    ));
}

#[test]
fn a_bad_image_is_blamed_on_the_tcp_images_in_the_ctdr() {
    let p = run(Script {
        bad_image: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    let ctdr = p.ctdr.as_ref().unwrap();
    assert!(ctdr.contains(&(Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::INCOMPLETE)));
    assert!(ctdr.contains(&(APP_FPT, CxtpStatus::SUCCESS)));
    assert!(matches!(
        p.src_error(),
        Some(MigrationError::NotInstalled { .. })
    ));
    assert!(
        !p.tgt_told,
        "nothing announced from a transfer that did not read"
    );
}

#[test]
fn a_refused_import_is_blamed_on_its_fpt_and_rolls_back() {
    let p = run(Script {
        imports: [Answer::After(1), Answer::RefuseAfter(2)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    let ctdr = p.ctdr.as_ref().unwrap();
    assert!(ctdr.contains(&(APP_FPT, CxtpStatus::REJECTED)));
    assert!(ctdr.contains(&(Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::SUCCESS)));
    assert!(matches!(p.tgt_notices[0], Notice::Failed(_)));
}

#[test]
fn an_import_timeout_rolls_back() {
    let p = run(Script {
        imports: [Answer::Never, Answer::After(1)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(
        p.tgt_error(),
        Some(MigrationError::ImportTimeout { .. })
    ));
}

#[test]
fn a_service_gone_during_the_import_rolls_back() {
    let p = run(Script {
        imports: [Answer::GoneAfter(1), Answer::After(1)],
        ..Script::default()
    });
    assert!(matches!(
        p.tgt_error(),
        Some(MigrationError::ImportServiceGone { .. })
    ));
}

#[test]
fn a_restore_failure_of_one_connection_rolls_back() {
    let p = run(Script {
        restore_fails: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    let ctdr = p.ctdr.as_ref().unwrap();
    assert!(ctdr.contains(&(Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::RESTORE_FAILED)));
    assert_eq!(p.tgt_sock, Sock::Gone, "the restored sockets were closed");
}

#[test]
fn a_lock_failure_at_the_target_rolls_back() {
    let p = run(Script {
        lock_fails: true,
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(p.tgt_error(), Some(MigrationError::Lock(_))));
}

#[test]
fn a_target_crashed_after_accepting_leaves_the_ue_at_the_source() {
    let p = run(Script {
        crash: Some(Crash::AfterAccept),
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert!(matches!(p.src_error(), Some(MigrationError::NoCtdr { .. })));
}

#[test]
fn a_target_crashed_with_the_ctd_in_leaves_the_ue_at_the_source() {
    let p = run(Script {
        crash: Some(Crash::BeforeCtdr),
        imports: [Answer::After(5), Answer::After(5)],
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::RolledBack);
    assert_eq!(p.tgt_sock, Sock::Gone);
}

// ------------------------------------------------------------ the path

#[test]
fn a_path_switch_before_the_ctd_locks_at_once_and_activates_on_install() {
    // The UE's path reaches the target 1.5 ms after the trigger: the commit
    // was accepted at 1 ms, the early lock would wait until 3 ms, the CTD
    // is still being exported for.
    let mut p = Pair::new(Script {
        exports: [Answer::After(8), Answer::After(8)],
        early_path_switch_ms: Some(1),
        link_ms: 1,
        ..Script::default()
    });
    while p.tgt_locked.is_empty() {
        assert!(p.step());
    }
    assert!(
        p.now < p.t0 + ms(3),
        "locked at the switch, not at the 2 ms early lock"
    );
    assert!(!p.tgt.as_ref().unwrap().has_arrived());
    let p = p.run();
    p.check();
    assert_eq!(p.outcome(), Outcome::Completed);
    assert!(p.reported_complete);
}

#[test]
fn a_path_switch_before_the_commit_is_remembered() {
    let p = run(Script {
        link_ms: 3,
        early_path_switch_ms: Some(0),
        ..Script::default()
    });
    assert_eq!(p.outcome(), Outcome::Completed);
    assert!(p.reported_complete);
}

#[test]
fn answers_after_the_end_change_nothing() {
    let mut p = run(Script {
        exports: [Answer::RefuseAfter(1), Answer::After(1)],
        ..Script::default()
    });
    let now = p.now + ms(1);
    assert!(
        p.src
            .handle(
                OutInput::Exported {
                    service: 2,
                    result: Ok(())
                },
                now
            )
            .is_empty()
    );
    assert!(
        p.src
            .handle(OutInput::TransferEnded(Ok(())), now)
            .is_empty()
    );
    assert!(p.src.handle_timeout(now + ms(5000)).is_empty());
    p.check();
}

// ------------------------------------------------------------ any order, any time

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        8 => (0u64..600).prop_map(Answer::After),
        1 => (0u64..50).prop_map(Answer::RefuseAfter),
        1 => (0u64..50).prop_map(Answer::GoneAfter),
        1 => Just(Answer::Never),
    ]
}

prop_compose! {
    fn script()(
        overlap in any::<bool>(),
        link_ms in 0u64..5,
        refuse in proptest::bool::weighted(0.1),
        exports in [answer(), answer()],
        imports in [answer(), answer()],
        dump_fails in proptest::bool::weighted(0.1),
        ctd_lost in proptest::bool::weighted(0.1),
        ctc_lost in proptest::bool::weighted(0.3),
        bad_image in proptest::bool::weighted(0.05),
        restore_fails in proptest::bool::weighted(0.05),
        lock_fails in proptest::bool::weighted(0.05),
        crash in proptest::option::weighted(0.15, prop_oneof![
            Just(Crash::BeforeCommit), Just(Crash::AfterAccept), Just(Crash::BeforeCtdr)
        ]),
        early_path_switch_ms in proptest::option::of(0u64..700),
    ) -> Script {
        Script {
            overlap, link_ms, refuse, exports, imports, dump_fails, ctd_lost, ctc_lost,
            bad_image, restore_fails, lock_fails, crash, early_path_switch_ms,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever fails, whenever, in whatever order messages and answers
    /// come: never live at both eNBCs, never at neither, every service told
    /// once, nothing left locked at the target.
    #[test]
    fn never_both_live_never_neither(s in script()) {
        let p = Pair::new(s.clone()).run();
        p.check();
        // A clean script completes.
        let clean = !s.refuse && !s.dump_fails && !s.ctd_lost && !s.bad_image
            && !s.restore_fails && !s.lock_fails && s.crash.is_none()
            && s.exports.iter().chain(&s.imports).all(|a| matches!(a, Answer::After(n) if *n < 500));
        if clean {
            prop_assert_eq!(p.outcome(), Outcome::Completed);
        }
    }
}
