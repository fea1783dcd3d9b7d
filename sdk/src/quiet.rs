//! A Unix stream socket that only wakes its owner for incoming data.
//!
//! tokio registers every socket for both readability and writability. On a
//! Unix stream socket each read by the peer frees send space, and the kernel
//! then wakes whoever polls the socket for writing — on a registered socket,
//! always its owner, even when it has nothing to send. On the service link
//! that doubled the wake-ups between an agent and its services (about four
//! of the eight per migration served no purpose), and the peer pays for
//! each one inside its read, on a migration's critical path.
//!
//! [`QuietFd`] registers a socket for readability only and writes without
//! asking. Only when the send buffer is full (a context of megabytes) does a
//! writer register a duplicate descriptor for writability, for as long as it
//! waits. [`QuietUnixStream`] is a stream socket on top of it; the agent and
//! the SDK use them for the service link and the descriptor channel.

use nix::sys::socket::MsgFlags;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A non-blocking socket woken only by incoming data. Reads and writes take
/// `&self`: one task may read while another writes.
#[derive(Debug)]
pub struct QuietFd {
    fd: AsyncFd<OwnedFd>,
}

impl QuietFd {
    /// Takes over a non-blocking socket. Must run inside a tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        Ok(QuietFd {
            fd: register(fd, Interest::READABLE)?,
        })
    }

    /// Runs `op` (a non-blocking receive) until it does not report
    /// `WouldBlock`, waiting for incoming data in between.
    pub async fn read_with<R>(
        &self,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.fd
            .async_io(Interest::READABLE, |fd| op(fd.as_fd()))
            .await
    }

    /// Runs `op` (a non-blocking send) until it does not report
    /// `WouldBlock`, waiting for send space in between.
    pub async fn write_with<R>(
        &self,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            match op(self.fd.get_ref().as_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Waits until the socket takes more octets, through a registration of
    /// a duplicate that lives only as long as the wait.
    async fn writable(&self) -> io::Result<()> {
        let dup = self.fd.get_ref().as_fd().try_clone_to_owned()?;
        let waiter = register(dup, Interest::WRITABLE)?;
        // Registering reports a socket that is writable already.
        waiter.writable().await?.retain_ready();
        Ok(())
    }
}

impl AsFd for QuietFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

/// A connected Unix stream socket, woken only by incoming data.
#[derive(Debug)]
pub struct QuietUnixStream {
    fd: QuietFd,
}

impl QuietUnixStream {
    /// Takes over a connected stream socket. Must run inside a tokio runtime.
    pub fn new(stream: std::os::unix::net::UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(QuietUnixStream {
            fd: QuietFd::new(OwnedFd::from(stream))?,
        })
    }

    /// Converts a tokio stream (it loses its tokio registration).
    pub fn from_tokio(stream: tokio::net::UnixStream) -> io::Result<Self> {
        Self::new(stream.into_std()?)
    }

    /// Connects to the stream socket at `path`.
    pub async fn connect(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        Self::from_tokio(tokio::net::UnixStream::connect(path).await?)
    }

    /// Reads what has arrived, waiting for something if nothing has; 0 at
    /// the end of the stream.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .read_with(|fd| {
                nix::sys::socket::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)
                    .map_err(io::Error::from)
            })
            .await
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = self
                .fd
                .write_with(|fd| {
                    nix::sys::socket::send(
                        fd.as_raw_fd(),
                        bytes,
                        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                    )
                    .map_err(io::Error::from)
                })
                .await?;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd`, which stays open and refers to the
    // same socket until the AsyncFd drops it; OwnedFd::as_raw_fd always
    // returns that descriptor.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn carries_octets_both_ways_and_sees_the_end() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (a, b) = (
            QuietUnixStream::new(a).unwrap(),
            QuietUnixStream::new(b).unwrap(),
        );
        a.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.read(&mut buf).await.unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        b.write_all(b"pong").await.unwrap();
        assert_eq!(a.read(&mut buf).await.unwrap(), 4);
        drop(b);
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_write_larger_than_the_send_buffer_waits_for_the_reader() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (a, b) = (
            std::sync::Arc::new(QuietUnixStream::new(a).unwrap()),
            QuietUnixStream::new(b).unwrap(),
        );
        // Far beyond any default send buffer: the writer must block and be
        // woken by the reader's progress.
        let data: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let writer = tokio::spawn(async move { a.write_all(&data).await });
        let mut got = Vec::with_capacity(expect.len());
        let mut buf = vec![0u8; 64 << 10];
        while got.len() < expect.len() {
            let n = b.read(&mut buf).await.unwrap();
            assert!(n > 0, "stream ended early");
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap().unwrap();
        assert!(got == expect, "octets differ");
    }

    #[tokio::test]
    async fn writing_to_a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = QuietUnixStream::new(a).unwrap();
        drop(b);
        let e = a.write_all(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
