//! The agent's end of the descriptor channel (see `edgemob_paas_api::fdchannel`):
//! receives users' sockets from services and hands restored sockets back.

use edgemob_paas_api::fdchannel::{self, ChannelError, ChannelMsg};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, listen, socket,
};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// Most sockets a service may have sent and not yet named in RegisterUser.
const MAX_UNCLAIMED: usize = 65_536;

/// One service process's descriptor channel.
#[derive(Debug)]
pub struct ChannelConn {
    pub id: u64,
    sock: AsyncFd<OwnedFd>,
    unclaimed: Mutex<HashMap<u64, OwnedFd>>,
    arrived: Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl ChannelConn {
    /// The socket the service sent under `token`, waiting up to `wait` for
    /// it (the service sends it just before the RPC that names it).
    pub async fn claim(&self, token: u64, wait: Duration) -> Option<OwnedFd> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            if let Some(fd) = self.unclaimed.lock().expect("not poisoned").remove(&token) {
                return Some(fd);
            }
            if self.closed.load(Ordering::Acquire)
                || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                return None;
            }
        }
    }

    /// Hands a restored socket to the service under `token`.
    pub async fn give(&self, token: u64, fd: BorrowedFd<'_>) -> Result<(), ChannelError> {
        self.sock
            .async_io(Interest::WRITABLE, |s| {
                fdchannel::send(s.as_fd(), ChannelMsg::Give { token }, Some(fd)).map_err(to_io)
            })
            .await
            .map_err(from_io)
    }

    /// Sends a message that carries no descriptor.
    pub async fn send_plain(&self, msg: ChannelMsg) -> Result<(), ChannelError> {
        self.sock
            .async_io(Interest::WRITABLE, |s| {
                fdchannel::send(s.as_fd(), msg, None).map_err(to_io)
            })
            .await
            .map_err(from_io)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

fn to_io(e: ChannelError) -> std::io::Error {
    match e {
        ChannelError::Io(errno) => errno.into(),
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
    }
}

fn from_io(e: std::io::Error) -> ChannelError {
    match e.raw_os_error() {
        Some(n) => ChannelError::Io(nix::errno::Errno::from_raw(n)),
        None => ChannelError::Io(nix::errno::Errno::EPROTO),
    }
}

/// Listens on the descriptor-channel path and tracks open channels.
#[derive(Debug)]
pub struct FdServer {
    listener: AsyncFd<OwnedFd>,
    next_id: AtomicU64,
    channels: Mutex<HashMap<u64, Arc<ChannelConn>>>,
}

impl FdServer {
    pub fn bind(path: &Path, mode: u32) -> std::io::Result<Arc<FdServer>> {
        let _ = std::fs::remove_file(path);
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        listen(&fd, Backlog::new(128).expect("valid backlog"))?;
        // SAFETY: `fd` is an open socket owned by the AsyncFd from here on.
        let listener = unsafe { AsyncFd::register(fd) }?;
        Ok(Arc::new(FdServer {
            listener,
            next_id: AtomicU64::new(1),
            channels: Mutex::new(HashMap::new()),
        }))
    }

    pub fn channel(&self, id: u64) -> Option<Arc<ChannelConn>> {
        self.channels
            .lock()
            .expect("not poisoned")
            .get(&id)
            .cloned()
    }

    /// Accepts channels forever. `on_close` runs when a service process's
    /// channel closes (the process exited), so its services can be dropped.
    pub async fn run(self: Arc<Self>, on_close: impl Fn(u64) + Send + Sync + 'static) {
        let on_close = Arc::new(on_close);
        loop {
            let accepted = self
                .listener
                .async_io(Interest::READABLE, |l| {
                    accept4(
                        l.as_raw_fd(),
                        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                    )
                    .map_err(std::io::Error::from)
                })
                .await;
            let raw = match accepted {
                Ok(raw) => raw,
                Err(e) => {
                    tracing::warn!(error = %e, "descriptor channel accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            // SAFETY: accept4 returned a fresh descriptor we now own.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            // SAFETY: as above; owned by the AsyncFd from here on.
            let sock = match unsafe { AsyncFd::register(fd) } {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %std::io::Error::from(e), "cannot watch descriptor channel");
                    continue;
                }
            };
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let conn = Arc::new(ChannelConn {
                id,
                sock,
                unclaimed: Mutex::new(HashMap::new()),
                arrived: Notify::new(),
                closed: false.into(),
            });
            let server = Arc::clone(&self);
            let on_close = Arc::clone(&on_close);
            tokio::spawn(async move {
                if let Err(e) = serve(&server, &conn).await {
                    tracing::debug!(channel = id, error = %e, "descriptor channel ended");
                }
                conn.closed.store(true, Ordering::Release);
                conn.arrived.notify_waiters();
                conn.unclaimed.lock().expect("not poisoned").clear();
                server.channels.lock().expect("not poisoned").remove(&id);
                on_close(id);
            });
        }
    }

    fn insert(&self, conn: &Arc<ChannelConn>) {
        self.channels
            .lock()
            .expect("not poisoned")
            .insert(conn.id, Arc::clone(conn));
    }
}

async fn recv(conn: &ChannelConn) -> Result<Option<(ChannelMsg, Option<OwnedFd>)>, ChannelError> {
    conn.sock
        .async_io(Interest::READABLE, |s| {
            fdchannel::recv(s.as_fd()).map_err(to_io)
        })
        .await
        .map_err(from_io)
}

/// Handshake, then collect PUTs until the service closes the channel. The
/// channel becomes visible to lookups only after the handshake, so
/// half-open clients never show up.
async fn serve(server: &FdServer, conn: &Arc<ChannelConn>) -> Result<(), ChannelError> {
    match recv(conn).await? {
        Some((ChannelMsg::Hello, None)) => {}
        _ => return Ok(()), // not a client of ours: drop it
    }
    conn.sock
        .async_io(Interest::WRITABLE, |s| {
            fdchannel::send(
                s.as_fd(),
                ChannelMsg::Welcome {
                    channel_id: conn.id,
                },
                None,
            )
            .map_err(to_io)
        })
        .await
        .map_err(from_io)?;
    server.insert(conn);
    loop {
        match recv(conn).await? {
            Some((ChannelMsg::Put { token }, Some(fd))) => {
                let mut u = conn.unclaimed.lock().expect("not poisoned");
                if u.len() >= MAX_UNCLAIMED {
                    tracing::warn!(
                        channel = conn.id,
                        "too many unclaimed sockets; dropping one"
                    );
                    continue;
                }
                u.insert(token, fd);
                drop(u);
                conn.arrived.notify_waiters();
            }
            Some((m, _)) => tracing::warn!(
                channel = conn.id,
                ?m,
                "unexpected descriptor-channel message"
            ),
            None => return Ok(()),
        }
    }
}
