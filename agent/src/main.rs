use clap::Parser;
use edgemob_agent::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    edgemob_sdk::keep_freed_memory();
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
            Command::Replay(a) => edgemob_simulator_glue::cli::run_replay(a)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Command::Trace(a) => {
                edgemob_simulator_glue::cli::run_trace(a).map_err(|e| e.to_string())
            }
            Command::Demo(a) => edgemob_eval::cli::run_demo(a).await.and_then(|ok| {
                ok.then_some(()).ok_or_else(|| {
                    "some runs were not completed, byte-exact and RST-free (see the table)"
                        .to_string()
                })
            }),
            Command::Roam(a) => edgemob_eval::cli::run_roam(a).await.and_then(|ok| {
                ok.then_some(()).ok_or_else(|| {
                    "some handovers did not migrate or some downloads were not exact".to_string()
                })
            }),
            Command::Scale(a) => edgemob_eval::cli::run_scale(a).await.and_then(|ok| {
                ok.then_some(()).ok_or_else(|| {
                    "some UEs did not migrate or their downloads were not exact".to_string()
                })
            }),
        }
    });
    if let Err(e) = result {
        eprintln!("edgemob: error: {e}");
        std::process::exit(1);
    }
}
