//! The source side: a UE leaves this eNBC.
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
//! by this eNBC.

use super::manifest::{Manifest, ManifestConn, ManifestService};
use super::{notify_services, unix_now_ns};
use crate::cxtp_link::TransferOutcome;
use crate::history::{Direction, Outcome, Phases, Record, ns};
use crate::mih_link::{MihOutcome, mihf_id};
use crate::node::Node;
use crate::registry::{Conn, ExportReply, ServiceHandle};
use edgemob_cxtp::{Context, Fpt};
use edgemob_mih::{
    EdgemobInfo, LinkAddr, LinkId, LinkType, Message, MovingConnection, N2nHoCommitRequest,
    ServiceDemand,
};
use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::service_event::Event as Ev;
use edgemob_session_migrate::{FourTuple, FrozenSocket, dump};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::Instrument;

/// How long a source keeps dropping a moved UE's packets after the target
/// reported the handover complete (packets still in flight to us).
const HANDOVER_COMPLETE_GRACE: Duration = Duration::from_secs(1);

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
    /// Resolves to the record when the migration ends (None if it was
    /// already running and we did not subscribe).
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
        node.done
            .lock()
            .expect("not poisoned")
            .entry(running)
            .or_default()
            .push(tx);
        return Ok(Triggered {
            migration_id: running,
            already_migrating: true,
            done: Some(rx),
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
    drop(reg);
    let (tx, rx) = oneshot::channel();
    node.done
        .lock()
        .expect("not poisoned")
        .insert(migration_id, vec![tx]);
    let span = tracing::info_span!("migration", id = migration_id, %ue, direction = "out");
    tokio::spawn(
        migrate_out(
            Arc::clone(node),
            migration_id,
            ue.to_owned(),
            peer,
            cell,
            target_cell,
        )
        .instrument(span),
    );
    Ok(Triggered {
        migration_id,
        already_migrating: false,
        done: Some(rx),
    })
}

struct Frozen {
    handle: ServiceHandle,
    id: u32,
    socket: FrozenSocket,
}

async fn migrate_out(
    node: Arc<Node>,
    mig: u64,
    ue: String,
    peer: String,
    source_cell: u32,
    target_cell: u32,
) {
    let queued = Instant::now();
    let _slot = node.migration_slots.acquire().await.expect("never closed");
    let t0 = Instant::now();
    let started = unix_now_ns();
    let mut rec = Record {
        migration_id: mig,
        ue: ue.clone(),
        direction: Direction::Out,
        peer: peer.clone(),
        source_cell,
        target_cell,
        outcome: Outcome::Failed,
        reason: String::new(),
        phases: Phases::default(),
        context_bytes: 0,
        app_context_bytes: 0,
        connections: 0,
        started_unix_ns: started,
    };
    rec.phases.queued_ns = ns(t0 - queued);

    // What the UE uses here.
    let (ue_addr, services, connections) = {
        let reg = node.reg.lock().expect("not poisoned");
        let Some(u) = reg.users.get(&ue) else { return };
        // Announced so that the target can drop their packets from the
        // moment it accepts.
        let connections: Vec<MovingConnection> = u
            .services
            .values()
            .flatten()
            .map(|c| MovingConnection {
                local: c.local,
                peer: c.peer,
            })
            .collect();
        let services: Vec<(ServiceHandle, String, Vec<Fpt>, u16)> = u
            .services
            .iter()
            .filter_map(|(h, conns)| {
                reg.services
                    .get(h)
                    .map(|s| (*h, s.name.clone(), s.fpts.clone(), conns.len() as u16))
            })
            .collect();
        (u.addr, services, connections)
    };
    let handles: Vec<ServiceHandle> = services.iter().map(|s| s.0).collect();

    // 1. MIH_N2N_HO_Commit: can the target host this UE's services?
    let request = Message::N2nHoCommitRequest(N2nHoCommitRequest {
        mn_mihf_id: mihf_id(&ue),
        mn_link_id: LinkId {
            link_type: LinkType::WIRELESS_OTHER,
            addr: LinkAddr::Cell3g {
                plmn: PLMN,
                cell_id: source_cell,
            },
        },
        poa: LinkAddr::Cell3g {
            plmn: PLMN,
            cell_id: target_cell,
        },
        requested_resources: None,
        edgemob: Some(EdgemobInfo {
            migration_id: Some(mig),
            ue_address: Some(ue_addr),
            source_cell: Some(source_cell),
            services: services
                .iter()
                .map(|(_, name, fpts, conns)| ServiceDemand {
                    name: name.clone().into(),
                    fpts: fpts.iter().map(|f| f.code()).collect(),
                    context_bytes: 0,
                    connections: *conns,
                })
                .collect(),
            reason: None,
            connections,
        }),
    });
    // 1 and 2 run together: the services pause and export while the target
    // decides (speculative export, `overlap_export`). Each phase keeps its
    // own duration; a refusal merely resumes the services.
    let overlap = node.cfg.migration.overlap_export;
    tracing::trace!("commit request");
    let commit = async {
        if overlap {
            // The export is the longer branch: let its event reach the
            // service (another task on this thread) before the request goes.
            tokio::task::yield_now().await;
        }
        let dst = mihf_id(&peer);
        let request = node
            .mih
            .request(&dst, request)
            .instrument(tracing::info_span!("mih_commit"));
        tokio::pin!(request);
        // The first poll sends the request. Only then ask for polling
        // CPUs: the request costs tens of microseconds (it wakes every idle
        // CPU), the service's export and the target's answer overlap it.
        let first = futures::poll!(&mut request);
        node.cpu.kick();
        let r = match first {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => request.await,
        };
        tracing::trace!("commit confirmed");
        (r, Instant::now())
    };
    let export = async {
        let r = export_contexts(&node, mig, &ue, target_cell, &services)
            .instrument(tracing::info_span!("app_data"))
            .await;
        tracing::trace!("contexts exported");
        (r, Instant::now())
    };
    tokio::pin!(commit, export);
    let mut commit_done = None;
    let mut export_done = None;
    if !overlap {
        commit_done = Some((&mut commit).await);
    }
    let t_export = Instant::now();
    // 3 may run early too: once the services have exported while the
    // target still decides, the sockets are frozen at once, off the
    // critical path. A refusal thaws them (they were silent, not gone).
    let mut early: Option<(Result<FrozenSet, String>, Duration)> = None;
    loop {
        if commit_done.is_some() && export_done.is_some() {
            break;
        }
        tokio::select! {
            biased;
            e = &mut export, if export_done.is_none() && commit_done.as_ref().is_none_or(|c| commit_ok(&c.0)) => export_done = Some(e),
            c = &mut commit, if commit_done.is_none() => commit_done = Some(c),
        }
        // Stop early when either side failed.
        if commit_done.as_ref().is_some_and(|c| !commit_ok(&c.0))
            || export_done.as_ref().is_some_and(|e| e.0.is_err())
        {
            break;
        }
        if early.is_none() && commit_done.is_none() && export_done.is_some() {
            early = Some(timed_freeze(&node, &ue));
        }
    }
    let export_asked = overlap || commit_done.as_ref().is_some_and(|c| commit_ok(&c.0));
    if let Some((_, at)) = &commit_done {
        rec.phases.mih_commit_ns = ns(*at - t0);
    }
    if let Some((_, at)) = &export_done {
        rec.phases.app_data_ns = ns(*at - t_export);
    }
    let refused = match commit_done.map(|c| c.0) {
        None => None, // the export failed first; handled below
        Some(outcome) => commit_failure(outcome, &peer, node.cfg.timers.mih_response_ms),
    };
    if let Some((outcome, reason)) = refused {
        if let Some((Ok((frozen, _, tuples)), took)) = early {
            rec.phases.socket_data_ns = ns(took);
            unfreeze(&node, &ue, frozen, &tuples);
        }
        if export_asked {
            clear_exports(&node, mig, &handles);
            notify_services(&node, &handles, || {
                Ev::RolledBack(pb::MigrationRolledBack {
                    migration_id: mig,
                    ue: ue.clone(),
                    reason: reason.clone(),
                })
            });
        } else {
            notify_services(&node, &handles, || {
                Ev::Failed(pb::MigrationFailed {
                    migration_id: mig,
                    ue: ue.clone(),
                    reason: reason.clone(),
                    direction: pb::Direction::Out as i32,
                })
            });
        }
        end_without_freezing(&node, &ue, &mut rec, outcome, reason, t0);
        return;
    }
    let exports = match export_done.map(|e| e.0) {
        Some(Ok(e)) => e,
        Some(Err(reason)) => {
            // The target may have accepted already: the handover is off.
            report_abandoned(&node, &peer, &ue, source_cell, target_cell);
            clear_exports(&node, mig, &handles);
            notify_services(&node, &handles, || {
                Ev::RolledBack(pb::MigrationRolledBack {
                    migration_id: mig,
                    ue: ue.clone(),
                    reason: reason.clone(),
                })
            });
            finish_rollback_bookkeeping(&node, &ue, &mut rec, reason, t0);
            return;
        }
        None => unreachable!("the loop ends with both phases done or one failed"),
    };
    // 3. Retrieving sockets data: lock, then dump (freeze) each connection
    // (unless that was done while the commit was out).
    let (frozen, took) = early.unwrap_or_else(|| timed_freeze(&node, &ue));
    tracing::trace!("sockets frozen");
    rec.phases.socket_data_ns = ns(took);
    // The transfer starts when both the commit and the freeze are done.
    let t3 = Instant::now();
    let (frozen, images, tuples) = match frozen {
        Ok(f) => f,
        Err(reason) => {
            notify_services(&node, &handles, || {
                Ev::RolledBack(pb::MigrationRolledBack {
                    migration_id: mig,
                    ue: ue.clone(),
                    reason: reason.clone(),
                })
            });
            finish_rollback_bookkeeping(&node, &ue, &mut rec, reason, t0);
            return;
        }
    };
    rec.connections = frozen.len() as u32;

    // 4. CXTP: one transfer with the manifest, the contexts and the images.
    let mut contexts = Vec::with_capacity(1 + exports.len() + images.len());
    let mut manifest = Manifest {
        migration_id: mig,
        ue: ue.clone(),
        source_cell,
        target_cell,
        services: Vec::new(),
    };
    contexts.push(Context::new(Fpt::MIGRATION_MANIFEST, Vec::new())); // placeholder
    for (handle, name, reply) in &exports {
        let context_index = contexts.len() as u32;
        contexts.push(Context::new(Fpt(reply.fpt as u16), reply.context.clone()));
        let mut conns = Vec::new();
        for (f, img) in frozen.iter().zip(&images) {
            if f.handle == *handle {
                conns.push(ManifestConn {
                    connection_id: f.id,
                    image_index: contexts.len() as u32,
                });
                contexts.push(Context::new(Fpt::TCP_CONNECTION_IMAGE, img.clone()));
            }
        }
        manifest.services.push(ManifestService {
            name: name.clone(),
            fpt: reply.fpt,
            context_index,
            connections: conns,
        });
    }
    contexts[0] = manifest.to_context();
    rec.context_bytes = contexts.iter().map(|c| c.data.len() as u64).sum();
    rec.app_context_bytes = exports.iter().map(|(_, _, r)| r.context.len() as u64).sum();
    let Some(link) = node.cxtp.peer(&peer).cloned() else {
        rollback(
            &node,
            &ue,
            &handles,
            frozen,
            &tuples,
            &mut rec,
            format!("no CXTP link to {peer}"),
            t0,
        );
        return;
    };
    tracing::debug!(octets = rec.context_bytes, "sending contexts");
    let result = link
        .transfer(ue_addr, contexts)
        .instrument(tracing::info_span!("cxtp"))
        .await;
    let t4 = Instant::now();
    tracing::trace!("CTDR received");
    rec.phases.cxtp_ns = ns(t4 - t3);
    let failure = match result {
        Ok(TransferOutcome::Acked { all_ok: true, .. }) => None,
        Ok(TransferOutcome::Acked { statuses, .. }) => Some(format!(
            "target {peer} could not install the contexts: {}",
            statuses
                .iter()
                .filter(|(_, s)| !s.is_success())
                .map(|(f, s)| format!("{f}={s}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(TransferOutcome::TimedOut) => Some(format!(
            "no CTDR from {peer} within {} ms",
            node.cfg.timers.cxtp_transfer_ms
        )),
        Ok(TransferOutcome::Cancelled) => Some(format!("{peer} cancelled the transfer")),
        Ok(TransferOutcome::ConnectionLost) => Some(format!(
            "CXTP connection to {peer} lost during the transfer"
        )),
        Err(e) => Some(format!("cannot send the contexts: {e}")),
    };
    if let Some(reason) = failure {
        // A timed-out transfer was already cancelled (CTC) by the endpoint.
        rollback(&node, &ue, &handles, frozen, &tuples, &mut rec, reason, t0);
        return;
    }

    // 5. Success: the target holds the session. Keep dropping the UE's
    // stray packets until the target reports the handover complete (or
    // the linger ends).
    schedule_unlock(&node, &ue, tuples);
    node.reg.lock().expect("not poisoned").users.remove(&ue);
    rec.outcome = Outcome::Completed;
    rec.phases.total_ns = ns(t4 - t0);
    // Whoever waits on this migration (an operator's TriggerHandover)
    // hears first: the UE's path switch follows from that answer, and
    // the client waits for it. Tidying up and the log can wait a moment.
    let rec = node.publish(rec);
    tokio::task::yield_now().await;
    for f in frozen {
        f.socket.release(); // silently: still in repair mode
    }
    notify_services(&node, &handles, || {
        Ev::Completed(pb::MigrationCompleted {
            migration_id: mig,
            ue: ue.clone(),
            direction: pb::Direction::Out as i32,
        })
    });
    node.log(rec);
    if let Some(dir) = &node.cfg.history.images {
        save_images(dir.join(format!("{mig:016x}")), images);
    }
}

/// Writes the moved connections' images as CRIU image files, off the hot
/// path (the migration is over).
fn save_images(dir: std::path::PathBuf, images: Vec<Vec<u8>>) {
    tokio::task::spawn_blocking(move || {
        let decoded: Result<Vec<_>, _> = images
            .iter()
            .map(|b| edgemob_session_migrate::TcpStreamImage::decode(b))
            .collect();
        let result = decoded.map_err(|e| e.to_string()).and_then(|imgs| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            edgemob_session_migrate::write_criu_images(&dir, &imgs).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot save the connection images");
        }
    });
}

type Exported = Vec<(ServiceHandle, String, ExportReply)>;

fn commit_ok(r: &Result<MihOutcome, edgemob_mih::SendError>) -> bool {
    matches!(r, Ok(MihOutcome::Confirm(m)) if matches!(&**m, Message::N2nHoCommitConfirm(c) if c.status.is_success()))
}

/// Why a commit did not go through, if it did not.
fn commit_failure(
    outcome: Result<MihOutcome, edgemob_mih::SendError>,
    peer: &str,
    response_ms: u64,
) -> Option<(Outcome, String)> {
    let outcome = outcome.map(|o| match o {
        MihOutcome::Confirm(m) => Ok(*m),
        MihOutcome::Timeout { acknowledged } => Err(acknowledged),
    });
    match outcome {
        Ok(Ok(Message::N2nHoCommitConfirm(c))) if c.status.is_success() => None,
        Ok(Ok(Message::N2nHoCommitConfirm(c))) => {
            let why = c
                .edgemob
                .and_then(|e| e.reason)
                .map(|r| String::from_utf8_lossy(&r.text).into_owned())
                .unwrap_or_else(|| format!("status {}", c.status.0));
            Some((Outcome::Rejected, format!("target {peer} refused: {why}")))
        }
        Ok(Ok(other)) => Some((
            Outcome::Failed,
            format!("unexpected {} from {peer}", other.name()),
        )),
        Ok(Err(acknowledged)) => Some((
            Outcome::Failed,
            format!(
                "no MIH_N2N_HO_Commit response from {peer} within {response_ms} ms{}",
                if acknowledged {
                    " (request acknowledged)"
                } else {
                    ""
                }
            ),
        )),
        Err(e) => Some((
            Outcome::Failed,
            format!("cannot send MIH_N2N_HO_Commit: {e}"),
        )),
    }
}

fn clear_exports(node: &Node, mig: u64, handles: &[ServiceHandle]) {
    let mut reg = node.reg.lock().expect("not poisoned");
    for h in handles {
        reg.exports.remove(&(mig, *h));
    }
}

/// MIH_N2N_HO_Complete with a failed result: the target drops the handover
/// it accepted instead of holding it until its timer ends.
fn report_abandoned(node: &Arc<Node>, peer: &str, ue: &str, source_cell: u32, target_cell: u32) {
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
        ho_result: edgemob_mih::HoResult::FAILURE,
        edgemob: None,
    });
    let node = Arc::clone(node);
    let peer = mihf_id(peer);
    tokio::spawn(async move {
        let _ = node.mih.request(&peer, msg).await;
    });
}

/// Asks every service of the UE for its context, concurrently.
async fn export_contexts(
    node: &Arc<Node>,
    mig: u64,
    ue: &str,
    target_cell: u32,
    services: &[(ServiceHandle, String, Vec<Fpt>, u16)],
) -> Result<Exported, String> {
    let mut waits = Vec::with_capacity(services.len());
    {
        let mut reg = node.reg.lock().expect("not poisoned");
        for (h, name, _, _) in services {
            let (tx, rx) = oneshot::channel();
            reg.exports.insert((mig, *h), tx);
            let sent = reg.services.get(h).is_some_and(|s| {
                s.notify(Ev::ExportRequested(pb::ExportRequested {
                    migration_id: mig,
                    ue: ue.to_owned(),
                    target_cell,
                }))
            });
            if !sent {
                for (h, _, _, _) in services {
                    reg.exports.remove(&(mig, *h));
                }
                return Err(format!("service {name} is not listening for events"));
            }
            waits.push((*h, name.clone(), rx));
        }
    }
    let deadline = Duration::from_millis(node.cfg.timers.export_ms);
    let answers = tokio::time::timeout(
        deadline,
        futures::future::join_all(
            waits
                .into_iter()
                .map(|(h, name, rx)| async move { (h, name, rx.await) }),
        ),
    )
    .await;
    let clear = || {
        let mut reg = node.reg.lock().expect("not poisoned");
        for (h, _, _, _) in services {
            reg.exports.remove(&(mig, *h));
        }
    };
    let Ok(answers) = answers else {
        clear();
        return Err(format!(
            "services did not export within {} ms",
            node.cfg.timers.export_ms
        ));
    };
    let mut out = Vec::with_capacity(answers.len());
    for (h, name, a) in answers {
        match a {
            Ok(reply) if reply.error.is_empty() => out.push((h, name, reply)),
            Ok(reply) => {
                clear();
                return Err(format!("service {name} refused to export: {}", reply.error));
            }
            Err(_) => {
                clear();
                return Err(format!("service {name} went away during the export"));
            }
        }
    }
    Ok(out)
}

type FrozenSet = (Vec<Frozen>, Vec<Vec<u8>>, Vec<FourTuple>);

/// Locks the UE's 4-tuples and dumps its sockets. On any failure every
/// socket dumped so far is thawed and put back, and the lock removed.
fn freeze_connections(node: &Node, ue: &str) -> Result<FrozenSet, String> {
    let conns: Vec<(ServiceHandle, Conn)> = {
        let mut reg = node.reg.lock().expect("not poisoned");
        let Some(u) = reg.users.get_mut(ue) else {
            return Err(format!("UE {ue} was deregistered during the migration"));
        };
        std::mem::take(&mut u.services)
            .into_iter()
            .flat_map(|(h, cs)| cs.into_iter().map(move |c| (h, c)))
            .collect()
    };
    let tuples: Vec<FourTuple> = conns
        .iter()
        .map(|(_, c)| FourTuple {
            local: c.local,
            peer: c.peer,
        })
        .collect();
    if let Err(e) = node.lock_tuples(&tuples) {
        put_back(node, ue, conns);
        return Err(format!("cannot lock the UE's connections: {e}"));
    }
    let mut frozen = Vec::with_capacity(conns.len());
    let mut images = Vec::with_capacity(conns.len());
    let mut failed = None;
    let mut untouched = Vec::new();
    for (h, c) in conns {
        if failed.is_some() {
            untouched.push((h, c));
            continue;
        }
        match dump(c.fd.as_fd()) {
            Ok((img, socket)) => {
                tracing::debug!(
                    local = %img.tuple.local, peer = %img.tuple.peer,
                    inq_seq = img.inq_seq, outq_seq = img.outq_seq,
                    recv_queue = img.recv_queue.len(), send_queue = img.send_queue.len(),
                    unsent = img.unsent_len, mss = img.mss_clamp,
                    timestamp = ?img.options.timestamp, window = ?img.window,
                    "connection dumped"
                );
                let mut bytes = Vec::with_capacity(img.encoded_len());
                img.encode(&mut bytes);
                images.push(bytes);
                frozen.push(Frozen {
                    handle: h,
                    id: c.id,
                    socket,
                });
                // `c.fd` closes here; the frozen socket holds a duplicate.
            }
            Err(e) => {
                failed = Some(format!(
                    "cannot dump connection {} ({} -> {}): {e}",
                    c.id, c.local, c.peer
                ));
                untouched.push((h, c));
            }
        }
    }
    if let Some(reason) = failed {
        node.unlock_tuples(&tuples);
        put_back(node, ue, untouched);
        put_back(node, ue, thaw(frozen));
        return Err(reason);
    }
    Ok((frozen, images, tuples))
}

/// [`freeze_connections`] and how long it took (the sockets data phase).
fn timed_freeze(node: &Node, ue: &str) -> (Result<FrozenSet, String>, Duration) {
    let t = Instant::now();
    let f = tracing::info_span!("socket_data").in_scope(|| freeze_connections(node, ue));
    (f, t.elapsed())
}

/// Gives frozen connections back to the UE's services, live again.
fn unfreeze(node: &Node, ue: &str, frozen: Vec<Frozen>, tuples: &[FourTuple]) {
    // Unlock first: thawing sends a window probe that must not be dropped.
    node.unlock_tuples(tuples);
    put_back(node, ue, thaw(frozen));
}

/// Thaws frozen sockets where they stopped (nothing lost, nothing sent
/// twice); unlock their 4-tuples first, as thawing sends a window probe.
fn thaw(frozen: Vec<Frozen>) -> Vec<(ServiceHandle, Conn)> {
    let mut back = Vec::with_capacity(frozen.len());
    for f in frozen {
        let tuple = f.socket.tuple();
        match f.socket.thaw() {
            Ok(fd) => back.push((
                f.handle,
                Conn {
                    id: f.id,
                    fd,
                    local: tuple.local,
                    peer: tuple.peer,
                },
            )),
            Err(e) => tracing::error!(error = %e, "cannot thaw a frozen socket"),
        }
    }
    back
}

/// Gives connections back to the UE's record, to their services.
fn put_back(node: &Node, ue: &str, back: Vec<(ServiceHandle, Conn)>) {
    let mut reg = node.reg.lock().expect("not poisoned");
    if let Some(u) = reg.users.get_mut(ue) {
        for (h, c) in back {
            u.services.entry(h).or_default().push(c);
        }
    }
}

/// The migration failed after sockets were frozen: unlock, thaw, put the
/// connections back, tell the services to resume.
#[allow(clippy::too_many_arguments)]
fn rollback(
    node: &Node,
    ue: &str,
    handles: &[ServiceHandle],
    frozen: Vec<Frozen>,
    tuples: &[FourTuple],
    rec: &mut Record,
    reason: String,
    t0: Instant,
) {
    unfreeze(node, ue, frozen, tuples);
    notify_services(node, handles, || {
        Ev::RolledBack(pb::MigrationRolledBack {
            migration_id: rec.migration_id,
            ue: ue.to_owned(),
            reason: reason.clone(),
        })
    });
    finish_rollback_bookkeeping(node, ue, rec, reason, t0);
}

fn finish_rollback_bookkeeping(
    node: &Node,
    ue: &str,
    rec: &mut Record,
    reason: String,
    t0: Instant,
) {
    if let Some(u) = node.reg.lock().expect("not poisoned").users.get_mut(ue) {
        u.migrating = None;
    }
    tracing::warn!(%reason, "migration rolled back");
    rec.outcome = Outcome::RolledBack;
    rec.reason = reason;
    rec.phases.total_ns = ns(t0.elapsed());
    node.finish(rec.clone());
}

/// Nothing was frozen (the target refused, or did not answer).
fn end_without_freezing(
    node: &Node,
    ue: &str,
    rec: &mut Record,
    outcome: Outcome,
    reason: String,
    t0: Instant,
) {
    if let Some(u) = node.reg.lock().expect("not poisoned").users.get_mut(ue) {
        u.migrating = None;
    }
    tracing::warn!(%reason, "migration did not start");
    rec.outcome = outcome;
    rec.reason = reason;
    rec.phases.total_ns = ns(t0.elapsed());
    node.finish(rec.clone());
}

/// Keeps the moved connections' drop rules until the target reports the
/// handover complete for this UE, or the linger time ends.
fn schedule_unlock(node: &Arc<Node>, ue: &str, tuples: Vec<FourTuple>) {
    let linger = Duration::from_millis(node.cfg.timers.source_lock_linger_ms);
    let (tx, rx) = oneshot::channel::<()>();
    node.lingering
        .lock()
        .expect("not poisoned")
        .insert(ue.to_owned(), tx);
    let node = Arc::clone(node);
    let ue = ue.to_owned();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        if tokio::time::timeout(linger, rx).await.is_ok() {
            // Reported complete: packets already in flight to us still get
            // dropped for a moment.
            let grace = HANDOVER_COMPLETE_GRACE.min(linger.saturating_sub(started.elapsed()));
            tokio::time::sleep(grace).await;
        }
        node.unlock_tuples(&tuples);
        let mut l = node.lingering.lock().expect("not poisoned");
        if l.get(&ue).is_some_and(|s| s.is_closed()) {
            l.remove(&ue);
        }
    });
}
