//! `edgemob-lab`: the researchers' binary. It runs the experiments (the
//! paper's demo, scale bursts, roaming) against the operators' `edgemob`
//! agents, and the handover-trace tools (replay, trace).

use clap::{Parser, Subcommand};
use edgemob_eval::cli;
use edgemob_simulator_glue::cli as sim;

#[derive(Debug, Parser)]
#[command(
    name = "edgemob-lab",
    version,
    about = "The researchers' edgemob binary: the paper's experiment, scale and roaming runs (these need root), handover traces",
    long_about = "edgemob-lab is the researchers' binary: it reproduces the paper's experiment \
                  (demo), hands bursts of UEs over (scale), lets many UEs roam over several eNBCs \
                  (roam), and makes and replays handover traces (trace, replay).\n\n\
                  demo, scale and roam need root: they build their own network namespaces and \
                  their agents use TCP_REPAIR. They run the agents from the `edgemob` binary and the \
                  services from `edgemob-video-server`, both found next to this binary (cargo \
                  builds them into the same target directory) or given with --edgemob PATH \
                  (EDGEMOB_BIN) and --video-server PATH (EDGEMOB_VIDEO_SERVER)."
)]
struct Lab {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reproduce the paper's experiment: a video download handed over between
    /// two eNBCs in network namespaces, N times, with Table I, Fig. 11 and
    /// Fig. 12 (needs root).
    Demo(cli::DemoArgs),
    /// Hand 1, 10, 100, 1,000 UEs over in one burst each and report per-UE
    /// times and migrations per second (needs root).
    Scale(cli::ScaleArgs),
    /// Many UEs roam across several eNBCs: a handover trace (synthetic, or
    /// given) replayed against real agents, every download checked (needs
    /// root).
    Roam(cli::RoamArgs),
    // No doc comments on these two: clap would replace the structs' own help.
    Replay(sim::ReplayArgs),
    Trace(sim::TraceArgs),
}

fn main() {
    let lab = Lab::parse();
    // The allocator setting and the one-thread runtime this harness had
    // when it ran inside the `edgemob` binary, so its own CPU and memory
    // use beside the agents it measures stay what they were.
    edgemob_paas_api::keep_freed_memory();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match lab.command {
            Command::Demo(a) => cli::run_demo(a).await.and_then(|ok| {
                ok.then_some(()).ok_or_else(|| {
                    "some runs were not completed, byte-exact and RST-free (see the table)"
                        .to_string()
                })
            }),
            Command::Scale(a) => cli::run_scale(a).await.and_then(|ok| {
                ok.then_some(()).ok_or_else(|| {
                    "some UEs did not migrate or their downloads were not exact".to_string()
                })
            }),
            Command::Roam(a) => cli::run_roam(a).await.and_then(|ok| {
                ok.then_some(()).ok_or_else(|| {
                    "some handovers did not migrate or some downloads were not exact".to_string()
                })
            }),
            Command::Replay(a) => sim::run_replay(a)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Command::Trace(a) => sim::run_trace(a).map_err(|e| e.to_string()),
        }
    });
    if let Err(e) = result {
        eprintln!("edgemob-lab: error: {e}");
        std::process::exit(1);
    }
}
