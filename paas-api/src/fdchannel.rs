//! The descriptor channel: TCP sockets between a service and its agent.
//!
//! A `SOCK_SEQPACKET` Unix socket at the API socket's path plus `.fds`.
//! Every message is one 16-octet packet, optionally carrying exactly one
//! file descriptor as `SCM_RIGHTS` ancillary data:
//!
//! ```text
//! 0..4   magic "EMFD"
//! 4      version (1)
//! 5      kind: 1 HELLO   client -> agent, no descriptor
//!              2 WELCOME agent -> client, value = channel id
//!              3 PUT     client -> agent, value = token, one descriptor
//!              4 GIVE    agent -> client, value = token, one descriptor
//!              5 REVOKE  agent -> client, value = token, no descriptor:
//!                        the socket announced under the token will not come
//! 6..8   reserved, zero
//! 8..16  value (u64, big-endian)
//! ```
//!
//! A client opens the channel, sends HELLO, and names the channel id from
//! WELCOME in `RegisterService`. It sends each user's socket with PUT under
//! a token of its choosing and refers to the token in `RegisterUser`; the
//! agent keeps its own duplicate of the socket so it can freeze and dump
//! it when the user moves. When a user arrives, the agent GIVEs the
//! restored sockets, once live, under the tokens announced in
//! `ContextArrived`, or REVOKEs the tokens if the migration is cancelled.
//!
//! These are thin, blocking-or-non-blocking wrappers around
//! `sendmsg`/`recvmsg`; the callers drive them from their async runtime.

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub const MAGIC: [u8; 4] = *b"EMFD";
pub const VERSION: u8 = 1;
pub const MESSAGE_LEN: usize = 16;

/// One descriptor-channel message (the descriptor travels beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelMsg {
    Hello,
    Welcome { channel_id: u64 },
    Put { token: u64 },
    Give { token: u64 },
    Revoke { token: u64 },
}

impl ChannelMsg {
    /// Whether this kind of message must carry one descriptor.
    pub fn carries_fd(self) -> bool {
        matches!(self, ChannelMsg::Put { .. } | ChannelMsg::Give { .. })
    }

    pub fn encode(self) -> [u8; MESSAGE_LEN] {
        let (kind, value) = match self {
            ChannelMsg::Hello => (1, 0),
            ChannelMsg::Welcome { channel_id } => (2, channel_id),
            ChannelMsg::Put { token } => (3, token),
            ChannelMsg::Give { token } => (4, token),
            ChannelMsg::Revoke { token } => (5, token),
        };
        let mut b = [0u8; MESSAGE_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = kind;
        b[8..].copy_from_slice(&u64::to_be_bytes(value));
        b
    }

    pub fn decode(b: &[u8]) -> Result<ChannelMsg, ChannelError> {
        let b: &[u8; MESSAGE_LEN] = b.try_into().map_err(|_| ChannelError::BadLength(b.len()))?;
        if b[..4] != MAGIC {
            return Err(ChannelError::BadMagic);
        }
        if b[4] != VERSION {
            return Err(ChannelError::BadVersion(b[4]));
        }
        let value = u64::from_be_bytes(b[8..].try_into().expect("8 octets"));
        Ok(match b[5] {
            1 => ChannelMsg::Hello,
            2 => ChannelMsg::Welcome { channel_id: value },
            3 => ChannelMsg::Put { token: value },
            4 => ChannelMsg::Give { token: value },
            5 => ChannelMsg::Revoke { token: value },
            k => return Err(ChannelError::BadKind(k)),
        })
    }
}

/// What can go wrong on the descriptor channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("descriptor-channel message of {0} octets (expected 16)")]
    BadLength(usize),
    #[error("descriptor-channel message without the EMFD magic")]
    BadMagic,
    #[error("descriptor-channel version {0} is not supported (this side speaks 1)")]
    BadVersion(u8),
    #[error("unknown descriptor-channel message kind {0}")]
    BadKind(u8),
    #[error("{0:?} must carry exactly one descriptor, it carried {1}")]
    WrongDescriptorCount(ChannelMsg, usize),
    #[error("descriptor-channel ancillary data was truncated")]
    Truncated,
    #[error("descriptor channel: {0}")]
    Io(#[from] Errno),
}

impl ChannelError {
    /// True when a non-blocking socket simply had nothing to read.
    pub fn would_block(&self) -> bool {
        matches!(self, ChannelError::Io(Errno::EAGAIN))
    }
}

/// Sends `msg`, with `fd` attached when the message kind carries one.
pub fn send(
    sock: BorrowedFd<'_>,
    msg: ChannelMsg,
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), ChannelError> {
    let n = usize::from(fd.is_some());
    if msg.carries_fd() != (n == 1) {
        return Err(ChannelError::WrongDescriptorCount(msg, n));
    }
    let bytes = msg.encode();
    let iov = [IoSlice::new(&bytes)];
    let raw: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receives one message. `Ok(None)` means the peer closed the channel.
/// Descriptors are received close-on-exec; any descriptor that should not
/// be there is closed, never leaked.
pub fn recv(sock: BorrowedFd<'_>) -> Result<Option<(ChannelMsg, Option<OwnedFd>)>, ChannelError> {
    let mut buf = [0u8; MESSAGE_LEN + 1];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just installed these descriptors in our
            // table for us; each is owned exactly once here.
            fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
        }
    }
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    let len = msg.bytes;
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    if truncated {
        return Err(ChannelError::Truncated);
    }
    let m = ChannelMsg::decode(&buf[..len])?;
    let want = usize::from(m.carries_fd());
    if fds.len() != want {
        return Err(ChannelError::WrongDescriptorCount(m, fds.len()));
    }
    Ok(Some((m, fds.pop())))
}

/// Where the descriptor channel of the API socket at `api` lives.
pub fn descriptor_channel_path(api: &Path) -> PathBuf {
    let mut p = api.as_os_str().to_owned();
    p.push(".fds");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            ChannelMsg::Hello,
            ChannelMsg::Welcome { channel_id: 7 },
            ChannelMsg::Put { token: u64::MAX },
            ChannelMsg::Give { token: 1 },
            ChannelMsg::Revoke { token: 2 },
        ] {
            assert_eq!(ChannelMsg::decode(&m.encode()).unwrap(), m);
        }
        assert!(matches!(
            ChannelMsg::decode(b"nope"),
            Err(ChannelError::BadLength(4))
        ));
        let mut b = ChannelMsg::Hello.encode();
        b[5] = 9;
        assert!(matches!(
            ChannelMsg::decode(&b),
            Err(ChannelError::BadKind(9))
        ));
    }

    #[test]
    fn a_passed_socket_is_the_same_socket() {
        let (a, b) = pair();
        let (mut x, mut y) = UnixStream::pair().unwrap();
        send(a.as_fd(), ChannelMsg::Put { token: 42 }, Some(x.as_fd())).unwrap();
        let (m, fd) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(m, ChannelMsg::Put { token: 42 });
        let mut passed = UnixStream::from(fd.unwrap());
        passed.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        y.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        x.write_all(b"!").unwrap();
        drop(a);
        assert!(
            recv(b.as_fd()).unwrap().is_none(),
            "EOF once the peer closed"
        );
    }

    #[test]
    fn descriptor_counts_are_enforced_both_ways() {
        let (a, b) = pair();
        assert!(matches!(
            send(a.as_fd(), ChannelMsg::Put { token: 1 }, None),
            Err(ChannelError::WrongDescriptorCount(..))
        ));
        let (x, _y) = UnixStream::pair().unwrap();
        assert!(matches!(
            send(a.as_fd(), ChannelMsg::Hello, Some(x.as_fd())),
            Err(ChannelError::WrongDescriptorCount(..))
        ));
        // a raw HELLO with a descriptor attached is refused by recv (and the
        // stray descriptor closed)
        let bytes = ChannelMsg::Hello.encode();
        let raw = [x.as_raw_fd()];
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&raw)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert!(matches!(
            recv(b.as_fd()),
            Err(ChannelError::WrongDescriptorCount(ChannelMsg::Hello, 1))
        ));
    }

    #[test]
    fn descriptor_channel_sits_beside_the_api_socket() {
        assert_eq!(
            descriptor_channel_path(Path::new("/run/edgemob/enbc1.sock")),
            PathBuf::from("/run/edgemob/enbc1.sock.fds")
        );
    }
}
