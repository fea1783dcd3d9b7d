//! Who else held the CPUs during one handover.
//!
//! A migration that takes 4 ms instead of 0.7 ms is either slow itself or
//! slowed by something else on the machine. The scheduler already keeps
//! the figures that tell the two apart, per thread, in
//! `/proc/PID/task/TID/schedstat` (time on a CPU, time runnable but waiting
//! for one, in ns): a demo run reads them just before the trigger and once
//! the handover's stall window has closed, and records
//!
//! * how long edgemob's own threads (the agents and the services of every
//!   eNBC) ran, and how long they were ready to run and waited for a CPU
//!   (the first grows when the CPUs are slower, as on a busy host; the
//!   second when something else holds them), and
//! * how much CPU the guest's memory reclaim threads (DAMON's `kdamond`,
//!   [`crate::reclaim`]) took in the same window.
//!
//! No tracer is needed, and the reads (a few dozen small files) happen
//! outside the migration. A wait still under way at the second reading is
//! counted by the next run, not this one; threads that ended in between
//! are left out.

use std::collections::HashMap;
use std::path::Path;

/// Per-thread counters at one moment, ns.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time on a CPU and run-queue wait of each of edgemob's threads, by
    /// (pid, tid).
    ours: HashMap<(u32, u32), (u64, u64)>,
    /// CPU time of each reclaim thread, by pid.
    reclaim: HashMap<u32, u64>,
    /// False when the kernel keeps no per-task scheduler statistics.
    known: bool,
}

/// The CPU contention of one window, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contention {
    /// edgemob's threads on a CPU (summed over threads); NaN where the
    /// kernel has no schedstat.
    pub edgemob_ran_ms: f64,
    /// edgemob's threads, runnable and waiting for a CPU (summed over
    /// threads); NaN where the kernel has no schedstat.
    pub edgemob_waited_ms: f64,
    /// The guest's reclaim threads on a CPU; NaN where unknown.
    pub reclaim_ran_ms: f64,
}

/// Reads the counters of every thread of `ours` and of the `reclaim`
/// kernel threads.
pub fn snapshot(ours: &[u32], reclaim: &[u32]) -> Snapshot {
    let proc = Path::new("/proc");
    let mut s = Snapshot::default();
    for &pid in ours {
        let Ok(tasks) = std::fs::read_dir(proc.join(format!("{pid}/task"))) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(counters) = read_schedstat(&t.path().join("schedstat")) {
                s.ours.insert((pid, tid), counters);
                s.known = true;
            }
        }
    }
    for &pid in reclaim {
        if let Some((cpu, _)) = read_schedstat(&proc.join(format!("{pid}/schedstat"))) {
            s.reclaim.insert(pid, cpu);
        }
    }
    s
}

impl Snapshot {
    /// The contention between this snapshot and a `later` one. A thread
    /// born in between counts from zero.
    pub fn until(&self, later: &Snapshot) -> Contention {
        if !(self.known && later.known) {
            return Contention {
                edgemob_ran_ms: f64::NAN,
                edgemob_waited_ms: f64::NAN,
                reclaim_ran_ms: f64::NAN,
            };
        }
        let delta = |now: u64, before: Option<&u64>| now.saturating_sub(*before.unwrap_or(&0));
        let (mut ran, mut waited) = (0, 0);
        for (k, &(cpu, wait)) in &later.ours {
            let before = self.ours.get(k);
            ran += delta(cpu, before.map(|b| &b.0));
            waited += delta(wait, before.map(|b| &b.1));
        }
        let reclaim: u64 = later
            .reclaim
            .iter()
            .filter(|(k, _)| self.reclaim.contains_key(k))
            .map(|(k, &v)| delta(v, self.reclaim.get(k)))
            .sum();
        Contention {
            edgemob_ran_ms: ran as f64 / 1e6,
            edgemob_waited_ms: waited as f64 / 1e6,
            reclaim_ran_ms: reclaim as f64 / 1e6,
        }
    }
}

fn read_schedstat(path: &Path) -> Option<(u64, u64)> {
    parse_schedstat(&std::fs::read_to_string(path).ok()?)
}

/// `schedstat`: time on a CPU, time waiting on a run queue (ns), slices.
fn parse_schedstat(s: &str) -> Option<(u64, u64)> {
    let mut f = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some((f.next()??, f.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_wait() {
        assert_eq!(
            parse_schedstat("15384034888 5062218617 9817\n"),
            Some((15_384_034_888, 5_062_218_617))
        );
        assert_eq!(parse_schedstat("12\n"), None);
        assert_eq!(parse_schedstat("x 1 2\n"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    type Thread = ((u32, u32), (u64, u64));

    fn snap(ours: &[Thread], reclaim: &[(u32, u64)]) -> Snapshot {
        Snapshot {
            ours: ours.iter().copied().collect(),
            reclaim: reclaim.iter().copied().collect(),
            known: true,
        }
    }

    #[test]
    fn sums_the_waits_of_every_thread_and_the_reclaim_cpu() {
        let a = snap(
            &[((1, 1), (7_000_000, 1_000_000)), ((1, 2), (0, 0))],
            &[(9, 50_000_000)],
        );
        // Thread 1/2 ran 1 ms and waited 2.5 ms, 1/3 was born, ran 0.25 ms
        // and waited 0.5 ms, 1/1 neither ran nor waited; kdamond ran 4 ms.
        let b = snap(
            &[
                ((1, 1), (7_000_000, 1_000_000)),
                ((1, 2), (1_000_000, 2_500_000)),
                ((1, 3), (250_000, 500_000)),
            ],
            &[(9, 54_000_000)],
        );
        let c = a.until(&b);
        assert_eq!(c.edgemob_ran_ms, 1.25);
        assert_eq!(c.edgemob_waited_ms, 3.0);
        assert_eq!(c.reclaim_ran_ms, 4.0);
    }

    #[test]
    fn a_restarted_reclaim_thread_is_not_counted_whole() {
        let a = snap(&[((1, 1), (0, 0))], &[(9, 50_000_000)]);
        let b = snap(&[((1, 1), (0, 0))], &[(10, 70_000_000)]);
        assert_eq!(a.until(&b).reclaim_ran_ms, 0.0);
    }

    #[test]
    fn unknown_without_schedstat() {
        let c = Snapshot::default().until(&Snapshot::default());
        assert!(
            c.edgemob_ran_ms.is_nan() && c.edgemob_waited_ms.is_nan() && c.reclaim_ran_ms.is_nan()
        );
    }

    #[test]
    fn this_process_waits_are_read_and_never_go_back() {
        let me = std::process::id();
        let a = snapshot(&[me], &[]);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(5) {}
        let b = snapshot(&[me], &[]);
        if Path::new("/proc/self/schedstat").exists() {
            assert!(a.known && b.known, "threads of this process were read");
            assert!(a.ours.keys().any(|(p, _)| *p == me));
            let c = a.until(&b);
            // A running thread's CPU time is brought up to date at each
            // tick, so a 5 ms spin shows some of it.
            assert!(c.edgemob_ran_ms > 0.0, "the spin ran on a CPU: {c:?}");
            assert!(c.edgemob_waited_ms >= 0.0 && c.reclaim_ran_ms == 0.0);
        }
    }
}
