//! The target's task: carries out what [`IncomingMigration`] decides as a
//! UE arrives (admission is in `admission.rs`).
//!
//! ```text
//! MIH_N2N_HO_Commit.indication ─► admission: every service the UE uses is
//!        hosted here ─► response(Status); the incoming migration starts
//!        ─► lock the 4-tuples the request announced (2 ms later, or at once
//!           on a path switch)
//! CTD(s) ─► manifest ─► ContextArrived to each service ─► lock the rest,
//!        restore sockets (frozen) ─► ImportContext ─► CTDR
//! path switch (CompleteHandover, or the activation timer)
//!        ─► unlock ─► activate sockets ─► hand them to the services
//!        ─► MIH_N2N_HO_Complete to the source (it may drop its lock)
//! ```
//!
//! The sockets go live only once the UE's path reaches this eNBC: their
//! first segment (a window probe) must reach a UE whose answer comes back
//! here, or the connection waits for a retransmission timeout. Any failure
//! before the CTDR closes the restored sockets silently and answers the
//! CTDR with failure statuses, so the source keeps serving the UE.

use super::admission::Admitted;
use super::error::{MigrationError, Side};
use super::incoming::{Arrival, InAction, InInput, IncomingMigration};
use super::manifest::Manifest;
use super::source::report_ho_complete;
use super::table::TargetEvent;
use super::{Finished, notify_services};
use crate::cxtp_link::{Arrived, ReplyHandle};
use crate::history::{Direction, Record};
use crate::node::Node;
use crate::registry::{Conn, ServiceHandle, UeRec};
use edgemob_cxtp::{Context, Fpt};
use edgemob_mih::HoResult;
use edgemob_paas_api::fdchannel::ChannelMsg;
use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::service_event::Event as Ev;
use edgemob_session_migrate::{FourTuple, RestoredSocket, TcpStreamImage, restore_frozen};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::Instrument;

/// One service's part of an arrival.
struct Taker {
    handle: ServiceHandle,
    name: String,
    fpt: Fpt,
    context_index: usize,
    /// (connection id, token, index into the images)
    conns: Vec<(u32, u64, usize)>,
}

/// What came in the CTD(s), and what was made of it.
struct InArrival {
    mn: IpAddr,
    contexts: Vec<Context>,
    reply: ReplyHandle,
    manifest: Manifest,
    takers: Vec<Taker>,
    images: Vec<TcpStreamImage>,
    restored: Vec<RestoredSocket>,
    record: Record,
}

/// Starts the task of an accepted handover.
pub(super) fn spawn(
    node: Arc<Node>,
    peer: &str,
    a: Admitted,
    sm: IncomingMigration,
    rx: mpsc::UnboundedReceiver<TargetEvent>,
) {
    let span = tracing::info_span!("migration", id = a.mig, ue = %a.ue, direction = "in");
    let task = Incoming {
        node,
        peer: peer.to_owned(),
        a,
        arrival: None,
        to_log: None,
    };
    tokio::spawn(task.run(sm, rx).instrument(span));
}

/// The task of one incoming migration.
struct Incoming {
    node: Arc<Node>,
    peer: String,
    a: Admitted,
    arrival: Option<InArrival>,
    to_log: Option<Record>,
}

impl Incoming {
    async fn run(
        mut self,
        mut sm: IncomingMigration,
        mut events: mpsc::UnboundedReceiver<TargetEvent>,
    ) {
        while !sm.is_over() {
            let deadline = sm.poll_timeout();
            let woke = tokio::select! {
                biased;
                e = events.recv() => Some(e),
                _ = crate::timer(deadline) => None,
            };
            let now = Instant::now();
            let actions = match woke {
                None => sm.handle_timeout(now),
                // The table keeps the sender while the migration runs; if it
                // is gone nothing can reach this migration any more.
                Some(None) => sm.abandon(
                    MigrationError::SourceCancelled {
                        peer: self.peer.clone(),
                    },
                    now,
                ),
                Some(Some(ev)) => {
                    let input = match ev {
                        TargetEvent::Arrived(arrived, manifest) => self.arrived(arrived, manifest),
                        TargetEvent::Imported { service, reply } => {
                            let (name, fpt) = self.taker(service);
                            InInput::Imported {
                                service,
                                result: if reply.success {
                                    Ok(())
                                } else {
                                    Err(MigrationError::ImportRefused {
                                        service: name,
                                        fpt,
                                        why: reply.error,
                                    })
                                },
                            }
                        }
                        TargetEvent::ServiceGone(service) => {
                            let (name, fpt) = self.taker(service);
                            InInput::Imported {
                                service,
                                result: Err(MigrationError::ImportServiceGone {
                                    service: name,
                                    fpt,
                                }),
                            }
                        }
                        TargetEvent::PathSwitched => InInput::PathSwitched,
                        TargetEvent::Cancelled => InInput::Cancelled,
                        TargetEvent::SourceAbandoned => InInput::SourceAbandoned,
                    };
                    sm.handle(input, now)
                }
            };
            self.execute(&mut sm, actions).await;
        }
        if let Some(rec) = self.to_log.take() {
            self.node.log(rec);
        }
    }

    /// The name and context FPT of the service behind `h`, to blame it.
    fn taker(&self, h: ServiceHandle) -> (String, Fpt) {
        self.arrival
            .as_ref()
            .and_then(|a| a.takers.iter().find(|t| t.handle == h))
            .map_or_else(
                || (format!("#{h}"), Fpt::SERVICE_APP_CONTEXT),
                |t| (t.name.clone(), t.fpt),
            )
    }

    /// Reads the CTD(s): which local service takes which context, and the
    /// connection images.
    fn arrived(&mut self, arrived: Arrived, manifest: Manifest) -> InInput {
        self.node.cpu.kick();
        let Arrived {
            peer: _,
            mn,
            contexts,
            reply,
        } = arrived;
        let fpts = fpts_of(&contexts);
        let record = Record {
            context_bytes: contexts.iter().map(|c| c.data.len() as u64).sum(),
            app_context_bytes: contexts
                .iter()
                .filter(|c| c.fpt != Fpt::TCP_CONNECTION_IMAGE && c.fpt != Fpt::MIGRATION_MANIFEST)
                .map(|c| c.data.len() as u64)
                .sum(),
            ..Record::begin(
                self.a.mig,
                &self.a.ue,
                Direction::In,
                &self.peer,
                manifest.source_cell,
                manifest.target_cell,
            )
        };
        let mut arrival = InArrival {
            mn,
            contexts,
            reply,
            manifest,
            takers: Vec::new(),
            images: Vec::new(),
            restored: Vec::new(),
            record,
        };
        let result = self.read_arrival(&mut arrival);
        self.arrival = Some(arrival);
        InInput::Arrived {
            fpts,
            arrival: result,
        }
    }

    fn read_arrival(&self, a: &mut InArrival) -> Result<Arrival, MigrationError> {
        if a.mn != self.a.ue_addr {
            return Err(MigrationError::NotAccepted {
                peer: self.peer.clone(),
                ue: self.a.ue.clone(),
                id: self.a.mig,
            });
        }
        let reg = self.node.reg.lock().expect("not poisoned");
        for s in &a.manifest.services {
            let Some((handle, _)) = reg.service_by_name(&s.name) else {
                return Err(MigrationError::ServiceNoLongerHosted(s.name.clone()));
            };
            let mut conns = Vec::new();
            for c in &s.connections {
                let img = TcpStreamImage::decode(&a.contexts[c.image_index as usize].data)
                    .map_err(|e| MigrationError::BadImage {
                        connection: c.connection_id,
                        why: e.to_string(),
                    })?;
                conns.push((c.connection_id, rand::random::<u64>(), a.images.len()));
                a.images.push(img);
            }
            a.takers.push(Taker {
                handle,
                name: s.name.clone(),
                fpt: a.contexts[s.context_index as usize].fpt,
                context_index: s.context_index as usize,
                conns,
            });
        }
        Ok(Arrival {
            services: a.takers.iter().map(|t| t.handle).collect(),
            tuples: a.images.iter().map(|i| i.tuple).collect(),
        })
    }

    async fn execute(&mut self, sm: &mut IncomingMigration, actions: Vec<InAction>) {
        let mut queue: VecDeque<InAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            let fed = match action {
                InAction::Prelock(tuples) => match self.node.lock_tuples(&tuples) {
                    Ok(()) => Some(InInput::Prelocked(true)),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot lock the announced connections before the CTD");
                        Some(InInput::Prelocked(false))
                    }
                },
                InAction::Unlock(tuples) => {
                    self.node.unlock_tuples(&tuples);
                    None
                }
                InAction::AnnounceContexts => {
                    let fed = self.announce().err();
                    tracing::trace!("contexts announced");
                    // Let the event go out now (the stream that carries it
                    // is another task on this thread), so the service works
                    // on it while we restore.
                    tokio::task::yield_now().await;
                    fed
                }
                InAction::Restore { lock } => Some(InInput::Restored(self.restore(&lock))),
                InAction::ReplyCtdr(statuses) => {
                    if let Some(a) = &self.arrival {
                        a.reply.reply(a.mn, statuses);
                    }
                    None
                }
                InAction::Activate => {
                    self.activate().await;
                    None
                }
                InAction::CloseRestored => {
                    self.close_restored();
                    None
                }
                InAction::ClearImports => {
                    let mut reg = self.node.reg.lock().expect("not poisoned");
                    if let Some(i) = reg.migrations.incoming_mut(&self.a.ue, self.a.mig) {
                        i.importing.clear();
                    }
                    None
                }
                InAction::ReportComplete => {
                    report_ho_complete(
                        &self.node,
                        &self.peer,
                        &self.a.ue,
                        self.a.source_cell,
                        self.a.target_cell,
                        HoResult::SUCCESS,
                    );
                    None
                }
                InAction::Notify(n) => {
                    let handles: Vec<ServiceHandle> = self
                        .arrival
                        .as_ref()
                        .map(|a| a.takers.iter().map(|t| t.handle).collect())
                        .unwrap_or_default();
                    notify_services(&self.node, &handles, || {
                        n.event(self.a.mig, &self.a.ue, Side::Target)
                    });
                    None
                }
                InAction::Finish(f) => {
                    self.finish(f);
                    None
                }
            };
            if let Some(input) = fed {
                queue.extend(sm.handle(input, Instant::now()));
            }
        }
    }

    /// The UE becomes visible here (arriving, no connections yet) and every
    /// service that takes a context hears ContextArrived.
    fn announce(&mut self) -> Result<(), InInput> {
        let Some(a) = &self.arrival else {
            return Ok(());
        };
        let mig = self.a.mig;
        let mut reg = self.node.reg.lock().expect("not poisoned");
        reg.users.insert(
            self.a.ue.clone(),
            UeRec {
                addr: a.mn,
                cell: self.a.target_cell,
                services: BTreeMap::new(),
                migrating: Some(mig),
            },
        );
        let crate::registry::Registry {
            services,
            migrations,
            ..
        } = &mut *reg;
        let Some(entry) = migrations.incoming_mut(&self.a.ue, mig) else {
            return Ok(());
        };
        for t in &a.takers {
            entry.importing.insert(t.handle);
            let ctx = &a.contexts[t.context_index];
            let ev = Ev::ContextArrived(pb::ContextArrived {
                migration_id: mig,
                ue: self.a.ue.clone(),
                ue_address: a.mn.to_string(),
                context: ctx.data.clone(),
                fpt: u32::from(ctx.fpt.code()),
                connections: t
                    .conns
                    .iter()
                    .map(|&(connection_id, fd_token, _)| pb::ArrivedConnection {
                        connection_id,
                        fd_token,
                    })
                    .collect(),
                source_cell: a.manifest.source_cell,
            });
            if !services.get(&t.handle).is_some_and(|svc| svc.notify(ev)) {
                return Err(InInput::Imported {
                    service: t.handle,
                    result: Err(MigrationError::ServiceNotListening {
                        service: t.name.clone(),
                        fpt: t.fpt,
                    }),
                });
            }
        }
        Ok(())
    }

    /// Locks what the early lock did not cover, then rebuilds every socket
    /// in repair mode.
    fn restore(&mut self, lock: &[FourTuple]) -> Result<(), MigrationError> {
        let Some(a) = &mut self.arrival else {
            return Ok(());
        };
        self.node
            .lock_tuples(lock)
            .map_err(|e| MigrationError::Lock(e.to_string()))?;
        for img in &a.images {
            match restore_frozen(img) {
                Ok(s) => a.restored.push(s),
                Err(e) => {
                    return Err(MigrationError::Restore(format!(
                        "cannot restore {} -> {}: {e}",
                        img.tuple.local, img.tuple.peer
                    )));
                }
            }
        }
        tracing::trace!("sockets restored");
        Ok(())
    }

    /// Live: leaves repair mode (the lock is gone already) and hands each
    /// socket to its service; the agent keeps duplicates.
    async fn activate(&mut self) {
        let Some(a) = &mut self.arrival else {
            return;
        };
        let mut live = Vec::with_capacity(a.restored.len());
        for s in a.restored.drain(..) {
            let tuple = s.tuple();
            match s.activate() {
                Ok(fd) => live.push(Some((fd, tuple))),
                Err(e) => {
                    tracing::error!(local = %tuple.local, peer = %tuple.peer, error = %e, "cannot activate a restored connection");
                    live.push(None);
                }
            }
        }
        let mut services: BTreeMap<ServiceHandle, Vec<Conn>> = BTreeMap::new();
        for t in &a.takers {
            let channel = self
                .node
                .reg
                .lock()
                .expect("not poisoned")
                .services
                .get(&t.handle)
                .map(|s| Arc::clone(&s.channel));
            for &(id, token, idx) in &t.conns {
                let Some(Some((fd, tuple))) = live.get(idx) else {
                    if let Some(ch) = &channel {
                        let _ = ch.revoke(token).await;
                    }
                    continue;
                };
                if let Some(ch) = &channel
                    && let Err(e) = ch.give(token, fd.as_fd()).await
                {
                    tracing::error!(service = %t.name, error = %e, "cannot hand a connection to the service");
                }
                match fd.try_clone() {
                    Ok(mine) => services.entry(t.handle).or_default().push(Conn {
                        id,
                        fd: mine,
                        local: tuple.local,
                        peer: tuple.peer,
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot keep a duplicate of a restored connection")
                    }
                }
            }
        }
        // The services hold the live sockets now; the agent keeps duplicates.
        drop(live);
        let mut reg = self.node.reg.lock().expect("not poisoned");
        if let Some(u) = reg.users.get_mut(&self.a.ue) {
            u.services = services;
            u.migrating = None;
        }
    }

    /// Gives the arrival up: closes the restored sockets silently and
    /// revokes the announced tokens.
    fn close_restored(&mut self) {
        let Some(a) = &mut self.arrival else {
            return;
        };
        a.restored.clear(); // still in repair mode: closing sends nothing
        let channels: Vec<_> = {
            let mut reg = self.node.reg.lock().expect("not poisoned");
            if reg
                .users
                .get(&self.a.ue)
                .is_some_and(|u| u.migrating == Some(self.a.mig))
            {
                reg.users.remove(&self.a.ue);
            }
            a.takers
                .iter()
                .filter_map(|t| {
                    reg.services.get(&t.handle).map(|s| {
                        (
                            Arc::clone(&s.channel),
                            t.conns.iter().map(|c| c.1).collect::<Vec<_>>(),
                        )
                    })
                })
                .collect()
        };
        tokio::spawn(async move {
            for (ch, tokens) in channels {
                for t in tokens {
                    let _ = ch.revoke(t).await;
                }
            }
        });
    }

    fn finish(&mut self, f: Finished) {
        self.node
            .reg
            .lock()
            .expect("not poisoned")
            .migrations
            .update(&self.a.ue, |m| {
                if m.incoming.as_ref().is_some_and(|i| i.id == self.a.mig) {
                    m.incoming = None;
                }
            });
        let mut rec = match &self.arrival {
            Some(a) => a.record.clone(),
            None => Record::begin(
                self.a.mig,
                &self.a.ue,
                Direction::In,
                &self.peer,
                self.a.source_cell,
                self.a.target_cell,
            ),
        };
        rec.outcome = f.outcome;
        rec.phases = f.phases;
        rec.connections = f.connections;
        if let Some(e) = &f.error {
            rec.reason = e.to_string();
            tracing::warn!(reason = %rec.reason, "arrival abandoned; the source keeps the UE");
        }
        self.to_log = Some(self.node.publish(rec));
    }
}

/// Hands a transfer that arrived from a peer to the incoming migration it
/// belongs to, or refuses it.
pub fn receive(node: Arc<Node>, arrived: Arrived) {
    let manifest = match Manifest::parse(&arrived.contexts) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(peer = %arrived.peer, mn = %arrived.mn, error = %e, "transfer without a valid migration manifest refused");
            node.metrics.dropped("cxtp", "bad_manifest");
            refuse(&arrived, &MigrationError::BadManifest(e.to_string()));
            return;
        }
    };
    let mut reg = node.reg.lock().expect("not poisoned");
    let entry = reg
        .migrations
        .incoming_mut(&manifest.ue, manifest.migration_id)
        .filter(|i| i.peer == arrived.peer);
    if let Some(i) = entry {
        let _ = i.events.send(TargetEvent::Arrived(arrived, manifest));
        return;
    }
    drop(reg);
    let err = MigrationError::NotAccepted {
        peer: arrived.peer.clone(),
        ue: manifest.ue.clone(),
        id: manifest.migration_id,
    };
    refuse(&arrived, &err);
    let rec = Record {
        outcome: err.outcome(Side::Target),
        reason: err.to_string(),
        context_bytes: arrived.contexts.iter().map(|c| c.data.len() as u64).sum(),
        ..Record::begin(
            manifest.migration_id,
            &manifest.ue,
            Direction::In,
            &arrived.peer,
            manifest.source_cell,
            manifest.target_cell,
        )
    };
    tracing::warn!(reason = %rec.reason, "transfer refused");
    node.finish(rec);
}

/// Answers a transfer that belongs to no migration here.
fn refuse(arrived: &Arrived, err: &MigrationError) {
    arrived
        .reply
        .reply(arrived.mn, err.ctdr_statuses(&fpts_of(&arrived.contexts)));
}

/// The FPTs of a transfer, sorted and each once: what a CTDR answers for.
fn fpts_of(contexts: &[Context]) -> Vec<Fpt> {
    let mut fpts: Vec<Fpt> = contexts.iter().map(|c| c.fpt).collect();
    fpts.sort();
    fpts.dedup();
    fpts
}

impl crate::fdserver::ChannelConn {
    /// Tells the service a socket announced under `token` will not come.
    pub async fn revoke(
        &self,
        token: u64,
    ) -> Result<(), edgemob_paas_api::fdchannel::ChannelError> {
        self.send_plain(ChannelMsg::Revoke { token }).await
    }
}
