//! `edgemob-sim`: the trace tools on their own (the researchers'
//! `edgemob-lab` binary mounts the same subcommands).

use clap::{Parser, Subcommand};
use edgemob_simulator_glue::cli;

#[derive(Debug, Parser)]
#[command(
    name = "edgemob-sim",
    version,
    about = "Handover traces for edgemob: decode ns-3 X2 captures, synthesise traces, replay them against agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Replay(cli::ReplayArgs),
    Trace(cli::TraceArgs),
    MockAgents(cli::MockAgentsArgs),
}

#[tokio::main]
async fn main() {
    let result = match Cli::parse().command {
        Command::Replay(a) => cli::run_replay(a).await.map(|_| ()),
        Command::Trace(a) => cli::run_trace(a),
        Command::MockAgents(a) => cli::run_mock_agents(a).await,
    };
    if let Err(e) = result {
        eprintln!("edgemob-sim: error: {e}");
        std::process::exit(1);
    }
}
