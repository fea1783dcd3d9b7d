//! Host steal: CPU time the hypervisor gave to something else while this
//! machine's virtual CPUs had work to run (`/proc/stat`, the `steal`
//! column of the `cpu` line). On a shared host it is what turns a
//! sub-millisecond migration into a several-millisecond one for a few
//! seconds at a time; each demo run records how much of it there was, so
//! a slow run can be told apart from a slow migration. Zero on bare metal.

use std::time::Duration;

/// Total steal of all CPUs since boot, or `None` where `/proc/stat` has no
/// steal column (or cannot be read).
pub fn host_steal() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse(&stat, u64::try_from(hz).ok().filter(|h| *h > 0)?)
}

/// The steal column of the `cpu` line in `stat`, in ticks of `hz`.
fn parse(stat: &str, hz: u64) -> Option<Duration> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / hz,
    ))
}

/// Steal between two [`host_steal`] readings, in ms; `None` when either is
/// missing.
pub fn ms_between(from: Option<Duration>, to: Option<Duration>) -> Option<f64> {
    Some(to?.saturating_sub(from?).as_secs_f64() * 1e3)
}

/// Steal since `from` (a [`host_steal`] reading), in ms; 0 when either
/// reading is missing.
pub fn steal_ms_since(from: Option<Duration>) -> f64 {
    ms_between(from, host_steal()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_steal_column_of_the_cpu_line() {
        let stat = "cpu  888483 0 121736 958625 4519 0 14725 1969 0 0\n\
                    cpu0 1 0 1 1 0 0 0 900 0 0\n";
        assert_eq!(parse(stat, 100), Some(Duration::from_millis(19_690)));
        assert_eq!(parse("cpu  1 2 3 4\n", 100), None, "no steal column");
        assert_eq!(parse("intr 5\n", 100), None);
    }

    #[test]
    fn this_machine_reports_a_steal_that_never_goes_back() {
        let a = host_steal();
        if cfg!(target_os = "linux") {
            assert!(a.is_some(), "Linux has had the steal column since 2.6.11");
        }
        assert!(steal_ms_since(a) >= 0.0);
    }
}
