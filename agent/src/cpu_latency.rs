//! Keeps idle CPUs polling while migrations are in flight.
//!
//! A migration is a chain of wake-ups: agent → service → agent → peer
//! agent → … → CTDR. Each one lands on a CPU that is usually idle, and
//! leaving an idle state costs tens to hundreds of microseconds — on a
//! virtual machine a halted vCPU must first be rescheduled by the host.
//! With a zero CPU-latency PM QoS request (`/dev/cpu_dma_latency`, the
//! kernel's interface for this; latency-tuned hosts hold it permanently)
//! the idle governor picks its polling state instead, and a wake-up is
//! the setting of a flag.
//!
//! The request is held from a migration step until `linger` after the last
//! step ([`CpuLatency::kick`]), so the CPUs poll only around handovers.
//! Writing a new value updates the request; closing the file drops it.

use crate::config::CpuLatencyMode;
use prometheus_client::metrics::counter::Counter;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The kernel's interface for system-wide CPU-latency requests.
pub const DEVICE: &str = "/dev/cpu_dma_latency";

/// "No constraint": the value the kernel itself starts from (2,000 s).
const NO_CONSTRAINT_US: i32 = 2_000_000_000;

/// A handle on this agent's CPU-latency request; cheap to clone.
#[derive(Debug, Clone, Default)]
pub enum CpuLatency {
    /// Nothing asked (`off`, or the device could not be opened).
    #[default]
    Off,
    /// Asked for the agent's lifetime: the request lives as long as the file.
    Always(Arc<File>),
    /// Asked around migrations.
    AroundMigrations(Arc<Inner>),
}

/// The request behind [`CpuLatency::AroundMigrations`].
#[derive(Debug)]
pub struct Inner {
    linger: Duration,
    holds: Counter,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    /// Whether the file currently asks for zero latency; while it does, a
    /// task waits to relax it.
    held: bool,
    /// When the request may be relaxed.
    until: Instant,
}

impl CpuLatency {
    /// Opens the request at `path` (normally [`DEVICE`]) for `mode`.
    /// `Off` opens nothing; `Always` asks for zero latency at once and
    /// keeps asking until the agent exits. `holds` counts each time the
    /// request goes from relaxed to held.
    pub fn open(
        mode: CpuLatencyMode,
        linger: Duration,
        path: &Path,
        holds: Counter,
    ) -> std::io::Result<Self> {
        if mode == CpuLatencyMode::Off {
            return Ok(CpuLatency::default());
        }
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        // Opening adds a request at the kernel's default; say "none" to be
        // explicit until the first migration.
        let held = mode == CpuLatencyMode::Always;
        write_request(&mut file, if held { 0 } else { NO_CONSTRAINT_US })?;
        if held {
            holds.inc();
            return Ok(CpuLatency::Always(Arc::new(file)));
        }
        Ok(CpuLatency::AroundMigrations(Arc::new(Inner {
            linger,
            holds,
            state: Mutex::new(State {
                file,
                held: false,
                until: Instant::now(),
            }),
        })))
    }

    /// A migration made a step: keep the CPUs polling until `linger`
    /// from now. Costs one `write` when the request was relaxed, nothing
    /// else otherwise. Must run inside the agent's runtime.
    pub fn kick(&self) {
        let CpuLatency::AroundMigrations(inner) = self else {
            return;
        };
        let mut st = inner.state.lock().expect("not poisoned");
        st.until = Instant::now() + inner.linger;
        if st.held {
            return;
        }
        match write_request(&mut st.file, 0) {
            Ok(()) => {
                st.held = true;
                inner.holds.inc();
                tokio::spawn(relax(Arc::clone(inner)));
            }
            Err(e) => tracing::debug!(error = %e, "cannot update the CPU-latency request"),
        }
    }

    /// Whether the request is currently held (for metrics and tests).
    pub fn held(&self) -> bool {
        match self {
            CpuLatency::Off => false,
            CpuLatency::Always(_) => true,
            CpuLatency::AroundMigrations(i) => i.state.lock().expect("not poisoned").held,
        }
    }
}

/// Relaxes the request once no step has extended it for `linger`.
async fn relax(inner: Arc<Inner>) {
    loop {
        let until = inner.state.lock().expect("not poisoned").until;
        tokio::time::sleep_until(until).await;
        let mut st = inner.state.lock().expect("not poisoned");
        if Instant::now() < st.until {
            continue; // kicked meanwhile
        }
        if let Err(e) = write_request(&mut st.file, NO_CONSTRAINT_US) {
            tracing::debug!(error = %e, "cannot relax the CPU-latency request");
        }
        st.held = false;
        return;
    }
}

/// The device takes the latency in microseconds as a native-endian `s32`.
fn write_request(file: &mut File, us: i32) -> std::io::Result<()> {
    file.write_all(&us.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(path: &Path) -> Vec<i32> {
        std::fs::read(path)
            .unwrap()
            .chunks(4)
            .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn held_from_a_kick_until_linger_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qos");
        std::fs::write(&path, b"").unwrap();
        let linger = Duration::from_millis(5);
        let holds = Counter::default();
        let cpu =
            CpuLatency::open(CpuLatencyMode::Migrations, linger, &path, holds.clone()).unwrap();
        assert_eq!(requests(&path), [NO_CONSTRAINT_US]);
        assert!(!cpu.held());

        cpu.kick();
        assert!(cpu.held());
        // Steps inside the linger extend it without touching the file.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(3)).await;
            cpu.kick();
        }
        assert!(cpu.held());
        assert_eq!(requests(&path), [NO_CONSTRAINT_US, 0]);

        tokio::time::sleep(Duration::from_millis(6)).await;
        assert!(!cpu.held());
        assert_eq!(requests(&path), [NO_CONSTRAINT_US, 0, NO_CONSTRAINT_US]);

        // A later migration asks again.
        cpu.kick();
        assert!(cpu.held());
        assert_eq!(requests(&path), [NO_CONSTRAINT_US, 0, NO_CONSTRAINT_US, 0]);
        assert_eq!(holds.get(), 2);
    }

    #[test]
    fn off_touches_nothing_and_always_holds_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let off = CpuLatency::open(
            CpuLatencyMode::Off,
            Duration::ZERO,
            &missing,
            Counter::default(),
        )
        .unwrap();
        assert!(!off.held());
        off.kick(); // no runtime needed: nothing to do

        let path = dir.path().join("qos");
        std::fs::write(&path, b"").unwrap();
        let always = CpuLatency::open(
            CpuLatencyMode::Always,
            Duration::ZERO,
            &path,
            Counter::default(),
        )
        .unwrap();
        assert!(always.held());
        always.kick();
        assert_eq!(requests(&path), [0]);

        let e = CpuLatency::open(
            CpuLatencyMode::Migrations,
            Duration::ZERO,
            &missing,
            Counter::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
