//! Reaching an agent's Operator API: over its Unix API socket (as
//! `edgemob_sdk::unix_channel` does) or, for `http://HOST:PORT`, over TCP.

use std::path::Path;
use std::time::Duration;

use edgemob_paas_api::v1::operator_client::OperatorClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// An Operator client.
pub type Operator = OperatorClient<Channel>;

/// The agent could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the agent at {addr}: {message}")]
pub struct ConnectError {
    /// Socket path or URL.
    pub addr: String,
    /// Why.
    pub message: String,
}

/// Whether an agent address is a URL rather than a socket path.
pub fn is_url(addr: &Path) -> bool {
    let s = addr.to_string_lossy();
    s.starts_with("http://") || s.starts_with("https://")
}

fn endpoint(addr: &Path) -> Result<Endpoint, ConnectError> {
    let bad = |message: String| ConnectError {
        addr: addr.display().to_string(),
        message,
    };
    let ep = if is_url(addr) {
        Endpoint::from_shared(addr.to_string_lossy().into_owned())
            .map_err(|e| bad(e.to_string()))?
    } else {
        Endpoint::from_static("http://edgemob.agent")
    };
    Ok(ep.connect_timeout(Duration::from_secs(5)))
}

/// Connects now; fails if the agent is not there.
pub async fn connect(addr: &Path) -> Result<Operator, ConnectError> {
    let ep = endpoint(addr)?;
    let channel = if is_url(addr) {
        ep.connect().await
    } else {
        let p = addr.to_path_buf();
        ep.connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        }))
        .await
    }
    .map_err(|e| ConnectError {
        addr: addr.display().to_string(),
        message: error_chain(&e),
    })?;
    Ok(OperatorClient::new(channel))
}

/// A client that connects on first use (and reconnects after failures):
/// for an agent that may start after the simulation.
pub fn connect_lazy(addr: &Path) -> Result<Operator, ConnectError> {
    let ep = endpoint(addr)?;
    let channel = if is_url(addr) {
        ep.connect_lazy()
    } else {
        let p = addr.to_path_buf();
        ep.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        }))
    };
    Ok(OperatorClient::new(channel))
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
