//! The scale experiment: 1, 10, 100 and 1,000 UEs, each with a live HTTP
//! download from the video server and a 75 KB application context, handed
//! over from enbc1 to enbc2 in one burst. Reports per-UE migration times
//! (and their wait for a migration slot), the burst's duration and
//! migrations per second; every download is checked octet by octet.

use crate::cluster::{Cluster, ClusterError, ClusterOptions};
use crate::demo::{make_video, outcome_name, phases_of};
use crate::report::ScaleRecord;
use edgemob_paas_api::v1 as pb;
use futures::future::join_all;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// Burst sizes to run, e.g. [1, 10, 100, 1000].
    pub ues: Vec<usize>,
    /// Application context per UE, octets.
    pub context_bytes: usize,
    /// Each UE's download, octets, and its pace, bits per second.
    pub size: u64,
    pub bitrate: u64,
    pub out: PathBuf,
    pub edgemob: PathBuf,
    pub video_server: PathBuf,
    pub agent_log: String,
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{ues} UEs: {why}")]
    Burst { ues: usize, why: String },
}

/// One burst's outcome.
#[derive(Debug, Clone)]
pub struct Burst {
    pub ues: usize,
    pub records: Vec<ScaleRecord>,
    /// From the first trigger to the last outcome.
    pub duration: Duration,
    /// Downloads that arrived complete and exact.
    pub downloads_ok: usize,
    /// Per-UE waits for a migration slot, ms.
    pub queued_ms: Vec<f64>,
}

pub(crate) async fn client(
    local: std::net::TcpStream,
    expected: String,
    size: u64,
) -> Result<(), String> {
    local.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut s = tokio::net::TcpStream::from_std(local).map_err(|e| e.to_string())?;
    s.write_all(b"GET /video.bin HTTP/1.1\r\nHost: edgemob\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed during the headers".into());
        }
        head.push(byte[0]);
        if head.len() > 16 << 10 {
            return Err("headers too long".into());
        }
    }
    let mut hash = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    while got < size {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| format!("after {got} octets: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {got} of {size} octets"));
        }
        hash.update(&buf[..n]);
        got += n as u64;
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if hex != expected {
        return Err("sha256 mismatch".into());
    }
    Ok(())
}

/// Runs every burst size in turn, each on a fresh cluster.
pub async fn run(opts: &ScaleOptions) -> Result<Vec<Burst>, ScaleError> {
    let mut bursts = Vec::new();
    for &n in &opts.ues {
        bursts.push(burst(opts, n).await?);
    }
    Ok(bursts)
}

async fn burst(opts: &ScaleOptions, n: usize) -> Result<Burst, ScaleError> {
    let work = opts.out.join(format!("work-{n}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| ScaleError::Burst {
        ues: n,
        why: e.to_string(),
    })?;
    let video = work.join("video.bin");
    let expected = make_video(&video, opts.size, 7)?;

    let mut copts = ClusterOptions::new(opts.edgemob.clone(), work.join("cluster"));
    copts.ue_addrs = n;
    copts.agent_log = opts.agent_log.clone();
    let cluster = Cluster::start_for_bursts(
        copts,
        &opts.video_server,
        &work,
        opts.bitrate,
        opts.context_bytes,
    )
    .await?;

    // N clients, one per UE address.
    let sockets = cluster.connect_ues(n)?;
    let downloads: Vec<_> = sockets
        .into_iter()
        .map(|s| tokio::spawn(client(s, expected.clone(), opts.size)))
        .collect();

    // Wait until every UE is registered at enbc1, then fire them all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let users = cluster.users(0).await?;
        if users.len() >= n && users.iter().all(|u| u.connections >= 1) {
            break;
        }
        if Instant::now() > deadline {
            return Err(ScaleError::Burst {
                ues: n,
                why: format!("only {} of {n} UEs registered", users.len()),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ues: Vec<String> = (0..n)
        .map(|k| format!("ue-{}", cluster.ue_addr(k)))
        .collect();
    // Each UE's path follows its own handover: switched, and the target
    // told, as soon as its migration completed (as the radio side would).
    let t0 = Instant::now();
    let results = join_all(ues.iter().enumerate().map(|(k, ue)| {
        let cluster = &cluster;
        async move {
            let r = cluster.handover(ue, 0, 1).await;
            if r.as_ref()
                .is_ok_and(|rec| rec.outcome == pb::Outcome::Completed as i32)
            {
                if let Err(e) = cluster.switch_ue(k, 1) {
                    eprintln!("scale: switching {ue}: {e}");
                }
                if let Err(e) = cluster.complete(ue, 1).await {
                    eprintln!("scale: completing {ue}: {e}");
                }
            }
            r
        }
    }))
    .await;
    let duration = t0.elapsed();

    let mut records = Vec::with_capacity(n);
    let mut queued_ms = Vec::with_capacity(n);
    for (ue, r) in ues.iter().zip(results) {
        match r {
            Ok(rec) => {
                let p = rec.phases.unwrap_or_default();
                queued_ms.push(p.queued_ns as f64 / 1e6);
                records.push(ScaleRecord {
                    ues: n,
                    ue: ue.clone(),
                    ok: outcome_name(rec.outcome) == crate::report::OUTCOME_COMPLETED,
                    phases: phases_of(&rec),
                    context_bytes: rec.context_bytes,
                    started_offset_ms: p.queued_ns as f64 / 1e6,
                });
            }
            Err(e) => {
                eprintln!("scale: {ue}: {e}");
                records.push(ScaleRecord {
                    ues: n,
                    ue: ue.clone(),
                    ok: false,
                    ..ScaleRecord::default()
                });
            }
        }
    }
    // Bounded: a download that stops is reported, never waited for forever.
    let mut downloads_ok = 0;
    let wait =
        Duration::from_secs_f64(opts.size as f64 * 8.0 / opts.bitrate.max(1) as f64 * 2.0 + 60.0);
    let until = tokio::time::Instant::now() + wait;
    for d in downloads {
        match tokio::time::timeout_at(until, d).await {
            Ok(Ok(Ok(()))) => downloads_ok += 1,
            Ok(Ok(Err(e))) => eprintln!("scale: a download failed: {e}"),
            _ => eprintln!(
                "scale: a download did not finish within {} s",
                wait.as_secs()
            ),
        }
    }
    let _ = std::fs::remove_file(&video);
    Ok(Burst {
        ues: n,
        records,
        duration,
        downloads_ok,
        queued_ms,
    })
}
