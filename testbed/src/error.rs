//! Errors of the testbed: each names the step or system call that failed.

use std::io;

/// Everything that can go wrong while building, using or tearing down a testbed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// Network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN (root in CI).
    #[error("the testbed needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces")]
    NotRoot,
    /// An external command (`ip`, `tcpdump`) could not be started or failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line, shortened.
        command: String,
        /// Exit status and stderr, or the spawn error.
        detail: String,
    },
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Sys {
        /// The system call or file operation.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered a netlink request with an error.
    #[error("rtnetlink {request} rejected: {source}")]
    Netlink {
        /// The request kind.
        request: &'static str,
        /// The errno carried by the netlink error message.
        #[source]
        source: io::Error,
    },
    /// tcpdump did not report that it was listening in time.
    #[error("tcpdump on {iface} did not start listening: {detail}")]
    CaptureStart {
        /// Interface name.
        iface: String,
        /// What tcpdump printed.
        detail: String,
    },
    /// A pcap file could not be parsed.
    #[error("pcap {path}: {detail}")]
    Pcap {
        /// File path.
        path: String,
        /// What was wrong.
        detail: String,
    },
}

impl TestbedError {
    pub(crate) fn sys(call: &'static str) -> impl FnOnce(io::Error) -> TestbedError {
        move |source| TestbedError::Sys { call, source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;
