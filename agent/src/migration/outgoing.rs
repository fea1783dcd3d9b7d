//! The source's side of a migration as a sans-IO state machine.
//!
//! ```text
//! Committing ──accepted──► Exporting ──exported──► Freezing ──frozen──► Transferring ──CTDR ok──► Completed
//!     │  (exports and even the freeze may finish while the commit is out:
//!     │   `overlap_export`; the machine then goes straight to Transferring)
//!     └─ any failure, answer or deadline, in any state ─────────────────────────────────────────► RolledBack
//! ```
//!
//! It is fed what happened ([`OutInput`]) and the time, and returns what to
//! do ([`OutAction`]); the agent's task carries the actions out and feeds
//! their results back. It owns the migration's deadlines (commit, export,
//! transfer) so a silent peer or service ends it even if the layer below
//! never reports. Rollback is [`OutgoingMigration::rollback`], one function
//! of the state: what was frozen is thawed, what the target may hold is
//! released, the services hear exactly one end.

use super::error::{MigrationError, Side};
use super::{Finished, Notice};
use crate::history::{Outcome, Phases, ns};
use crate::registry::ServiceHandle;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The source's deadlines and choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingConfig {
    /// Ask the services to export while the target decides.
    pub overlap_export: bool,
    /// The commit's answer (the MIH layer retransmits within it).
    pub commit_timeout: Duration,
    /// Every service's ExportContext.
    pub export_timeout: Duration,
    /// The CTDR, from the first CTD.
    pub transfer_timeout: Duration,
}

/// What the source's task observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutInput {
    /// The target's MIH_N2N_HO_Commit response: accepted, or why not.
    CommitAnswered(Result<(), MigrationError>),
    /// One service's ExportContext (or its refusal, or its departure).
    Exported {
        service: ServiceHandle,
        result: Result<(), MigrationError>,
    },
    /// The UE's sockets were locked and dumped (how many), or why not; on
    /// failure the task has already put back whatever it had frozen.
    Frozen(Result<u32, MigrationError>),
    /// The CTDR said every context was installed, or why the transfer failed.
    TransferEnded(Result<(), MigrationError>),
}

/// What the source's task must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutAction {
    /// Send MIH_N2N_HO_Commit.request to the target.
    SendCommit,
    /// Send ExportRequested to every service of the UE.
    RequestExports,
    /// Lock the UE's 4-tuples and dump its sockets; answer with `Frozen`.
    Freeze,
    /// Send the manifest, the contexts and the socket images (CTDs).
    SendContexts,
    /// Cancel the transfer (CTC): the target drops what it installed.
    CancelTransfer,
    /// Unlock the UE's 4-tuples and thaw its frozen sockets: served here again.
    Thaw,
    /// The target holds the UE: release the frozen sockets silently and keep
    /// dropping the UE's stray packets for the linger time.
    Release,
    /// Forget the pending ExportContext calls.
    ClearExports,
    /// MIH_N2N_HO_Complete(failure): the target drops a handover it accepted.
    ReportAbandoned,
    /// Tell the UE's services how the migration ended.
    Notify(Notice),
    /// The migration is over: publish its record.
    Finish(Finished),
}

/// Where the services' exports stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exports {
    NotAsked,
    Pending { waiting: BTreeSet<ServiceHandle> },
    Done,
}

/// One variant per state of the source's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutState {
    /// The commit request is out; exports (and the freeze) may run alongside.
    Committing { exports: Exports },
    /// The target accepted; waiting for the services' contexts.
    Exporting { exports: Exports },
    /// Accepted and exported; the sockets are being frozen.
    Freezing,
    /// The CTD(s) are out; waiting for the CTDR.
    Transferring { since: Instant },
    /// The target holds the UE's session.
    Completed,
    /// The UE stays served here.
    RolledBack(MigrationError),
}

/// The source's side of one UE's migration.
#[derive(Debug)]
pub struct OutgoingMigration {
    cfg: OutgoingConfig,
    peer: String,
    services: Vec<ServiceHandle>,
    started: Instant,
    state: OutState,
    phases: Phases,
    exports_asked: Option<Instant>,
    freeze_asked: Option<Instant>,
    /// The UE's sockets are frozen here (locked and dumped).
    frozen: bool,
    connections: u32,
}

impl OutgoingMigration {
    /// Starts a migration of a UE whose services are `services`, towards
    /// `peer`.
    pub fn start(
        cfg: OutgoingConfig,
        peer: impl Into<String>,
        services: &[ServiceHandle],
        now: Instant,
    ) -> (Self, Vec<OutAction>) {
        let mut m = OutgoingMigration {
            cfg,
            peer: peer.into(),
            services: services.to_vec(),
            started: now,
            state: OutState::Committing {
                exports: Exports::NotAsked,
            },
            phases: Phases::default(),
            exports_asked: None,
            freeze_asked: None,
            frozen: false,
            connections: 0,
        };
        let mut out = Vec::new();
        if cfg.overlap_export {
            // The export is the longer branch: its event goes first.
            let exports = m.ask_exports(now, &mut out);
            m.state = OutState::Committing { exports };
        }
        out.push(OutAction::SendCommit);
        m.progress(now, &mut out);
        (m, out)
    }

    pub fn state(&self) -> &OutState {
        &self.state
    }

    pub fn is_over(&self) -> bool {
        matches!(self.state, OutState::Completed | OutState::RolledBack(_))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let export_deadline = |e: &Exports| match e {
            Exports::Pending { .. } => self.exports_asked.map(|at| at + self.cfg.export_timeout),
            _ => None,
        };
        match &self.state {
            OutState::Committing { exports } => {
                let commit = self.started + self.cfg.commit_timeout;
                Some(export_deadline(exports).map_or(commit, |e| e.min(commit)))
            }
            OutState::Exporting { exports } => export_deadline(exports),
            OutState::Transferring { since } => Some(*since + self.cfg.transfer_timeout),
            OutState::Freezing | OutState::Completed | OutState::RolledBack(_) => None,
        }
    }

    /// Ends the migration if one of its deadlines has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<OutAction> {
        let Some(at) = self.poll_timeout() else {
            return Vec::new();
        };
        if now < at {
            return Vec::new();
        }
        let waited_ms = |since: Instant| (now - since).as_millis() as u64;
        let err = match &self.state {
            OutState::Committing { exports } | OutState::Exporting { exports } => match exports {
                Exports::Pending { .. }
                    if self
                        .exports_asked
                        .is_some_and(|at| now >= at + self.cfg.export_timeout) =>
                {
                    MigrationError::ExportTimeout {
                        waited_ms: self.exports_asked.map_or(0, waited_ms),
                    }
                }
                _ => MigrationError::CommitTimeout {
                    peer: self.peer.clone(),
                    waited_ms: waited_ms(self.started),
                    acknowledged: false,
                },
            },
            OutState::Transferring { since } => MigrationError::NoCtdr {
                peer: self.peer.clone(),
                waited_ms: waited_ms(*since),
            },
            _ => return Vec::new(),
        };
        self.rollback(err, now)
    }

    /// Feeds one observation.
    pub fn handle(&mut self, input: OutInput, now: Instant) -> Vec<OutAction> {
        if self.is_over() {
            return Vec::new();
        }
        let mut out = Vec::new();
        match input {
            OutInput::CommitAnswered(answer) => {
                let OutState::Committing { exports } = &mut self.state else {
                    return out;
                };
                self.phases.mih_commit_ns = ns(now - self.started);
                if let Err(e) = answer {
                    return self.rollback(e, now);
                }
                let exports = match std::mem::replace(exports, Exports::NotAsked) {
                    Exports::NotAsked => self.ask_exports(now, &mut out),
                    asked => asked,
                };
                self.state = OutState::Exporting { exports };
            }
            OutInput::Exported { service, result } => {
                if let Err(e) = result {
                    return self.rollback(e, now);
                }
                if let OutState::Committing { exports } | OutState::Exporting { exports } =
                    &mut self.state
                    && let Exports::Pending { waiting, .. } = exports
                {
                    waiting.remove(&service);
                }
            }
            OutInput::Frozen(result) => {
                let Some(at) = self.freeze_asked.filter(|_| !self.frozen) else {
                    return out;
                };
                self.phases.socket_data_ns = ns(now - at);
                match result {
                    Ok(n) => {
                        self.frozen = true;
                        self.connections = n;
                    }
                    Err(e) => return self.rollback(e, now),
                }
            }
            OutInput::TransferEnded(result) => {
                let OutState::Transferring { since } = self.state else {
                    return out;
                };
                self.phases.cxtp_ns = ns(now - since);
                if let Err(e) = result {
                    return self.rollback(e, now);
                }
                self.phases.total_ns = ns(now - self.started);
                self.state = OutState::Completed;
                self.frozen = false;
                // Whoever waits on the migration hears first: the UE's path
                // switch follows from that answer.
                out.push(OutAction::Finish(self.finished(Outcome::Completed, None)));
                out.push(OutAction::Release);
                out.push(OutAction::Notify(Notice::Completed));
                return out;
            }
        }
        self.progress(now, &mut out);
        out
    }

    /// Moves on as far as what is known allows.
    fn progress(&mut self, now: Instant, out: &mut Vec<OutAction>) {
        if let OutState::Committing { exports } | OutState::Exporting { exports } = &mut self.state
            && let Exports::Pending { waiting, .. } = exports
            && waiting.is_empty()
        {
            *exports = Exports::Done;
            if let Some(at) = self.exports_asked {
                self.phases.app_data_ns = ns(now - at);
            }
        }
        match &self.state {
            OutState::Committing {
                exports: Exports::Done,
            } if self.freeze_asked.is_none() => {
                // Exported while the target still decides: freeze off the
                // critical path; a refusal thaws.
                self.freeze_asked = Some(now);
                out.push(OutAction::Freeze);
            }
            OutState::Exporting {
                exports: Exports::Done,
            }
            | OutState::Freezing => {
                if self.frozen {
                    self.state = OutState::Transferring { since: now };
                    out.push(OutAction::SendContexts);
                } else {
                    self.state = OutState::Freezing;
                    if self.freeze_asked.is_none() {
                        self.freeze_asked = Some(now);
                        out.push(OutAction::Freeze);
                    }
                }
            }
            _ => {}
        }
    }

    fn ask_exports(&mut self, now: Instant, out: &mut Vec<OutAction>) -> Exports {
        self.exports_asked = Some(now);
        out.push(OutAction::RequestExports);
        Exports::Pending {
            waiting: self.services.iter().copied().collect(),
        }
    }

    /// Ends the migration with the UE served here, whatever state it is in.
    pub fn rollback(&mut self, err: MigrationError, now: Instant) -> Vec<OutAction> {
        if self.is_over() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let transferring = matches!(self.state, OutState::Transferring { .. });
        if transferring {
            out.push(OutAction::CancelTransfer);
        }
        if self.frozen {
            self.frozen = false;
            out.push(OutAction::Thaw);
        }
        if self.exports_asked.is_some() {
            out.push(OutAction::ClearExports);
        }
        // The target may hold an accepted handover that no CTD will claim.
        if !transferring && !matches!(err, MigrationError::Refused { .. }) {
            out.push(OutAction::ReportAbandoned);
        }
        let reason = err.to_string();
        out.push(OutAction::Notify(if self.exports_asked.is_some() {
            Notice::RolledBack(reason)
        } else {
            Notice::Failed(reason)
        }));
        self.phases.total_ns = ns(now - self.started);
        let outcome = err.outcome(Side::Source);
        out.push(OutAction::Finish(self.finished(outcome, Some(err.clone()))));
        self.state = OutState::RolledBack(err);
        out
    }

    fn finished(&self, outcome: Outcome, error: Option<MigrationError>) -> Finished {
        Finished {
            outcome,
            error,
            phases: self.phases,
            connections: self.connections,
        }
    }
}
