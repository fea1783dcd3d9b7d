//! A small service that follows its users, written against edgemob-sdk.
//!
//! Each client connection is one UE ("ue-<client ip>"). The service streams
//! `--download` generated octets to it (paced at `--rate` octets/s) while
//! reading `--upload` octets from it; when both are done it sends the 8-octet
//! FNV-1a hash of what it received and closes. Its per-UE context is just
//! the two offsets and the running hash, so a UE handed over mid-stream
//! resumes on the next eNBC exactly where it was — which the client checks
//! octet by octet.
//!
//! Flags for failure tests: `--import-delay-ms` (slow to accept arrivals),
//! `--export-delay-ms` (slow to hand a leaving UE over), `--refuse-import`.

use clap::Parser;
use edgemob_sdk::{Agent, Event, ExportRequest, SERVICE_CONTEXT};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// The local agent's API socket.
    #[arg(long)]
    agent: String,
    /// Address to serve on (the service address, the same on every eNBC).
    #[arg(long)]
    listen: std::net::SocketAddr,
    #[arg(long, default_value = "toy")]
    name: String,
    /// Octets sent to each UE.
    #[arg(long, default_value_t = 4 << 20)]
    download: u64,
    /// Octets expected from each UE.
    #[arg(long, default_value_t = 1 << 20)]
    upload: u64,
    /// Download pace, octets per second (0 = as fast as TCP allows).
    #[arg(long, default_value_t = 2_000_000)]
    rate: u64,
    #[arg(long, default_value_t = 0)]
    import_delay_ms: u64,
    /// Pause this long (not touching the socket) before exporting.
    #[arg(long, default_value_t = 0)]
    export_delay_ms: u64,
    #[arg(long)]
    refuse_import: bool,
    /// Pad each UE's context to this many octets (the paper's contexts are
    /// about 75 KB).
    #[arg(long, default_value_t = 0)]
    context_bytes: usize,
    /// Take events over gRPC WatchEvents instead of the service link.
    #[arg(long)]
    grpc_events: bool,
}

/// The octet at `offset` of the download: position-dependent, so a lost,
/// duplicated or shifted octet is caught.
pub fn download_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;

/// Per-UE state: all the service must carry across a handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ctx {
    sent: u64,
    received: u64,
    hash: u64,
}

impl Ctx {
    fn encode(&self) -> Vec<u8> {
        [self.sent, self.received, self.hash]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect()
    }
    fn decode(b: &[u8]) -> Option<Ctx> {
        if b.len() < 24 {
            return None;
        }
        let v: Vec<u64> = b[..24]
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().expect("8 octets")))
            .collect();
        Some(Ctx {
            sent: v[0],
            received: v[1],
            hash: v[2],
        })
    }
}

/// Events for one UE's session, delivered in order by the event loop.
enum Control {
    /// Stop touching the socket and export the context.
    Export(Box<ExportRequest>),
    /// The migration failed: carry on where we stopped.
    Resume,
    /// The UE moved away: the socket is frozen; drop it silently.
    Gone,
}

#[derive(Default)]
struct Sessions {
    controls: HashMap<String, mpsc::UnboundedSender<Control>>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("toy_service: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let agent = Agent::connect(&args.agent).await?;
    let service = agent
        .register_service(&args.name, &[SERVICE_CONTEXT])
        .await?;
    let mut events = if args.grpc_events {
        service.events_over_grpc().await?
    } else {
        service.events().await?
    };
    let listener = TcpListener::bind(args.listen).await?;
    println!("ready");
    let sessions = Arc::new(Mutex::new(Sessions::default()));

    let (svc, s2, a2) = (service.clone(), Arc::clone(&sessions), args.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let ue = format!("ue-{}", peer.ip());
            if let Err(e) = svc.register_user(&ue, &[(0, &stream)]).await {
                eprintln!("toy_service: cannot register {ue}: {e}");
                continue;
            }
            spawn_session(
                Arc::clone(&s2),
                a2.clone(),
                ue,
                stream,
                Ctx {
                    sent: 0,
                    received: 0,
                    hash: FNV_OFFSET,
                },
            );
        }
    });

    // Events for a UE go to its session in order; sessions run concurrently.
    while let Some(ev) = events.next().await {
        let to_session = |ue: &str, c: Control| {
            let ctl = sessions.lock().unwrap().controls.get(ue).cloned();
            match ctl {
                Some(ctl) => ctl.send(c).map_err(|e| e.0),
                None => Err(c),
            }
        };
        match ev? {
            Event::ExportRequested(req) => {
                let ue = req.ue.clone();
                if let Err(Control::Export(req)) = to_session(&ue, Control::Export(Box::new(req))) {
                    let _ = req.refuse("no such session").await;
                }
            }
            Event::ContextArrived(arrival) => {
                let (s2, a2) = (Arc::clone(&sessions), args.clone());
                tokio::spawn(async move {
                    if a2.import_delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(a2.import_delay_ms)).await;
                    }
                    if a2.refuse_import {
                        let _ = arrival.refuse("configured to refuse imports").await;
                        return;
                    }
                    let Some(ctx) = Ctx::decode(arrival.context()) else {
                        let _ = arrival.refuse("context does not decode").await;
                        return;
                    };
                    match arrival.take().await {
                        Ok((c, mut conns)) => {
                            let (_, stream) = conns.remove(0);
                            spawn_session(s2, a2, c.ue, stream, ctx);
                        }
                        Err(e) => eprintln!("toy_service: arrival abandoned: {e}"),
                    }
                });
            }
            Event::Completed {
                ue, outgoing: true, ..
            } => {
                let _ = to_session(&ue, Control::Gone);
            }
            Event::RolledBack { ue, .. } => {
                let _ = to_session(&ue, Control::Resume);
            }
            Event::Completed { .. } | Event::Failed { .. } => {}
        }
    }
    Ok(())
}

fn spawn_session(
    sessions: Arc<Mutex<Sessions>>,
    args: Args,
    ue: String,
    stream: TcpStream,
    ctx: Ctx,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    sessions.lock().unwrap().controls.insert(ue.clone(), tx);
    tokio::spawn(async move {
        serve(&args, &ue, stream, ctx, rx).await;
        sessions.lock().unwrap().controls.remove(&ue);
    });
}

async fn serve(
    args: &Args,
    ue: &str,
    stream: TcpStream,
    mut ctx: Ctx,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let started = Instant::now();
    let base = ctx.sent;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = vec![0u8; 16 * 1024];
    let mut trailer_sent = false;
    loop {
        let done_down = ctx.sent >= args.download;
        let done_up = ctx.received >= args.upload;
        if done_down && done_up && !trailer_sent {
            if write_all(&stream, &ctx.hash.to_be_bytes()).await.is_err() {
                return;
            }
            trailer_sent = true;
        }
        // Pace the download: octets allowed by now since this session began.
        let allowed = if args.rate == 0 {
            u64::MAX
        } else {
            base + (started.elapsed().as_secs_f64() * args.rate as f64) as u64 + 16 * 1024
        };
        let may_write = !done_down && ctx.sent < allowed;
        let pace = async {
            if !done_down && !may_write {
                tokio::time::sleep(Duration::from_millis(2)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Export(req)) => {
                    let mut bytes = ctx.encode();
                    bytes.resize(bytes.len().max(args.context_bytes), 0xC7);
                    if args.export_delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(args.export_delay_ms)).await;
                    }
                    // A failed export (the migration was already abandoned)
                    // is followed by a Resume; keep the session either way.
                    if let Err(e) = req.export(bytes).await {
                        eprintln!("toy_service: export of {ue} not taken: {e}");
                    }
                    // Frozen until the verdict.
                    loop {
                        match control.recv().await {
                            Some(Control::Resume) => break,
                            Some(Control::Gone) | None => return,
                            Some(Control::Export(again)) => {
                                let _ = again.refuse("already exporting").await;
                            }
                        }
                    }
                    continue;
                }
                // A verdict without an export in flight: nothing to do.
                Some(Control::Resume) => continue,
                Some(Control::Gone) | None => return,
            },
            r = stream.readable() => {
                if r.is_err() { return; }
                match stream.try_read(&mut buf) {
                    Ok(0) => {
                        if trailer_sent { return; }
                        // Client gave up early.
                        return;
                    }
                    Ok(n) => {
                        for &b in &buf[..n] {
                            ctx.hash = (ctx.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                        }
                        ctx.received += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            w = stream.writable(), if may_write => {
                if w.is_err() { return; }
                let n = ((args.download - ctx.sent) as usize).min(out.len());
                for (i, b) in out[..n].iter_mut().enumerate() {
                    *b = download_byte(ctx.sent + i as u64);
                }
                match stream.try_write(&out[..n]) {
                    Ok(k) => ctx.sent += k as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            () = pace => {}
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
