//! Reaching an agent's API socket: the gRPC channel services and operator
//! tools open to it.

use crate::v1::operator_client::OperatorClient;
use hyper_util::rt::TokioIo;
use std::path::Path;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Error, Uri};

/// Opens a gRPC channel over the agent's Unix API socket.
pub async fn unix_channel(path: &Path) -> Result<Channel, Error> {
    let p = path.to_path_buf();
    Endpoint::from_static("http://edgemob.agent")
        // The default 64 KiB windows cost a round trip per large context.
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(64 << 20))
        .max_frame_size(Some(1 << 20))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        }))
        .await
}

/// An Operator client for an agent: `agent` is its API socket path
/// (optionally `unix:PATH`) or `http://HOST:PORT` where it serves the
/// Operator API on TCP.
pub async fn operator_client(agent: &str) -> Result<OperatorClient<Channel>, Error> {
    let channel = if agent.starts_with("http://") || agent.starts_with("https://") {
        Endpoint::from_shared(agent.to_owned())?.connect().await?
    } else {
        unix_channel(Path::new(agent.strip_prefix("unix:").unwrap_or(agent))).await?
    };
    Ok(OperatorClient::new(channel).max_decoding_message_size(64 << 20))
}
