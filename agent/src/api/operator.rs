//! `Operator`: handover triggers, users, history, health.

use crate::migration::source::{TriggerError, trigger};
use crate::node::Node;
use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::operator_server::Operator;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct OperatorApi(pub Arc<Node>);

#[tonic::async_trait]
impl Operator for OperatorApi {
    async fn trigger_handover(
        &self,
        req: Request<pb::TriggerHandoverRequest>,
    ) -> Result<Response<pb::TriggerHandoverResponse>, Status> {
        let r = req.into_inner();
        let t = trigger(&self.0, &r.ue, r.source_cell, r.target_cell).map_err(|e| match e {
            TriggerError::UnknownUe(_) => Status::not_found(e.to_string()),
            _ => Status::invalid_argument(e.to_string()),
        })?;
        let mut resp = pb::TriggerHandoverResponse {
            migration_id: t.migration_id,
            already_migrating: t.already_migrating,
            record: None,
        };
        if r.wait
            && let Some(done) = t.done
            && let Ok(rec) = done.await
        {
            resp.record = Some((&rec).into());
        }
        Ok(Response::new(resp))
    }

    async fn complete_handover(
        &self,
        req: Request<pb::CompleteHandoverRequest>,
    ) -> Result<Response<pb::CompleteHandoverResponse>, Status> {
        let r = req.into_inner();
        if r.cell != 0 && !self.0.cfg.serves(r.cell) {
            return Err(Status::invalid_argument(format!(
                "cell {} is not served by {}",
                r.cell, self.0.cfg.mihf_id
            )));
        }
        let migration_id = self.0.path_switched(&r.ue);
        Ok(Response::new(pb::CompleteHandoverResponse { migration_id }))
    }

    async fn list_users(
        &self,
        _: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let reg = self.0.reg.lock().expect("not poisoned");
        let users = reg
            .users
            .iter()
            .map(|(ue, u)| pb::UserInfo {
                ue: ue.clone(),
                ue_address: u.addr.to_string(),
                cell: u.cell,
                services: u
                    .services
                    .keys()
                    .filter_map(|h| reg.services.get(h).map(|s| s.name.clone()))
                    .collect(),
                connections: u.services.values().map(Vec::len).sum::<usize>() as u32,
                state: if u.migrating.is_some() {
                    "migrating"
                } else {
                    "served"
                }
                .into(),
            })
            .collect();
        Ok(Response::new(pb::ListUsersResponse { users }))
    }

    async fn migration_history(
        &self,
        req: Request<pb::MigrationHistoryRequest>,
    ) -> Result<Response<pb::MigrationHistoryResponse>, Status> {
        let r = req.into_inner();
        let ue = (!r.ue.is_empty()).then_some(r.ue.as_str());
        let records = self
            .0
            .history
            .recent(r.limit as usize, ue)
            .iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(pb::MigrationHistoryResponse { records }))
    }

    async fn health(
        &self,
        _: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        use std::sync::atomic::Ordering::Relaxed;
        let n = &self.0;
        let (services, users) = {
            let reg = n.reg.lock().expect("not poisoned");
            (reg.services.len() as u32, reg.users.len() as u32)
        };
        let m = &n.metrics;
        Ok(Response::new(pb::HealthResponse {
            mihf_id: n.cfg.mihf_id.clone(),
            cells: n.cfg.cells.clone(),
            peers: n
                .cfg
                .peers
                .iter()
                .map(|p| pb::PeerHealth {
                    mihf_id: p.mihf_id.clone(),
                    cells: p.cells.clone(),
                    cxtp_connected: n.cxtp.peer(&p.mihf_id).is_some_and(|l| l.is_connected()),
                })
                .collect(),
            uptime_ms: n.started.elapsed().as_millis() as u64,
            services,
            users,
            migrations_completed: m.completed.load(Relaxed),
            migrations_rolled_back: m.rolled_back.load(Relaxed),
            migrations_rejected: m.rejected.load(Relaxed),
            migrations_failed: m.failed.load(Relaxed),
            peer_frames_dropped: m.dropped_total.load(Relaxed),
        }))
    }
}
