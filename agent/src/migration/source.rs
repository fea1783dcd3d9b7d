//! The source's task: carries out what [`OutgoingMigration`] decides when a
//! UE leaves this eNBC.
//!
//! ```text
//! trigger ─► MIH_N2N_HO_Commit.request ─► confirm(Status)
//!        ─► ExportRequested to each service ─► ExportContext   ("retrieving application data")
//!        ─► lock 4-tuples, dump sockets                        ("retrieving sockets data")
//!        ─► CTD(s) ─► CTDR                                     ("CXTP transaction")
//!        ─► success: release sockets silently, forget the UE
//!           failure: thaw sockets, unlock, services resume     (rollback)
//! ```
//!
//! Until the CTDR says every context was installed, the UE's sockets exist
//! here (frozen or live): a failure at any step leaves the session served
//! by this eNBC. The task holds the I/O (the MIH request, the CXTP
//! transfer, the frozen sockets, the exported contexts); every decision is
//! the state machine's.

use super::frozen::{FrozenSet, freeze_connections, save_images, schedule_unlock, unfreeze};
use super::manifest::{Manifest, ManifestConn, ManifestService};
use super::outgoing::{OutAction, OutInput, OutgoingConfig, OutgoingMigration};
use super::table::{OutgoingEntry, SourceEvent};
use super::{Finished, MigrationError, Side, notify_services};
use crate::cxtp_link::TransferOutcome;
use crate::history::{Direction, Outcome, Record};
use crate::mih_link::{MihOutcome, mihf_id};
use crate::node::Node;
use crate::registry::{ExportReply, ServiceHandle};
use edgemob_cxtp::{Context, Fpt};
use edgemob_mih::{
    EdgemobInfo, LinkAddr, LinkId, LinkType, Message, MovingConnection, N2nHoCommitRequest,
    ServiceDemand,
};
use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::service_event::Event as Ev;
use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// PLMN used in the cell identities edgemob puts in MIH frames.
pub const PLMN: [u8; 3] = [0x00, 0xF1, 0x10];

/// Why a trigger was not started.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("UE {0} is not served by this eNBC")]
    UnknownUe(String),
    #[error("no peer eNBC serves cell {0}")]
    UnknownCell(u32),
    #[error("cell {0} is served by this eNBC itself: an intra-eNBC handover moves nothing")]
    OwnCell(u32),
    #[error("UE {ue} is served in cell {actual}, not {claimed}")]
    WrongSourceCell {
        ue: String,
        claimed: u32,
        actual: u32,
    },
}

/// Outcome of a trigger.
#[derive(Debug)]
pub struct Triggered {
    pub migration_id: u64,
    pub already_migrating: bool,
    /// Resolves to the record when the migration ends (None if the UE is
    /// arriving here, not leaving).
    pub done: Option<oneshot::Receiver<Record>>,
}

/// Handles an X2 Handover Request ACK for `ue`: starts its migration
/// unless one is already running (then the trigger is ignored).
pub fn trigger(
    node: &Arc<Node>,
    ue: &str,
    source_cell: u32,
    target_cell: u32,
) -> Result<Triggered, TriggerError> {
    if node.cfg.serves(target_cell) {
        return Err(TriggerError::OwnCell(target_cell));
    }
    let peer = node
        .cfg
        .peer_for_cell(target_cell)
        .ok_or(TriggerError::UnknownCell(target_cell))?
        .mihf_id
        .clone();
    let mut reg = node.reg.lock().expect("not poisoned");
    let rec = reg
        .users
        .get_mut(ue)
        .ok_or_else(|| TriggerError::UnknownUe(ue.to_owned()))?;
    if let Some(running) = rec.migrating {
        let (tx, rx) = oneshot::channel();
        let done = reg.migrations.outgoing_mut(ue, running).map(|o| {
            o.waiters.push(tx);
            rx
        });
        return Ok(Triggered {
            migration_id: running,
            already_migrating: true,
            done,
        });
    }
    if source_cell != 0 && source_cell != rec.cell {
        return Err(TriggerError::WrongSourceCell {
            ue: ue.to_owned(),
            claimed: source_cell,
            actual: rec.cell,
        });
    }
    let migration_id = loop {
        let id = rand::random::<u64>();
        if id != 0 {
            break id;
        }
    };
    rec.migrating = Some(migration_id);
    let cell = rec.cell;
    let (tx, rx) = oneshot::channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    reg.migrations.entry(ue).outgoing = Some(OutgoingEntry {
        id: migration_id,
        events: events_tx,
        waiters: vec![tx],
        exporting: Default::default(),
    });
    drop(reg);
    let span = tracing::info_span!("migration", id = migration_id, %ue, direction = "out");
    let task = Outgoing {
        node: Arc::clone(node),
        mig: migration_id,
        ue: ue.to_owned(),
        peer,
        source_cell: cell,
        target_cell,
    };
    tokio::spawn(task.run(events).instrument(span));
    Ok(Triggered {
        migration_id,
        already_migrating: false,
        done: Some(rx),
    })
}

/// One service of the leaving UE.
struct LeavingService {
    handle: ServiceHandle,
    name: String,
    fpts: Vec<Fpt>,
    connections: u16,
}

type Pending<T> = Option<Pin<Box<dyn Future<Output = T> + Send>>>;

/// What an outgoing migration is about.
struct Outgoing {
    node: Arc<Node>,
    mig: u64,
    ue: String,
    peer: String,
    source_cell: u32,
    target_cell: u32,
}

/// The I/O side of an outgoing migration while it runs.
struct Io {
    ue_addr: IpAddr,
    services: Vec<LeavingService>,
    announced: Vec<MovingConnection>,
    exports: Vec<(ServiceHandle, ExportReply)>,
    frozen: Option<FrozenSet>,
    commit: Pending<Result<(), MigrationError>>,
    transfer: Pending<Result<(), MigrationError>>,
    record: Record,
    /// The finished record, logged once every action is done.
    to_log: Option<Record>,
}

enum Woke {
    Event(Option<SourceEvent>),
    Commit(Result<(), MigrationError>),
    Transfer(Result<(), MigrationError>),
    Timer,
}

impl Outgoing {
    async fn run(self, mut events: mpsc::UnboundedReceiver<SourceEvent>) {
        let queued = Instant::now();
        let _slot = self
            .node
            .migration_slots
            .acquire()
            .await
            .expect("never closed");
        let t0 = Instant::now();
        let Some(mut io) = self.gather(t0 - queued) else {
            // The UE went away while the migration waited for a slot.
            self.node
                .reg
                .lock()
                .expect("not poisoned")
                .migrations
                .update(&self.ue, |m| {
                    m.outgoing = None;
                });
            return;
        };
        let cfg = &self.node.cfg;
        let sm_cfg = OutgoingConfig {
            overlap_export: cfg.migration.overlap_export,
            commit_timeout: Duration::from_millis(cfg.timers.mih_response_ms),
            export_timeout: Duration::from_millis(cfg.timers.export_ms),
            transfer_timeout: Duration::from_millis(cfg.timers.cxtp_transfer_ms),
        };
        let (mut sm, actions) = OutgoingMigration::start(sm_cfg, &self.peer, &io.handles(), t0);
        self.execute(&mut sm, &mut io, actions).await;
        while !sm.is_over() {
            let deadline = sm.poll_timeout();
            let (has_commit, has_transfer) = (io.commit.is_some(), io.transfer.is_some());
            let (commit, transfer) = (&mut io.commit, &mut io.transfer);
            let woke = tokio::select! {
                biased;
                e = events.recv() => Woke::Event(e),
                c = async { commit.as_mut().expect("guarded").await }, if has_commit => Woke::Commit(c),
                t = async { transfer.as_mut().expect("guarded").await }, if has_transfer => Woke::Transfer(t),
                _ = crate::timer(deadline) => Woke::Timer,
            };
            let now = Instant::now();
            let actions = match woke {
                Woke::Event(Some(SourceEvent::Exported { service, reply })) => {
                    let result = if reply.error.is_empty() {
                        io.exports.push((service, reply));
                        Ok(())
                    } else {
                        Err(MigrationError::ExportRefused {
                            service: io.name_of(service),
                            why: reply.error,
                        })
                    };
                    sm.handle(OutInput::Exported { service, result }, now)
                }
                Woke::Event(Some(SourceEvent::ServiceGone(service))) => {
                    let result = Err(MigrationError::ExportServiceGone {
                        service: io.name_of(service),
                    });
                    sm.handle(OutInput::Exported { service, result }, now)
                }
                // The table keeps the sender while the migration runs.
                Woke::Event(None) => {
                    sm.rollback(MigrationError::UeDeregistered(self.ue.clone()), now)
                }
                Woke::Commit(c) => {
                    io.commit = None;
                    tracing::trace!("commit answered");
                    sm.handle(OutInput::CommitAnswered(c), now)
                }
                Woke::Transfer(t) => {
                    io.transfer = None;
                    tracing::trace!("CTDR received");
                    sm.handle(OutInput::TransferEnded(t), now)
                }
                Woke::Timer => sm.handle_timeout(now),
            };
            self.execute(&mut sm, &mut io, actions).await;
        }
        if let Some(rec) = io.to_log.take() {
            self.node.log(rec);
        }
    }

    /// What the UE uses here, or None if it is no longer served.
    fn gather(&self, queued: Duration) -> Option<Io> {
        let reg = self.node.reg.lock().expect("not poisoned");
        let u = reg.users.get(&self.ue)?;
        // Announced so that the target can drop their packets from the
        // moment it accepts.
        let announced = u
            .services
            .values()
            .flatten()
            .map(|c| MovingConnection {
                local: c.local,
                peer: c.peer,
            })
            .collect();
        let services: Vec<LeavingService> = u
            .services
            .iter()
            .filter_map(|(h, conns)| {
                reg.services.get(h).map(|s| LeavingService {
                    handle: *h,
                    name: s.name.clone(),
                    fpts: s.fpts.clone(),
                    connections: conns.len() as u16,
                })
            })
            .collect();
        let mut record = Record::begin(
            self.mig,
            &self.ue,
            Direction::Out,
            &self.peer,
            self.source_cell,
            self.target_cell,
        );
        record.phases.queued_ns = crate::history::ns(queued);
        Some(Io {
            ue_addr: u.addr,
            services,
            announced,
            exports: Vec::new(),
            frozen: None,
            commit: None,
            transfer: None,
            record,
            to_log: None,
        })
    }

    /// Carries out the machine's actions; what completes at once (the
    /// freeze, a failed send) is fed back and its actions follow.
    async fn execute(&self, sm: &mut OutgoingMigration, io: &mut Io, actions: Vec<OutAction>) {
        let mut queue: VecDeque<OutAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            let fed = match action {
                OutAction::SendCommit => {
                    io.commit = Some(self.send_commit(io));
                    None
                }
                OutAction::RequestExports => {
                    self.request_exports(io)
                        .err()
                        .map(|(service, e)| OutInput::Exported {
                            service,
                            result: Err(e),
                        })
                }
                OutAction::Freeze => {
                    let frozen = tracing::info_span!("socket_data")
                        .in_scope(|| freeze_connections(&self.node, &self.ue));
                    tracing::trace!("sockets frozen");
                    Some(OutInput::Frozen(frozen.map(|f| {
                        let n = f.sockets.len() as u32;
                        io.frozen = Some(f);
                        n
                    })))
                }
                OutAction::SendContexts => self
                    .send_contexts(io)
                    .err()
                    .map(|e| OutInput::TransferEnded(Err(e))),
                OutAction::CancelTransfer => {
                    io.transfer = None;
                    if let Some(link) = self.node.cxtp.peer(&self.peer) {
                        link.cancel(io.ue_addr);
                    }
                    None
                }
                OutAction::Thaw => {
                    if let Some(f) = io.frozen.take() {
                        unfreeze(&self.node, &self.ue, f);
                    }
                    None
                }
                OutAction::Release => {
                    if let Some(f) = io.frozen.take() {
                        self.release(f);
                    }
                    None
                }
                OutAction::ClearExports => {
                    let mut reg = self.node.reg.lock().expect("not poisoned");
                    if let Some(o) = reg.migrations.outgoing_mut(&self.ue, self.mig) {
                        o.exporting.clear();
                    }
                    None
                }
                OutAction::ReportAbandoned => {
                    report_ho_complete(
                        &self.node,
                        &self.peer,
                        &self.ue,
                        self.source_cell,
                        self.target_cell,
                        edgemob_mih::HoResult::FAILURE,
                    );
                    None
                }
                OutAction::Notify(n) => {
                    notify_services(&self.node, &io.handles(), || {
                        n.event(self.mig, &self.ue, Side::Source)
                    });
                    None
                }
                OutAction::Finish(f) => {
                    let completed = f.outcome == Outcome::Completed;
                    self.finish(io, f);
                    if completed {
                        // The trigger's answer (and so the UE's path switch)
                        // goes out before the tidying up.
                        tokio::task::yield_now().await;
                    }
                    None
                }
            };
            if let Some(input) = fed {
                queue.extend(sm.handle(input, Instant::now()));
            }
        }
    }

    /// MIH_N2N_HO_Commit: can the target host this UE's services? Sent on
    /// the future's first poll.
    fn send_commit(
        &self,
        io: &Io,
    ) -> Pin<Box<dyn Future<Output = Result<(), MigrationError>> + Send>> {
        let request = Message::N2nHoCommitRequest(N2nHoCommitRequest {
            mn_mihf_id: mihf_id(&self.ue),
            mn_link_id: LinkId {
                link_type: LinkType::WIRELESS_OTHER,
                addr: LinkAddr::Cell3g {
                    plmn: PLMN,
                    cell_id: self.source_cell,
                },
            },
            poa: LinkAddr::Cell3g {
                plmn: PLMN,
                cell_id: self.target_cell,
            },
            requested_resources: None,
            edgemob: Some(EdgemobInfo {
                migration_id: Some(self.mig),
                ue_address: Some(io.ue_addr),
                source_cell: Some(self.source_cell),
                services: io
                    .services
                    .iter()
                    .map(|s| ServiceDemand {
                        name: s.name.clone().into(),
                        fpts: s.fpts.iter().map(|f| f.code()).collect(),
                        context_bytes: 0,
                        connections: s.connections,
                    })
                    .collect(),
                reason: None,
                connections: io.announced.clone(),
            }),
        });
        let node = Arc::clone(&self.node);
        let peer = self.peer.clone();
        let overlap = node.cfg.migration.overlap_export;
        let started = Instant::now();
        Box::pin(
            async move {
                if overlap {
                    // The export is the longer branch: let its event reach the
                    // service (another task on this thread) before the request goes.
                    tokio::task::yield_now().await;
                }
                let dst = mihf_id(&peer);
                let request = node.mih.request(&dst, request);
                tokio::pin!(request);
                // The first poll sends the request. Only then ask for polling
                // CPUs: the request costs tens of microseconds (it wakes every
                // idle CPU), the service's export and the target's answer
                // overlap it.
                let first = futures::poll!(&mut request);
                node.cpu.kick();
                let r = match first {
                    std::task::Poll::Ready(r) => r,
                    std::task::Poll::Pending => request.await,
                };
                commit_answer(r, &peer, started.elapsed())
            }
            .instrument(tracing::info_span!("mih_commit")),
        )
    }

    /// Sends ExportRequested to every service; on failure, the service that
    /// is not listening and why.
    fn request_exports(&self, io: &Io) -> Result<(), (ServiceHandle, MigrationError)> {
        let mut reg = self.node.reg.lock().expect("not poisoned");
        let crate::registry::Registry {
            services,
            migrations,
            ..
        } = &mut *reg;
        let Some(entry) = migrations.outgoing_mut(&self.ue, self.mig) else {
            return Ok(());
        };
        for s in &io.services {
            entry.exporting.insert(s.handle);
            let sent = services.get(&s.handle).is_some_and(|svc| {
                svc.notify(Ev::ExportRequested(pb::ExportRequested {
                    migration_id: self.mig,
                    ue: self.ue.clone(),
                    target_cell: self.target_cell,
                }))
            });
            if !sent {
                return Err((
                    s.handle,
                    MigrationError::ServiceNotListening {
                        service: s.name.clone(),
                        fpt: s.fpts.first().copied().unwrap_or(Fpt::SERVICE_APP_CONTEXT),
                    },
                ));
            }
        }
        Ok(())
    }

    /// One transfer with the manifest, the contexts and the images.
    fn send_contexts(&self, io: &mut Io) -> Result<(), MigrationError> {
        let Some(frozen) = &io.frozen else {
            return Err(MigrationError::Dump("no frozen connections to send".into()));
        };
        let mut contexts = Vec::with_capacity(1 + io.exports.len() + frozen.images.len());
        let mut manifest = Manifest {
            migration_id: self.mig,
            ue: self.ue.clone(),
            source_cell: self.source_cell,
            target_cell: self.target_cell,
            services: Vec::new(),
        };
        contexts.push(Context::new(Fpt::MIGRATION_MANIFEST, Vec::new())); // placeholder
        // In the order the services were asked, whatever order they answered in.
        for s in &io.services {
            let Some((_, reply)) = io.exports.iter().find(|(h, _)| *h == s.handle) else {
                continue;
            };
            let context_index = contexts.len() as u32;
            contexts.push(Context::new(Fpt(reply.fpt as u16), reply.context.clone()));
            let mut conns = Vec::new();
            for (f, img) in frozen.sockets.iter().zip(&frozen.images) {
                if f.handle == s.handle {
                    conns.push(ManifestConn {
                        connection_id: f.id,
                        image_index: contexts.len() as u32,
                    });
                    contexts.push(Context::new(Fpt::TCP_CONNECTION_IMAGE, img.clone()));
                }
            }
            manifest.services.push(ManifestService {
                name: s.name.clone(),
                fpt: reply.fpt,
                context_index,
                connections: conns,
            });
        }
        contexts[0] = manifest.to_context();
        io.record.context_bytes = contexts.iter().map(|c| c.data.len() as u64).sum();
        io.record.app_context_bytes = io.exports.iter().map(|(_, r)| r.context.len() as u64).sum();
        let link =
            self.node
                .cxtp
                .peer(&self.peer)
                .cloned()
                .ok_or_else(|| MigrationError::NoCxtpLink {
                    peer: self.peer.clone(),
                })?;
        tracing::debug!(octets = io.record.context_bytes, "sending contexts");
        let peer = self.peer.clone();
        let transfer_ms = self.node.cfg.timers.cxtp_transfer_ms;
        let ue_addr = io.ue_addr;
        io.transfer = Some(Box::pin(
            async move {
                let r = link.transfer(ue_addr, contexts).await;
                transfer_result(r, &peer, transfer_ms)
            }
            .instrument(tracing::info_span!("cxtp")),
        ));
        Ok(())
    }

    /// The target holds the session: forget the UE here; keep dropping its
    /// stray packets until the target reports the handover complete.
    fn release(&self, f: FrozenSet) {
        schedule_unlock(&self.node, &self.ue, self.mig, f.tuples);
        for s in f.sockets {
            s.socket.release(); // silently: still in repair mode
        }
        if let Some(dir) = &self.node.cfg.history.images {
            save_images(dir.join(format!("{:016x}", self.mig)), f.images);
        }
    }

    /// Ends the migration's bookkeeping and publishes its record.
    fn finish(&self, io: &mut Io, f: Finished) {
        let waiters = {
            let mut reg = self.node.reg.lock().expect("not poisoned");
            if f.outcome == Outcome::Completed {
                reg.users.remove(&self.ue);
            } else if let Some(u) = reg.users.get_mut(&self.ue) {
                u.migrating = None;
            }
            reg.migrations
                .update(&self.ue, |m| m.outgoing.take())
                .flatten()
                .map(|o| o.waiters)
                .unwrap_or_default()
        };
        let mut rec = io.record.clone();
        rec.outcome = f.outcome;
        rec.connections = f.connections;
        let queued = rec.phases.queued_ns;
        rec.phases = f.phases;
        rec.phases.queued_ns = queued;
        if let Some(e) = &f.error {
            rec.reason = e.to_string();
            tracing::warn!(reason = %rec.reason, outcome = ?f.outcome, "migration did not complete");
        }
        let rec = self.node.publish(rec);
        for w in waiters {
            let _ = w.send(rec.clone());
        }
        io.to_log = Some(rec);
    }
}

impl Io {
    fn handles(&self) -> Vec<ServiceHandle> {
        self.services.iter().map(|s| s.handle).collect()
    }

    fn name_of(&self, h: ServiceHandle) -> String {
        self.services
            .iter()
            .find(|s| s.handle == h)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("#{h}"))
    }
}

/// The target's answer to the commit, as the state machine takes it.
fn commit_answer(
    outcome: Result<MihOutcome, edgemob_mih::SendError>,
    peer: &str,
    waited: Duration,
) -> Result<(), MigrationError> {
    match outcome {
        Ok(MihOutcome::Confirm(m)) => match *m {
            Message::N2nHoCommitConfirm(c) if c.status.is_success() => Ok(()),
            Message::N2nHoCommitConfirm(c) => {
                let why = c
                    .edgemob
                    .and_then(|e| e.reason)
                    .map(|r| String::from_utf8_lossy(&r.text).into_owned())
                    .unwrap_or_else(|| format!("status {}", c.status.0));
                Err(MigrationError::Refused {
                    peer: peer.to_owned(),
                    why,
                })
            }
            other => Err(MigrationError::CommitUnexpected {
                peer: peer.to_owned(),
                message: other.name().to_owned(),
            }),
        },
        Ok(MihOutcome::Timeout { acknowledged }) => Err(MigrationError::CommitTimeout {
            peer: peer.to_owned(),
            waited_ms: waited.as_millis() as u64,
            acknowledged,
        }),
        Err(e) => Err(MigrationError::CommitSend(e.to_string())),
    }
}

/// How the transfer ended, as the state machine takes it.
fn transfer_result(
    r: Result<TransferOutcome, crate::cxtp_link::TransferError>,
    peer: &str,
    transfer_ms: u64,
) -> Result<(), MigrationError> {
    let peer = peer.to_owned();
    match r {
        Ok(TransferOutcome::Acked { all_ok: true, .. }) => Ok(()),
        Ok(TransferOutcome::Acked { statuses, .. }) => Err(MigrationError::NotInstalled {
            peer,
            statuses: statuses
                .iter()
                .filter(|(_, s)| !s.is_success())
                .map(|(f, s)| format!("{f}={s}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        Ok(TransferOutcome::TimedOut) => Err(MigrationError::NoCtdr {
            peer,
            waited_ms: transfer_ms,
        }),
        Ok(TransferOutcome::Cancelled) => Err(MigrationError::TransferCancelled { peer }),
        Ok(TransferOutcome::ConnectionLost) => Err(MigrationError::ConnectionLost { peer }),
        Err(crate::cxtp_link::TransferError::NotConnected(_)) => {
            Err(MigrationError::NoCxtpLink { peer })
        }
        Err(e) => Err(MigrationError::TransferSend(e.to_string())),
    }
}

/// MIH_N2N_HO_Complete for `ue` to `peer`: from a source, a failed result
/// drops the handover the target accepted instead of holding it until its
/// timer ends; from a target, success lets the source drop its lock.
pub(crate) fn report_ho_complete(
    node: &Arc<Node>,
    peer: &str,
    ue: &str,
    source_cell: u32,
    target_cell: u32,
    result: edgemob_mih::HoResult,
) {
    let tuple = |cell| edgemob_mih::LinkTupleId {
        link: LinkId {
            link_type: LinkType::WIRELESS_OTHER,
            addr: LinkAddr::Cell3g {
                plmn: PLMN,
                cell_id: cell,
            },
        },
        poa: None,
    };
    let msg = Message::N2nHoCompleteRequest(edgemob_mih::N2nHoCompleteRequest {
        mn_mihf_id: mihf_id(ue),
        source_link: tuple(source_cell),
        target_link: tuple(target_cell),
        ho_result: result,
        edgemob: None,
    });
    let node = Arc::clone(node);
    let peer = mihf_id(peer);
    tokio::spawn(async move {
        let _ = node.mih.request(&peer, msg).await;
    });
}
