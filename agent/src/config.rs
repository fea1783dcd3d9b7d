//! The agent's configuration file (TOML).
//!
//! ```toml
//! mihf_id = "enbc1@edgemob"        # this eNBC's MIHF identifier
//! cells = [1]                      # E-UTRAN cells of the eNodeB(s) it serves
//!
//! [listen]
//! mih = "10.0.1.1:4551"            # MIH over UDP and TCP (port 4551 by default)
//! cxtp = "10.0.1.1:5091"           # CXTP over TCP from peers
//! api = "/run/edgemob/enbc1.sock"  # gRPC for services and operators (+ ".fds")
//! metrics = "127.0.0.1:9551"       # Prometheus text format (optional)
//! operator = "127.0.0.1:7551"      # Operator API over TCP too (optional)
//!
//! [[peers]]
//! mihf_id = "enbc2@edgemob"
//! mih = "10.0.1.2:4551"
//! cxtp = "10.0.1.2:5091"
//! cells = [2]
//!
//! [migration]                      # optional; the defaults shown
//! overlap_export = true
//! cpu_latency = "migrations"       # or "always" / "off"
//! cpu_latency_linger_ms = 5
//! ```
//!
//! Every error names the offending field.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default MIH port (IEEE 802.21 over UDP/TCP).
pub const DEFAULT_MIH_PORT: u16 = 4551;
/// Default CXTP port (RFC 4067's SCTP port, used here for TCP).
pub const DEFAULT_CXTP_PORT: u16 = 5091;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This eNBC's MIHF identifier.
    pub mihf_id: String,
    /// Cells served by this eNBC's eNodeB(s).
    pub cells: Vec<u32>,
    pub listen: Listen,
    #[serde(default)]
    pub peers: Vec<Peer>,
    #[serde(default)]
    pub timers: Timers,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub migration: MigrationConfig,
}

/// How the source runs the flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationConfig {
    /// Ask the services for their contexts while the MIH_N2N_HO_Commit
    /// transaction is in flight, instead of after its confirm, and freeze
    /// the UE's sockets as soon as they have exported if the target has
    /// not answered yet. Saves one round trip per handover; if the target
    /// refuses, the sockets are thawed and the services simply resume (they
    /// get a rolled-back event).
    pub overlap_export: bool,
    /// Outgoing migrations run at most this many at a time; the rest wait
    /// their turn (the wait is recorded as `queued_ns`), still served here.
    /// A burst of handovers then costs each UE its own migration time plus
    /// its place in the queue, instead of every UE sharing the CPU with
    /// every other. Default: two per CPU core. A migration is CPU work on
    /// both eNBCs with short waits between; two per core fill those waits,
    /// more only interleave them (1,000-UE burst on 2 cores: per-UE p99
    /// 40-54 ms at 4, 92-290 ms at 16, same migrations per second; at 2 the
    /// rate halves).
    pub max_concurrent: usize,
    /// When to ask the kernel to keep idle CPUs polling rather than
    /// sleeping (a zero CPU-latency PM QoS request on `/dev/cpu_dma_latency`,
    /// as latency-tuned hosts do). A migration is a chain of about ten
    /// wake-ups across processes and eNBCs; waking a CPU from its idle
    /// state costs tens to hundreds of microseconds each, most of all on
    /// virtual machines, where a sleeping vCPU has to be rescheduled by the
    /// host. Default `migrations`: held from a migration's first step
    /// until `cpu_latency_linger_ms` after its last, so the CPUs poll only
    /// around handovers. `always` holds it for the agent's lifetime; `off`
    /// never asks. Needs write access to `/dev/cpu_dma_latency` (root);
    /// without it the agent warns once and runs without.
    pub cpu_latency: CpuLatencyMode,
    /// How long the request outlives a migration's last step: long enough
    /// to cover the UE's path switch and the first resumed data.
    pub cpu_latency_linger_ms: u64,
}

/// See [`MigrationConfig::cpu_latency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuLatencyMode {
    Migrations,
    Always,
    Off,
}

impl Default for MigrationConfig {
    fn default() -> Self {
        MigrationConfig {
            overlap_export: true,
            max_concurrent: default_max_concurrent(),
            cpu_latency: CpuLatencyMode::Migrations,
            cpu_latency_linger_ms: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub mih: SocketAddr,
    pub cxtp: SocketAddr,
    pub api: PathBuf,
    /// Permissions of the API and descriptor-channel sockets (octal string).
    #[serde(default = "default_api_mode")]
    pub api_mode: String,
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// The Operator service over TCP too, for remote handover triggers
    /// (it is always served on the API socket).
    #[serde(default)]
    pub operator: Option<SocketAddr>,
}

/// Two outgoing migrations per CPU core (see [`MigrationConfig::max_concurrent`]).
pub fn default_max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(4, |n| 2 * n.get())
}

fn default_api_mode() -> String {
    "0660".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MihTransport {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub mihf_id: String,
    pub mih: SocketAddr,
    pub cxtp: SocketAddr,
    pub cells: Vec<u32>,
    /// How MIH frames are sent to this peer.
    #[serde(default)]
    pub mih_transport: MihTransport,
}

/// Timers, in milliseconds. The defaults fit a handover budget of a few
/// milliseconds on a data-centre network between eNBCs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// MIH retransmission interval for unacknowledged frames.
    pub mih_retransmit_ms: u64,
    pub mih_max_retransmissions: u32,
    /// MIH_N2N_HO_Commit request to confirm, at most.
    pub mih_response_ms: u64,
    /// Services must answer ExportRequested within this time.
    pub export_ms: u64,
    /// Services must acknowledge ContextArrived within this time.
    pub import_ms: u64,
    /// First CTD to CTDR, at most (RFC 4067's CT_MAX_TRANSFER_TIME).
    pub cxtp_transfer_ms: u64,
    /// A target keeps an accepted handover open this long for its CTD.
    pub commit_hold_ms: u64,
    /// After a successful migration the source keeps dropping the UE's
    /// packets for the moved connections until the target reports the
    /// handover complete, or this long at most (without the drop rule they
    /// would draw an RST).
    pub source_lock_linger_ms: u64,
    /// A target brings arrived connections to life when the UE's path
    /// switch is reported (CompleteHandover), or this long after it
    /// accepted the context if no report comes.
    pub activate_ms: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            mih_retransmit_ms: 10,
            mih_max_retransmissions: 3,
            mih_response_ms: 200,
            export_ms: 500,
            import_ms: 500,
            cxtp_transfer_ms: 1000,
            commit_hold_ms: 2000,
            source_lock_linger_ms: 10_000,
            activate_ms: 50,
        }
    }
}

impl Timers {
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Records kept in memory for MigrationHistory.
    pub keep: usize,
    /// Append every record as one JSON line to this file.
    pub jsonl: Option<PathBuf>,
    /// Keep the CRIU-format image files (`crit decode` reads them) of every
    /// connection this eNBC moved away, in `<images>/<migration id>/`.
    pub images: Option<PathBuf>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            keep: 100_000,
            jsonl: None,
            images: None,
        }
    }
}

/// A configuration problem, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            // toml's message names the key and line; keep it on one line.
            message: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            message,
        };
        if self.mihf_id.is_empty() || self.mihf_id.len() > edgemob_mih::MAX_MIHF_ID_LEN {
            return Err(bad("mihf_id".into(), "must be 1 to 253 octets".into()));
        }
        if self.cells.is_empty() {
            return Err(bad(
                "cells".into(),
                "list at least one cell this eNBC serves".into(),
            ));
        }
        let mut owner: HashMap<u32, String> = HashMap::new();
        for &c in &self.cells {
            if owner.insert(c, "this eNBC".into()).is_some() {
                return Err(bad("cells".into(), format!("cell {c} listed twice")));
            }
        }
        u32::from_str_radix(&self.listen.api_mode, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                bad(
                    "listen.api_mode".into(),
                    format!(
                        "{:?} is not an octal mode like \"0660\"",
                        self.listen.api_mode
                    ),
                )
            })?;
        let mut ids = std::collections::HashSet::new();
        for (i, p) in self.peers.iter().enumerate() {
            let f = |name: &str| format!("peers[{i}].{name}");
            if p.mihf_id.is_empty() || p.mihf_id.len() > edgemob_mih::MAX_MIHF_ID_LEN {
                return Err(bad(f("mihf_id"), "must be 1 to 253 octets".into()));
            }
            if p.mihf_id == self.mihf_id {
                return Err(bad(f("mihf_id"), "is this eNBC's own mihf_id".into()));
            }
            if !ids.insert(p.mihf_id.clone()) {
                return Err(bad(
                    f("mihf_id"),
                    format!("peer {} listed twice", p.mihf_id),
                ));
            }
            if p.cells.is_empty() {
                return Err(bad(
                    f("cells"),
                    "list at least one cell the peer serves".into(),
                ));
            }
            for &c in &p.cells {
                if let Some(o) = owner.insert(c, p.mihf_id.clone()) {
                    return Err(bad(f("cells"), format!("cell {c} is also served by {o}")));
                }
            }
        }
        if self.migration.max_concurrent == 0 {
            return Err(bad(
                "migration.max_concurrent".into(),
                "must be at least 1".into(),
            ));
        }
        if self.migration.cpu_latency_linger_ms > 60_000 {
            return Err(bad(
                "migration.cpu_latency_linger_ms".into(),
                "at most 60000 (a minute of polling CPUs per handover is not a linger)".into(),
            ));
        }
        let t = &self.timers;
        for (name, v) in [
            ("mih_retransmit_ms", t.mih_retransmit_ms),
            ("mih_response_ms", t.mih_response_ms),
            ("export_ms", t.export_ms),
            ("import_ms", t.import_ms),
            ("cxtp_transfer_ms", t.cxtp_transfer_ms),
            ("commit_hold_ms", t.commit_hold_ms),
            ("activate_ms", t.activate_ms),
        ] {
            if v == 0 {
                return Err(bad(
                    format!("timers.{name}"),
                    "must be at least 1 ms".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn api_mode(&self) -> u32 {
        u32::from_str_radix(&self.listen.api_mode, 8).unwrap_or(0o660)
    }

    /// The peer serving `cell`, if any.
    pub fn peer_for_cell(&self, cell: u32) -> Option<&Peer> {
        self.peers.iter().find(|p| p.cells.contains(&cell))
    }

    pub fn peer_by_id(&self, id: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.mihf_id == id)
    }

    /// The peer whose MIH or CXTP address has this IP.
    pub fn peers_at(&self, ip: IpAddr) -> impl Iterator<Item = &Peer> {
        self.peers
            .iter()
            .filter(move |p| p.mih.ip() == ip || p.cxtp.ip() == ip)
    }

    pub fn serves(&self, cell: u32) -> bool {
        self.cells.contains(&cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
mihf_id = "enbc1@edgemob"
cells = [1]
[listen]
mih = "10.0.1.1:4551"
cxtp = "10.0.1.1:5091"
api = "/run/edgemob/enbc1.sock"
[[peers]]
mihf_id = "enbc2@edgemob"
mih = "10.0.1.2:4551"
cxtp = "10.0.1.2:5091"
cells = [2, 3]
"#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("enbc1.toml"))
    }

    #[test]
    fn a_good_config_loads_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.peer_for_cell(3).unwrap().mihf_id, "enbc2@edgemob");
        assert!(c.peer_for_cell(9).is_none());
        assert_eq!(c.timers.mih_retransmit_ms, 10);
        assert_eq!(c.api_mode(), 0o660);
        assert_eq!(c.peers[0].mih_transport, MihTransport::Udp);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(&GOOD.replace("cells = [2, 3]", "cells = [2, 1]"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config enbc1.toml: peers[0].cells: cell 1 is also served by this eNBC"
        );
        let e = parse(&GOOD.replace("mih = \"10.0.1.1:4551\"", "mih = \"nowhere\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen.mih") || e.contains("mih"), "{e}");
        assert!(e.contains("invalid socket address"), "{e}");
        let e = parse(&GOOD.replace("[listen]", "colour = 1\n[listen]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse(&format!("{GOOD}\n[timers]\nexport_ms = 0\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config enbc1.toml: timers.export_ms: must be at least 1 ms"
        );
        let e = parse(&GOOD.replace("mihf_id = \"enbc2@edgemob\"", "mihf_id = \"enbc1@edgemob\""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config enbc1.toml: peers[0].mihf_id: is this eNBC's own mihf_id"
        );
        let e = parse(&format!(
            "{GOOD}\n[migration]\ncpu_latency = \"sometimes\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("cpu_latency = \"sometimes\""), "{e}");
        assert!(e.contains("`migrations`, `always`, `off`"), "{e}");
    }

    #[test]
    fn cpu_latency_is_held_around_migrations_by_default() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.migration.cpu_latency, CpuLatencyMode::Migrations);
        assert_eq!(c.migration.cpu_latency_linger_ms, 5);
        let c = parse(&format!("{GOOD}\n[migration]\ncpu_latency = \"off\"\n")).unwrap();
        assert_eq!(c.migration.cpu_latency, CpuLatencyMode::Off);
        let e = parse(&format!(
            "{GOOD}\n[migration]\ncpu_latency_linger_ms = 3600000\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("config enbc1.toml: migration.cpu_latency_linger_ms: at most"),
            "{e}"
        );
    }
}
