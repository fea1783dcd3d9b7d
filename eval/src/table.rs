//! Plain-text tables for terminals and logs.
//!
//! [`table_one`] prints a [`DemoReport`] in the style of the paper's Table I
//! (one row per migration phase: mean, std, p50, p99 in ms) next to the
//! paper's own figures and the floor a migration cannot beat, followed by
//! context sizes, the client-observed stall, RST count and one verdict line
//! per benchmark target; with `--diagnose-host`, what else held the CPUs. [`scale_table`]
//! prints one row per burst size of the scale experiment.
//!
//! Only the paper's total (11.5 ms mean) and context sizes (75 KB mean,
//! 100 KB max) are known; every other paper cell reads `n/a`. A statistic
//! computed over no value also reads `n/a`. The output is plain ASCII.

use std::fmt::Write;

use crate::report::{
    BYTES_PER_KB, ByteStats, DemoReport, FloorStats, PAPER_CONTEXT_MAX_KB, PAPER_CONTEXT_MEAN_KB,
    PAPER_TOTAL_MEAN_MS, PhaseStats, ScaleSummary, TargetCheck,
};

const NA: &str = "n/a";

fn ms(v: f64, known: bool) -> String {
    if known && v.is_finite() {
        format!("{v:.3}")
    } else {
        NA.to_string()
    }
}

fn kb(v: f64, known: bool) -> String {
    if known && v.is_finite() {
        format!("{:.1}", v / BYTES_PER_KB)
    } else {
        NA.to_string()
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn target_value(t: &TargetCheck, runs: usize) -> String {
    match t.unit.as_str() {
        "ms" => format!("{:.3} ms", t.value),
        "fraction of runs" => {
            let ok = (t.value * runs as f64).round() as usize;
            format!("{ok}/{runs} runs")
        }
        "segments" => format!("{}", t.value),
        "x floor" => format!("{:.1}x", t.value),
        other => format!("{} {other}", t.value),
    }
}

/// Table I of the paper, filled with this report's numbers, plus context
/// sizes, client stall, RST count and the verdict on every target.
pub fn table_one(report: &DemoReport) -> String {
    let mut out = String::new();
    let r = report;
    // `write!` into a String cannot fail.
    let _ = writeln!(
        out,
        "Table I - per-UE migration time in ms ({} runs, {} completed; phase \
         statistics over completed runs)",
        r.runs, r.runs_completed
    );
    let _ = writeln!(
        out,
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>14}",
        "phase", "mean", "std", "p50", "p99", "paper (mean)"
    );
    let _ = writeln!(
        out,
        "{:-<30} {:->9} {:->9} {:->9} {:->9} {:->14}",
        "", "", "", "", "", ""
    );
    for (name, s) in r.phases_ms.rows() {
        let s: &PhaseStats = s;
        let known = s.n > 0;
        let paper = if name == "Total" {
            format!("{PAPER_TOTAL_MEAN_MS}")
        } else {
            NA.to_string()
        };
        let _ = writeln!(
            out,
            "{:<30} {:>9} {:>9} {:>9} {:>9} {:>14}",
            name,
            ms(s.mean, known),
            ms(s.std, known),
            ms(s.p50, known),
            ms(s.p99, known),
            paper
        );
    }
    let total = &r.phases_ms.total;
    if total.n > 0 && total.mean > 0.0 {
        let _ = writeln!(
            out,
            "total mean {:.3} ms vs the paper's {PAPER_TOTAL_MEAN_MS} ms: {:.1}x {}",
            total.mean,
            if total.mean <= PAPER_TOTAL_MEAN_MS {
                PAPER_TOTAL_MEAN_MS / total.mean
            } else {
                total.mean / PAPER_TOTAL_MEAN_MS
            },
            if total.mean <= PAPER_TOTAL_MEAN_MS {
                "faster"
            } else {
                "slower"
            }
        );
    }
    let _ = write!(out, "{}", floor_line(&r.floor));
    let _ = writeln!(out);

    let _ = writeln!(
        out,
        "{:<30} {:>9} {:>9} {:>12} {:>11}",
        "context per UE, KB (1000 B)", "mean", "max", "paper mean", "paper max"
    );
    let _ = writeln!(
        out,
        "{:-<30} {:->9} {:->9} {:->12} {:->11}",
        "", "", "", "", ""
    );
    let ctx_row = |out: &mut String, name: &str, b: &ByteStats, paper: (String, String)| {
        let known = b.n > 0;
        let _ = writeln!(
            out,
            "{:<30} {:>9} {:>9} {:>12} {:>11}",
            name,
            kb(b.mean, known),
            kb(b.max as f64, known),
            paper.0,
            paper.1
        );
    };
    ctx_row(
        &mut out,
        "app context + socket images",
        &r.context_bytes,
        (
            format!("{PAPER_CONTEXT_MEAN_KB}"),
            format!("{PAPER_CONTEXT_MAX_KB}"),
        ),
    );
    ctx_row(
        &mut out,
        "app context only",
        &r.app_context_bytes,
        (NA.into(), NA.into()),
    );
    let _ = writeln!(out);

    let st = &r.client_stall_ms;
    let _ = writeln!(
        out,
        "client stall (ms, all {} runs): p50 {}  max {}",
        r.runs,
        ms(st.p50, st.n > 0),
        ms(st.max, st.n > 0)
    );
    let bl = &r.client_stall_baseline_ms;
    if bl.n > 0 {
        let _ = writeln!(
            out,
            "  without a migration (same-length window before each trigger, {} runs): p50 {}  max {}",
            bl.n,
            ms(bl.p50, true),
            ms(bl.max, true)
        );
    }
    if let Some(hs) = &r.host_steal_ms
        && hs.runs > 0
    {
        let _ = writeln!(
            out,
            "host steal (CPU the hypervisor gave elsewhere): {:.0} ms, in {} of {} runs",
            hs.total, hs.runs, r.runs
        );
    }
    if let (Some(ran), Some(waited)) = (&r.edgemob_ran_ms, &r.edgemob_waited_ms)
        && waited.n > 0
    {
        let _ = writeln!(
            out,
            "edgemob's threads in each handover's window ({} runs, ms): \
             ran p50 {} max {}, waited for a CPU p50 {} max {}",
            waited.n,
            ms(ran.p50, ran.n > 0),
            ms(ran.max, ran.n > 0),
            ms(waited.p50, true),
            ms(waited.max, true)
        );
        let others = r.others_ran_ms.unwrap_or_default();
        let _ = writeln!(
            out,
            "  other threads ran p50 {} max {}; guest memory reclaim ran in {} of those windows",
            ms(others.p50, others.n > 0),
            ms(others.max, others.n > 0),
            r.reclaim_windows.unwrap_or(0)
        );
    }
    for d in &r.damon_pageout {
        let quota = match d.quota_ms {
            0 => "no CPU quota".to_string(),
            ms => format!("up to {ms} ms of CPU per {} ms", d.reset_interval_ms),
        };
        let _ = writeln!(
            out,
            "guest memory reclaim: DAMON pageout running (kdamond.{}, {quota}); \
             a thread woken on its CPU can wait out its slice (eval/README)",
            d.kdamond
        );
    }
    if !r.tail_runs.is_empty() {
        let _ = writeln!(
            out,
            "the slowest migrations and largest stalls: who had the CPUs in their windows \
             (ms; host steal in 10 ms ticks)"
        );
        let _ = writeln!(
            out,
            "{:>6} {:>9} {:>9} {:>12} {:>15} {:>12} {:>11} {:>11}  busiest other thread",
            "run",
            "total",
            "stall",
            "edgemob ran",
            "edgemob waited",
            "reclaim ran",
            "others ran",
            "host steal",
        );
        for t in &r.tail_runs {
            let o = |v: Option<f64>| ms(v.unwrap_or(f64::NAN), true);
            let _ = writeln!(
                out,
                "{:>6} {:>9} {:>9} {:>12} {:>15} {:>12} {:>11} {:>11}  {}",
                t.run,
                o(t.total_ms),
                o(t.client_stall_ms),
                o(t.edgemob_ran_ms),
                o(t.edgemob_waited_ms),
                o(t.reclaim_ran_ms),
                o(t.others_ran_ms),
                t.window_steal_ms
                    .map_or(NA.to_string(), |v| format!("{v:.0}")),
                t.busiest_other
                    .as_ref()
                    .map_or(NA.to_string(), |(name, ms)| format!("{name} {ms:.3}"))
            );
        }
    }
    let _ = writeln!(out, "RST segments seen by the UE: {}", r.rst_seen);
    let _ = writeln!(
        out,
        "runs ok: {}/{}  (bytes verified: {})",
        r.runs_ok,
        r.runs,
        if r.bytes_verified { "yes" } else { "no" }
    );
    if !r.outcomes.is_empty() {
        let list: Vec<String> = r.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "outcomes: {}", list.join(", "));
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "targets");
    for t in &r.targets {
        let _ = writeln!(
            out,
            "  {:<28} {:>16}   {}",
            t.name,
            target_value(t, r.runs),
            verdict(t.met)
        );
    }
    let met = r.targets.iter().filter(|t| t.met).count();
    let _ = writeln!(
        out,
        "verdict: {met} of {} targets met{}",
        r.targets.len(),
        if r.targets_met { "" } else { " - NOT ALL MET" }
    );
    out
}

/// The floor line under Table I: the floor's p50 and p99 and those of each
/// completed run's total over its floor; empty when no floor was measured.
fn floor_line(f: &FloorStats) -> String {
    if f.floor_ms.n == 0 {
        return String::new();
    }
    let ratio = |v: f64| {
        if f.total_over_floor.n > 0 && v.is_finite() {
            format!("{v:.1}x")
        } else {
            NA.to_string()
        }
    };
    format!(
        "floor (MIH round trip + the same bytes over a warm TCP connection): \
         p50 {} ms p99 {} ms; total / floor: p50 {} p99 {}\n",
        ms(f.floor_ms.p50, true),
        ms(f.floor_ms.p99, true),
        ratio(f.total_over_floor.p50),
        ratio(f.total_over_floor.p99),
    )
}

/// One row per burst size: migrated UEs, per-UE total p50/p90/p99/max (ms),
/// burst duration and migrations per second.
pub fn scale_table(summaries: &[ScaleSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scale - per-UE total migration time by burst size (ms; over migrated UEs)"
    );
    let _ = writeln!(
        out,
        "{:>7} {:>13} {:>9} {:>9} {:>9} {:>9} {:>10} {:>13}",
        "UEs", "migrated", "p50", "p90", "p99", "max", "burst ms", "migrations/s"
    );
    let _ = writeln!(
        out,
        "{:->7} {:->13} {:->9} {:->9} {:->9} {:->9} {:->10} {:->13}",
        "", "", "", "", "", "", "", ""
    );
    if summaries.is_empty() {
        let _ = writeln!(out, "(no scale records)");
    }
    for s in summaries {
        let known = s.migrated > 0;
        let _ = writeln!(
            out,
            "{:>7} {:>13} {:>9} {:>9} {:>9} {:>9} {:>10} {:>13}",
            s.ues,
            format!("{}/{}", s.migrated, s.records),
            ms(s.total_ms_p50, known),
            ms(s.total_ms_p90, known),
            ms(s.total_ms_p99, known),
            ms(s.total_ms_max, known),
            format!("{:.3}", s.burst_ms),
            format!("{:.1}", s.migrations_per_s),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ScaleRecord, synthetic};

    #[test]
    fn table_one_has_every_row_and_the_paper_column() {
        let r = DemoReport::from_runs(&synthetic::runs(50));
        let t = table_one(&r);
        for name in [
            "MIH HO commit transaction",
            "Retrieving application data",
            "Retrieving sockets data",
            "CXTP transaction",
            "Total",
        ] {
            let line = t.lines().find(|l| l.starts_with(name)).expect(name);
            if name == "Total" {
                assert!(line.trim_end().ends_with("11.5"), "{line}");
                assert!(line.contains(&format!("{:.3}", r.phases_ms.total.p50)));
            } else {
                assert!(line.trim_end().ends_with("n/a"), "{line}");
            }
        }
        let ctx = t
            .lines()
            .find(|l| l.starts_with("app context + socket images"))
            .unwrap();
        assert!(ctx.contains("75") && ctx.contains("100"), "{ctx}");
        assert!(ctx.contains(&format!("{:.1}", r.context_bytes.max as f64 / 1000.0)));
        assert!(t.contains("RST segments seen by the UE: 0"));
        assert_eq!(t.matches("   met\n").count(), 6, "{t}");
        assert!(t.contains("verdict: 6 of 6 targets met\n"));
        assert!(t.contains("faster"));
        assert!(t.is_ascii());
    }

    #[test]
    fn the_floor_line_follows_table_one() {
        let mut runs = synthetic::runs(10);
        for (i, r) in runs.iter_mut().enumerate() {
            r.phases.total_ms = 1.0 + i as f64 * 0.1;
            r.floor_ms = 0.25;
            r.total_over_floor = crate::report::total_over_floor(r.phases.total_ms, 0.25);
        }
        runs[9].floor_ms = 0.5;
        let t = table_one(&DemoReport::from_runs(&runs));
        let lines: Vec<&str> = t.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("floor ("))
            .expect("a floor line");
        assert!(lines[at - 1].starts_with("total mean"), "{t}");
        // Ratios 4.0, 4.4, ..., 7.2 and the last run's 1.9 / 0.5 = 3.8.
        assert_eq!(
            lines[at],
            "floor (MIH round trip + the same bytes over a warm TCP connection): \
             p50 0.250 ms p99 0.500 ms; total / floor: p50 5.2x p99 7.2x"
        );
        for r in &mut runs {
            r.floor_ms = f64::NAN;
        }
        assert!(!table_one(&DemoReport::from_runs(&runs)).contains("floor ("));
    }

    #[test]
    fn without_the_host_diagnosis_no_cpu_lines() {
        let mut runs = synthetic::runs(10);
        runs[2].host_steal_ms = 30.0;
        let diagnosed = table_one(&DemoReport::from_runs(&runs));
        assert!(diagnosed.contains("who had the CPUs"), "{diagnosed}");
        for r in &mut runs {
            r.host_diagnosed = false;
        }
        let t = table_one(&DemoReport::from_runs(&runs));
        for absent in [
            "who had the CPUs",
            "host steal",
            "edgemob's threads",
            "other threads ran",
            "guest memory reclaim",
        ] {
            assert!(!t.contains(absent), "{absent}:\n{t}");
        }
        for present in [
            "Total",
            "floor (",
            "client stall",
            "RST segments",
            "verdict: ",
        ] {
            assert!(t.contains(present), "{present}:\n{t}");
        }
    }

    #[test]
    fn host_steal_line_only_when_the_host_took_some() {
        let mut runs = synthetic::runs(10);
        for r in &mut runs {
            r.host_steal_ms = 0.0;
        }
        assert!(!table_one(&DemoReport::from_runs(&runs)).contains("host steal (CPU"));
        runs[2].host_steal_ms = 30.0;
        let t = table_one(&DemoReport::from_runs(&runs));
        let line = t
            .lines()
            .find(|l| l.starts_with("host steal"))
            .expect("a steal line");
        assert!(line.ends_with(": 30 ms, in 1 of 10 runs"), "{line}");
    }

    #[test]
    fn the_tail_runs_show_what_else_had_the_cpus() {
        let mut runs = synthetic::runs(10);
        runs[2].phases.total_ms = 7.5;
        runs[2].client_stall_ms = 9.25;
        runs[2].edgemob_ran_ms = 3.25;
        runs[2].edgemob_waited_ms = 6.125;
        runs[2].reclaim_ran_ms = 4.5;
        runs[2].others_ran_ms = 0.75;
        runs[2].window_steal_ms = 10.0;
        runs[2].busiest_other = "kworker/u8:3-events".into();
        runs[2].busiest_other_ms = 0.5;
        runs[5].edgemob_waited_ms = f64::NAN;
        let t = table_one(&DemoReport::from_runs(&runs));
        let wait = t
            .lines()
            .find(|l| l.starts_with("edgemob's threads in each handover's window"))
            .expect("the CPU line");
        assert!(wait.contains("(9 runs, ms)"), "{wait}");
        assert!(wait.contains("ran p50 1.0"), "{wait}");
        assert!(wait.contains(" max 3.250, waited"), "{wait}");
        assert!(wait.ends_with("max 6.125"), "{wait}");
        assert!(
            t.contains("; guest memory reclaim ran in 3 of those windows\n"),
            "{t}"
        );
        assert!(t.contains("  other threads ran p50 "), "{t}");
        let row: Vec<&str> = t
            .lines()
            .find(|l| l.trim_start().starts_with("2 "))
            .expect("run 2 in the tail")
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            [
                "2",
                "7.500",
                "9.250",
                "3.250",
                "6.125",
                "4.500",
                "0.750",
                "10",
                "kworker/u8:3-events",
                "0.500"
            ]
        );
        assert!(t.is_ascii());
    }

    #[test]
    fn no_cpu_wait_line_where_the_kernel_keeps_no_schedstat() {
        let mut runs = synthetic::runs(4);
        for r in &mut runs {
            r.edgemob_waited_ms = f64::NAN;
            r.reclaim_ran_ms = f64::NAN;
        }
        let t = table_one(&DemoReport::from_runs(&runs));
        assert!(!t.contains("in each handover's window"), "{t}");
        assert!(t.contains("n/a"), "unknown cells read n/a");
    }

    #[test]
    fn a_running_pageout_scheme_is_stated() {
        let mut r = DemoReport::from_runs(&synthetic::runs(10));
        assert!(!table_one(&r).contains("DAMON"));
        r.damon_pageout = vec![crate::reclaim::DamonPageout {
            kdamond: 0,
            quota_ms: 50,
            reset_interval_ms: 1000,
        }];
        let t = table_one(&r);
        let line = t
            .lines()
            .find(|l| l.contains("DAMON"))
            .expect("a reclaim line");
        assert!(
            line.contains("kdamond.0, up to 50 ms of CPU per 1000 ms"),
            "{line}"
        );
    }

    #[test]
    fn missed_targets_say_so() {
        let mut runs = synthetic::runs(10);
        runs[0].rst_seen = 1;
        runs[1].sha256_ok = false;
        let t = table_one(&DemoReport::from_runs(&runs));
        let rst = t.lines().find(|l| l.contains("zero RST")).unwrap();
        assert!(rst.ends_with("MISSED"), "{rst}");
        let exact = t.lines().find(|l| l.contains("byte-exact")).unwrap();
        assert!(
            exact.contains("9/10 runs") && exact.ends_with("MISSED"),
            "{exact}"
        );
        assert!(t.contains("4 of 6 targets met - NOT ALL MET"), "{t}");
    }

    #[test]
    fn empty_report_prints_na_not_zeros() {
        let t = table_one(&DemoReport::from_runs(&[]));
        let total = t.lines().find(|l| l.starts_with("Total")).unwrap();
        assert_eq!(total.matches("n/a").count(), 4, "{total}");
        assert!(!total.contains("0.000"));
        assert!(t.contains("0 of 6 targets met"));
    }

    #[test]
    fn slower_than_the_paper_says_slower() {
        let mut runs = synthetic::runs(5);
        for r in &mut runs {
            r.phases.total_ms = 23.0;
        }
        let t = table_one(&DemoReport::from_runs(&runs));
        assert!(t.contains("2.0x slower"), "{t}");
    }

    #[test]
    fn scale_table_rows() {
        let s = crate::report::ScaleSummary::from_records(&synthetic::scale_records());
        let t = scale_table(&s);
        let rows: Vec<&str> = t.lines().skip(3).collect();
        assert_eq!(rows.len(), 4);
        assert!(rows[3].trim_start().starts_with("1000"));
        assert!(rows[3].contains("1000/1000"));
        assert!(scale_table(&[]).contains("(no scale records)"));
        let failed = ScaleRecord {
            ues: 2,
            ..ScaleRecord::default()
        };
        let t = scale_table(&crate::report::ScaleSummary::from_records(&[failed]));
        assert!(t.contains("0/1") && t.contains("n/a"), "{t}");
    }
}
