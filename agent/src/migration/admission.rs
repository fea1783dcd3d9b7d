//! The target's admission: answers a peer's MIH requests, decides whether
//! this eNBC can host a UE's services (MIH_N2N_HO_Commit), and starts the
//! incoming migration of an accepted handover.

use super::error::{MigrationError, Side};
use super::incoming::{IncomingConfig, IncomingMigration};
use super::table::{IncomingEntry, TargetEvent};
use crate::history::{Direction, Record};
use crate::mih_link::Indication;
use crate::node::Node;
use edgemob_cxtp::Fpt;
use edgemob_mih::{
    CapabilityDiscoverResponse, EdgemobInfo, HoResult, LinkAddr, Message, MihCommandList,
    N2nHoCommitResponse, N2nHoCompleteResponse, Reason, Status as MihStatus, TransportList,
};
use edgemob_session_migrate::FourTuple;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

/// A handover this eNBC accepted.
pub(super) struct Admitted {
    pub(super) mig: u64,
    pub(super) ue: String,
    pub(super) ue_addr: IpAddr,
    pub(super) source_cell: u32,
    pub(super) target_cell: u32,
    pub(super) announced: Vec<FourTuple>,
}

impl Node {
    /// A peer's MIH request.
    pub fn on_indication(self: &Arc<Self>, ind: Indication) {
        let Indication {
            peer: peer_id,
            tid,
            message,
        } = ind;
        let peer = peer_id.to_string();
        let response = match message {
            Message::N2nHoCommitIndication(req) => {
                let mn = req.mn_mihf_id.clone();
                let info = req.edgemob.clone().unwrap_or_default();
                let mig = info.migration_id.unwrap_or(0);
                match self.admit(&peer, req) {
                    Ok(admitted) => {
                        // Its CTD follows within a round trip: wake-ups from
                        // here on should find the CPUs polling.
                        self.cpu.kick();
                        self.start_incoming(&peer, admitted);
                        Message::N2nHoCommitResponse(N2nHoCommitResponse {
                            status: MihStatus::SUCCESS,
                            mn_mihf_id: mn,
                            link_id: None,
                            assigned_resources: None,
                            edgemob: Some(EdgemobInfo {
                                migration_id: Some(mig),
                                ..EdgemobInfo::default()
                            }),
                        })
                    }
                    Err(refused) => {
                        let (err, record) = *refused;
                        tracing::info!(%peer, ue = %record.ue, reason = %err, "handover refused");
                        self.finish(record);
                        Message::N2nHoCommitResponse(N2nHoCommitResponse {
                            status: MihStatus::REJECTED,
                            mn_mihf_id: mn,
                            link_id: None,
                            assigned_resources: None,
                            edgemob: Some(EdgemobInfo {
                                migration_id: Some(mig),
                                reason: Some(Reason {
                                    code: err.mih_reason_code().unwrap_or(Reason::BUSY),
                                    text: err.to_string().into(),
                                }),
                                ..EdgemobInfo::default()
                            }),
                        })
                    }
                }
            }
            Message::N2nHoCompleteIndication(req) => {
                let ue = req.mn_mihf_id.to_string();
                let mut reg = self.reg.lock().expect("not poisoned");
                if req.ho_result == HoResult::SUCCESS {
                    // As source: the UE's path reaches the target now; stop
                    // dropping its stray packets after a short grace.
                    if let Some(Some(d)) = reg.migrations.update(&ue, |m| m.departed.take()) {
                        let _ = d.ended.send(());
                    }
                } else if let Some(i) = reg
                    .migrations
                    .get(&ue)
                    .and_then(|m| m.incoming.as_ref())
                    .filter(|i| i.peer == peer)
                {
                    // As target: the source abandoned a handover we accepted.
                    let _ = i.events.send(TargetEvent::SourceAbandoned);
                }
                drop(reg);
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
        if let Err(e) = self.mih.respond(&peer_id, tid, response) {
            tracing::warn!(%peer, error = %e, "cannot answer MIH request");
        }
    }

    /// Can this eNBC host the UE's services? On refusal, why, and the
    /// record of the refusal.
    fn admit(
        &self,
        peer: &str,
        req: edgemob_mih::N2nHoCommitRequest,
    ) -> Result<Admitted, Box<(MigrationError, Record)>> {
        let info = req.edgemob.unwrap_or_default();
        let mig = info.migration_id.unwrap_or(0);
        let ue = req.mn_mihf_id.to_string();
        let source_cell = info.source_cell.unwrap_or(0);
        let target_cell = match req.poa {
            LinkAddr::Cell3g { cell_id, .. } => cell_id,
            _ => 0,
        };
        let refuse = |err: MigrationError| {
            let record = Record {
                outcome: err.outcome(Side::Target),
                reason: err.to_string(),
                ..Record::begin(mig, &ue, Direction::In, peer, source_cell, target_cell)
            };
            Box::new((err, record))
        };
        let enbc = || self.cfg.mihf_id.clone();
        let (Some(ue_addr), true) = (info.ue_address, mig != 0) else {
            return Err(refuse(MigrationError::IncompleteRequest));
        };
        if !self.cfg.serves(target_cell) {
            return Err(refuse(MigrationError::CellNotServed {
                enbc: enbc(),
                cell: target_cell,
            }));
        }
        let reg = self.reg.lock().expect("not poisoned");
        for s in &info.services {
            let name = String::from_utf8_lossy(&s.name).into_owned();
            let Some((_, svc)) = reg.service_by_name(&name) else {
                return Err(refuse(MigrationError::ServiceNotHosted {
                    service: name,
                    enbc: enbc(),
                }));
            };
            if let Some(f) = s.fpts.iter().find(|f| !svc.fpts.contains(&Fpt(**f))) {
                return Err(refuse(MigrationError::FptNotAccepted {
                    service: name,
                    enbc: enbc(),
                    fpt: *f,
                }));
            }
        }
        if reg.users.contains_key(&ue)
            || reg
                .migrations
                .get(&ue)
                .is_some_and(|m| m.incoming.is_some())
        {
            return Err(refuse(MigrationError::AlreadyServed {
                ue: ue.clone(),
                enbc: enbc(),
            }));
        }
        drop(reg);
        // Only the UE's own connections may be locked on its behalf.
        let announced: Vec<FourTuple> = info
            .connections
            .iter()
            .filter(|c| c.peer.ip() == ue_addr)
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
        Ok(Admitted {
            mig,
            ue,
            ue_addr,
            source_cell,
            target_cell,
            announced,
        })
    }

    /// Starts the task of an accepted handover.
    fn start_incoming(self: &Arc<Self>, peer: &str, a: Admitted) {
        let (tx, rx) = mpsc::unbounded_channel();
        let switched_early = {
            let mut reg = self.reg.lock().expect("not poisoned");
            let slot = reg.migrations.entry(&a.ue);
            slot.incoming = Some(IncomingEntry {
                id: a.mig,
                peer: peer.to_owned(),
                ue_addr: Some(a.ue_addr),
                events: tx.clone(),
                importing: Default::default(),
            });
            slot.switched_early.take().is_some()
        };
        if switched_early {
            let _ = tx.send(TargetEvent::PathSwitched);
        }
        let cfg = &self.cfg.timers;
        let sm_cfg = IncomingConfig {
            commit_hold: Duration::from_millis(cfg.commit_hold_ms),
            early_lock_after: EARLY_LOCK_AFTER,
            import_timeout: Duration::from_millis(cfg.import_ms),
            activate_after: Duration::from_millis(cfg.activate_ms),
        };
        let sm = IncomingMigration::accept(sm_cfg, peer, a.announced.clone(), Instant::now());
        super::target::spawn(Arc::clone(self), peer, a, sm, rx);
    }
}
