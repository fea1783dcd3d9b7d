//! The client side of the descriptor channel: sends users' sockets to the
//! agent and collects the restored sockets it hands back.

use crate::Error;
use edgemob_paas_api::fdchannel::{self, ChannelMsg};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Received {
    fds: HashMap<u64, OwnedFd>,
    revoked: std::collections::HashSet<u64>,
    closed: bool,
}

/// Why an announced socket did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSocket {
    Revoked,
    TimedOut,
    ChannelClosed,
}

/// One descriptor channel, shared by every service of an [`crate::Agent`].
#[derive(Debug)]
pub(crate) struct FdChannel {
    sock: AsyncFd<OwnedFd>,
    pub(crate) id: u64,
    received: Mutex<Received>,
    arrived: Notify,
}

impl FdChannel {
    /// Connects, says HELLO and waits for WELCOME.
    pub(crate) async fn open(path: &Path) -> Result<Arc<FdChannel>, Error> {
        let connect_err = |e: nix::Error| Error::Connect {
            path: path.display().to_string(),
            source: e.into(),
        };
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(connect_err)?;
        let addr = UnixAddr::new(path).map_err(connect_err)?;
        use std::os::fd::AsRawFd;
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) | Err(nix::Error::EINPROGRESS) => {}
            Err(e) => return Err(connect_err(e)),
        }
        // SAFETY: `fd` is an open socket owned by the AsyncFd for its whole
        // life; OwnedFd::as_raw_fd always returns that same descriptor.
        let sock = unsafe { AsyncFd::register(fd) }.map_err(|e| Error::Io(e.into()))?;
        let ch = FdChannel {
            sock,
            id: 0,
            received: Mutex::new(Received::default()),
            arrived: Notify::new(),
        };
        ch.send(ChannelMsg::Hello, None).await?;
        let id = match ch.recv().await? {
            Some((ChannelMsg::Welcome { channel_id }, None)) => channel_id,
            Some((m, _)) => return Err(Error::Protocol(format!("{m:?} instead of WELCOME"))),
            None => return Err(Error::ChannelClosed),
        };
        let ch = Arc::new(FdChannel { id, ..ch });
        tokio::spawn(Self::read_loop(Arc::clone(&ch)));
        Ok(ch)
    }

    async fn send(&self, msg: ChannelMsg, fd: Option<BorrowedFd<'_>>) -> Result<(), Error> {
        self.sock
            .async_io(Interest::WRITABLE, |s| {
                fdchannel::send(s.as_fd(), msg, fd).map_err(to_io)
            })
            .await
            .map_err(Error::from)
    }

    async fn recv(&self) -> Result<Option<(ChannelMsg, Option<OwnedFd>)>, Error> {
        self.sock
            .async_io(Interest::READABLE, |s| {
                fdchannel::recv(s.as_fd()).map_err(to_io)
            })
            .await
            .map_err(Error::from)
    }

    /// Hands a socket to the agent under `token`.
    pub(crate) async fn put(&self, token: u64, fd: BorrowedFd<'_>) -> Result<(), Error> {
        self.send(ChannelMsg::Put { token }, Some(fd)).await
    }

    /// The restored socket the agent announced under `token`.
    pub(crate) async fn take(&self, token: u64, wait: Duration) -> Result<OwnedFd, NoSocket> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            {
                let mut r = self.received.lock().expect("not poisoned");
                if let Some(fd) = r.fds.remove(&token) {
                    return Ok(fd);
                }
                if r.revoked.remove(&token) {
                    return Err(NoSocket::Revoked);
                }
                if r.closed {
                    return Err(NoSocket::ChannelClosed);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(NoSocket::TimedOut);
            }
        }
    }

    async fn read_loop(self: Arc<Self>) {
        loop {
            match self.recv().await {
                Ok(Some((ChannelMsg::Give { token }, Some(fd)))) => {
                    self.received
                        .lock()
                        .expect("not poisoned")
                        .fds
                        .insert(token, fd);
                    self.arrived.notify_waiters();
                }
                Ok(Some((ChannelMsg::Revoke { token }, None))) => {
                    self.received
                        .lock()
                        .expect("not poisoned")
                        .revoked
                        .insert(token);
                    self.arrived.notify_waiters();
                }
                Ok(Some((m, _))) => tracing::warn!(?m, "unexpected descriptor-channel message"),
                Ok(None) | Err(_) => {
                    self.received.lock().expect("not poisoned").closed = true;
                    self.arrived.notify_waiters();
                    return;
                }
            }
        }
    }
}

fn to_io(e: fdchannel::ChannelError) -> std::io::Error {
    match e {
        fdchannel::ChannelError::Io(errno) => std::io::Error::from(errno),
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
    }
}
