//! Sends handover events to agents: the engine under both trace replay and
//! the ns-3 bridge.
//!
//! * `handover_start` → `TriggerHandover` on the agent of the source cell.
//!   The call is made with `wait = false`: its answer is the agent's
//!   *acceptance* (the migration exists and has an id). The outcome and the
//!   phase timings are then read from the agent's `MigrationHistory` (polled,
//!   2 ms at first, backing off to 50 ms). This is the only way the Operator
//!   API lets a client learn acceptance before completion, and the end of a
//!   handover must wait for the first but not the second.
//! * `handover_end_ok` → `CompleteHandover` on the agent of the target cell,
//!   sent only once the same UE's preceding `TriggerHandover` was accepted
//!   (so the end never overtakes its start).
//! * Each UE's events are handled in order by a task of its own; a UE's
//!   next `handover_start` waits until its previous migration finished (a
//!   UE cannot be handed over again mid-migration). Different UEs run
//!   concurrently, with at most `max_in_flight` calls outstanding in all.
//!
//! Other event kinds are not sent anywhere.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgemob_paas_api::v1 as pb;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::agent::{self, ConnectError, Operator};
use crate::scenario::Scenario;
use crate::trace::{EventKind, TraceRecord};

/// Tuning of a [`Driver`].
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Calls to agents outstanding at once, over all UEs.
    pub max_in_flight: usize,
    /// Longest wait for one call's answer.
    pub rpc_timeout: Duration,
    /// Longest wait from a trigger's acceptance to its migration's outcome.
    pub migration_timeout: Duration,
    /// Connect to agents on first use instead of up front (the bridge does:
    /// agents may start after the simulation).
    pub lazy_connect: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            max_in_flight: 64,
            rpc_timeout: Duration::from_secs(10),
            migration_timeout: Duration::from_secs(30),
            lazy_connect: false,
        }
    }
}

/// When an event was due: the moment replay scheduled it, or the moment
/// the simulator reported it.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    /// Monotonic clock.
    pub at: Instant,
    /// The same moment in Unix nanoseconds (agents' records use that clock).
    pub unix_ns: i64,
}

impl Due {
    /// Now.
    pub fn now() -> Due {
        Due {
            at: Instant::now(),
            unix_ns: unix_now_ns(),
        }
    }

    /// `offset` after `self`.
    pub fn plus(self, offset: Duration) -> Due {
        Due {
            at: self.at + offset,
            unix_ns: self
                .unix_ns
                .saturating_add(i64::try_from(offset.as_nanos()).unwrap_or(i64::MAX)),
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Phase timings of a migration, in microseconds (the paper's Table I).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Phases {
    /// MIH_N2N_HO_Commit request to confirm.
    pub mih_commit_us: f64,
    /// Retrieving application data.
    pub app_data_us: f64,
    /// Retrieving sockets data.
    pub socket_data_us: f64,
    /// CXTP transaction.
    pub cxtp_us: f64,
    /// Trigger to outcome.
    pub total_us: f64,
}

impl From<&pb::PhaseTimings> for Phases {
    fn from(p: &pb::PhaseTimings) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Phases {
            mih_commit_us: us(p.mih_commit_ns),
            app_data_us: us(p.app_data_ns),
            socket_data_us: us(p.socket_data_ns),
            cxtp_us: us(p.cxtp_ns),
            total_us: us(p.total_ns),
        }
    }
}

/// What became of one `handover_start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationResult {
    /// The UE's service-level identity.
    pub ue: String,
    /// Its IMSI.
    pub imsi: u64,
    /// Its RNTI at the source.
    pub rnti: u16,
    /// Cell left.
    pub source_cell: u32,
    /// Cell reached.
    pub target_cell: u32,
    /// The event's time in the trace (µs since the simulation start).
    pub trace_time_us: u64,
    /// `completed`, `rolled_back`, `rejected`, `failed`, `skipped` (both
    /// cells on one eNBC), `timeout` (no outcome in time) or `error` (the
    /// trigger was refused or could not be sent).
    pub outcome: String,
    /// The agent's reason, or the error.
    pub reason: String,
    /// The agent's migration id (0 if none).
    pub migration_id: u64,
    /// The agent was already migrating this UE and ignored the trigger.
    pub already_migrating: bool,
    /// Due time → `TriggerHandover` sent, µs (queueing, the wait for the
    /// UE's previous migration, connection set-up).
    pub send_delay_us: f64,
    /// `TriggerHandover` sent → accepted, µs.
    pub accept_us: f64,
    /// Due time → the migration's start as the agent recorded it, µs.
    pub start_delay_us: Option<f64>,
    /// The agent's phase timings.
    pub phases: Option<Phases>,
    /// Octets of context moved.
    pub context_bytes: u64,
    /// Connections moved.
    pub connections: u32,
}

impl MigrationResult {
    /// Whether the migration completed.
    pub fn completed(&self) -> bool {
        self.outcome == "completed"
    }
}

/// What became of one `handover_end_ok`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompleteResult {
    /// The UE's service-level identity.
    pub ue: String,
    /// Its IMSI.
    pub imsi: u64,
    /// Its RNTI at the target.
    pub rnti: u16,
    /// The cell the UE attached to.
    pub cell: u32,
    /// The event's time in the trace (µs).
    pub trace_time_us: u64,
    /// Due time → `CompleteHandover` sent, µs.
    pub send_delay_us: f64,
    /// The migration whose connections were activated (0: not arrived yet).
    pub migration_id: u64,
    /// Why the call failed, if it did.
    pub error: Option<String>,
}

/// One result line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DriverEvent {
    /// A `handover_start`'s migration.
    Migration(MigrationResult),
    /// A `handover_end_ok`'s `CompleteHandover`.
    Complete(CompleteResult),
}

impl DriverEvent {
    /// One JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Counters of a driver (all monotonic).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events submitted to be sent.
    pub submitted: AtomicU64,
    /// `TriggerHandover` calls sent.
    pub triggers_sent: AtomicU64,
    /// … and accepted.
    pub triggers_accepted: AtomicU64,
    /// Migrations that completed.
    pub completed: AtomicU64,
    /// Migrations that did not complete (any other outcome, errors included).
    pub not_completed: AtomicU64,
    /// `CompleteHandover` calls sent.
    pub completes_sent: AtomicU64,
    /// Calls that failed (refused, unreachable, timed out).
    pub errors: AtomicU64,
}

#[derive(Debug)]
enum Job {
    Start(TraceRecord, Due),
    End(TraceRecord, Due),
}

/// A UE's task and its queue.
type Worker = (mpsc::UnboundedSender<Job>, JoinHandle<()>);

#[derive(Debug)]
struct Inner {
    scenario: Arc<Scenario>,
    clients: HashMap<PathBuf, Operator>,
    permits: Semaphore,
    opts: DriverOptions,
    events: Mutex<Vec<DriverEvent>>,
    live: Option<mpsc::UnboundedSender<DriverEvent>>,
    stats: Stats,
}

/// Sends handover events to the agents of a scenario.
#[derive(Debug)]
pub struct Driver {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
    workers: Mutex<HashMap<u64, Worker>>,
}

impl Driver {
    /// Creates a driver for the agents of `scenario`. Must be called inside
    /// a tokio runtime; unless `opts.lazy_connect`, every agent must answer.
    /// `live` receives every result as it is known.
    pub async fn new(
        scenario: Arc<Scenario>,
        opts: DriverOptions,
        live: Option<mpsc::UnboundedSender<DriverEvent>>,
    ) -> Result<Driver, ConnectError> {
        let mut clients = HashMap::new();
        for enbc in scenario.enbcs() {
            let client = if opts.lazy_connect {
                agent::connect_lazy(&enbc.api)?
            } else {
                agent::connect(&enbc.api).await.map_err(|e| ConnectError {
                    addr: format!("{} (eNBC {:?})", e.addr, enbc.name),
                    message: e.message,
                })?
            };
            clients.insert(enbc.api.clone(), client);
        }
        Ok(Driver {
            inner: Arc::new(Inner {
                scenario,
                clients,
                permits: Semaphore::new(opts.max_in_flight.max(1)),
                opts,
                events: Mutex::new(Vec::new()),
                live,
                stats: Stats::default(),
            }),
            handle: tokio::runtime::Handle::current(),
            workers: Mutex::new(HashMap::new()),
        })
    }

    /// Hands an event over to be sent; returns at once (callable from any
    /// thread). Returns whether the kind is one that is sent.
    pub fn submit(&self, record: TraceRecord, due: Due) -> bool {
        let job = match record.kind {
            EventKind::HandoverStart => Job::Start(record, due),
            EventKind::HandoverEndOk => Job::End(record, due),
            _ => return false,
        };
        self.inner.stats.submitted.fetch_add(1, Ordering::Relaxed);
        let imsi = match &job {
            Job::Start(r, _) | Job::End(r, _) => r.imsi,
        };
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let (tx, _) = workers.entry(imsi).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let inner = Arc::clone(&self.inner);
            let handle = self.handle.spawn(ue_worker(inner, rx));
            (tx, handle)
        });
        // The worker only stops once its sender is dropped (in `finish`).
        let _ = tx.send(job);
        true
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Results known so far.
    pub fn events(&self) -> Vec<DriverEvent> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Lets every submitted event finish (at most `limit`), then returns
    /// all results. Workers still busy at the limit are stopped; their
    /// missing results are reported as the second value.
    pub async fn finish(&self, limit: Duration) -> (Vec<DriverEvent>, usize) {
        let workers: Vec<_> = {
            let mut w = self.workers.lock().unwrap_or_else(|p| p.into_inner());
            w.drain().map(|(_, (_, handle))| handle).collect()
        };
        let deadline = tokio::time::Instant::now() + limit;
        let mut unfinished = 0;
        for mut handle in workers {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                unfinished += 1;
            }
        }
        (self.events(), unfinished)
    }
}

impl Inner {
    fn push(&self, event: DriverEvent) {
        match &event {
            DriverEvent::Migration(m) if m.completed() => {
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
            }
            DriverEvent::Migration(_) => {
                self.stats.not_completed.fetch_add(1, Ordering::Relaxed);
            }
            DriverEvent::Complete(_) => {}
        }
        if let Some(live) = &self.live {
            let _ = live.send(event.clone());
        }
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    fn client_for_cell(&self, cell: u32) -> Result<Operator, String> {
        let path = self
            .scenario
            .agent_for_cell(cell)
            .map_err(|e| e.to_string())?;
        self.clients
            .get(path)
            .cloned()
            .ok_or_else(|| format!("no client for {}", path.display()))
    }

    /// Sends the trigger; on acceptance returns the task that waits for
    /// the outcome.
    async fn start(self: &Arc<Self>, r: TraceRecord, due: Due) -> Option<JoinHandle<()>> {
        let mut result = MigrationResult {
            ue: String::new(),
            imsi: r.imsi,
            rnti: r.rnti,
            source_cell: r.source_cell,
            target_cell: r.target_cell,
            trace_time_us: r.time_us,
            outcome: "error".into(),
            reason: String::new(),
            migration_id: 0,
            already_migrating: false,
            send_delay_us: 0.0,
            accept_us: 0.0,
            start_delay_us: None,
            phases: None,
            context_bytes: 0,
            connections: 0,
        };
        let prepared = self
            .scenario
            .ue_identity(r.imsi)
            .map_err(|e| e.to_string())
            .and_then(|ue| Ok((ue, self.client_for_cell(r.source_cell)?)));
        let (ue, client) = match prepared {
            Ok(v) => v,
            Err(reason) => {
                result.reason = reason;
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.push(DriverEvent::Migration(result));
                return None;
            }
        };
        result.ue = ue.clone();
        if self.scenario.same_enbc(r.source_cell, r.target_cell) {
            result.outcome = "skipped".into();
            result.reason = "source and target cell are served by the same eNBC".into();
            self.push(DriverEvent::Migration(result));
            return None;
        }
        let permit = self.permits.acquire().await.ok();
        let sent = Instant::now();
        result.send_delay_us = micros(sent.saturating_duration_since(due.at));
        self.stats.triggers_sent.fetch_add(1, Ordering::Relaxed);
        let mut trigger_client = client.clone();
        let call = trigger_client.trigger_handover(pb::TriggerHandoverRequest {
            ue: ue.clone(),
            source_cell: r.source_cell,
            target_cell: r.target_cell,
            wait: false,
        });
        let answer = tokio::time::timeout(self.opts.rpc_timeout, call).await;
        drop(permit);
        result.accept_us = micros(sent.elapsed());
        let resp = match answer {
            Ok(Ok(resp)) => resp.into_inner(),
            Ok(Err(status)) => {
                result.reason = format!("{:?}: {}", status.code(), status.message());
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.push(DriverEvent::Migration(result));
                return None;
            }
            Err(_) => {
                result.reason = format!(
                    "TriggerHandover not answered within {:?}",
                    self.opts.rpc_timeout
                );
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.push(DriverEvent::Migration(result));
                return None;
            }
        };
        self.stats.triggers_accepted.fetch_add(1, Ordering::Relaxed);
        result.migration_id = resp.migration_id;
        result.already_migrating = resp.already_migrating;
        let inner = Arc::clone(self);
        Some(tokio::spawn(async move {
            inner.await_outcome(client, result, due).await;
        }))
    }

    async fn await_outcome(&self, mut client: Operator, mut result: MigrationResult, due: Due) {
        let deadline = tokio::time::Instant::now() + self.opts.migration_timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let permit = self.permits.acquire().await.ok();
            let call = client.migration_history(pb::MigrationHistoryRequest {
                limit: 64,
                ue: result.ue.clone(),
            });
            let answer = tokio::time::timeout(self.opts.rpc_timeout, call).await;
            drop(permit);
            match answer {
                Ok(Ok(resp)) => {
                    let found = resp.into_inner().records.into_iter().find(|rec| {
                        rec.migration_id == result.migration_id
                            && rec.outcome != pb::Outcome::InProgress as i32
                            && rec.outcome != pb::Outcome::Unspecified as i32
                    });
                    if let Some(rec) = found {
                        result.outcome = outcome_name(rec.outcome).into();
                        result.reason = rec.reason;
                        result.phases = rec.phases.as_ref().map(Phases::from);
                        result.context_bytes = rec.context_bytes;
                        result.connections = rec.connections;
                        if rec.started_unix_ns != 0 {
                            result.start_delay_us =
                                Some((rec.started_unix_ns - due.unix_ns) as f64 / 1000.0);
                        }
                        self.push(DriverEvent::Migration(result));
                        return;
                    }
                }
                Ok(Err(status)) => {
                    result.reason = format!(
                        "MigrationHistory: {:?}: {}",
                        status.code(),
                        status.message()
                    );
                }
                Err(_) => result.reason = "MigrationHistory not answered".into(),
            }
            if tokio::time::Instant::now() + pause > deadline {
                result.outcome = "timeout".into();
                if result.reason.is_empty() {
                    result.reason = format!(
                        "no outcome within {:?} of the trigger's acceptance",
                        self.opts.migration_timeout
                    );
                }
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.push(DriverEvent::Migration(result));
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    async fn complete(&self, r: TraceRecord, due: Due) {
        let mut result = CompleteResult {
            ue: String::new(),
            imsi: r.imsi,
            rnti: r.rnti,
            cell: r.target_cell,
            trace_time_us: r.time_us,
            send_delay_us: 0.0,
            migration_id: 0,
            error: None,
        };
        let prepared = self
            .scenario
            .ue_identity(r.imsi)
            .map_err(|e| e.to_string())
            .and_then(|ue| Ok((ue, self.client_for_cell(r.target_cell)?)));
        let (ue, mut client) = match prepared {
            Ok(v) => v,
            Err(e) => {
                result.error = Some(e);
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.push(DriverEvent::Complete(result));
                return;
            }
        };
        result.ue = ue.clone();
        let permit = self.permits.acquire().await.ok();
        let sent = Instant::now();
        result.send_delay_us = micros(sent.saturating_duration_since(due.at));
        self.stats.completes_sent.fetch_add(1, Ordering::Relaxed);
        let call = client.complete_handover(pb::CompleteHandoverRequest {
            ue,
            cell: r.target_cell,
        });
        match tokio::time::timeout(self.opts.rpc_timeout, call).await {
            Ok(Ok(resp)) => result.migration_id = resp.into_inner().migration_id,
            Ok(Err(status)) => {
                result.error = Some(format!("{:?}: {}", status.code(), status.message()));
            }
            Err(_) => result.error = Some("CompleteHandover not answered".into()),
        }
        drop(permit);
        if result.error.is_some() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.push(DriverEvent::Complete(result));
    }
}

async fn ue_worker(inner: Arc<Inner>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut previous: Option<JoinHandle<()>> = None;
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Start(record, due) => {
                if let Some(h) = previous.take() {
                    let _ = h.await;
                }
                previous = inner.start(record, due).await;
            }
            Job::End(record, due) => inner.complete(record, due).await,
        }
    }
    if let Some(h) = previous {
        let _ = h.await;
    }
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// The trace-style name of an Operator outcome.
pub fn outcome_name(outcome: i32) -> &'static str {
    match pb::Outcome::try_from(outcome) {
        Ok(pb::Outcome::Completed) => "completed",
        Ok(pb::Outcome::RolledBack) => "rolled_back",
        Ok(pb::Outcome::Rejected) => "rejected",
        Ok(pb::Outcome::Failed) => "failed",
        Ok(pb::Outcome::InProgress) => "in_progress",
        _ => "unspecified",
    }
}
