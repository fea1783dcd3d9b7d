//! `edgemob_ns3`: the Python extension an ns-3 scenario uses to turn its
//! LENA handover events into edgemob migrations and a handover trace.
//!
//! ```python
//! import edgemob_ns3
//! bridge = edgemob_ns3.Bridge("scenario.toml", "trace.jsonl", dry_run=False)
//! # from the LteEnbRrc/HandoverStart sink (X2 HO Request ACK at the source):
//! bridge.handover_start(time_s, imsi, rnti, source_cell, target_cell, x2=True)
//! # from the LteEnbRrc/HandoverEndOk sink (at the target):
//! bridge.handover_end_ok(time_s, imsi, rnti, cell)
//! # from the HandoverFailure* sinks:
//! bridge.handover_failure(time_s, "leaving", imsi, rnti, cell)
//! stats = bridge.close()
//! ```
//!
//! Every event is appended to the trace (and flushed) before the call
//! returns. Unless `dry_run`, X2 handover starts become `TriggerHandover`
//! calls on the agent of the source cell and ends `CompleteHandover` calls on
//! the agent of the target cell. They are sent from the bridge's own tokio
//! runtime thread: the simulator thread only queues them and never waits for
//! an agent, and the GIL is released while the bridge works. Intra-eNB
//! handovers are recorded with their kind and never sent.

use std::collections::HashMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgemob_simulator_glue::driver::{Driver, DriverEvent, DriverOptions, Due};
use edgemob_simulator_glue::replay::Spread;
use edgemob_simulator_glue::scenario::Scenario;
use edgemob_simulator_glue::trace::{EventKind, TraceRecord, TraceWriter};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    events: u64,
    x2_starts: u64,
    intra_enb: u64,
    end_ok: u64,
    failures: u64,
    write_errors: u64,
}

#[derive(Debug)]
struct State {
    writer: TraceWriter<BufWriter<std::fs::File>>,
    trace_path: PathBuf,
    results_path: Option<PathBuf>,
    dry_run: bool,
    runtime: Option<tokio::runtime::Runtime>,
    driver: Option<Arc<Driver>>,
    /// IMSI → (source cell, target cell) of its handover in progress.
    pending: HashMap<u64, (u32, u32)>,
    counts: Counts,
    final_events: Option<Vec<DriverEvent>>,
    unfinished: usize,
    closed: bool,
    /// Whether handover ends are sent as CompleteHandover.
    send_complete: bool,
}

/// Records LENA handover events to a trace and, unless `dry_run`, sends
/// them to the agents named by the scenario.
///
/// `Bridge(scenario_path, trace_path, dry_run=False, results_path=None,
/// max_in_flight=64, migration_timeout_s=30.0, send_complete=True)`.
/// `scenario_path` may be `None` only in a dry run. With
/// `send_complete=False` handover ends are recorded but `CompleteHandover`
/// is left to whoever switches the UE's path (a demo that owns it).
#[pyclass(module = "edgemob_ns3")]
#[derive(Debug)]
struct Bridge {
    state: Mutex<State>,
}

fn time_us(time_s: f64) -> PyResult<u64> {
    if !time_s.is_finite() || time_s < 0.0 {
        return Err(PyValueError::new_err(format!(
            "time_s must be a finite number ≥ 0, not {time_s}"
        )));
    }
    // Through whole nanoseconds (what ns-3 counts), then down to µs the way
    // ns-3's pcap writer does, so a trace and a capture of one run agree.
    let ns = (time_s * 1e9).round() as u64;
    Ok(ns / 1000)
}

fn cell_id(cell: i64, what: &str) -> PyResult<u32> {
    u32::try_from(cell).map_err(|_| PyValueError::new_err(format!("{what} {cell} out of range")))
}

impl Bridge {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, record: TraceRecord) -> PyResult<()> {
        let mut s = self.lock();
        if s.closed {
            return Err(PyRuntimeError::new_err("the bridge is closed"));
        }
        s.counts.events += 1;
        match record.kind {
            EventKind::HandoverStart => {
                s.counts.x2_starts += 1;
                s.pending
                    .insert(record.imsi, (record.source_cell, record.target_cell));
            }
            EventKind::IntraEnbHandover => s.counts.intra_enb += 1,
            EventKind::HandoverEndOk => s.counts.end_ok += 1,
            _ => s.counts.failures += 1,
        }
        if let Err(e) = s.writer.write(&record) {
            s.counts.write_errors += 1;
            return Err(PyOSError::new_err(e.to_string()));
        }
        let send = record.kind != EventKind::HandoverEndOk || s.send_complete;
        if let (Some(driver), true) = (&s.driver, send) {
            driver.submit(record, Due::now());
        }
        Ok(())
    }
}

#[pymethods]
impl Bridge {
    #[new]
    #[pyo3(signature = (scenario_path, trace_path, dry_run = false, results_path = None, max_in_flight = 64, migration_timeout_s = 30.0, send_complete = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        scenario_path: Option<PathBuf>,
        trace_path: PathBuf,
        dry_run: bool,
        results_path: Option<PathBuf>,
        max_in_flight: usize,
        migration_timeout_s: f64,
        send_complete: bool,
    ) -> PyResult<Self> {
        let scenario = match &scenario_path {
            Some(p) => Some(Arc::new(
                Scenario::load(p).map_err(|e| PyValueError::new_err(e.to_string()))?,
            )),
            None if dry_run => None,
            None => {
                return Err(PyValueError::new_err(
                    "a scenario is needed to reach the agents (or pass dry_run=True)",
                ));
            }
        };
        let migration_timeout = Duration::try_from_secs_f64(migration_timeout_s)
            .map_err(|_| PyValueError::new_err("migration_timeout_s must be ≥ 0"))?;
        let writer =
            TraceWriter::create(&trace_path).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let (runtime, driver) = match (&scenario, dry_run) {
            (Some(scenario), false) => {
                let scenario = Arc::clone(scenario);
                py.detach(move || -> PyResult<_> {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("edgemob-bridge")
                        .enable_all()
                        .build()
                        .map_err(|e| PyOSError::new_err(format!("tokio runtime: {e}")))?;
                    let opts = DriverOptions {
                        max_in_flight: max_in_flight.max(1),
                        migration_timeout,
                        lazy_connect: true,
                        ..DriverOptions::default()
                    };
                    let driver = runtime
                        .block_on(Driver::new(scenario, opts, None))
                        .map_err(|e| PyOSError::new_err(e.to_string()))?;
                    Ok((Some(runtime), Some(Arc::new(driver))))
                })?
            }
            _ => (None, None),
        };
        Ok(Bridge {
            state: Mutex::new(State {
                writer,
                trace_path,
                results_path,
                dry_run,
                runtime,
                driver,
                pending: HashMap::new(),
                counts: Counts::default(),
                final_events: None,
                unfinished: 0,
                closed: false,
                send_complete,
            }),
        })
    }

    /// `LteEnbRrc/HandoverStart` at the source eNB. With `x2=True` (an X2
    /// handover: the HO Request ACK arrived) it triggers a migration; an
    /// intra-eNB handover (`x2=False`) is only recorded.
    #[pyo3(signature = (time_s, imsi, rnti, source_cell, target_cell, x2 = true))]
    #[allow(clippy::too_many_arguments)] // the ns-3 trace's fields, as Python passes them
    fn handover_start(
        &self,
        py: Python<'_>,
        time_s: f64,
        imsi: u64,
        rnti: u16,
        source_cell: i64,
        target_cell: i64,
        x2: bool,
    ) -> PyResult<()> {
        let record = TraceRecord {
            time_us: time_us(time_s)?,
            kind: if x2 {
                EventKind::HandoverStart
            } else {
                EventKind::IntraEnbHandover
            },
            imsi,
            rnti,
            source_cell: cell_id(source_cell, "source_cell")?,
            target_cell: cell_id(target_cell, "target_cell")?,
            target_rnti: None,
        };
        if x2 {
            record.validate().map_err(PyValueError::new_err)?;
        }
        py.detach(|| self.record(record))
    }

    /// `LteEnbRrc/HandoverEndOk` at the target eNB: the UE's path now reaches
    /// the target; its agent is told to bring the connections to life.
    fn handover_end_ok(
        &self,
        py: Python<'_>,
        time_s: f64,
        imsi: u64,
        rnti: u16,
        cell: i64,
    ) -> PyResult<()> {
        let cell = cell_id(cell, "cell")?;
        if cell == 0 {
            return Err(PyValueError::new_err("cell 0 is not a cell"));
        }
        let time_us = time_us(time_s)?;
        py.detach(|| {
            let source_cell = self
                .lock()
                .pending
                .remove(&imsi)
                .filter(|(_, target)| *target == cell)
                .map_or(0, |(source, _)| source);
            self.record(TraceRecord {
                time_us,
                kind: EventKind::HandoverEndOk,
                imsi,
                rnti,
                source_cell,
                target_cell: cell,
                target_rnti: None,
            })
        })
    }

    /// One of the `HandoverFailure*` traces: `cause` is `no_preamble`,
    /// `max_rach`, `leaving` or `joining`; `cell` is the reporting cell
    /// (the source for `leaving`, the target otherwise). Recorded only.
    fn handover_failure(
        &self,
        py: Python<'_>,
        time_s: f64,
        cause: &str,
        imsi: u64,
        rnti: u16,
        cell: i64,
    ) -> PyResult<()> {
        let kind = match cause {
            "no_preamble" => EventKind::HandoverFailureNoPreamble,
            "max_rach" => EventKind::HandoverFailureMaxRach,
            "leaving" => EventKind::HandoverFailureLeaving,
            "joining" => EventKind::HandoverFailureJoining,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown failure cause {other:?} (no_preamble, max_rach, leaving, joining)"
                )));
            }
        };
        let cell = cell_id(cell, "cell")?;
        let time_us = time_us(time_s)?;
        py.detach(|| {
            let (mut source_cell, mut target_cell) =
                self.lock().pending.remove(&imsi).unwrap_or((0, 0));
            if kind == EventKind::HandoverFailureLeaving {
                source_cell = cell;
            } else {
                target_cell = cell;
            }
            self.record(TraceRecord {
                time_us,
                kind,
                imsi,
                rnti,
                source_cell,
                target_cell,
                target_rnti: None,
            })
        })
    }

    /// Waits (at most `timeout_s`, GIL released) for the agents' answers to
    /// every event sent, writes the results file if one was given, stops the
    /// runtime and returns the final stats. Idempotent.
    #[pyo3(signature = (timeout_s = 60.0))]
    fn close<'py>(&self, py: Python<'py>, timeout_s: f64) -> PyResult<Bound<'py, PyDict>> {
        let limit = Duration::try_from_secs_f64(timeout_s)
            .map_err(|_| PyValueError::new_err("timeout_s must be ≥ 0"))?;
        py.detach(|| -> PyResult<()> {
            let mut s = self.lock();
            if s.closed {
                return Ok(());
            }
            s.closed = true;
            if let (Some(runtime), Some(driver)) = (s.runtime.take(), s.driver.clone()) {
                // Let go of the lock while waiting: stats() may be called meanwhile.
                drop(s);
                let (events, unfinished) = runtime.block_on(driver.finish(limit));
                runtime.shutdown_timeout(Duration::from_secs(1));
                let mut s = self.lock();
                if let Some(path) = s.results_path.clone() {
                    let text: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
                    std::fs::write(&path, text).map_err(|e| {
                        PyOSError::new_err(format!("cannot write {}: {e}", path.display()))
                    })?;
                }
                s.final_events = Some(events);
                s.unfinished = unfinished;
            }
            Ok(())
        })?;
        self.stats(py)
    }

    /// Counters and delays so far: events, x2_starts, intra_enb, end_ok,
    /// failures, triggers_sent, triggers_accepted, completes_sent,
    /// migrations_completed, migrations_not_completed, errors, unfinished,
    /// and send_delay_ms / start_delay_ms ({n, median, p99, max}): from the
    /// simulated event to the trigger being sent, and to the migration's
    /// start at the agent.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (counts, dry_run, trace, events, unfinished, live) = {
            let s = self.lock();
            let live = s.driver.as_ref().map(|d| {
                use std::sync::atomic::Ordering::Relaxed;
                let st = d.stats();
                [
                    st.triggers_sent.load(Relaxed),
                    st.triggers_accepted.load(Relaxed),
                    st.completes_sent.load(Relaxed),
                    st.completed.load(Relaxed),
                    st.not_completed.load(Relaxed),
                    st.errors.load(Relaxed),
                ]
            });
            let events = match (&s.final_events, &s.driver) {
                (Some(e), _) => e.clone(),
                (None, Some(d)) => d.events(),
                (None, None) => Vec::new(),
            };
            (
                s.counts,
                s.dry_run,
                s.trace_path.clone(),
                events,
                s.unfinished,
                live.unwrap_or_default(),
            )
        };
        let d = PyDict::new(py);
        d.set_item("trace_path", trace.display().to_string())?;
        d.set_item("dry_run", dry_run)?;
        d.set_item("events", counts.events)?;
        d.set_item("x2_starts", counts.x2_starts)?;
        d.set_item("intra_enb", counts.intra_enb)?;
        d.set_item("end_ok", counts.end_ok)?;
        d.set_item("failures", counts.failures)?;
        d.set_item("write_errors", counts.write_errors)?;
        for (key, v) in [
            "triggers_sent",
            "triggers_accepted",
            "completes_sent",
            "migrations_completed",
            "migrations_not_completed",
            "errors",
        ]
        .iter()
        .zip(live)
        {
            d.set_item(*key, v)?;
        }
        d.set_item("unfinished", unfinished)?;
        let migrations: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                DriverEvent::Migration(m) => Some(m),
                DriverEvent::Complete(_) => None,
            })
            .collect();
        for (key, spread) in [
            (
                "send_delay_ms",
                Spread::of(migrations.iter().map(|m| m.send_delay_us).collect()),
            ),
            (
                "start_delay_ms",
                Spread::of(migrations.iter().filter_map(|m| m.start_delay_us).collect()),
            ),
        ] {
            let s = PyDict::new(py);
            s.set_item("n", spread.n)?;
            s.set_item("median", spread.median / 1000.0)?;
            s.set_item("p99", spread.p99 / 1000.0)?;
            s.set_item("max", spread.max / 1000.0)?;
            d.set_item(key, s)?;
        }
        Ok(d)
    }

    /// Every result known so far (after `close()`: all of them), as dicts
    /// with `type` = `migration` or `complete` (the lines of `edgemob-lab replay --out`).
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = {
            let s = self.lock();
            match (&s.final_events, &s.driver) {
                (Some(e), _) => e.clone(),
                (None, Some(d)) => d.events(),
                (None, None) => Vec::new(),
            }
        };
        let loads = py.import("json")?.getattr("loads")?;
        let list = PyList::empty(py);
        for e in events {
            list.append(loads.call1((e.to_json_line(),))?)?;
        }
        Ok(list)
    }

    /// The trace file.
    #[getter]
    fn trace_path(&self) -> String {
        self.lock().trace_path.display().to_string()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py, 60.0)?;
        Ok(false)
    }
}

/// Whether `path` names a file this module can read as a scenario (a
/// helper for scenario scripts that want to fail early).
#[pyfunction]
fn check_scenario(path: PathBuf) -> PyResult<Vec<u32>> {
    Scenario::load(Path::new(&path))
        .map(|s| s.cells())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The native module, `edgemob_ns3._native`; the package `edgemob_ns3`
/// re-exports it. (Its file name must not contain "ns3": ns-3's Python
/// loader takes every library whose name does for one of its own.)
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Bridge>()?;
    m.add_function(wrap_pyfunction!(check_scenario, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
