//! The leaving UE's sockets at the source: frozen (locked and dumped)
//! while the migration runs, then thawed where they stopped (rollback) or
//! released silently with their drop rules lingering (success).

use super::MigrationError;
use super::table::Departed;
use crate::node::Node;
use crate::registry::{Conn, ServiceHandle};
use edgemob_session_migrate::{FourTuple, FrozenSocket, dump};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a source keeps dropping a moved UE's packets after the target
/// reported the handover complete (packets still in flight to us).
const HANDOVER_COMPLETE_GRACE: Duration = Duration::from_secs(1);

pub(super) struct Frozen {
    pub(super) handle: ServiceHandle,
    pub(super) id: u32,
    pub(super) socket: FrozenSocket,
}

/// The UE's sockets, frozen: their images and their 4-tuples (locked).
pub(super) struct FrozenSet {
    pub(super) sockets: Vec<Frozen>,
    pub(super) images: Vec<Vec<u8>>,
    pub(super) tuples: Vec<FourTuple>,
}

/// Writes the moved connections' images as CRIU image files, off the hot
/// path (the migration is over).
pub(super) fn save_images(dir: std::path::PathBuf, images: Vec<Vec<u8>>) {
    tokio::task::spawn_blocking(move || {
        let decoded: Result<Vec<_>, _> = images
            .iter()
            .map(|b| edgemob_session_migrate::TcpStreamImage::decode(b))
            .collect();
        let result = decoded.map_err(|e| e.to_string()).and_then(|imgs| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            edgemob_session_migrate::write_criu_images(&dir, &imgs).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot save the connection images");
        }
    });
}

/// Locks the UE's 4-tuples and dumps its sockets. On any failure every
/// socket dumped so far is thawed and put back, and the lock removed.
pub(super) fn freeze_connections(node: &Node, ue: &str) -> Result<FrozenSet, MigrationError> {
    let conns: Vec<(ServiceHandle, Conn)> = {
        let mut reg = node.reg.lock().expect("not poisoned");
        let Some(u) = reg.users.get_mut(ue) else {
            return Err(MigrationError::UeDeregistered(ue.to_owned()));
        };
        std::mem::take(&mut u.services)
            .into_iter()
            .flat_map(|(h, cs)| cs.into_iter().map(move |c| (h, c)))
            .collect()
    };
    let tuples: Vec<FourTuple> = conns
        .iter()
        .map(|(_, c)| FourTuple {
            local: c.local,
            peer: c.peer,
        })
        .collect();
    if let Err(e) = node.lock_tuples(&tuples) {
        put_back(node, ue, conns);
        return Err(MigrationError::Lock(e.to_string()));
    }
    let mut sockets = Vec::with_capacity(conns.len());
    let mut images = Vec::with_capacity(conns.len());
    let mut failed = None;
    let mut untouched = Vec::new();
    for (h, c) in conns {
        if failed.is_some() {
            untouched.push((h, c));
            continue;
        }
        match dump(c.fd.as_fd()) {
            Ok((img, socket)) => {
                tracing::debug!(
                    local = %img.tuple.local, peer = %img.tuple.peer,
                    inq_seq = img.inq_seq, outq_seq = img.outq_seq,
                    recv_queue = img.recv_queue.len(), send_queue = img.send_queue.len(),
                    unsent = img.unsent_len, mss = img.mss_clamp,
                    timestamp = ?img.options.timestamp, window = ?img.window,
                    "connection dumped"
                );
                let mut bytes = Vec::with_capacity(img.encoded_len());
                img.encode(&mut bytes);
                images.push(bytes);
                sockets.push(Frozen {
                    handle: h,
                    id: c.id,
                    socket,
                });
                // `c.fd` closes here; the frozen socket holds a duplicate.
            }
            Err(e) => {
                failed = Some(format!(
                    "cannot dump connection {} ({} -> {}): {e}",
                    c.id, c.local, c.peer
                ));
                untouched.push((h, c));
            }
        }
    }
    if let Some(reason) = failed {
        node.unlock_tuples(&tuples);
        put_back(node, ue, untouched);
        put_back(node, ue, thaw(sockets));
        return Err(MigrationError::Dump(reason));
    }
    Ok(FrozenSet {
        sockets,
        images,
        tuples,
    })
}

/// Gives frozen connections back to the UE's services, live again.
pub(super) fn unfreeze(node: &Node, ue: &str, f: FrozenSet) {
    // Unlock first: thawing sends a window probe that must not be dropped.
    node.unlock_tuples(&f.tuples);
    put_back(node, ue, thaw(f.sockets));
}

/// Thaws frozen sockets where they stopped (nothing lost, nothing sent
/// twice); unlock their 4-tuples first, as thawing sends a window probe.
fn thaw(frozen: Vec<Frozen>) -> Vec<(ServiceHandle, Conn)> {
    let mut back = Vec::with_capacity(frozen.len());
    for f in frozen {
        let tuple = f.socket.tuple();
        match f.socket.thaw() {
            Ok(fd) => back.push((
                f.handle,
                Conn {
                    id: f.id,
                    fd,
                    local: tuple.local,
                    peer: tuple.peer,
                },
            )),
            Err(e) => tracing::error!(error = %e, "cannot thaw a frozen socket"),
        }
    }
    back
}

/// Gives connections back to the UE's record, to their services.
fn put_back(node: &Node, ue: &str, back: Vec<(ServiceHandle, Conn)>) {
    let mut reg = node.reg.lock().expect("not poisoned");
    if let Some(u) = reg.users.get_mut(ue) {
        for (h, c) in back {
            u.services.entry(h).or_default().push(c);
        }
    }
}

/// Keeps the moved connections' drop rules until the target reports the
/// handover complete for this UE, or the linger time ends.
pub(super) fn schedule_unlock(node: &Arc<Node>, ue: &str, mig: u64, tuples: Vec<FourTuple>) {
    let linger = Duration::from_millis(node.cfg.timers.source_lock_linger_ms);
    let (tx, rx) = oneshot::channel::<()>();
    node.reg
        .lock()
        .expect("not poisoned")
        .migrations
        .entry(ue)
        .departed = Some(Departed { id: mig, ended: tx });
    let node = Arc::clone(node);
    let ue = ue.to_owned();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        if tokio::time::timeout(linger, rx).await.is_ok() {
            // Reported complete: packets already in flight to us still get
            // dropped for a moment.
            let grace = HANDOVER_COMPLETE_GRACE.min(linger.saturating_sub(started.elapsed()));
            tokio::time::sleep(grace).await;
        }
        node.unlock_tuples(&tuples);
        node.reg
            .lock()
            .expect("not poisoned")
            .migrations
            .update(&ue, |m| {
                if m.departed.as_ref().is_some_and(|d| d.id == mig) {
                    m.departed = None;
                }
            });
    });
}
