use clap::Parser;
use edgemob_agent::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    if let Some((name, args)) = cli.command.moved_to_lab() {
        eprintln!("{}", cli::moved_to_lab_line(name, args));
        std::process::exit(2);
    }
    edgemob_paas_api::keep_freed_memory();
    // One thread runs the agent: every hop of a migration (MIH, CXTP, the
    // services' gRPC calls) is a task wake-up on the same thread instead of
    // a hand-off between workers, which is what keeps a migration near a
    // millisecond. Nothing in the agent blocks for long (netlink and repair
    // socket options are microseconds).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Agent(a) => cli::run_agent(a).await,
            Command::Trigger(a) => cli::run_trigger(a).await,
            Command::Complete(a) => cli::run_complete(a).await,
            Command::Status(a) => cli::run_status(a).await,
            Command::History(a) => cli::run_history(a).await,
            _ => unreachable!("the commands that moved to edgemob-lab exited above"),
        }
    });
    if let Err(e) = result {
        eprintln!("edgemob: error: {e}");
        std::process::exit(1);
    }
}
