//! # edgemob-simulator-glue — handover traces from ns-3, and their replay
//!
//! Researchers run an LTE X2 handover in ns-3's LENA and let every simulated
//! X2 HANDOVER REQUEST ACKNOWLEDGE trigger a real migration between
//! eNodeB-Clouds. This crate holds everything of that which is not the
//! Python extension itself (that is `edgemob-ns3`, in `python/`):
//!
//! * [`trace`] — the handover trace format (JSON lines) and its reader/writer;
//! * [`scenario`] — scenario files (TOML): IMSI → UE identity, cell → agent;
//! * [`x2pcap`] — ns-3 X2 link captures (PPP pcap, `EpcX2Header` on UDP 4444)
//!   decoded into traces, sans-IO;
//! * [`driver`] — sends handover events to agents (`TriggerHandover`,
//!   `CompleteHandover`), per-UE ordered, concurrent across UEs;
//! * [`replay`] — replays a trace in real or scaled time and reports per-migration
//!   results;
//! * [`synth`] — synthetic many-UE traces over N cells;
//! * [`mock`] — stand-in agents sharing one view of the UEs, for dry runs;
//! * [`cli`] — clap arguments and `run_*` functions for `replay`, `trace
//!   from-pcap`, `trace synth` and `mock-agents`.
//!
//! ## Trace format
//!
//! One JSON object per line, one line per event:
//!
//! ```text
//! {"time_us":300214,"kind":"handover_start","imsi":1,"rnti":1,"source_cell":1,"target_cell":2,"target_rnti":2}
//! {"time_us":321214,"kind":"handover_end_ok","imsi":1,"rnti":2,"source_cell":1,"target_cell":2}
//! ```
//!
//! `time_us` is microseconds since the simulation start; `kind` is one of
//! `handover_start` (the X2 HO Request ACK reached the source eNB),
//! `handover_end_ok` (handover completed at the target), `intra_enb_handover`
//! (between two cells of one eNB: never a migration trigger),
//! `handover_failure_no_preamble`, `handover_failure_max_rach`,
//! `handover_failure_leaving`, `handover_failure_joining`,
//! `handover_preparation_failure`, `handover_cancel`. `rnti` is the UE's RNTI
//! in the reporting cell (source for a start, target for an end); cells are
//! 0 when unknown; `target_rnti` is optional. See [`trace`] for the details.
//!
//! ```
//! use edgemob_simulator_glue::trace::{parse_jsonl, EventKind};
//! let text = r#"{"time_us":300214,"kind":"handover_start","imsi":1,"rnti":1,"source_cell":1,"target_cell":2}"#;
//! let records = parse_jsonl(text, std::path::Path::new("-")).unwrap();
//! assert_eq!(records[0].kind, EventKind::HandoverStart);
//! ```

pub mod agent;
pub mod cli;
pub mod driver;
pub mod mock;
pub mod replay;
pub mod scenario;
pub mod synth;
pub mod trace;
pub mod x2pcap;

pub use driver::{Driver, DriverEvent, DriverOptions, MigrationResult};
pub use scenario::Scenario;
pub use trace::{EventKind, TraceRecord};
