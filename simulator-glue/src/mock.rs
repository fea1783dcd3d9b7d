//! Stand-in agents: the Operator service of a set of eNBCs that share one
//! view of where each UE is. A trigger is accepted by the agent serving the
//! UE, "migrates" for a configurable time, then the UE is at the target
//! cell's eNBC. For exercising replay and the bridge without real agents
//! (tests, dry runs of a demo); they move no context and no connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::operator_server::{Operator, OperatorServer};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::driver::unix_now_ns;
use crate::scenario::Scenario;

/// A call one of the stand-in agents received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The eNBC that received it.
    pub enbc: String,
    /// `trigger` or `complete`.
    pub kind: &'static str,
    /// The UE.
    pub ue: String,
    /// Source cell (trigger) — 0 for complete.
    pub source_cell: u32,
    /// Target cell (trigger) or the attached cell (complete).
    pub target_cell: u32,
    /// When it arrived.
    pub at: Instant,
    /// Whether a migration of this UE was running when it arrived.
    pub during_migration: bool,
}

#[derive(Debug, Default)]
struct World {
    /// UE → the cell it is in.
    ues: HashMap<String, u32>,
    /// UE → its running migration.
    migrating: HashMap<String, u64>,
    /// UE → its last migration (for CompleteHandover).
    last: HashMap<String, u64>,
    /// eNBC name → its records, newest last.
    history: HashMap<String, Vec<pb::MigrationRecord>>,
    calls: Vec<Call>,
    next_id: u64,
}

/// The shared state of a set of stand-in agents.
#[derive(Debug, Clone)]
pub struct MockWorld {
    world: Arc<Mutex<World>>,
    cells: Arc<HashMap<u32, String>>,
    migration_time: Duration,
}

impl MockWorld {
    /// A world with the eNBCs (and cells) of a scenario, where every
    /// migration takes `migration_time`.
    pub fn new(scenario: &Scenario, migration_time: Duration) -> MockWorld {
        let mut cells = HashMap::new();
        for e in scenario.enbcs() {
            for &c in &e.cells {
                cells.insert(c, e.name.clone());
            }
        }
        MockWorld {
            world: Arc::new(Mutex::new(World {
                next_id: 1,
                ..World::default()
            })),
            cells: Arc::new(cells),
            migration_time,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a UE in a cell (as if its services had registered it there).
    pub fn place(&self, ue: &str, cell: u32) {
        self.lock().ues.insert(ue.to_owned(), cell);
    }

    /// The cell a UE is in now.
    pub fn cell_of(&self, ue: &str) -> Option<u32> {
        self.lock().ues.get(ue).copied()
    }

    /// Every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Serves every eNBC of `scenario` on its API socket (replacing stale
    /// socket files). The tasks stop when aborted or when the runtime ends.
    pub fn serve(&self, scenario: &Scenario) -> std::io::Result<Vec<JoinHandle<()>>> {
        let mut tasks = Vec::new();
        for e in scenario.enbcs() {
            tasks.push(self.serve_one(&e.name, &e.api)?);
        }
        Ok(tasks)
    }

    fn serve_one(&self, name: &str, path: &Path) -> std::io::Result<JoinHandle<()>> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let svc = MockAgent {
            name: name.to_owned(),
            world: self.clone(),
        };
        let path: PathBuf = path.to_owned();
        Ok(tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(OperatorServer::new(svc))
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await;
            if let Err(e) = result {
                tracing::warn!("mock agent on {}: {e}", path.display());
            }
        }))
    }
}

#[derive(Debug, Clone)]
struct MockAgent {
    name: String,
    world: MockWorld,
}

impl MockAgent {
    fn serves(&self, cell: u32) -> bool {
        self.world.cells.get(&cell) == Some(&self.name)
    }
}

#[tonic::async_trait]
impl Operator for MockAgent {
    async fn trigger_handover(
        &self,
        req: Request<pb::TriggerHandoverRequest>,
    ) -> Result<Response<pb::TriggerHandoverResponse>, Status> {
        let r = req.into_inner();
        let now = Instant::now();
        let id = {
            let mut w = self.world.lock();
            let during_migration = w.migrating.contains_key(&r.ue);
            w.calls.push(Call {
                enbc: self.name.clone(),
                kind: "trigger",
                ue: r.ue.clone(),
                source_cell: r.source_cell,
                target_cell: r.target_cell,
                at: now,
                during_migration,
            });
            let here = w.ues.get(&r.ue).copied();
            if !here.is_some_and(|c| self.serves(c)) {
                return Err(Status::not_found(format!(
                    "UE {} is not served by {}",
                    r.ue, self.name
                )));
            }
            if let Some(&running) = w.migrating.get(&r.ue) {
                return Ok(Response::new(pb::TriggerHandoverResponse {
                    migration_id: running,
                    already_migrating: true,
                    record: None,
                }));
            }
            let id = w.next_id;
            w.next_id += 1;
            w.migrating.insert(r.ue.clone(), id);
            w.last.insert(r.ue.clone(), id);
            id
        };
        let world = self.world.clone();
        let name = self.name.clone();
        let started = unix_now_ns();
        tokio::spawn(async move {
            tokio::time::sleep(world.migration_time).await;
            let target_known = world.cells.contains_key(&r.target_cell);
            let mut w = world.lock();
            w.migrating.remove(&r.ue);
            let outcome = if target_known {
                w.ues.insert(r.ue.clone(), r.target_cell);
                pb::Outcome::Completed
            } else {
                pb::Outcome::Rejected
            };
            let total = u64::try_from(now.elapsed().as_nanos()).unwrap_or(u64::MAX);
            w.history
                .entry(name)
                .or_default()
                .push(pb::MigrationRecord {
                    app_context_bytes: 0,
                    migration_id: id,
                    ue: r.ue.clone(),
                    direction: pb::Direction::Out as i32,
                    peer: world.cells.get(&r.target_cell).cloned().unwrap_or_default(),
                    source_cell: r.source_cell,
                    target_cell: r.target_cell,
                    outcome: outcome as i32,
                    reason: if target_known {
                        String::new()
                    } else {
                        format!("no eNBC serves cell {}", r.target_cell)
                    },
                    phases: Some(pb::PhaseTimings {
                        total_ns: total,
                        ..pb::PhaseTimings::default()
                    }),
                    context_bytes: 0,
                    connections: 0,
                    started_unix_ns: started,
                });
        });
        Ok(Response::new(pb::TriggerHandoverResponse {
            migration_id: id,
            already_migrating: false,
            record: None,
        }))
    }

    async fn complete_handover(
        &self,
        req: Request<pb::CompleteHandoverRequest>,
    ) -> Result<Response<pb::CompleteHandoverResponse>, Status> {
        let r = req.into_inner();
        if r.cell != 0 && !self.serves(r.cell) {
            return Err(Status::invalid_argument(format!(
                "cell {} is not served by {}",
                r.cell, self.name
            )));
        }
        let mut w = self.world.lock();
        let during_migration = w.migrating.contains_key(&r.ue);
        w.calls.push(Call {
            enbc: self.name.clone(),
            kind: "complete",
            ue: r.ue.clone(),
            source_cell: 0,
            target_cell: r.cell,
            at: Instant::now(),
            during_migration,
        });
        let migration_id = w.last.get(&r.ue).copied().unwrap_or(0);
        Ok(Response::new(pb::CompleteHandoverResponse { migration_id }))
    }

    async fn list_users(
        &self,
        _: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let w = self.world.lock();
        let users = w
            .ues
            .iter()
            .filter(|(_, c)| self.serves(**c))
            .map(|(ue, c)| pb::UserInfo {
                ue: ue.clone(),
                cell: *c,
                state: if w.migrating.contains_key(ue) {
                    "migrating"
                } else {
                    "served"
                }
                .into(),
                ..pb::UserInfo::default()
            })
            .collect();
        Ok(Response::new(pb::ListUsersResponse { users }))
    }

    async fn migration_history(
        &self,
        req: Request<pb::MigrationHistoryRequest>,
    ) -> Result<Response<pb::MigrationHistoryResponse>, Status> {
        let r = req.into_inner();
        let w = self.world.lock();
        let records = w
            .history
            .get(&self.name)
            .map(|h| {
                h.iter()
                    .rev()
                    .filter(|rec| r.ue.is_empty() || rec.ue == r.ue)
                    .take(if r.limit == 0 {
                        usize::MAX
                    } else {
                        r.limit as usize
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(pb::MigrationHistoryResponse { records }))
    }

    async fn health(
        &self,
        _: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let cells = self
            .world
            .cells
            .iter()
            .filter(|(_, n)| **n == self.name)
            .map(|(c, _)| *c)
            .collect();
        Ok(Response::new(pb::HealthResponse {
            mihf_id: self.name.clone(),
            cells,
            ..pb::HealthResponse::default()
        }))
    }
}
