//! Prometheus metrics: phase histograms, outcomes, dropped peer frames.

use crate::history::{Direction, Outcome, Record};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Phase {
    MihCommit,
    AppData,
    SocketData,
    Cxtp,
    Total,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: Phase,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub direction: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub protocol: String,
    pub reason: String,
}

/// All metrics of one agent.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    phase_seconds: Family<PhaseLabels, Histogram>,
    context_bytes: Histogram,
    outcomes: Family<OutcomeLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    pub users: Gauge,
    pub services: Gauge,
    /// Times the CPU-latency request went from relaxed to held.
    pub cpu_latency_holds: Counter,
    /// Totals for Health, by outcome.
    pub completed: AtomicU64,
    pub rolled_back: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    pub dropped_total: AtomicU64,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 50 µs .. ~1.6 s, doubling: fine enough around the 1 ms target.
    prometheus_client::metrics::histogram::exponential_buckets(50e-6, 2.0, 16)
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("edgemob");
        let phase_seconds = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "migration_phase_seconds",
            "Duration of each migration phase (paper Table I) at the source",
            phase_seconds.clone(),
        );
        let context_bytes = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(1024.0, 2.0, 16),
        );
        registry.register(
            "migration_context_bytes",
            "Context moved per migration (application contexts and socket images)",
            context_bytes.clone(),
        );
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "migrations",
            "Migrations by direction and outcome",
            outcomes.clone(),
        );
        let dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "peer_frames_dropped",
            "Frames from peers dropped as malformed, framing (CXTP), unauthenticated or misaddressed (MIH)",
            dropped.clone(),
        );
        let users = Gauge::default();
        registry.register("users", "UEs served by this eNBC", users.clone());
        let services = Gauge::default();
        registry.register("services", "Service instances registered", services.clone());
        let cpu_latency_holds = Counter::default();
        registry.register(
            "cpu_latency_holds",
            "Times the agent asked the kernel to keep idle CPUs polling (migration.cpu_latency)",
            cpu_latency_holds.clone(),
        );
        Metrics {
            registry,
            phase_seconds,
            context_bytes,
            outcomes,
            dropped,
            users,
            services,
            cpu_latency_holds,
            completed: AtomicU64::new(0),
            rolled_back: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
        }
    }

    pub fn record(&self, r: &Record) {
        let (dir, slot) = (
            match r.direction {
                Direction::Out => "out",
                Direction::In => "in",
            },
            match r.outcome {
                Outcome::Completed => ("completed", &self.completed),
                Outcome::RolledBack => ("rolled_back", &self.rolled_back),
                Outcome::Rejected => ("rejected", &self.rejected),
                Outcome::Failed => ("failed", &self.failed),
            },
        );
        slot.1.fetch_add(1, Ordering::Relaxed);
        self.outcomes
            .get_or_create(&OutcomeLabels {
                direction: dir.into(),
                outcome: slot.0.into(),
            })
            .inc();
        if r.direction == Direction::Out && r.outcome == Outcome::Completed {
            let p = &r.phases;
            for (phase, v) in [
                (Phase::MihCommit, p.mih_commit_ns),
                (Phase::AppData, p.app_data_ns),
                (Phase::SocketData, p.socket_data_ns),
                (Phase::Cxtp, p.cxtp_ns),
                (Phase::Total, p.total_ns),
            ] {
                self.phase_seconds
                    .get_or_create(&PhaseLabels { phase })
                    .observe(v as f64 / 1e9);
            }
            self.context_bytes.observe(r.context_bytes as f64);
        }
    }

    pub fn dropped(&self, protocol: &str, reason: &str) {
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
        self.dropped
            .get_or_create(&DropLabels {
                protocol: protocol.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
