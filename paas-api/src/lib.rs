//! # edgemob-paas-api — the service-mobility API
//!
//! The gRPC definition of the six calls of the paper (register / deregister
//! service, register / deregister user, export / import context), the
//! `WatchEvents` stream that carries its callbacks, and the operator
//! service, all generated from `proto/edgemob/v1/paas.proto` (package
//! `edgemob.v1`). Both services are served on the agent's Unix socket.
//!
//! Sockets cannot travel inside gRPC messages, so they cross between a
//! service and the agent on the *descriptor channel* ([`fdchannel`]), a
//! `SOCK_SEQPACKET` Unix socket beside the API socket. Services stay
//! unprivileged: only the agent holds `CAP_NET_ADMIN` and touches
//! `TCP_REPAIR`.
//!
//! The calls and events a migration waits on also travel on the *service
//! link* ([`link`]): the same protobuf messages, length-prefixed on a Unix
//! stream socket, without the cost of HTTP/2 on the hot path.
//!
//! Both ends also share how to reach the agent's socket ([`client`]) and
//! the allocator setting of their processes ([`memory`]).

pub mod client;
pub mod fdchannel;
pub mod link;
pub mod memory;

/// Generated messages and clients/servers of package `edgemob.v1`.
#[allow(clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("edgemob.v1");
}

pub use fdchannel::descriptor_channel_path;
pub use link::link_path;
pub use memory::keep_freed_memory;
