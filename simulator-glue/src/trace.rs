//! Handover traces: one JSON object per line, one line per handover event.
//!
//! ```text
//! {"time_us":300214,"kind":"handover_start","imsi":1,"rnti":1,"source_cell":1,"target_cell":2,"target_rnti":2}
//! {"time_us":322000,"kind":"handover_end_ok","imsi":1,"rnti":2,"source_cell":1,"target_cell":2}
//! ```
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `time_us` | u64 | microseconds since the start of the simulation (or of the recording) |
//! | `kind` | string | see [`EventKind`] |
//! | `imsi` | u64 | the UE's IMSI (ns-3 numbers UEs 1, 2, … in installation order) |
//! | `rnti` | u16 | the UE's C-RNTI in the cell that reports the event: the source cell for `handover_start`, `intra_enb_handover` and `handover_failure_leaving`; the target cell for `handover_end_ok` and the other failures |
//! | `source_cell` | u32 | cell the UE leaves; 0 when unknown |
//! | `target_cell` | u32 | cell the UE goes to; 0 when unknown |
//! | `target_rnti` | u16, optional | the UE's RNTI in the target cell, when known (an X2 capture carries it as newEnbUeX2apId) |
//!
//! Readers ignore fields they do not know, so later versions may add some;
//! blank lines are skipped. Times need not be sorted: replay orders
//! records by time (stably). Parsing is a pure function of the text
//! ([`parse_jsonl`]); errors name the 1-based line.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The X2 HANDOVER REQUEST ACKNOWLEDGE reached the source eNB (ns-3:
    /// `LteEnbRrc/HandoverStart` of an inter-eNB handover). Replay sends
    /// `TriggerHandover` to the source cell's agent.
    HandoverStart,
    /// The handover completed at the target eNB (ns-3: `LteEnbRrc/HandoverEndOk`,
    /// on PATH SWITCH REQUEST ACKNOWLEDGE; in an X2 capture, the UE CONTEXT
    /// RELEASE the target sends at that moment). Replay sends
    /// `CompleteHandover` to the target cell's agent.
    HandoverEndOk,
    /// A handover between two cells of the same eNB (no X2). Recorded, never
    /// replayed as a migration trigger.
    IntraEnbHandover,
    /// ns-3 `HandoverFailureNoPreamble` (at the target: no dedicated preamble).
    HandoverFailureNoPreamble,
    /// ns-3 `HandoverFailureMaxRach` (at the target: RACH attempts exhausted).
    HandoverFailureMaxRach,
    /// ns-3 `HandoverFailureLeaving` (at the source: leaving timer expired).
    HandoverFailureLeaving,
    /// ns-3 `HandoverFailureJoining` (at the target: joining timer expired).
    HandoverFailureJoining,
    /// An X2 HANDOVER PREPARATION FAILURE seen in a capture.
    HandoverPreparationFailure,
    /// An X2 HANDOVER CANCEL seen in a capture.
    HandoverCancel,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 9] = [
        EventKind::HandoverStart,
        EventKind::HandoverEndOk,
        EventKind::IntraEnbHandover,
        EventKind::HandoverFailureNoPreamble,
        EventKind::HandoverFailureMaxRach,
        EventKind::HandoverFailureLeaving,
        EventKind::HandoverFailureJoining,
        EventKind::HandoverPreparationFailure,
        EventKind::HandoverCancel,
    ];

    /// The name used in trace files.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HandoverStart => "handover_start",
            EventKind::HandoverEndOk => "handover_end_ok",
            EventKind::IntraEnbHandover => "intra_enb_handover",
            EventKind::HandoverFailureNoPreamble => "handover_failure_no_preamble",
            EventKind::HandoverFailureMaxRach => "handover_failure_max_rach",
            EventKind::HandoverFailureLeaving => "handover_failure_leaving",
            EventKind::HandoverFailureJoining => "handover_failure_joining",
            EventKind::HandoverPreparationFailure => "handover_preparation_failure",
            EventKind::HandoverCancel => "handover_cancel",
        }
    }

    /// Whether this kind is one of the failure kinds.
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            EventKind::HandoverStart | EventKind::HandoverEndOk | EventKind::IntraEnbHandover
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One handover event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Microseconds since the start of the simulation.
    pub time_us: u64,
    /// What happened.
    pub kind: EventKind,
    /// The UE's IMSI.
    pub imsi: u64,
    /// The UE's RNTI in the reporting cell (see the module docs).
    pub rnti: u16,
    /// Cell the UE leaves (0: unknown).
    #[serde(default)]
    pub source_cell: u32,
    /// Cell the UE goes to (0: unknown).
    #[serde(default)]
    pub target_cell: u32,
    /// The UE's RNTI in the target cell, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rnti: Option<u16>,
}

impl TraceRecord {
    /// The record's time in seconds.
    pub fn time_s(&self) -> f64 {
        self.time_us as f64 / 1e6
    }

    /// One JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        // Serialising a struct of integers and a unit enum cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the fields a replay relies on.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            EventKind::HandoverStart => {
                if self.source_cell == 0 || self.target_cell == 0 {
                    return Err("handover_start needs source_cell and target_cell".into());
                }
                if self.source_cell == self.target_cell {
                    return Err(format!(
                        "handover_start from cell {} to itself",
                        self.source_cell
                    ));
                }
            }
            EventKind::HandoverEndOk if self.target_cell == 0 => {
                return Err("handover_end_ok needs target_cell".into());
            }
            _ => {}
        }
        Ok(())
    }
}

/// A trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("cannot read trace {path}: {source}")]
    Read {
        /// The trace file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A line is not a valid record.
    #[error("trace {path}, line {line}: {message}")]
    Line {
        /// The trace file (`-` for text given directly).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Writing the trace failed.
    #[error("cannot write trace {path}: {source}")]
    Write {
        /// The trace file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Parses JSON-lines text; `path` only names the source in errors.
pub fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<TraceRecord>, TraceError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let bad = |message: String| TraceError::Line {
            path: path.to_owned(),
            line: line_no,
            message,
        };
        let record: TraceRecord = serde_json::from_str(trimmed).map_err(|e| bad(e.to_string()))?;
        record.validate().map_err(bad)?;
        records.push(record);
    }
    Ok(records)
}

/// Reads a JSON-lines trace file.
pub fn read_file(path: &Path) -> Result<Vec<TraceRecord>, TraceError> {
    let bytes = std::fs::read(path).map_err(|source| TraceError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        TraceError::Line {
            path: path.to_owned(),
            line,
            message: "not UTF-8".into(),
        }
    })?;
    parse_jsonl(&text, path)
}

/// Renders records as JSON-lines text.
pub fn to_jsonl(records: &[TraceRecord]) -> String {
    let mut out = String::new();
    for record in records {
        out.push_str(&record.to_json_line());
        out.push('\n');
    }
    out
}

/// Writes records as a JSON-lines file (replacing it).
pub fn write_file(path: &Path, records: &[TraceRecord]) -> Result<(), TraceError> {
    std::fs::write(path, to_jsonl(records)).map_err(|source| TraceError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Appends records to a trace as they happen; every record is flushed, so
/// a run that is killed leaves a trace of everything up to that moment.
#[derive(Debug)]
pub struct TraceWriter<W: Write> {
    out: W,
    path: PathBuf,
    written: u64,
}

impl TraceWriter<io::BufWriter<std::fs::File>> {
    /// Creates (or truncates) a trace file.
    pub fn create(path: &Path) -> Result<Self, TraceError> {
        let file = std::fs::File::create(path).map_err(|source| TraceError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(TraceWriter::new(io::BufWriter::new(file), path))
    }
}

impl<W: Write> TraceWriter<W> {
    /// Wraps a writer; `path` only names it in errors.
    pub fn new(out: W, path: &Path) -> Self {
        TraceWriter {
            out,
            path: path.to_owned(),
            written: 0,
        }
    }

    /// Appends one record and flushes.
    pub fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        let mut line = record.to_json_line();
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|source| TraceError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Reads records appended to a trace while it is being written (by the
/// ns-3 bridge, which flushes every record): for a process that must act
/// on events as they happen, e.g. switch a UE's path at `handover_end_ok`.
#[derive(Debug)]
pub struct TraceFollower {
    path: PathBuf,
    offset: u64,
    line: usize,
}

impl TraceFollower {
    /// Follows `path` from its beginning (the file may not exist yet).
    pub fn new(path: &Path) -> Self {
        TraceFollower {
            path: path.to_owned(),
            offset: 0,
            line: 0,
        }
    }

    /// The complete records appended since the last call (none if the file
    /// does not exist yet). Never blocks.
    pub fn poll(&mut self) -> Result<Vec<TraceRecord>, TraceError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TraceError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let read_err = |source| TraceError::Read {
            path: self.path.clone(),
            source,
        };
        file.seek(SeekFrom::Start(self.offset)).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(read_err)?;
        // Only whole lines; a line being written stays for the next call.
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        self.offset += end as u64 + 1;
        let chunk = String::from_utf8_lossy(&bytes[..=end]).into_owned();
        let mut records = Vec::new();
        for line in chunk.lines() {
            self.line += 1;
            if line.trim().is_empty() {
                continue;
            }
            let mut parsed = parse_jsonl(line, &self.path).map_err(|e| match e {
                TraceError::Line { path, message, .. } => TraceError::Line {
                    path,
                    line: self.line,
                    message,
                },
                other => other,
            })?;
            records.append(&mut parsed);
        }
        Ok(records)
    }
}

/// Records in replay order: by time, ties kept in file order.
pub fn sorted(mut records: Vec<TraceRecord>) -> Vec<TraceRecord> {
    records.sort_by_key(|r| r.time_us);
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> TraceRecord {
        TraceRecord {
            time_us: 300_214,
            kind: EventKind::HandoverStart,
            imsi: 1,
            rnti: 1,
            source_cell: 1,
            target_cell: 2,
            target_rnti: Some(2),
        }
    }

    #[test]
    fn round_trips_and_documents_the_exact_line() {
        let line = start().to_json_line();
        assert_eq!(
            line,
            r#"{"time_us":300214,"kind":"handover_start","imsi":1,"rnti":1,"source_cell":1,"target_cell":2,"target_rnti":2}"#
        );
        let parsed = parse_jsonl(&format!("{line}\n\n"), Path::new("-")).unwrap();
        assert_eq!(parsed, vec![start()]);
    }

    #[test]
    fn kind_names_match_serde() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!(
            "{}\n{{\"time_us\":1,\"kind\":\"teleport\",\"imsi\":1,\"rnti\":1}}\n",
            start().to_json_line()
        );
        let err = parse_jsonl(&text, Path::new("t.jsonl")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("trace t.jsonl, line 2:"), "{msg}");
        assert!(msg.contains("teleport"), "{msg}");

        let text = r#"{"time_us":1,"kind":"handover_start","imsi":1,"rnti":1,"source_cell":3,"target_cell":3}"#;
        let msg = parse_jsonl(text, Path::new("t")).unwrap_err().to_string();
        assert!(msg.contains("line 1") && msg.contains("to itself"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_default() {
        let text = r#"{"time_us":5,"kind":"handover_end_ok","imsi":7,"rnti":3,"target_cell":2,"note":"x"}"#;
        let r = &parse_jsonl(text, Path::new("-")).unwrap()[0];
        assert_eq!((r.source_cell, r.target_cell, r.target_rnti), (0, 2, None));
    }

    #[test]
    fn a_follower_sees_whole_records_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut f = TraceFollower::new(&path);
        assert!(f.poll().unwrap().is_empty(), "no file yet");
        let line = start().to_json_line();
        std::fs::write(&path, format!("{line}\n{}", &line[..10])).unwrap();
        assert_eq!(f.poll().unwrap(), vec![start()]);
        assert!(f.poll().unwrap().is_empty(), "the half line waits");
        std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
        assert_eq!(f.poll().unwrap(), vec![start()]);
    }

    #[test]
    fn writer_appends_lines() {
        let mut w = TraceWriter::new(Vec::new(), Path::new("mem"));
        w.write(&start()).unwrap();
        w.write(&start()).unwrap();
        assert_eq!(w.written(), 2);
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(parse_jsonl(&text, Path::new("-")).unwrap().len(), 2);
    }
}
