use edgemob_paas_api::fdchannel::ChannelError;

/// Everything an SDK call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the edgemob agent at {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent refused the call: {}", .0.message())]
    Rpc(#[from] tonic::Status),
    #[error("descriptor channel: {0}")]
    Channel(#[from] ChannelError),
    #[error("descriptor channel: {0}")]
    Io(#[from] std::io::Error),
    #[error("the agent never handed over socket {token:#x} announced for {ue}")]
    MissingSocket { ue: String, token: u64 },
    #[error("the migration of {ue} was cancelled before its connections went live")]
    Cancelled { ue: String },
    #[error("the agent's descriptor channel closed")]
    ChannelClosed,
    #[error("the agent closed the service link")]
    LinkClosed,
    #[error("the agent sent an unexpected descriptor-channel message: {0}")]
    Protocol(String),
}
