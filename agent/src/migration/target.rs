//! The target side: a UE arrives at this eNBC.
//!
//! ```text
//! MIH_N2N_HO_Commit.indication ─► admission: every service the UE uses is
//!        hosted here ─► response(Status), and the handover is expected
//!        ─► lock the 4-tuples the request announced
//! CTD(s) ─► manifest ─► lock the rest ─► restore sockets (frozen)
//!        ─► ContextArrived to each service ─► ImportContext  ─► CTDR
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

use super::manifest::Manifest;
use super::{notify_services, unix_now_ns};
use crate::cxtp_link::Arrived;
use crate::history::{Direction, Outcome, Phases, Record, ns};
use crate::mih_link::{Indication, mihf_id};
use crate::node::{ArrivalSignal, Node};
use crate::registry::{Conn, Expectation, ImportReply, ServiceHandle, UeRec};
use edgemob_cxtp::{Fpt, Status};
use edgemob_mih::{
    CapabilityDiscoverResponse, EdgemobInfo, HoResult, LinkAddr, LinkId, LinkTupleId, LinkType,
    Message, MihCommandList, N2nHoCommitResponse, N2nHoCompleteRequest, N2nHoCompleteResponse,
    Reason, Status as MihStatus, TransportList,
};
use edgemob_paas_api::fdchannel::ChannelMsg;
use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::service_event::Event as Ev;
use edgemob_session_migrate::{FourTuple, RestoredSocket, TcpStreamImage, restore_frozen};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::source::PLMN;

/// At most this many announced connections are locked before a CTD comes.
const MAX_ANNOUNCED_CONNECTIONS: usize = 4096;

/// When the CTD has not come this long after the accepted commit, its
/// connections are locked ahead of it. A UE cannot be on the target's
/// radio this soon after the X2 Handover Request ACK (RRC reconfiguration
/// and random access take tens of milliseconds), and a CTD that comes in
/// time is locked on arrival: the nf_tables transaction (tens of
/// microseconds, and a kernel worker's wake-up) stays off the quick
/// handovers, which it slowed by about as much when done at once. An
/// earlier path-switch report locks at once.
const EARLY_LOCK_AFTER: Duration = Duration::from_millis(2);

impl Node {
    /// A peer's MIH request.
    pub fn on_indication(self: &Arc<Self>, ind: Indication) {
        let Indication { peer, tid, message } = ind;
        let response = match message {
            Message::N2nHoCommitIndication(req) => {
                Message::N2nHoCommitResponse(self.admit(&peer.to_string(), req))
            }
            Message::N2nHoCompleteIndication(req) => {
                let ue = req.mn_mihf_id.to_string();
                if req.ho_result == HoResult::SUCCESS {
                    // As source: the UE's path reaches the target now; stop
                    // dropping its stray packets after a short grace.
                    if let Some(tx) = self.lingering.lock().expect("not poisoned").remove(&ue) {
                        let _ = tx.send(());
                    }
                } else {
                    // As target: the source abandoned a handover we accepted.
                    let peer = peer.to_string();
                    let dropped = self
                        .reg
                        .lock()
                        .expect("not poisoned")
                        .take_expectations(|e| e.ue == ue && e.peer == peer);
                    for e in &dropped {
                        self.unlock_tuples(e.locked_tuples());
                    }
                }
                Message::N2nHoCompleteResponse(N2nHoCompleteResponse {
                    status: MihStatus::SUCCESS,
                    mn_mihf_id: req.mn_mihf_id,
                    source_link: req.source_link,
                    target_link: req.target_link,
                    resource_retention: Some(false),
                    edgemob: None,
                })
            }
            Message::CapabilityDiscoverIndication(_) => {
                Message::CapabilityDiscoverResponse(CapabilityDiscoverResponse {
                    status: MihStatus::SUCCESS,
                    events: None,
                    commands: Some(MihCommandList::NET_HO),
                    query_types: None,
                    transports: Some(TransportList::UDP.union(TransportList::TCP)),
                })
            }
            other => {
                tracing::debug!(%peer, message = other.name(), "MIH indication ignored");
                return;
            }
        };
        let accepted = match &response {
            Message::N2nHoCommitResponse(r) if r.status.is_success() => {
                r.edgemob.as_ref().and_then(|i| i.migration_id)
            }
            _ => None,
        };
        if let Err(e) = self.mih.respond(&peer, tid, response) {
            tracing::warn!(%peer, error = %e, "cannot answer MIH request");
        }
        if let Some(mig) = accepted {
            // Its CTD follows within a round trip: wake-ups from here on
            // should find the CPUs polling.
            self.cpu.kick();
            let node = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(EARLY_LOCK_AFTER).await;
                node.prelock(mig);
            });
        }
    }

    /// Drops the announced connections' packets before their CTD comes,
    /// if it is late: the UE's path may reach this eNBC before the CTD
    /// does (a slow export), and a packet for a 4-tuple with no socket yet
    /// would be answered with a RST. A failure is not fatal: the CTD's
    /// arrival locks what is not locked yet. Nothing happens once the CTD
    /// has taken the expectation.
    pub fn prelock(&self, mig: u64) {
        let tuples = match self
            .reg
            .lock()
            .expect("not poisoned")
            .expectations
            .get(&mig)
        {
            Some(e) if !e.locked && !e.announced.is_empty() => e.announced.clone(),
            _ => return,
        };
        if let Err(e) = self.lock_tuples(&tuples) {
            tracing::debug!(error = %e, "cannot lock the announced connections before the CTD");
            return;
        }
        match self
            .reg
            .lock()
            .expect("not poisoned")
            .expectations
            .get_mut(&mig)
        {
            Some(e) => e.locked = true,
            None => self.unlock_tuples(&tuples),
        }
    }

    /// Can this eNBC host the UE's services? Records the expected handover.
    fn admit(&self, peer: &str, req: edgemob_mih::N2nHoCommitRequest) -> N2nHoCommitResponse {
        let info = req.edgemob.clone().unwrap_or_default();
        let mig = info.migration_id.unwrap_or(0);
        let ue = req.mn_mihf_id.to_string();
        let source_cell = info.source_cell.unwrap_or(0);
        let target_cell = match req.poa {
            LinkAddr::Cell3g { cell_id, .. } => cell_id,
            _ => 0,
        };
        let refuse = |code: u16, text: String| {
            tracing::info!(%peer, %ue, reason = %text, "handover refused");
            self.finish(Record {
                migration_id: mig,
                ue: ue.clone(),
                direction: Direction::In,
                peer: peer.to_owned(),
                source_cell,
                target_cell,
                outcome: Outcome::Rejected,
                reason: text.clone(),
                phases: Phases::default(),
                context_bytes: 0,
                app_context_bytes: 0,
                connections: 0,
                started_unix_ns: unix_now_ns(),
            });
            N2nHoCommitResponse {
                status: MihStatus::REJECTED,
                mn_mihf_id: req.mn_mihf_id.clone(),
                link_id: None,
                assigned_resources: None,
                edgemob: Some(EdgemobInfo {
                    migration_id: Some(mig),
                    reason: Some(Reason {
                        code,
                        text: text.into(),
                    }),
                    ..EdgemobInfo::default()
                }),
            }
        };
        if mig == 0 || info.ue_address.is_none() {
            return refuse(
                Reason::INCOMPLETE_REQUEST,
                "request lacks edgemob's migration id or UE address".into(),
            );
        }
        if !self.cfg.serves(target_cell) {
            return refuse(
                Reason::INCOMPLETE_REQUEST,
                format!("{} does not serve cell {target_cell}", self.cfg.mihf_id),
            );
        }
        let mut reg = self.reg.lock().expect("not poisoned");
        for s in &info.services {
            let name = String::from_utf8_lossy(&s.name).into_owned();
            let Some((_, svc)) = reg.service_by_name(&name) else {
                drop(reg);
                return refuse(
                    Reason::SERVICE_NOT_HOSTED,
                    format!("service {name} is not registered on {}", self.cfg.mihf_id),
                );
            };
            if let Some(f) = s.fpts.iter().find(|f| !svc.fpts.contains(&Fpt(**f))) {
                drop(reg);
                return refuse(
                    Reason::SERVICE_NOT_HOSTED,
                    format!(
                        "service {name} on {} does not accept contexts of FPT {f:#06x}",
                        self.cfg.mihf_id
                    ),
                );
            }
        }
        if reg.users.contains_key(&ue) {
            drop(reg);
            return refuse(
                Reason::BUSY,
                format!("UE {ue} is already served by {}", self.cfg.mihf_id),
            );
        }
        // Only the UE's own connections may be locked on its behalf.
        let announced: Vec<FourTuple> = info
            .connections
            .iter()
            .filter(|c| Some(c.peer.ip()) == info.ue_address)
            .take(MAX_ANNOUNCED_CONNECTIONS)
            .map(|c| FourTuple {
                local: c.local,
                peer: c.peer,
            })
            .collect();
        if announced.len() < info.connections.len() {
            tracing::debug!(
                %peer, %ue,
                announced = info.connections.len(),
                kept = announced.len(),
                "connections not of the UE's address (or too many) left out of the early lock"
            );
        }
        reg.expectations.insert(
            mig,
            Expectation {
                ue: ue.clone(),
                ue_addr: info.ue_address,
                peer: peer.to_owned(),
                source_cell,
                target_cell,
                until: Instant::now() + Duration::from_millis(self.cfg.timers.commit_hold_ms),
                announced,
                locked: false,
            },
        );
        N2nHoCommitResponse {
            status: MihStatus::SUCCESS,
            mn_mihf_id: req.mn_mihf_id,
            link_id: None,
            assigned_resources: None,
            edgemob: Some(EdgemobInfo {
                migration_id: Some(mig),
                ..EdgemobInfo::default()
            }),
        }
    }
}

/// One service's part of an arrival.
struct Incoming {
    handle: ServiceHandle,
    name: String,
    /// (connection id, token, index into the restored sockets)
    conns: Vec<(u32, u64, usize)>,
}

/// Handles a transfer that arrived from a peer.
pub async fn receive(node: Arc<Node>, arrived: Arrived) {
    node.cpu.kick();
    let manifest = Manifest::parse(&arrived.contexts);
    let mig = manifest.as_ref().map(|m| m.migration_id).unwrap_or(0);
    let ue = manifest.as_ref().map(|m| m.ue.clone()).unwrap_or_default();
    let span = tracing::info_span!("migration", id = mig, %ue, direction = "in");
    install(node, arrived, manifest).instrument(span).await;
}

fn statuses(contexts: &[edgemob_cxtp::Context], f: impl Fn(Fpt) -> Status) -> Vec<(Fpt, Status)> {
    let mut fpts: Vec<Fpt> = contexts.iter().map(|c| c.fpt).collect();
    fpts.sort();
    fpts.dedup();
    fpts.into_iter().map(|fpt| (fpt, f(fpt))).collect()
}

/// Per-FPT statuses that blame `culprit` with `status` and accept the rest.
fn blaming(contexts: &[edgemob_cxtp::Context], culprit: Fpt, status: Status) -> Vec<(Fpt, Status)> {
    statuses(contexts, |f| {
        if f == culprit {
            status
        } else {
            Status::SUCCESS
        }
    })
}

async fn install(
    node: Arc<Node>,
    arrived: Arrived,
    manifest: Result<Manifest, super::manifest::ManifestError>,
) {
    let t0 = Instant::now();
    let Arrived {
        peer,
        mn,
        contexts,
        reply,
    } = arrived;
    let manifest = match manifest {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(%peer, %mn, error = %e, "transfer without a valid migration manifest refused");
            node.metrics.dropped("cxtp", "bad_manifest");
            reply.reply(
                mn,
                statuses(&contexts, |f| {
                    if f == Fpt::MIGRATION_MANIFEST {
                        Status::INCOMPLETE
                    } else {
                        Status::REJECTED
                    }
                }),
            );
            return;
        }
    };
    let mig = manifest.migration_id;
    let ue = manifest.ue.clone();
    let mut rec = Record {
        migration_id: mig,
        ue: ue.clone(),
        direction: Direction::In,
        peer: peer.clone(),
        source_cell: manifest.source_cell,
        target_cell: manifest.target_cell,
        outcome: Outcome::Failed,
        reason: String::new(),
        phases: Phases::default(),
        context_bytes: contexts.iter().map(|c| c.data.len() as u64).sum(),
        app_context_bytes: contexts
            .iter()
            .filter(|c| c.fpt != Fpt::TCP_CONNECTION_IMAGE && c.fpt != Fpt::MIGRATION_MANIFEST)
            .map(|c| c.data.len() as u64)
            .sum(),
        connections: 0,
        started_unix_ns: unix_now_ns(),
    };
    // Ends the arrival unsuccessfully: answers the CTD(s) with `answer`
    // and records why.
    let fail = |rec: &mut Record, answer: Vec<(Fpt, Status)>, reason: String| {
        reply.reply(mn, answer);
        rec.reason = reason;
        rec.phases.total_ns = ns(t0.elapsed());
        node.finish(rec.clone());
    };
    let refuse_all = |rec: &mut Record, reason: String| {
        fail(rec, statuses(&contexts, |_| Status::REJECTED), reason)
    };

    // Was this handover accepted over MIH, by this peer, for this UE?
    let expectation = node
        .reg
        .lock()
        .expect("not poisoned")
        .expectations
        .remove(&mig);
    let Some(exp) =
        expectation.filter(|e| e.peer == peer && e.ue == ue && e.ue_addr.is_none_or(|a| a == mn))
    else {
        refuse_all(
            &mut rec,
            format!("no accepted MIH_N2N_HO_Commit from {peer} for UE {ue} (migration {mig:#x})"),
        );
        return;
    };
    // What was locked when the handover was accepted (see `prelock`).
    let prelocked = exp.locked_tuples().to_vec();

    // Which local service takes which context.
    let mut incoming = Vec::new();
    let mut images: Vec<TcpStreamImage> = Vec::new();
    {
        let reg = node.reg.lock().expect("not poisoned");
        for s in &manifest.services {
            let Some((handle, _)) = reg.service_by_name(&s.name) else {
                drop(reg);
                node.unlock_tuples(&prelocked);
                refuse_all(
                    &mut rec,
                    format!("service {} is no longer registered here", s.name),
                );
                return;
            };
            let mut conns = Vec::new();
            for c in &s.connections {
                let img = match TcpStreamImage::decode(&contexts[c.image_index as usize].data) {
                    Ok(i) => i,
                    Err(e) => {
                        drop(reg);
                        node.unlock_tuples(&prelocked);
                        fail(
                            &mut rec,
                            blaming(&contexts, Fpt::TCP_CONNECTION_IMAGE, Status::INCOMPLETE),
                            format!("connection image {} does not decode: {e}", c.connection_id),
                        );
                        return;
                    }
                };
                conns.push((c.connection_id, rand::random::<u64>(), images.len()));
                images.push(img);
            }
            incoming.push(Incoming {
                handle,
                name: s.name.clone(),
                conns,
            });
        }
    }
    rec.connections = images.len() as u32;

    // The UE is arriving: visible, but with no connections yet.
    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel();
    {
        let mut reg = node.reg.lock().expect("not poisoned");
        reg.users.insert(
            ue.clone(),
            UeRec {
                addr: mn,
                cell: exp.target_cell,
                services: BTreeMap::new(),
                migrating: Some(mig),
            },
        );
    }
    node.arriving
        .lock()
        .expect("not poisoned")
        .insert(ue.clone(), (mig, sig_tx.clone()));
    if node
        .switched_early
        .lock()
        .expect("not poisoned")
        .remove(&ue)
        .is_some()
    {
        let _ = sig_tx.send(ArrivalSignal::PathSwitched);
    }
    let handles: Vec<ServiceHandle> = incoming.iter().map(|i| i.handle).collect();

    // Hand the contexts to the services first; rebuild the sockets while
    // they take them in.
    let t1 = Instant::now();
    let waits = match announce(&node, &manifest, &contexts, &incoming, mn, &ue) {
        Ok(w) => w,
        Err((fpt, reason)) => {
            abandon(
                &node,
                &ue,
                &incoming,
                Vec::new(),
                &prelocked,
                &handles,
                mig,
                &reason,
            );
            fail(&mut rec, blaming(&contexts, fpt, Status::REJECTED), reason);
            return;
        }
    };

    tracing::trace!("contexts announced");
    // Let the event go out now (the stream that carries it is another task
    // on this thread), so the service works on it while we restore.
    tokio::task::yield_now().await;

    // Lock (what the early lock did not cover), then rebuild the sockets
    // in repair mode. Announced connections that did not come are not
    // moving: let their packets through again.
    let tuples: Vec<FourTuple> = images.iter().map(|i| i.tuple).collect();
    let (covered, stale): (Vec<FourTuple>, Vec<FourTuple>) =
        prelocked.iter().partition(|t| tuples.contains(t));
    node.unlock_tuples(&stale);
    let restored = match lock_and_restore(&node, &images, &tuples, &covered) {
        Ok(r) => r,
        Err((restored, reason, locked)) => {
            let locked = if locked { &tuples[..] } else { &covered[..] };
            abandon(
                &node, &ue, &incoming, restored, locked, &handles, mig, &reason,
            );
            let answer = blaming(&contexts, Fpt::TCP_CONNECTION_IMAGE, Status::RESTORE_FAILED);
            fail(&mut rec, answer, reason);
            return;
        }
    };
    rec.phases.socket_data_ns = ns(t1.elapsed());
    tracing::trace!("sockets restored");
    if let Err((fpt, reason)) = await_imports(&node, mig, &incoming, waits).await {
        abandon(
            &node, &ue, &incoming, restored, &tuples, &handles, mig, &reason,
        );
        fail(&mut rec, blaming(&contexts, fpt, Status::REJECTED), reason);
        return;
    }
    rec.phases.app_data_ns = ns(t1.elapsed());
    tracing::trace!("contexts imported");

    // Installed: tell the source.
    reply.reply(mn, statuses(&contexts, |_| Status::SUCCESS));
    let t4 = Instant::now();
    tracing::debug!(
        prepare_us = (t1 - t0).as_micros() as u64,
        restore_us = rec.phases.socket_data_ns / 1000,
        import_us = rec.phases.app_data_ns / 1000,
        reply_us = (t4 - t1).as_micros() as u64,
        "installed"
    );
    rec.phases.cxtp_ns = ns(t4 - t0);

    // Wait for the UE's path to reach us (or give up waiting).
    let wait = Duration::from_millis(node.cfg.timers.activate_ms);
    let signal = tokio::time::timeout(wait, sig_rx.recv())
        .await
        .ok()
        .flatten();
    node.arriving.lock().expect("not poisoned").remove(&ue);
    if signal == Some(ArrivalSignal::Cancelled) {
        let reason = format!("{peer} cancelled the transfer before the handover completed");
        abandon(
            &node, &ue, &incoming, restored, &tuples, &handles, mig, &reason,
        );
        rec.reason = reason;
        rec.phases.total_ns = ns(t0.elapsed());
        node.finish(rec);
        return;
    }
    if signal.is_none() {
        tracing::debug!(%ue, "no path-switch report; activating after {} ms", node.cfg.timers.activate_ms);
    }

    // Live: unlock first (the window probe must pass), then leave repair mode.
    node.unlock_tuples(&tuples);
    let mut live = Vec::with_capacity(restored.len());
    for s in restored {
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
    for inc in &incoming {
        let channel = node
            .reg
            .lock()
            .expect("not poisoned")
            .services
            .get(&inc.handle)
            .map(|s| Arc::clone(&s.channel));
        for &(id, token, idx) in &inc.conns {
            let Some((fd, tuple)) = live[idx].as_ref() else {
                if let Some(ch) = &channel {
                    let _ = ch.revoke(token).await;
                }
                continue;
            };
            if let Some(ch) = &channel
                && let Err(e) = ch.give(token, fd.as_fd()).await
            {
                tracing::error!(service = %inc.name, error = %e, "cannot hand a connection to the service");
            }
            match fd.try_clone() {
                Ok(mine) => services.entry(inc.handle).or_default().push(Conn {
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
    {
        let mut reg = node.reg.lock().expect("not poisoned");
        if let Some(u) = reg.users.get_mut(&ue) {
            u.services = services;
            u.migrating = None;
        }
    }
    notify_services(&node, &handles, || {
        Ev::Completed(pb::MigrationCompleted {
            migration_id: mig,
            ue: ue.clone(),
            direction: pb::Direction::In as i32,
        })
    });
    rec.outcome = Outcome::Completed;
    rec.phases.total_ns = ns(t4 - t0);
    node.finish(rec);
    // Only a reported path switch proves the UE's packets no longer reach
    // the source; after the activation timer the source keeps its drop
    // rules for their full linger.
    if signal == Some(ArrivalSignal::PathSwitched) {
        report_complete(&node, &peer, &ue, exp.source_cell, exp.target_cell);
    }
}

/// Sockets restored so far, why the rest failed, and whether the lock is held.
type RestoreFailure = (Vec<RestoredSocket>, String, bool);

/// Locks the 4-tuples not in `locked` yet and rebuilds every socket in
/// repair mode.
fn lock_and_restore(
    node: &Node,
    images: &[TcpStreamImage],
    tuples: &[FourTuple],
    locked: &[FourTuple],
) -> Result<Vec<RestoredSocket>, RestoreFailure> {
    let missing: Vec<FourTuple> = tuples
        .iter()
        .filter(|t| !locked.contains(t))
        .copied()
        .collect();
    node.lock_tuples(&missing).map_err(|e| {
        (
            Vec::new(),
            format!("cannot lock the UE's connections: {e}"),
            false,
        )
    })?;
    let mut restored = Vec::with_capacity(images.len());
    for img in images {
        match restore_frozen(img) {
            Ok(s) => restored.push(s),
            Err(e) => {
                let why = format!(
                    "cannot restore {} -> {}: {e}",
                    img.tuple.local, img.tuple.peer
                );
                return Err((restored, why, true));
            }
        }
    }
    Ok(restored)
}

type ImportWait = (Fpt, String, oneshot::Receiver<ImportReply>);

/// Sends ContextArrived to every service. On failure returns the FPT to
/// blame and why.
fn announce(
    node: &Arc<Node>,
    manifest: &Manifest,
    contexts: &[edgemob_cxtp::Context],
    incoming: &[Incoming],
    mn: std::net::IpAddr,
    ue: &str,
) -> Result<Vec<ImportWait>, (Fpt, String)> {
    let mig = manifest.migration_id;
    let mut waits = Vec::new();
    let mut reg = node.reg.lock().expect("not poisoned");
    for (s, inc) in manifest.services.iter().zip(incoming) {
        let (tx, rx) = oneshot::channel::<ImportReply>();
        reg.imports.insert((mig, inc.handle), tx);
        let ctx = &contexts[s.context_index as usize];
        let ev = Ev::ContextArrived(pb::ContextArrived {
            migration_id: mig,
            ue: ue.to_owned(),
            ue_address: mn.to_string(),
            context: ctx.data.clone(),
            fpt: u32::from(ctx.fpt.code()),
            connections: inc
                .conns
                .iter()
                .map(|&(connection_id, fd_token, _)| pb::ArrivedConnection {
                    connection_id,
                    fd_token,
                })
                .collect(),
            source_cell: manifest.source_cell,
        });
        if !reg
            .services
            .get(&inc.handle)
            .is_some_and(|svc| svc.notify(ev))
        {
            for i in incoming {
                reg.imports.remove(&(mig, i.handle));
            }
            return Err((
                ctx.fpt,
                format!("service {} is not listening for events", inc.name),
            ));
        }
        waits.push((ctx.fpt, inc.name.clone(), rx));
    }
    Ok(waits)
}

/// Waits for every service's ImportContext.
async fn await_imports(
    node: &Arc<Node>,
    mig: u64,
    incoming: &[Incoming],
    waits: Vec<ImportWait>,
) -> Result<(), (Fpt, String)> {
    let clear = || {
        let mut reg = node.reg.lock().expect("not poisoned");
        for i in incoming {
            reg.imports.remove(&(mig, i.handle));
        }
    };
    let first = waits
        .first()
        .map(|w| w.0)
        .unwrap_or(Fpt::SERVICE_APP_CONTEXT);
    let deadline = Duration::from_millis(node.cfg.timers.import_ms);
    let answers = tokio::time::timeout(
        deadline,
        futures::future::join_all(
            waits
                .into_iter()
                .map(|(fpt, name, rx)| async move { (fpt, name, rx.await) }),
        ),
    )
    .await;
    let Ok(answers) = answers else {
        clear();
        return Err((
            first,
            format!(
                "services did not import within {} ms",
                node.cfg.timers.import_ms
            ),
        ));
    };
    for (fpt, name, a) in answers {
        match a {
            Ok(r) if r.success => {}
            Ok(r) => {
                clear();
                return Err((
                    fpt,
                    format!("service {name} refused the import: {}", r.error),
                ));
            }
            Err(_) => {
                clear();
                return Err((fpt, format!("service {name} went away during the import")));
            }
        }
    }
    Ok(())
}

/// Gives up an arrival: closes the restored sockets silently, unlocks,
/// revokes the announced tokens and tells the services.
#[allow(clippy::too_many_arguments)]
fn abandon(
    node: &Arc<Node>,
    ue: &str,
    incoming: &[Incoming],
    restored: Vec<RestoredSocket>,
    tuples: &[FourTuple],
    handles: &[ServiceHandle],
    mig: u64,
    reason: &str,
) {
    drop(restored); // still in repair mode: closing sends nothing
    node.unlock_tuples(tuples);
    node.arriving.lock().expect("not poisoned").remove(ue);
    let channels: Vec<_> = {
        let mut reg = node.reg.lock().expect("not poisoned");
        if reg.users.get(ue).is_some_and(|u| u.migrating == Some(mig)) {
            reg.users.remove(ue);
        }
        for i in incoming {
            reg.imports.remove(&(mig, i.handle));
        }
        incoming
            .iter()
            .filter_map(|i| {
                reg.services.get(&i.handle).map(|s| {
                    (
                        Arc::clone(&s.channel),
                        i.conns.iter().map(|c| c.1).collect::<Vec<_>>(),
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
    notify_services(node, handles, || {
        Ev::Failed(pb::MigrationFailed {
            migration_id: mig,
            ue: ue.to_owned(),
            reason: reason.to_owned(),
            direction: pb::Direction::In as i32,
        })
    });
    tracing::warn!(%reason, "arrival abandoned; the source keeps the UE");
}

/// MIH_N2N_HO_Complete to the source: the UE is served here now.
fn report_complete(node: &Arc<Node>, peer: &str, ue: &str, source_cell: u32, target_cell: u32) {
    let tuple = |cell| LinkTupleId {
        link: LinkId {
            link_type: LinkType::WIRELESS_OTHER,
            addr: LinkAddr::Cell3g {
                plmn: PLMN,
                cell_id: cell,
            },
        },
        poa: None,
    };
    let msg = Message::N2nHoCompleteRequest(N2nHoCompleteRequest {
        mn_mihf_id: mihf_id(ue),
        source_link: tuple(source_cell),
        target_link: tuple(target_cell),
        ho_result: HoResult::SUCCESS,
        edgemob: None,
    });
    let node = Arc::clone(node);
    let peer = mihf_id(peer);
    tokio::spawn(async move {
        let _ = node.mih.request(&peer, msg).await;
    });
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
