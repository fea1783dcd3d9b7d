//! `edgemob-video-server`: see the crate documentation and the README.

use clap::Parser;
use edgemob_video_server::pacing::parse_bitrate;
use edgemob_video_server::{
    ServerConfig, SessionConfig, VideoServer, open_content, serve_standalone,
};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An HTTP/1.1 video server that follows its users across eNodeB-Clouds.
///
/// Serves the files under --root with GET and HEAD, byte ranges and
/// keep-alive, pacing response bodies at --bitrate. Each client connection
/// is one UE ("ue-<client IP>") registered with the local edgemob agent;
/// when the UE is handed over, its context (file, offset, the response in
/// progress) and its live TCP connection move to the server on the next
/// eNBC, which continues the response at the exact octet.
#[derive(Debug, Parser)]
#[command(name = "edgemob-video-server", version)]
struct Args {
    /// The local agent's API socket.
    #[arg(
        long,
        env = "EDGEMOB_AGENT",
        value_name = "PATH",
        required_unless_present = "standalone"
    )]
    agent: Option<PathBuf>,
    /// The service address, identical on every eNBC.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The content directory (the same content on every eNBC).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// Pace of response bodies in bits per second: 0 = unpaced; SI
    /// suffixes k, M, G (500k, 8M, 1.5G).
    #[arg(long, value_name = "BITS_PER_S", default_value = "0", value_parser = parse_bitrate)]
    bitrate: u64,
    /// The service name, identical on every eNBC.
    #[arg(long, default_value = "video")]
    name: String,
    /// Once listening and registered, also create this file (containing
    /// "ready"). The line "ready" is always printed on stdout.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Pad each exported context to at least this many octets, to emulate
    /// heavier service state (the paper's contexts are about 75 KB).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    context_pad: usize,
    /// Close keep-alive connections idle this many seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    idle_timeout: u64,
    /// Serve without an agent (nothing moves); for trying the HTTP side.
    #[arg(long)]
    standalone: bool,
    /// Log level of this server and the SDK (error, warn, info, debug,
    /// trace), or full filter directives such as "info,h2=debug". Logs go
    /// to stderr.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log: String,
}

fn main() {
    let args = Args::parse();
    edgemob_sdk::keep_freed_memory();
    // A bare level is for this server and the SDK; the libraries under them
    // (gRPC, HTTP/2) only report warnings. Directives are taken as given.
    let directives = if args.log.contains(['=', ',']) {
        args.log.clone()
    } else {
        format!(
            "warn,edgemob_video_server={l},edgemob_sdk={l}",
            l = args.log
        )
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("edgemob-video-server: bad --log {:?}: {e}", args.log);
        std::process::exit(2);
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // One thread: every hop to the agent is a wake-up, and cross-thread
    // hand-offs would add to each migration's pause.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("edgemob-video-server: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let session = SessionConfig {
        bitrate: args.bitrate,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        ..SessionConfig::default()
    };
    if args.standalone {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        let library = open_content(&args.root).await?;
        announce(args.ready_file.as_deref(), addr, args.bitrate, "standalone")?;
        tokio::select! {
            () = serve_standalone(listener, library, session) => {}
            () = shutdown_signal() => {}
        }
        return Ok(());
    }
    let server = VideoServer::start(ServerConfig {
        agent: args.agent.expect("required unless --standalone"),
        listen: args.listen,
        root: args.root,
        name: args.name.clone(),
        context_pad: args.context_pad,
        session,
    })
    .await?;
    announce(
        args.ready_file.as_deref(),
        server.local_addr(),
        args.bitrate,
        &args.name,
    )?;
    server.run_until(shutdown_signal()).await?;
    Ok(())
}

fn announce(
    ready_file: Option<&Path>,
    addr: SocketAddr,
    bitrate: u64,
    name: &str,
) -> std::io::Result<()> {
    tracing::info!(%addr, bitrate, service = name, "ready");
    if let Some(path) = ready_file {
        // Written aside and renamed: a watcher never sees a partial file.
        let tmp = path.with_extension("tmp-ready");
        std::fs::write(&tmp, b"ready\n")?;
        std::fs::rename(&tmp, path)?;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: leaving"),
        _ = int.recv() => tracing::info!("SIGINT: leaving"),
    }
}
