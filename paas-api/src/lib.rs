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

pub mod fdchannel;

/// Generated messages and clients/servers of package `edgemob.v1`.
#[allow(clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("edgemob.v1");
}

pub use fdchannel::descriptor_channel_path;
