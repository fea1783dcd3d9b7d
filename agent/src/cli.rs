//! The `edgemob` command line.

use crate::config::Config;
use crate::node::Node;
use clap::{Args, Parser, Subcommand};
use edgemob_paas_api::v1 as pb;
use std::path::PathBuf;

/// Writes one line of a command's output. A reader that went away
/// (`| head -1`, `| grep -q`) ends the command quietly, as it ends any Unix
/// tool; any other failure to write is an error.
fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("edgemob: error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

macro_rules! outln {
    ($($arg:tt)*) => { write_line(format_args!($($arg)*)) };
}

#[derive(Debug, Parser)]
#[command(
    name = "edgemob",
    version,
    about = "Edge service mobility: move users' services and live TCP connections between eNodeB-Clouds on handover",
    long_about = "edgemob runs one agent per eNodeB-Cloud (eNBC). When a user's phone is handed over to \
                  another eNodeB, the agents move everything the user's services hold for it - application \
                  context and live TCP connections - to the eNBC of the new eNodeB, without the phone's TCP \
                  stack noticing.\n\nStart an agent with `edgemob agent --config enbc1.toml`; operators feed \
                  it handovers with `edgemob trigger`; `edgemob status` and `edgemob history` show what it did.\n\n\
                  The experiments (demo, scale, roam) and the handover-trace tools (replay, trace) are in \
                  the researchers' binary, edgemob-lab."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent of one eNBC.
    Agent(AgentArgs),
    /// Hand a UE over to another cell (an X2 Handover Request ACK).
    Trigger(TriggerArgs),
    /// Report that a UE's path now reaches this eNBC (its handover completed).
    Complete(CompleteArgs),
    /// Show an agent's health, peers and users.
    Status(StatusArgs),
    /// Show an agent's recent migrations with their phase timings.
    History(HistoryArgs),
    // The experiments and trace tools moved to `edgemob-lab`; these only
    // say so (hidden, and taking any arguments, `--help` included).
    #[command(hide = true, disable_help_flag = true)]
    Demo(MovedArgs),
    #[command(hide = true, disable_help_flag = true)]
    Scale(MovedArgs),
    #[command(hide = true, disable_help_flag = true)]
    Roam(MovedArgs),
    #[command(hide = true, disable_help_flag = true)]
    Replay(MovedArgs),
    #[command(hide = true, disable_help_flag = true)]
    Trace(MovedArgs),
}

/// Moved to the researchers' binary, edgemob-lab.
// (The arguments are kept to repeat them in the pointer.)
#[derive(Debug, Args)]
pub struct MovedArgs {
    #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub args: Vec<std::ffi::OsString>,
}

impl Command {
    /// The name and arguments of a command that moved to `edgemob-lab`.
    pub fn moved_to_lab(&self) -> Option<(&'static str, &MovedArgs)> {
        match self {
            Command::Demo(a) => Some(("demo", a)),
            Command::Scale(a) => Some(("scale", a)),
            Command::Roam(a) => Some(("roam", a)),
            Command::Replay(a) => Some(("replay", a)),
            Command::Trace(a) => Some(("trace", a)),
            _ => None,
        }
    }
}

/// The one line `edgemob demo` (scale, roam, replay, trace) prints: the same
/// command line for the researchers' binary, found beside this one if it is
/// there.
pub fn moved_to_lab_line(name: &str, a: &MovedArgs) -> String {
    let lab = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("edgemob-lab")))
        .filter(|p| p.is_file())
        .map_or_else(|| "edgemob-lab".to_owned(), |p| p.display().to_string());
    let mut line = format!("edgemob: '{name}' moved to the researchers' binary: run {lab} {name}");
    for arg in &a.args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Configuration file (TOML). Every field: docs/operations.md.
    #[arg(long, short, env = "EDGEMOB_CONFIG")]
    pub config: PathBuf,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// Where to reach an agent.
#[derive(Debug, Args, Clone)]
pub struct AgentAddr {
    /// The agent's API socket path (listen.api in its config), or
    /// http://HOST:PORT if it serves the Operator API on TCP (listen.operator).
    #[arg(long, short, env = "EDGEMOB_AGENT")]
    pub agent: String,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    pub agent: AgentAddr,
    /// The UE's identity, as its services registered it.
    #[arg(long)]
    pub ue: String,
    /// The cell the UE moves to (served by a peer eNBC).
    #[arg(long)]
    pub target_cell: u32,
    /// The cell the UE leaves (checked if given).
    #[arg(long, default_value_t = 0)]
    pub source_cell: u32,
    /// Return at once instead of waiting for the outcome.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub agent: AgentAddr,
    #[arg(long)]
    pub ue: String,
    /// The cell the UE attached to (optional).
    #[arg(long, default_value_t = 0)]
    pub cell: u32,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub agent: AgentAddr,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub agent: AgentAddr,
    /// Most recent records to show (0 = all kept).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Only this UE.
    #[arg(long)]
    pub ue: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A failure the command line reports on one line.
pub type CliResult = Result<(), String>;

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

pub async fn run_agent(a: AgentArgs) -> CliResult {
    let cfg = Config::load(&a.config).map_err(|e| e.to_string())?;
    init_logging(a.log_format == "json");
    let running = Node::start(cfg).await.map_err(|e| e.to_string())?;
    let api = running.api.clone();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
            term.recv().await
        } => {}
    }
    tracing::info!("shutting down");
    let _ = std::fs::remove_file(&api);
    let _ = std::fs::remove_file(edgemob_paas_api::descriptor_channel_path(&api));
    let _ = std::fs::remove_file(edgemob_paas_api::link_path(&api));
    Ok(())
}

async fn client(
    a: &AgentAddr,
) -> Result<pb::operator_client::OperatorClient<tonic::transport::Channel>, String> {
    edgemob_paas_api::client::operator_client(&a.agent)
        .await
        .map_err(|e| {
            // The root cause ("Connection refused"), not tonic's wrappers.
            let cause = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .last()
                .map_or_else(|| e.to_string(), ToString::to_string);
            format!(
                "cannot reach the edgemob agent at {}: {cause} (is the agent running? --agent names its API socket)",
                a.agent.strip_prefix("unix:").unwrap_or(&a.agent)
            )
        })
}

fn status_msg(s: tonic::Status) -> String {
    s.message().to_owned()
}

pub fn outcome_name(o: i32) -> &'static str {
    match pb::Outcome::try_from(o).unwrap_or(pb::Outcome::Unspecified) {
        pb::Outcome::Completed => "completed",
        pb::Outcome::RolledBack => "rolled back",
        pb::Outcome::Rejected => "rejected",
        pb::Outcome::Failed => "failed",
        pb::Outcome::InProgress => "in progress",
        pb::Outcome::Unspecified => "?",
    }
}

fn us(ns: u64) -> String {
    format!("{:.0}", ns as f64 / 1e3)
}

pub async fn run_trigger(a: TriggerArgs) -> CliResult {
    let mut c = client(&a.agent).await?;
    let r = c
        .trigger_handover(pb::TriggerHandoverRequest {
            ue: a.ue.clone(),
            source_cell: a.source_cell,
            target_cell: a.target_cell,
            wait: !a.no_wait,
        })
        .await
        .map_err(status_msg)?
        .into_inner();
    if a.json {
        outln!(
            "{}",
            serde_json::to_string(&record_json(r.migration_id, r.record.as_ref())).expect("json")
        );
    } else if r.already_migrating {
        outln!(
            "{} is already migrating (migration {:#x}); trigger ignored",
            a.ue,
            r.migration_id
        );
    } else if let Some(rec) = &r.record {
        let p = rec.phases.unwrap_or_default();
        outln!(
            "migration {:#x} of {}: {} in {} µs (MIH {} µs, app data {} µs, sockets {} µs, CXTP {} µs; {} bytes, {} connections){}",
            r.migration_id,
            a.ue,
            outcome_name(rec.outcome),
            us(p.total_ns),
            us(p.mih_commit_ns),
            us(p.app_data_ns),
            us(p.socket_data_ns),
            us(p.cxtp_ns),
            rec.context_bytes,
            rec.connections,
            if rec.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", rec.reason)
            }
        );
        if rec.outcome != pb::Outcome::Completed as i32 {
            return Err(format!(
                "migration of {} {}",
                a.ue,
                outcome_name(rec.outcome)
            ));
        }
    } else {
        outln!("migration {:#x} of {} started", r.migration_id, a.ue);
    }
    Ok(())
}

fn record_json(id: u64, rec: Option<&pb::MigrationRecord>) -> serde_json::Value {
    let Some(r) = rec else {
        return serde_json::json!({ "migration_id": id });
    };
    let p = r.phases.unwrap_or_default();
    serde_json::json!({
        "migration_id": r.migration_id,
        "ue": r.ue,
        "direction": if r.direction == pb::Direction::In as i32 { "in" } else { "out" },
        "peer": r.peer,
        "source_cell": r.source_cell,
        "target_cell": r.target_cell,
        "outcome": outcome_name(r.outcome),
        "reason": r.reason,
        "phases_ns": {
            "mih_commit": p.mih_commit_ns,
            "app_data": p.app_data_ns,
            "socket_data": p.socket_data_ns,
            "cxtp": p.cxtp_ns,
            "total": p.total_ns,
        },
        "context_bytes": r.context_bytes,
        "app_context_bytes": r.app_context_bytes,
        "connections": r.connections,
        "started_unix_ns": r.started_unix_ns,
    })
}

pub async fn run_complete(a: CompleteArgs) -> CliResult {
    let mut c = client(&a.agent).await?;
    let r = c
        .complete_handover(pb::CompleteHandoverRequest {
            ue: a.ue.clone(),
            cell: a.cell,
        })
        .await
        .map_err(status_msg)?
        .into_inner();
    if r.migration_id == 0 {
        outln!(
            "{}: noted; its connections go live as soon as its context arrives",
            a.ue
        );
    } else {
        outln!(
            "{}: connections of migration {:#x} are live",
            a.ue,
            r.migration_id
        );
    }
    Ok(())
}

pub async fn run_status(a: StatusArgs) -> CliResult {
    let mut c = client(&a.agent).await?;
    let h = c
        .health(pb::HealthRequest {})
        .await
        .map_err(status_msg)?
        .into_inner();
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .map_err(status_msg)?
        .into_inner()
        .users;
    if a.json {
        let v = serde_json::json!({
            "mihf_id": h.mihf_id, "cells": h.cells, "uptime_ms": h.uptime_ms,
            "services": h.services, "users": h.users,
            "migrations": { "completed": h.migrations_completed, "rolled_back": h.migrations_rolled_back,
                            "rejected": h.migrations_rejected, "failed": h.migrations_failed },
            "peer_frames_dropped": h.peer_frames_dropped,
            "peers": h.peers.iter().map(|p| serde_json::json!({
                "mihf_id": p.mihf_id, "cells": p.cells, "cxtp_connected": p.cxtp_connected })).collect::<Vec<_>>(),
            "ues": users.iter().map(|u| serde_json::json!({
                "ue": u.ue, "address": u.ue_address, "cell": u.cell, "services": u.services,
                "connections": u.connections, "state": u.state })).collect::<Vec<_>>(),
        });
        outln!("{v}");
        return Ok(());
    }
    outln!(
        "{}  cells {:?}  up {:.1} s",
        h.mihf_id,
        h.cells,
        h.uptime_ms as f64 / 1e3
    );
    outln!(
        "  {} services, {} users; migrations: {} completed, {} rolled back, {} rejected, {} failed; {} peer frames dropped",
        h.services,
        h.users,
        h.migrations_completed,
        h.migrations_rolled_back,
        h.migrations_rejected,
        h.migrations_failed,
        h.peer_frames_dropped
    );
    for p in &h.peers {
        outln!(
            "  peer {}  cells {:?}  CXTP {}",
            p.mihf_id,
            p.cells,
            if p.cxtp_connected {
                "connected"
            } else {
                "DOWN"
            }
        );
    }
    for u in &users {
        outln!(
            "  ue {}  {}  cell {}  {}  {} connection(s)  [{}]",
            u.ue,
            u.ue_address,
            u.cell,
            u.state,
            u.connections,
            u.services.join(", ")
        );
    }
    Ok(())
}

pub async fn run_history(a: HistoryArgs) -> CliResult {
    let mut c = client(&a.agent).await?;
    let r = c
        .migration_history(pb::MigrationHistoryRequest {
            limit: a.limit,
            ue: a.ue.unwrap_or_default(),
        })
        .await
        .map_err(status_msg)?
        .into_inner();
    if a.json {
        for rec in &r.records {
            outln!("{}", record_json(rec.migration_id, Some(rec)));
        }
        return Ok(());
    }
    outln!(
        "{:<18} {:<22} {:<4} {:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "migration",
        "ue",
        "dir",
        "outcome",
        "mih µs",
        "app µs",
        "sock µs",
        "cxtp µs",
        "total µs",
        "bytes"
    );
    for rec in &r.records {
        let p = rec.phases.unwrap_or_default();
        outln!(
            "{:<18} {:<22} {:<4} {:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
            format!("{:#x}", rec.migration_id),
            rec.ue,
            if rec.direction == pb::Direction::In as i32 {
                "in"
            } else {
                "out"
            },
            outcome_name(rec.outcome),
            us(p.mih_commit_ns),
            us(p.app_data_ns),
            us(p.socket_data_ns),
            us(p.cxtp_ns),
            us(p.total_ns),
            rec.context_bytes
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;

    #[test]
    fn the_lab_commands_only_point_at_edgemob_lab() {
        for (name, rest) in [
            ("demo", &["--runs", "2", "--help"][..]),
            ("scale", &["--ues", "1,10"][..]),
            ("roam", &[][..]),
            ("replay", &["t.jsonl", "-s", "s.toml"][..]),
            ("trace", &["synth", "--ues", "3"][..]),
        ] {
            let cli = Cli::try_parse_from(["edgemob", name].iter().chain(rest))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (moved, args) = cli.command.moved_to_lab().expect(name);
            assert_eq!(moved, name);
            assert_eq!(args.args, rest);
            let line = super::moved_to_lab_line(moved, args);
            assert!(
                line.starts_with(&format!(
                    "edgemob: '{name}' moved to the researchers' binary: run "
                )) && line.ends_with(&format!("edgemob-lab {name} {}", rest.join(" ")).trim_end()),
                "{line}"
            );
        }
        let cli = Cli::try_parse_from(["edgemob", "status", "--agent", "/run/a.sock"]).unwrap();
        assert!(cli.command.moved_to_lab().is_none());
        assert!(matches!(cli.command, Command::Status(_)));
    }
}
