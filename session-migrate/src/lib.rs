//! Network session migration: move a live TCP connection from one network
//! namespace (an eNBC) to another without the peer noticing, using Linux
//! TCP_REPAIR — the mechanism of CRIU's libsoccr, implemented natively.
//!
//! * [`dump`] freezes a connected socket (repair mode: the kernel keeps its
//!   state but sends nothing) and captures addresses, sequence numbers, the
//!   receive queue, the send queue split into unacknowledged and unsent bytes,
//!   MSS, window scales, SACK, timestamps and the repair window, as a
//!   [`TcpStreamImage`]. The [`FrozenSocket`] it returns either
//!   [`thaw`](FrozenSocket::thaw)s (rollback: the connection resumes where it
//!   was) or is [`release`](FrozenSocket::release)d (closed without FIN or RST).
//! * [`restore_frozen`] recreates the connection in the current namespace in
//!   repair mode; [`RestoredSocket::activate`] makes it live; [`restore`] does both.
//! * [`NetLock`] drops (never answers) the packets of migrating 4-tuples
//!   through nf_tables, spoken to over netlink directly.
//! * Images travel as [`TcpStreamImage::encode`]/[`decode`](TcpStreamImage::decode)
//!   (CRIU's protobuf entries plus the queues, see [`wire`]) and can be written
//!   as CRIU image files ([`write_criu_images`]) that `crit decode` reads.
//!
//! # The order of operations
//!
//! ```text
//! source eNBC                              target eNBC
//! 1. lock.lock(&[tuple])                   (the peer's segments are dropped, not answered)
//! 2. let (img, frozen) = dump(fd)?         send img (wire encoding) in the CXTP context
//!                                          3. lock.lock(&[tuple])   — before the path can switch
//!                                          4. switch the UE's path to the target
//!                                          5. let s = restore_frozen(&img)?
//!                                          6. lock.unlock(&[tuple])
//!                                          7. let fd = s.activate()?  — window probe: the peer ACKs at once
//! 8a. success: frozen.release(); lock.unlock(&[tuple])
//! 8b. failure: lock.unlock(&[tuple]); frozen.thaw()?   — resumes, nothing lost or sent twice
//! ```
//!
//! Unlock *before* leaving repair mode (steps 6–7 and 8b): leaving repair mode
//! sends a window probe that makes the peer acknowledge immediately; if the
//! lock drops that probe the connection waits for a retransmission timeout
//! (hundreds of milliseconds). On the source, keep the lock until after the
//! release: segments still in flight to the old socket must not draw an RST.
//!
//! The service whose socket is restored must read what is in its receive
//! queue before closing it: `close()` with unread bytes sends an RST.
//!
//! # Many connections
//!
//! Lock all 4-tuples with one [`NetLock::lock`] call (one netlink batch), dump
//! each ([`dump_all`]), restore each in repair mode ([`restore_all`]), unlock
//! all with one call, then activate each. Per-socket work is a few dozen
//! system calls; nothing is serialised across sockets except the lock batches.
//!
//! # Privileges and limits
//!
//! TCP_REPAIR, `SO_*BUFFORCE` and nf_tables need CAP_NET_ADMIN in the user
//! namespace owning the network namespace; without it the functions return
//! `NeedsCapNetAdmin` errors. Only ESTABLISHED connections are migrated;
//! other states are refused with an error naming the state. The SACK
//! scoreboard, keepalive settings, socket timeouts and other socket options
//! are not carried. Failures after `dump` leave the source socket running.

pub mod criu;
mod dump;
mod error;
mod image;
mod netlock;
mod nfnl;
mod restore;
mod sockopt;
pub mod wire;

pub use criu::{read_criu_images, write_criu_images};
pub use dump::{FrozenSocket, dump, dump_all};
pub use error::{CriuError, DumpError, ImageError, LockError, Queue, RestoreError};
pub use image::{
    FourTuple, MAX_QUEUE_LEN, RepairWindow, SocketBuffers, TcpOptions, TcpState, TcpStreamImage,
    WindowScale,
};
pub use netlock::{LOCK_ENTRY_TIMEOUT, LOCK_EXEMPT_MARK, LOCK_TABLE, NetLock};
pub use restore::{RestoredSocket, restore, restore_all, restore_frozen};
