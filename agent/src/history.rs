//! Per-migration records: the paper's Table I phases for every migration,
//! kept in memory for `MigrationHistory` and appended as JSON lines.

use edgemob_paas_api::v1 as pb;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Out,
    In,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    RolledBack,
    Rejected,
    Failed,
}

/// Phase durations in nanoseconds (0 when a phase did not run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    pub mih_commit_ns: u64,
    pub app_data_ns: u64,
    pub socket_data_ns: u64,
    pub cxtp_ns: u64,
    pub total_ns: u64,
    /// Wait for a migration slot before the migration started.
    #[serde(default)]
    pub queued_ns: u64,
}

pub fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub migration_id: u64,
    pub ue: String,
    pub direction: Direction,
    pub peer: String,
    pub source_cell: u32,
    pub target_cell: u32,
    pub outcome: Outcome,
    pub reason: String,
    pub phases: Phases,
    pub context_bytes: u64,
    /// Of `context_bytes`, the services' application contexts.
    #[serde(default)]
    pub app_context_bytes: u64,
    pub connections: u32,
    pub started_unix_ns: i64,
}

impl Record {
    /// The record of a migration that starts now: no outcome yet (`Failed`
    /// until it says otherwise), nothing measured.
    pub fn begin(
        migration_id: u64,
        ue: &str,
        direction: Direction,
        peer: &str,
        source_cell: u32,
        target_cell: u32,
    ) -> Record {
        Record {
            migration_id,
            ue: ue.to_owned(),
            direction,
            peer: peer.to_owned(),
            source_cell,
            target_cell,
            outcome: Outcome::Failed,
            reason: String::new(),
            phases: Phases::default(),
            context_bytes: 0,
            app_context_bytes: 0,
            connections: 0,
            started_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        }
    }
}

impl From<&Record> for pb::MigrationRecord {
    fn from(r: &Record) -> Self {
        pb::MigrationRecord {
            migration_id: r.migration_id,
            ue: r.ue.clone(),
            direction: match r.direction {
                Direction::Out => pb::Direction::Out,
                Direction::In => pb::Direction::In,
            } as i32,
            peer: r.peer.clone(),
            source_cell: r.source_cell,
            target_cell: r.target_cell,
            outcome: outcome_pb(r.outcome) as i32,
            reason: r.reason.clone(),
            phases: Some(pb::PhaseTimings {
                mih_commit_ns: r.phases.mih_commit_ns,
                app_data_ns: r.phases.app_data_ns,
                socket_data_ns: r.phases.socket_data_ns,
                cxtp_ns: r.phases.cxtp_ns,
                total_ns: r.phases.total_ns,
                queued_ns: r.phases.queued_ns,
            }),
            context_bytes: r.context_bytes,
            connections: r.connections,
            started_unix_ns: r.started_unix_ns,
            app_context_bytes: r.app_context_bytes,
        }
    }
}

pub fn outcome_pb(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Completed => pb::Outcome::Completed,
        Outcome::RolledBack => pb::Outcome::RolledBack,
        Outcome::Rejected => pb::Outcome::Rejected,
        Outcome::Failed => pb::Outcome::Failed,
    }
}

/// The bounded in-memory history and the optional JSON-lines log.
#[derive(Debug)]
pub struct History {
    keep: usize,
    records: Mutex<VecDeque<Record>>,
    log: Option<Mutex<std::fs::File>>,
}

impl History {
    pub fn new(keep: usize, jsonl: Option<&Path>) -> std::io::Result<History> {
        let log = match jsonl {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        Ok(History {
            keep: keep.max(1),
            records: Mutex::new(VecDeque::new()),
            log,
        })
    }

    /// Keeps the record in memory (MigrationHistory) only.
    pub fn remember(&self, r: Record) {
        let mut q = self.records.lock().expect("not poisoned");
        if q.len() == self.keep {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// Appends the record to the JSON-lines log, if there is one.
    pub fn append_log(&self, r: &Record) {
        if let Some(log) = &self.log {
            let mut line = serde_json::to_vec(r).expect("records serialize");
            line.push(b'\n');
            if let Err(e) = log.lock().expect("not poisoned").write_all(&line) {
                tracing::warn!(error = %e, "cannot append to the migration log");
            }
        }
    }

    /// Most recent first, optionally for one UE, at most `limit` (0 = all).
    pub fn recent(&self, limit: usize, ue: Option<&str>) -> Vec<Record> {
        let q = self.records.lock().expect("not poisoned");
        let it = q.iter().rev().filter(|r| ue.is_none_or(|u| r.ue == u));
        if limit == 0 {
            it.cloned().collect()
        } else {
            it.take(limit).cloned().collect()
        }
    }
}
