//! `edgemob-lab demo --trigger ns3`: the handovers come from ns-3's LENA, as in
//! the paper's setup.
//!
//! One real-time simulation runs for the whole demo: a UE (IMSI 1) attached
//! to cell 1 is handed over by X2 to cell 2, back to cell 1, and so on, once
//! per run, at simulated times fixed in advance ([`Schedule`]). The shipped
//! scenario (`simulator-glue/scenarios/lena_x2_handover.py`) bridges each
//! simulated X2 HANDOVER REQUEST ACK to a `TriggerHandover` at the agent
//! serving the source cell (through a scenario file mapping IMSI 1 to the
//! demo's UE and cells 1 and 2 to its agents). The demo starts each
//! download so the simulated handover falls at the chosen point of it,
//! waits for the migration the simulator triggered, and then switches the
//! UE's path (`--no-complete`: the path switch is the demo's, so it tells
//! the target). The simulator writes its handover trace, per-migration
//! results and X2 captures to `OUT/ns3/`.
//!
//! `--trigger replay` uses the same machinery with `edgemob-lab replay` in place
//! of the simulator: a trace's X2 handover starts, at the trace's times.

use crate::demo::DemoError;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The ns-3 environment `scripts/install-ns3.sh` makes.
pub const DEFAULT_PYTHON: &str = "/opt/edgemob/ns3-venv/bin/python";
/// Importing ns-3 takes about 20 s; give it plenty on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// Where the simulator and the scenario are.
#[derive(Debug, Clone)]
pub struct Ns3Options {
    /// Python of the ns-3 environment.
    pub python: PathBuf,
    /// `lena_x2_handover.py`.
    pub script: PathBuf,
}

impl Ns3Options {
    /// `EDGEMOB_NS3_PYTHON` or [`DEFAULT_PYTHON`]; `EDGEMOB_NS3_SCENARIO`,
    /// or the scenario of the source tree `edgemob` was built in, or of the
    /// working directory.
    pub fn locate(edgemob: &Path) -> Ns3Options {
        let python = std::env::var_os("EDGEMOB_NS3_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PYTHON));
        let rel = Path::new("simulator-glue/scenarios/lena_x2_handover.py");
        let script = std::env::var_os("EDGEMOB_NS3_SCENARIO")
            .map(PathBuf::from)
            .or_else(|| {
                // target/{release,debug}/edgemob → the workspace root.
                edgemob
                    .ancestors()
                    .skip(1)
                    .take(4)
                    .map(|d| d.join(rel))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| rel.to_path_buf());
        Ns3Options { python, script }
    }

    /// Refuses early, naming what is missing and how to get it.
    pub fn check(&self) -> Result<(), DemoError> {
        if !self.python.is_file() {
            return Err(DemoError::Ns3(format!(
                "no ns-3 environment at {} (run scripts/install-ns3.sh, or set EDGEMOB_NS3_PYTHON)",
                self.python.display()
            )));
        }
        if !self.script.is_file() {
            return Err(DemoError::Ns3(format!(
                "no ns-3 scenario at {} (run from the source tree, or set EDGEMOB_NS3_SCENARIO)",
                self.script.display()
            )));
        }
        Ok(())
    }
}

/// When the handovers of the runs happen: simulated (or trace) time of each,
/// and the cell the UE goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Simulated time of run `k`'s handover, s.
    pub times_s: Vec<f64>,
    /// Cell the UE goes to in run `k`.
    pub targets: Vec<u32>,
}

impl Schedule {
    /// Room for each run: up to 75 % of a download before its handover
    /// (the demo's random handover point), the rest of it after, and time
    /// to check the result before the next download starts. The UE goes
    /// from cell 1 to cell 2 in even runs and back in odd ones.
    pub fn for_download(runs: usize, download: Duration) -> Schedule {
        let d = download.as_secs_f64();
        let (first, period) = (1.0 + 0.75 * d + 1.0, 2.0 * d + 2.0);
        Schedule {
            times_s: (0..runs).map(|k| first + period * k as f64).collect(),
            targets: (0..runs).map(|k| if k % 2 == 0 { 2 } else { 1 }).collect(),
        }
    }

    /// The first `runs` handovers of IMSI 1 in a trace, which must move the
    /// UE between cells 1 and 2 starting from cell 1, far enough apart for
    /// downloads of `download`.
    pub fn from_trace(
        records: &[edgemob_simulator_glue::trace::TraceRecord],
        runs: usize,
        download: Duration,
    ) -> Result<Schedule, String> {
        use edgemob_simulator_glue::trace::EventKind;
        let starts: Vec<_> = records
            .iter()
            .filter(|r| r.kind == EventKind::HandoverStart && r.imsi == 1)
            .take(runs)
            .collect();
        if starts.len() < runs {
            return Err(format!(
                "the trace has {} X2 handover start(s) of IMSI 1, fewer than --runs {runs}",
                starts.len()
            ));
        }
        let d = download.as_secs_f64();
        let mut serving = 1;
        let mut prev_end = 0.0f64;
        for (k, r) in starts.iter().enumerate() {
            let want = if serving == 1 { 2 } else { 1 };
            if (r.source_cell, r.target_cell) != (serving, want) {
                return Err(format!(
                    "handover {} of IMSI 1 goes from cell {} to {}; the demo's UE is in cell {serving} \
                     and can only go to cell {want}",
                    k + 1,
                    r.source_cell,
                    r.target_cell
                ));
            }
            let t = r.time_s();
            if t - 0.75 * d < prev_end {
                return Err(format!(
                    "handover {} at {t:.3} s is too close to the previous one for a {d:.1} s download \
                     (use a smaller --size or a higher --bitrate)",
                    k + 1
                ));
            }
            prev_end = t + d + 1.0;
            serving = want;
        }
        Ok(Schedule {
            times_s: starts.iter().map(|r| r.time_s()).collect(),
            targets: starts.iter().map(|r| r.target_cell).collect(),
        })
    }

    /// Simulated time of run `k`'s handover, s.
    pub fn at(&self, k: usize) -> f64 {
        self.times_s[k]
    }

    /// Simulated time the simulation runs for, s.
    pub fn sim_time(&self) -> f64 {
        self.times_s.last().copied().unwrap_or(0.0) + 1.0
    }

    /// The scenario's `--handover` arguments.
    pub fn handover_args(&self) -> Vec<String> {
        self.times_s
            .iter()
            .zip(&self.targets)
            .flat_map(|(t, c)| ["--handover".to_string(), format!("{t:.3}:1:{c}")])
            .collect()
    }
}

/// The scenario file: IMSI 1 is `ue`, cell `i + 1` is served by `apis[i]`.
pub fn scenario_toml(ue: &str, apis: &[PathBuf]) -> String {
    let mut s = format!("[ues]\n1 = \"{ue}\"\n");
    for (i, api) in apis.iter().enumerate() {
        s.push_str(&format!(
            "\n[[enbcs]]\nname = \"enbc{n}\"\napi = \"{api}\"\ncells = [{n}]\n",
            n = i + 1,
            api = api.display()
        ));
    }
    s
}

fn write_scenario(dir: &Path, scenario: &str) -> Result<PathBuf, DemoError> {
    let err = |what: &str, e: std::io::Error| DemoError::Ns3(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| err("create the trigger folder", e))?;
    let toml = dir.join("scenario.toml");
    std::fs::write(&toml, scenario).map_err(|e| err("write the scenario", e))?;
    Ok(toml)
}

/// A running trigger source: the ns-3 simulation, or `edgemob-lab replay`.
#[derive(Debug)]
pub struct TriggerProcess {
    child: Child,
    /// Wall-clock moment of simulated time 0.
    zero: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    pub dir: PathBuf,
}

impl TriggerProcess {
    /// Starts the scenario in `dir` (its working directory and output
    /// folder) and waits until its simulation runs.
    pub fn start(
        opts: &Ns3Options,
        dir: &Path,
        scenario: &str,
        schedule: &Schedule,
    ) -> Result<TriggerProcess, DemoError> {
        let toml = write_scenario(dir, scenario)?;
        let mut cmd = Command::new(&opts.python);
        cmd.arg(&opts.script)
            .arg("--scenario")
            .arg(&toml)
            .arg("--out-dir")
            .arg(dir)
            .args(["--no-complete", "--bearers", "0", "--sim-time"])
            .arg(format!("{:.3}", schedule.sim_time()))
            .args(schedule.handover_args())
            // ns-3's loader searches the working directory for libraries.
            .current_dir(dir);
        Self::spawn(cmd, dir, Some("edgemob: simulation started"))
    }

    /// Starts `replay` of `trace`'s X2 handover starts in `dir` with the
    /// `replayer` binary (`edgemob-lab`); trace time 0 is now. The ends stay
    /// out: the demo switches the path and tells the target itself.
    pub fn replay(
        replayer: &Path,
        trace: &[edgemob_simulator_glue::trace::TraceRecord],
        dir: &Path,
        scenario: &str,
    ) -> Result<TriggerProcess, DemoError> {
        use edgemob_simulator_glue::trace::{EventKind, to_jsonl};
        let toml = write_scenario(dir, scenario)?;
        let starts: Vec<_> = trace
            .iter()
            .filter(|r| r.kind == EventKind::HandoverStart)
            .cloned()
            .collect();
        let file = dir.join("starts.jsonl");
        std::fs::write(&file, to_jsonl(&starts))
            .map_err(|e| DemoError::Ns3(format!("write {}: {e}", file.display())))?;
        let mut cmd = Command::new(replayer);
        cmd.arg("replay")
            .arg(&file)
            .arg("--scenario")
            .arg(&toml)
            .arg("--out")
            .arg(dir.join("migrations.jsonl"));
        Self::spawn(cmd, dir, None)
    }

    /// Spawns `cmd`, collects its output lines, and waits for `marker` (if
    /// any) to set simulated time 0.
    fn spawn(
        mut cmd: Command,
        dir: &Path,
        marker: Option<&'static str>,
    ) -> Result<TriggerProcess, DemoError> {
        let err = |what: &str, e: std::io::Error| DemoError::Ns3(format!("{what}: {e}"));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .spawn()
            .map_err(|e| err(&format!("start {program}"), e))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err_pipe = child.stderr.take().expect("piped");
        for (pipe, tx) in [
            (Box::new(out) as Box<dyn std::io::Read + Send>, None),
            (Box::new(err_pipe), Some(started_tx)),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if marker.is_some_and(|m| line.contains(m))
                        && let Some(tx) = &tx
                    {
                        let _ = tx.send(Instant::now());
                    }
                    lines.lock().expect("not poisoned").push(line);
                }
            });
        }
        let mut sim = TriggerProcess {
            child,
            zero: Instant::now(),
            lines,
            dir: dir.to_path_buf(),
        };
        if marker.is_none() {
            return Ok(sim);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(t) = started_rx.recv_timeout(Duration::from_millis(100)) {
                sim.zero = t;
                return Ok(sim);
            }
            if let Ok(Some(status)) = sim.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(DemoError::Ns3(format!(
                    "{program} ended ({status}) before its simulation started:\n{}",
                    sim.tail(20)
                )));
            }
            if Instant::now() > deadline {
                return Err(DemoError::Ns3(format!(
                    "{program} did not start its simulation within {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    sim.tail(20)
                )));
            }
        }
    }

    /// The wall-clock moment of simulated time `s`.
    pub fn wall(&self, s: f64) -> Instant {
        self.zero + Duration::from_secs_f64(s.max(0.0))
    }

    /// The last `n` lines it printed.
    pub fn tail(&self, n: usize) -> String {
        let l = self.lines.lock().expect("not poisoned");
        l[l.len().saturating_sub(n)..].join("\n")
    }

    /// Waits for the simulation to end (at most `timeout`); returns the
    /// summary lines it printed (`edgemob: ...`) and whether it succeeded.
    pub fn finish(mut self, timeout: Duration) -> (Vec<String>, bool) {
        let deadline = Instant::now() + timeout;
        let ok = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break false;
                }
            }
        };
        // Let the readers drain the pipes.
        std::thread::sleep(Duration::from_millis(100));
        let all = self.lines.lock().expect("not poisoned").clone();
        let _ = std::fs::write(self.dir.join("output.txt"), all.join("\n") + "\n");
        let summary = all
            .into_iter()
            .filter(|l| {
                (l.starts_with("edgemob: ") && !l.contains("simulation started"))
                    || l.starts_with("replayed")
                    || l.contains("delay")
            })
            .collect();
        (summary, ok)
    }
}

impl Drop for TriggerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_leaves_room_for_each_download() {
        let d = Duration::from_secs_f64(3.4);
        let s = Schedule::for_download(3, d);
        // The earliest download start (75 % before the handover) is after
        // the UE attached; each download ends before the next one starts.
        assert!(s.at(0) - 0.75 * 3.4 >= 1.0);
        for k in 0..2 {
            let end_k = s.at(k) + 3.4 + 1.0;
            let start_next = s.at(k + 1) - 0.75 * 3.4;
            assert!(end_k < start_next, "run {k}");
        }
        assert_eq!(
            s.handover_args(),
            [
                "--handover",
                &format!("{:.3}:1:2", s.at(0)),
                "--handover",
                &format!("{:.3}:1:1", s.at(1)),
                "--handover",
                &format!("{:.3}:1:2", s.at(2)),
            ]
        );
        assert!(s.sim_time() > s.at(2));
    }

    #[test]
    fn traces_that_do_not_fit_the_demo_are_refused() {
        use edgemob_simulator_glue::trace::{EventKind, TraceRecord};
        let start = |t: u64, from: u32, to: u32| TraceRecord {
            time_us: t,
            kind: EventKind::HandoverStart,
            imsi: 1,
            rnti: 1,
            source_cell: from,
            target_cell: to,
            target_rnti: None,
        };
        let d = Duration::from_secs(1);
        let ok = [start(2_000_000, 1, 2), start(6_000_000, 2, 1)];
        let s = Schedule::from_trace(&ok, 2, d).unwrap();
        assert_eq!(s.times_s, [2.0, 6.0]);
        assert_eq!(s.targets, [2, 1]);
        assert!(
            Schedule::from_trace(&ok, 3, d)
                .unwrap_err()
                .contains("fewer than")
        );
        let wrong = [start(2_000_000, 2, 1)];
        assert!(
            Schedule::from_trace(&wrong, 1, d)
                .unwrap_err()
                .contains("cell 1")
        );
        let close = [start(2_000_000, 1, 2), start(3_000_000, 2, 1)];
        assert!(
            Schedule::from_trace(&close, 2, d)
                .unwrap_err()
                .contains("too close")
        );
    }

    #[test]
    fn scenario_maps_imsi_1_and_both_cells() {
        // Read back by the parser the bridge itself uses.
        let t = scenario_toml("ue-10.0.0.1", &["/a.sock".into(), "/b.sock".into()]);
        let s =
            edgemob_simulator_glue::scenario::Scenario::parse(&t, Path::new("/x.toml")).unwrap();
        assert_eq!(s.ue_identity(1).unwrap(), "ue-10.0.0.1");
        assert_eq!(s.agent_for_cell(1).unwrap(), Path::new("/a.sock"));
        assert_eq!(s.agent_for_cell(2).unwrap(), Path::new("/b.sock"));
    }
}
