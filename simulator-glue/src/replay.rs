//! Replays a handover trace against running agents, in real or scaled
//! time, without ns-3.
//!
//! Each `handover_start` is due at `time_us / speed` after the replay
//! starts (`speed = 0`: all at once, in trace order), each
//! `handover_end_ok` likewise; the [`Driver`] sends them (see its docs for
//! the ordering rules) and collects one result per migration and per
//! completion. Other kinds are counted and skipped.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::agent::ConnectError;
use crate::driver::{CompleteResult, Driver, DriverEvent, DriverOptions, Due, MigrationResult};
use crate::scenario::Scenario;
use crate::trace::{EventKind, TraceRecord};

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Trace seconds per wall-clock second; 0 replays as fast as possible.
    pub speed: f64,
    /// Driver tuning (concurrency, timeouts).
    pub driver: DriverOptions,
    /// Bound on the whole replay; by default the trace's span at this speed
    /// plus the migration timeout plus 30 s.
    pub total_timeout: Option<Duration>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: 1.0,
            driver: DriverOptions::default(),
            total_timeout: None,
        }
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The speed is negative or not a number.
    #[error("--speed must be a finite number ≥ 0, not {0}")]
    Speed(f64),
    /// A record names a cell or UE the scenario does not know.
    #[error("trace record at {time_s:.6} s (IMSI {imsi}, {kind}): {message}")]
    Unmapped {
        /// The record's time, s.
        time_s: f64,
        /// The record's IMSI.
        imsi: u64,
        /// The record's kind.
        kind: EventKind,
        /// What is missing.
        message: String,
    },
    /// An agent did not answer.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Results, in the order they became known.
    pub events: Vec<DriverEvent>,
    /// Records of kinds that are not replayed (intra-eNB handovers, failures).
    pub skipped_records: usize,
    /// Records not sent because the total timeout came first.
    pub unsent: usize,
    /// UEs whose results were still pending at the timeout.
    pub unfinished: usize,
    /// Wall-clock duration.
    pub wall: Duration,
}

/// Checks that every replayed record maps to an agent and a UE identity.
pub fn check(records: &[TraceRecord], scenario: &Scenario) -> Result<(), ReplayError> {
    for r in records {
        let cells: &[u32] = match r.kind {
            EventKind::HandoverStart => &[r.source_cell, r.target_cell],
            EventKind::HandoverEndOk => &[r.target_cell],
            _ => continue,
        };
        let unmapped = |message: String| ReplayError::Unmapped {
            time_s: r.time_s(),
            imsi: r.imsi,
            kind: r.kind,
            message,
        };
        for &cell in cells {
            scenario
                .agent_for_cell(cell)
                .map_err(|e| unmapped(e.to_string()))?;
        }
        scenario
            .ue_identity(r.imsi)
            .map_err(|e| unmapped(e.to_string()))?;
    }
    Ok(())
}

/// Replays `records` (any order; sorted here by time) against the agents
/// of `scenario`. `live` receives each result as it is known.
pub async fn replay(
    records: Vec<TraceRecord>,
    scenario: Arc<Scenario>,
    opts: ReplayOptions,
    live: Option<mpsc::UnboundedSender<DriverEvent>>,
) -> Result<ReplayReport, ReplayError> {
    if !opts.speed.is_finite() || opts.speed < 0.0 {
        return Err(ReplayError::Speed(opts.speed));
    }
    check(&records, &scenario)?;
    let records = crate::trace::sorted(records);
    let offset = |r: &TraceRecord| {
        if opts.speed == 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(r.time_us as f64 / 1e6 / opts.speed)
        }
    };
    let span = records.last().map(offset).unwrap_or_default();
    let total = opts
        .total_timeout
        .unwrap_or(span + opts.driver.migration_timeout + Duration::from_secs(30));

    let driver = Driver::new(scenario, opts.driver.clone(), live).await?;
    let started = Instant::now();
    let t0 = Due::now();
    let deadline = tokio::time::Instant::from_std(t0.at) + total;
    let mut report = ReplayReport::default();
    for (i, r) in records.iter().enumerate() {
        if !matches!(r.kind, EventKind::HandoverStart | EventKind::HandoverEndOk) {
            report.skipped_records += 1;
            continue;
        }
        let due = t0.plus(offset(r));
        let at = tokio::time::Instant::from_std(due.at);
        if at > deadline {
            report.unsent = records[i..]
                .iter()
                .filter(|r| matches!(r.kind, EventKind::HandoverStart | EventKind::HandoverEndOk))
                .count();
            break;
        }
        tokio::time::sleep_until(at).await;
        driver.submit(r.clone(), due);
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let (events, unfinished) = driver.finish(left.max(Duration::from_secs(1))).await;
    report.events = events;
    report.unfinished = unfinished;
    report.wall = started.elapsed();
    Ok(report)
}

/// Order statistics of a sample, in the sample's unit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// Number of values.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `values` (any order).
    pub fn of(mut values: Vec<f64>) -> Spread {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        let rank =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Spread {
            n: values.len(),
            median: rank(0.5),
            p99: rank(0.99),
            max: values[values.len() - 1],
        }
    }
}

impl ReplayReport {
    /// The migration results, by trace time.
    pub fn migrations(&self) -> Vec<&MigrationResult> {
        let mut m: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                DriverEvent::Migration(m) => Some(m),
                DriverEvent::Complete(_) => None,
            })
            .collect();
        m.sort_by_key(|m| (m.trace_time_us, m.imsi));
        m
    }

    /// The completion results, by trace time.
    pub fn completes(&self) -> Vec<&CompleteResult> {
        let mut c: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                DriverEvent::Complete(c) => Some(c),
                DriverEvent::Migration(_) => None,
            })
            .collect();
        c.sort_by_key(|c| (c.trace_time_us, c.imsi));
        c
    }

    /// Whether every migration completed, every completion was accepted and
    /// nothing was left unsent or unfinished.
    pub fn all_completed(&self) -> bool {
        self.unsent == 0
            && self.unfinished == 0
            && self.migrations().iter().all(|m| m.completed())
            && self.completes().iter().all(|c| c.error.is_none())
    }

    /// Delay from each migration's due time to its trigger being sent, µs.
    pub fn send_delays(&self) -> Spread {
        Spread::of(self.migrations().iter().map(|m| m.send_delay_us).collect())
    }

    /// Delay from each migration's due time to its start at the agent, µs.
    pub fn start_delays(&self) -> Spread {
        Spread::of(
            self.migrations()
                .iter()
                .filter_map(|m| m.start_delay_us)
                .collect(),
        )
    }

    /// One line per migration.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>10}  {:<24} {:>11}  {:<11} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "time s",
            "ue",
            "cells",
            "outcome",
            "send ms",
            "start ms",
            "total ms",
            "mih ms",
            "app ms",
            "sock ms",
            "cxtp ms"
        );
        let ms = |us: f64| format!("{:.3}", us / 1000.0);
        for m in self.migrations() {
            let phases = m.phases.unwrap_or_default();
            let has = m.phases.is_some();
            let p = |v: f64| if has { ms(v) } else { "-".into() };
            let _ = writeln!(
                out,
                "{:>10.6}  {:<24} {:>11}  {:<11} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}{}",
                m.trace_time_us as f64 / 1e6,
                truncate(if m.ue.is_empty() { "?" } else { &m.ue }, 24),
                format!("{}→{}", m.source_cell, m.target_cell),
                m.outcome,
                ms(m.send_delay_us),
                m.start_delay_us.map(ms).unwrap_or_else(|| "-".into()),
                p(phases.total_us),
                p(phases.mih_commit_us),
                p(phases.app_data_us),
                p(phases.socket_data_us),
                p(phases.cxtp_us),
                if m.reason.is_empty() {
                    String::new()
                } else {
                    format!("  {}", m.reason)
                }
            );
        }
        out
    }

    /// The totals.
    pub fn summary(&self) -> String {
        let migrations = self.migrations();
        let count = |o: &str| migrations.iter().filter(|m| m.outcome == o).count();
        let completes = self.completes();
        let mut out = format!(
            "migrations: {} (completed {}, rolled back {}, rejected {}, failed {}, skipped {}, timeout {}, error {})\n",
            migrations.len(),
            count("completed"),
            count("rolled_back"),
            count("rejected"),
            count("failed"),
            count("skipped"),
            count("timeout"),
            count("error"),
        );
        let _ = writeln!(
            out,
            "completions: {} ({} failed); records not replayed: {}; unsent at the time limit: {}; unfinished: {}",
            completes.len(),
            completes.iter().filter(|c| c.error.is_some()).count(),
            self.skipped_records,
            self.unsent,
            self.unfinished
        );
        for (what, s) in [
            ("trace time → trigger sent", self.send_delays()),
            ("trace time → migration start", self.start_delays()),
        ] {
            if s.n > 0 {
                let _ = writeln!(
                    out,
                    "delay {what}: median {:.3} ms, p99 {:.3} ms, max {:.3} ms (n = {})",
                    s.median / 1000.0,
                    s.p99 / 1000.0,
                    s.max / 1000.0,
                    s.n
                );
            }
        }
        let _ = write!(out, "wall time: {:.3} s", self.wall.as_secs_f64());
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_uses_nearest_rank() {
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!((s.n, s.median, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(Spread::of(vec![]).n, 0);
        assert_eq!(Spread::of(vec![f64::NAN, 3.0]).median, 3.0);
    }
}
