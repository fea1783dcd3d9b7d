//! The target's side of a migration as a sans-IO state machine.
//!
//! ```text
//! Accepted ──CTD──► Receiving ──restored + imported──► AwaitingPath ──path switch / timer──► Live
//!   │ (early lock after 2 ms,   (CTDR ok sent on entry)
//!   │  or at a path switch)
//!   └─ CTD never came, source abandoned or cancelled, bad CTD, restore or import failed ──► Abandoned
//! ```
//!
//! Created when this eNBC accepts a MIH_N2N_HO_Commit; fed what happened
//! ([`InInput`]) and the time, it returns what to do ([`InAction`]). It
//! knows which 4-tuples it holds in the network lock, so whatever ends it
//! leaves none behind; the sockets go live only once the UE's path reaches
//! this eNBC (or the activation timer says it must have).

use super::error::{MigrationError, Side};
use super::{Finished, Notice};
use crate::history::{Outcome, Phases, ns};
use crate::registry::ServiceHandle;
use edgemob_cxtp::{Fpt, Status as CxtpStatus};
use edgemob_session_migrate::FourTuple;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The target's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingConfig {
    /// How long an accepted commit waits for its CTD.
    pub commit_hold: Duration,
    /// When the CTD is this late, lock the announced connections ahead of it.
    pub early_lock_after: Duration,
    /// Every service's ImportContext.
    pub import_timeout: Duration,
    /// Activate without a path-switch report after this long.
    pub activate_after: Duration,
}

/// What the transfer holds, as the target's task read it from the CTD(s)
/// and its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The local services that take a context.
    pub services: Vec<ServiceHandle>,
    /// The connections to restore.
    pub tuples: Vec<FourTuple>,
}

/// What the target's task observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InInput {
    /// The CTD(s) came: their FPTs (sorted, unique) and what they hold, or
    /// why they cannot be installed.
    Arrived {
        fpts: Vec<Fpt>,
        arrival: Result<Arrival, MigrationError>,
    },
    /// The announced connections are locked now (or could not be: the CTD
    /// will lock them).
    Prelocked(bool),
    /// The sockets were rebuilt in repair mode, or why not. A failure to
    /// lock comes as `MigrationError::Lock` and leaves nothing new locked.
    Restored(Result<(), MigrationError>),
    /// One service's ImportContext (or its refusal, or its departure).
    Imported {
        service: ServiceHandle,
        result: Result<(), MigrationError>,
    },
    /// The UE's path reaches this eNBC now (CompleteHandover).
    PathSwitched,
    /// The source cancelled the transfer (CTC).
    Cancelled,
    /// The source gave the handover up before sending anything
    /// (MIH_N2N_HO_Complete with a failed result).
    SourceAbandoned,
}

/// What the target's task must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InAction {
    /// Add these 4-tuples to the network lock; answer with `Prelocked`.
    Prelock(Vec<FourTuple>),
    /// Remove these 4-tuples from the network lock.
    Unlock(Vec<FourTuple>),
    /// Send ContextArrived to every service that takes a context.
    AnnounceContexts,
    /// Lock `lock` (what is not locked yet), then rebuild every socket in
    /// repair mode; answer with `Restored`.
    Restore { lock: Vec<FourTuple> },
    /// Answer the CTD(s).
    ReplyCtdr(Vec<(Fpt, CxtpStatus)>),
    /// Bring the restored sockets to life and hand them to the services
    /// (the lock is already gone).
    Activate,
    /// Close the restored sockets silently and revoke their announced tokens.
    CloseRestored,
    /// Forget the pending ImportContext calls.
    ClearImports,
    /// MIH_N2N_HO_Complete(success) to the source: it may drop its lock.
    ReportComplete,
    /// Tell the services that took a context how the arrival ended.
    Notify(Notice),
    /// The migration is over: publish its record.
    Finish(Finished),
}

/// One variant per state of the target's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InState {
    /// The commit was accepted; waiting for the CTD.
    Accepted { early_lock_at: Option<Instant> },
    /// The CTD came: sockets being restored, services importing.
    Receiving {
        importing: BTreeSet<ServiceHandle>,
        restored: bool,
        since: Instant,
    },
    /// Installed and acknowledged (CTDR); waiting for the UE's path.
    AwaitingPath { since: Instant },
    /// The UE's connections live here.
    Live,
    /// The source keeps the UE.
    Abandoned(MigrationError),
}

/// The target's side of one UE's migration.
#[derive(Debug)]
pub struct IncomingMigration {
    cfg: IncomingConfig,
    peer: String,
    accepted_at: Instant,
    arrived_at: Option<Instant>,
    restore_asked: Option<Instant>,
    announced: Vec<FourTuple>,
    /// What this migration holds in the network lock.
    locked: Vec<FourTuple>,
    /// What the restore was asked to lock (held once it reports back).
    locking: Vec<FourTuple>,
    fpts: Vec<Fpt>,
    path_switched: bool,
    /// Services were told ContextArrived (and sockets may be restored):
    /// until Live, ending closes the sockets and revokes their tokens.
    told: bool,
    connections: u32,
    phases: Phases,
    state: InState,
}

impl IncomingMigration {
    /// This eNBC accepted a commit from `peer` announcing `announced`.
    pub fn accept(
        cfg: IncomingConfig,
        peer: impl Into<String>,
        announced: Vec<FourTuple>,
        now: Instant,
    ) -> Self {
        let early_lock_at = (!announced.is_empty()).then(|| now + cfg.early_lock_after);
        IncomingMigration {
            cfg,
            peer: peer.into(),
            accepted_at: now,
            arrived_at: None,
            restore_asked: None,
            announced,
            locked: Vec::new(),
            locking: Vec::new(),
            fpts: Vec::new(),
            path_switched: false,
            told: false,
            connections: 0,
            phases: Phases::default(),
            state: InState::Accepted { early_lock_at },
        }
    }

    pub fn state(&self) -> &InState {
        &self.state
    }

    pub fn is_over(&self) -> bool {
        matches!(self.state, InState::Live | InState::Abandoned(_))
    }

    /// Whether the CTD(s) came.
    pub fn has_arrived(&self) -> bool {
        self.arrived_at.is_some()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            InState::Accepted { early_lock_at } => {
                let hold = self.accepted_at + self.cfg.commit_hold;
                Some(early_lock_at.map_or(hold, |e| e.min(hold)))
            }
            InState::Receiving { since, .. } => Some(*since + self.cfg.import_timeout),
            InState::AwaitingPath { since } => Some(*since + self.cfg.activate_after),
            InState::Live | InState::Abandoned(_) => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<InAction> {
        match self.poll_timeout() {
            Some(at) if now >= at => {}
            _ => return Vec::new(),
        }
        let mut out = Vec::new();
        match &mut self.state {
            InState::Accepted { early_lock_at } => {
                if let Some(at) = *early_lock_at
                    && now >= at
                {
                    *early_lock_at = None;
                    out.push(InAction::Prelock(self.announced.clone()));
                }
                if now >= self.accepted_at + self.cfg.commit_hold {
                    let err = MigrationError::CtdNeverCame {
                        peer: self.peer.clone(),
                        waited_ms: (now - self.accepted_at).as_millis() as u64,
                    };
                    out.extend(self.abandon(err, now));
                }
            }
            InState::Receiving { .. } => {
                let fpt = self
                    .fpts
                    .iter()
                    .copied()
                    .find(|f| *f != Fpt::MIGRATION_MANIFEST && *f != Fpt::TCP_CONNECTION_IMAGE)
                    .unwrap_or(Fpt::SERVICE_APP_CONTEXT);
                let err = MigrationError::ImportTimeout {
                    waited_ms: self.cfg.import_timeout.as_millis() as u64,
                    fpt,
                };
                out.extend(self.abandon(err, now));
            }
            InState::AwaitingPath { .. } => self.go_live(&mut out),
            InState::Live | InState::Abandoned(_) => {}
        }
        out
    }

    pub fn handle(&mut self, input: InInput, now: Instant) -> Vec<InAction> {
        if self.is_over() {
            return Vec::new();
        }
        let mut out = Vec::new();
        match input {
            // Asked for (and answered at once) only while Accepted.
            InInput::Prelocked(ok) => {
                if ok && matches!(self.state, InState::Accepted { .. }) {
                    self.locked = self.announced.clone();
                }
            }
            InInput::PathSwitched => {
                self.path_switched = true;
                match &mut self.state {
                    InState::Accepted { early_lock_at } if early_lock_at.is_some() => {
                        // Its packets may reach us now: lock at once.
                        *early_lock_at = None;
                        out.push(InAction::Prelock(self.announced.clone()));
                    }
                    InState::AwaitingPath { .. } => self.go_live(&mut out),
                    _ => {}
                }
            }
            InInput::Cancelled => {
                let err = MigrationError::SourceCancelled {
                    peer: self.peer.clone(),
                };
                return self.abandon(err, now);
            }
            InInput::SourceAbandoned => {
                if matches!(self.state, InState::Accepted { .. }) {
                    let err = MigrationError::SourceAbandoned {
                        peer: self.peer.clone(),
                    };
                    return self.abandon(err, now);
                }
            }
            InInput::Arrived { fpts, arrival } => {
                if !matches!(self.state, InState::Accepted { .. }) {
                    return out;
                }
                self.arrived_at = Some(now);
                self.fpts = fpts;
                let a = match arrival {
                    Ok(a) => a,
                    Err(e) => return self.abandon(e, now),
                };
                self.connections = a.tuples.len() as u32;
                // Announced connections that did not come are not moving.
                let (covered, stale): (Vec<FourTuple>, Vec<FourTuple>) =
                    self.locked.iter().partition(|t| a.tuples.contains(t));
                if !stale.is_empty() {
                    out.push(InAction::Unlock(stale));
                }
                let missing: Vec<FourTuple> = a
                    .tuples
                    .iter()
                    .filter(|t| !covered.contains(t))
                    .copied()
                    .collect();
                self.locked = covered;
                self.locking = missing.clone();
                self.told = true;
                self.restore_asked = Some(now);
                // The contexts first: the services take them in while the
                // sockets are rebuilt.
                out.push(InAction::AnnounceContexts);
                out.push(InAction::Restore { lock: missing });
                self.state = InState::Receiving {
                    importing: a.services.iter().copied().collect(),
                    restored: false,
                    since: now,
                };
            }
            InInput::Restored(result) => {
                let InState::Receiving { restored, .. } = &mut self.state else {
                    return out;
                };
                if let Some(at) = self.restore_asked {
                    self.phases.socket_data_ns = ns(now - at);
                }
                let locking = std::mem::take(&mut self.locking);
                match result {
                    Ok(()) => {
                        *restored = true;
                        self.locked.extend(locking);
                    }
                    // Nothing of the CTD's own lock went in.
                    Err(e @ MigrationError::Lock(_)) => return self.abandon(e, now),
                    Err(e) => {
                        // Locked, and some sockets may exist: abandoning
                        // closes them.
                        self.locked.extend(locking);
                        return self.abandon(e, now);
                    }
                }
            }
            InInput::Imported { service, result } => {
                let InState::Receiving { importing, .. } = &mut self.state else {
                    return out;
                };
                if let Err(e) = result {
                    return self.abandon(e, now);
                }
                importing.remove(&service);
            }
        }
        if let InState::Receiving {
            importing,
            restored: true,
            ..
        } = &self.state
            && importing.is_empty()
        {
            let arrived = self.arrived_at.unwrap_or(now);
            if let Some(at) = self.restore_asked {
                self.phases.app_data_ns = ns(now - at);
            }
            self.phases.cxtp_ns = ns(now - arrived);
            self.phases.total_ns = self.phases.cxtp_ns;
            out.push(InAction::ReplyCtdr(
                self.fpts
                    .iter()
                    .map(|f| (*f, CxtpStatus::SUCCESS))
                    .collect(),
            ));
            self.state = InState::AwaitingPath { since: now };
            if self.path_switched {
                self.go_live(&mut out);
            }
        }
        out
    }

    fn go_live(&mut self, out: &mut Vec<InAction>) {
        // Unlock first: the window probe of each socket must pass.
        if !self.locked.is_empty() {
            out.push(InAction::Unlock(std::mem::take(&mut self.locked)));
        }
        out.push(InAction::Activate);
        out.push(InAction::Notify(Notice::Completed));
        out.push(InAction::Finish(self.finished(Outcome::Completed, None)));
        // Only a reported path switch proves the UE's packets no longer
        // reach the source; after the timer the source keeps its drop rules
        // for their full linger.
        if self.path_switched {
            out.push(InAction::ReportComplete);
        }
        self.state = InState::Live;
    }

    /// Gives the arrival up, whatever state it is in: nothing restored
    /// survives, nothing stays locked, the services that were told hear once.
    pub fn abandon(&mut self, err: MigrationError, now: Instant) -> Vec<InAction> {
        if self.is_over() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let receiving = matches!(self.state, InState::Receiving { .. });
        if self.told {
            // Still in repair mode: closing sends nothing.
            out.push(InAction::CloseRestored);
        }
        if !self.locked.is_empty() {
            out.push(InAction::Unlock(std::mem::take(&mut self.locked)));
        }
        if receiving {
            out.push(InAction::ClearImports);
        }
        let awaiting_reply = receiving
            || (self.arrived_at.is_some() && matches!(self.state, InState::Accepted { .. }));
        if awaiting_reply && !matches!(err, MigrationError::SourceCancelled { .. }) {
            out.push(InAction::ReplyCtdr(err.ctdr_statuses(&self.fpts)));
        }
        if self.told {
            out.push(InAction::Notify(Notice::Failed(err.to_string())));
        }
        let since = self.arrived_at.unwrap_or(self.accepted_at);
        self.phases.total_ns = ns(now - since);
        let outcome = err.outcome(Side::Target);
        out.push(InAction::Finish(self.finished(outcome, Some(err.clone()))));
        self.state = InState::Abandoned(err);
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
