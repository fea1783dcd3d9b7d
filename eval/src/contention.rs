//! Who else held the CPUs during one handover.
//!
//! A migration that takes 4 ms instead of 0.7 ms is either slow itself or
//! slowed by something else on the machine. The scheduler already keeps
//! the figures that tell the two apart, per thread, in
//! `/proc/PID/task/TID/schedstat` (time on a CPU, time runnable but waiting
//! for one, in ns): a demo run reads every thread's just before the trigger
//! and once the handover's stall window has closed, and records
//!
//! * how long edgemob's own threads (the agents and the services of every
//!   eNBC) ran, and how long they were ready to run and waited for a CPU
//!   (the first grows when the CPUs are slower, as on a busy host; the
//!   second when something else holds them);
//! * how long the guest's memory reclaim threads (DAMON's `kdamond`,
//!   [`crate::reclaim`]) ran, and every other thread of the machine (the
//!   demo's client and capture among them, but not the process reading
//!   the counters: its own reading would count);
//! * the host's steal over the window ([`crate::steal`], in its 10 ms
//!   ticks, so a short window reads 0 or a tick).
//!
//! No tracer is needed; the reads (about a hundred small files on this
//! machine) happen outside the migration. A wait still under way at the
//! second reading is counted by the next run, not this one; threads that
//! ended in between are left out, threads born in between count from zero.
//! A running thread's CPU time is brought up to date at least every
//! scheduler tick.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// Where a thread belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Whose {
    Edgemob,
    Reclaim,
    Other,
}

/// Per-thread counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time on a CPU and run-queue wait (ns) of every thread, by
    /// (pid, tid).
    threads: HashMap<(u32, u32), (Whose, u64, u64)>,
    /// The host's steal since boot.
    steal: Option<Duration>,
}

/// The CPU contention of one window, ms; NaN where the kernel keeps no
/// per-task scheduler statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contention {
    /// The other thread that ran longest, if any ran.
    pub busiest_other: Option<Busiest>,
    /// edgemob's threads on a CPU (summed over threads).
    pub edgemob_ran_ms: f64,
    /// edgemob's threads, runnable and waiting for a CPU (summed over
    /// threads).
    pub edgemob_waited_ms: f64,
    /// The guest's reclaim threads on a CPU.
    pub reclaim_ran_ms: f64,
    /// Every other thread on a CPU.
    pub others_ran_ms: f64,
    /// Host steal over the window (10 ms resolution; NaN where unknown).
    pub steal_ms: f64,
}

/// One thread and its CPU time in a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Busiest {
    pub pid: u32,
    pub tid: u32,
    pub ran_ms: f64,
}

impl Busiest {
    /// The thread's name (`comm`), or `pid/tid` once it has ended.
    pub fn name(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/task/{}/comm", self.pid, self.tid))
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|_| format!("{}/{}", self.pid, self.tid))
    }
}

/// Reads the counters of every thread of the machine, `ours` being the
/// process ids of edgemob's agents and services and `reclaim` those of the
/// reclaim threads.
pub fn snapshot(ours: &[u32], reclaim: &[u32]) -> Snapshot {
    let (ours, reclaim): (HashSet<u32>, HashSet<u32>) = (
        ours.iter().copied().collect(),
        reclaim.iter().copied().collect(),
    );
    let me = std::process::id();
    let mut s = Snapshot {
        steal: crate::steal::host_steal(),
        ..Snapshot::default()
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return s;
    };
    let number = |e: &std::fs::DirEntry| e.file_name().to_str()?.parse::<u32>().ok();
    for p in procs.flatten() {
        let Some(pid) = number(&p).filter(|&pid| pid != me || ours.contains(&pid)) else {
            continue;
        };
        let whose = if ours.contains(&pid) {
            Whose::Edgemob
        } else if reclaim.contains(&pid) {
            Whose::Reclaim
        } else {
            Whose::Other
        };
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = number(&t) else { continue };
            if let Some((cpu, wait)) = read_schedstat(&t.path().join("schedstat")) {
                s.threads.insert((pid, tid), (whose, cpu, wait));
            }
        }
    }
    s
}

impl Snapshot {
    /// The contention between this snapshot and a `later` one.
    pub fn until(&self, later: &Snapshot) -> Contention {
        let steal_ms = crate::steal::ms_between(self.steal, later.steal).unwrap_or(f64::NAN);
        if self.threads.is_empty() || later.threads.is_empty() {
            return Contention {
                busiest_other: None,
                edgemob_ran_ms: f64::NAN,
                edgemob_waited_ms: f64::NAN,
                reclaim_ran_ms: f64::NAN,
                others_ran_ms: f64::NAN,
                steal_ms,
            };
        }
        let mut ran: HashMap<Whose, u64> = HashMap::new();
        let mut waited = 0;
        let mut busiest: Option<((u32, u32), u64)> = None;
        for (&k, &(whose, cpu, wait)) in &later.threads {
            let (cpu0, wait0) = self.threads.get(&k).map_or((0, 0), |t| (t.1, t.2));
            let cpu = cpu.saturating_sub(cpu0);
            *ran.entry(whose).or_default() += cpu;
            match whose {
                Whose::Edgemob => waited += wait.saturating_sub(wait0),
                // Ties go to the lower (pid, tid), so the answer is stable.
                Whose::Other
                    if cpu > 0
                        && busiest.is_none_or(|(b, most)| cpu > most || (cpu == most && k < b)) =>
                {
                    busiest = Some((k, cpu))
                }
                _ => {}
            }
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        let ran = |w| ms(ran.get(&w).copied().unwrap_or(0));
        Contention {
            busiest_other: busiest.map(|((pid, tid), cpu)| Busiest {
                pid,
                tid,
                ran_ms: ms(cpu),
            }),
            edgemob_ran_ms: ran(Whose::Edgemob),
            edgemob_waited_ms: ms(waited),
            reclaim_ran_ms: ran(Whose::Reclaim),
            others_ran_ms: ran(Whose::Other),
            steal_ms,
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

    type Thread = ((u32, u32), (Whose, u64, u64));

    fn snap(threads: &[Thread], steal_ms: u64) -> Snapshot {
        Snapshot {
            threads: threads.iter().copied().collect(),
            steal: Some(Duration::from_millis(steal_ms)),
        }
    }

    #[test]
    fn splits_the_cpu_between_edgemob_reclaim_and_the_rest() {
        use Whose::*;
        let a = snap(
            &[
                ((1, 1), (Edgemob, 7_000_000, 1_000_000)),
                ((1, 2), (Edgemob, 0, 0)),
                ((9, 9), (Reclaim, 50_000_000, 0)),
                ((5, 5), (Other, 1_000, 9_000_000)),
            ],
            100,
        );
        // Thread 1/2 ran 1 ms and waited 2.5 ms, 1/3 was born, ran 0.25 ms
        // and waited 0.5 ms, 1/1 neither ran nor waited; kdamond ran 4 ms,
        // process 5 ran 2 ms (its wait is not edgemob's), process 6 was
        // born and ran 0.5 ms.
        let b = snap(
            &[
                ((1, 1), (Edgemob, 7_000_000, 1_000_000)),
                ((1, 2), (Edgemob, 1_000_000, 2_500_000)),
                ((1, 3), (Edgemob, 250_000, 500_000)),
                ((9, 9), (Reclaim, 54_000_000, 0)),
                ((5, 5), (Other, 2_001_000, 20_000_000)),
                ((6, 6), (Other, 500_000, 0)),
            ],
            110,
        );
        assert_eq!(
            a.until(&b),
            Contention {
                busiest_other: Some(Busiest {
                    pid: 5,
                    tid: 5,
                    ran_ms: 2.0
                }),
                edgemob_ran_ms: 1.25,
                edgemob_waited_ms: 3.0,
                reclaim_ran_ms: 4.0,
                others_ran_ms: 2.5,
                steal_ms: 10.0,
            }
        );
    }

    #[test]
    fn the_busiest_other_thread_is_stable_on_ties() {
        use Whose::*;
        let a = snap(&[((1, 1), (Edgemob, 0, 0))], 0);
        let b = snap(
            &[
                ((1, 1), (Edgemob, 9_000_000, 0)),
                ((8, 8), (Other, 1_000_000, 0)),
                ((7, 7), (Other, 1_000_000, 0)),
                ((6, 6), (Other, 500_000, 0)),
            ],
            0,
        );
        let busiest = a.until(&b).busiest_other.unwrap();
        assert_eq!((busiest.pid, busiest.tid, busiest.ran_ms), (7, 7, 1.0));
        let idle = snap(&[((1, 1), (Edgemob, 0, 0)), ((5, 5), (Other, 0, 0))], 0);
        assert_eq!(a.until(&idle).busiest_other, None, "no other thread ran");
    }

    #[test]
    fn unknown_without_schedstat() {
        let c = Snapshot::default().until(&Snapshot::default());
        assert!(c.edgemob_ran_ms.is_nan() && c.edgemob_waited_ms.is_nan());
        assert!(c.reclaim_ran_ms.is_nan() && c.others_ran_ms.is_nan() && c.steal_ms.is_nan());
        assert_eq!(c.busiest_other, None);
    }

    #[test]
    fn this_process_waits_are_read_and_never_go_back() {
        let me = std::process::id();
        let a = snapshot(&[me], &[]);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(5) {}
        let b = snapshot(&[me], &[]);
        if Path::new("/proc/self/schedstat").exists() {
            let mine = |s: &Snapshot| {
                s.threads
                    .iter()
                    .filter(|((p, _), t)| *p == me && t.0 == Whose::Edgemob)
                    .count()
            };
            assert!(
                mine(&a) > 0 && mine(&b) > 0,
                "this process's threads were read"
            );
            assert!(
                a.threads.keys().any(|(p, _)| *p == 1),
                "and the others' (init)"
            );
            let c = a.until(&b);
            // A running thread's CPU time is brought up to date at each
            // tick, so a 5 ms spin shows some of it.
            assert!(c.edgemob_ran_ms > 0.0, "the spin ran on a CPU: {c:?}");
            assert!(c.edgemob_waited_ms >= 0.0 && c.reclaim_ran_ms == 0.0);
            let me_busiest = Busiest {
                pid: me,
                tid: me,
                ran_ms: 0.0,
            };
            let name = std::fs::read_to_string("/proc/self/comm").unwrap();
            assert_eq!(me_busiest.name(), name.trim());
            let gone = Busiest {
                pid: u32::MAX,
                tid: 7,
                ran_ms: 0.0,
            };
            assert_eq!(gone.name(), format!("{}/7", u32::MAX));
        }
    }
}
