//! Serving the APIs: both gRPC services on the agent's Unix socket, the
//! Operator service on TCP when configured, and Prometheus metrics.

mod link;
mod operator;
mod service;

pub use link::serve_link;
pub use operator::OperatorApi;
pub use service::{MAX_CONTEXT, ServiceApi};

use crate::node::Node;
use edgemob_paas_api::v1::operator_server::OperatorServer;
use edgemob_paas_api::v1::service_mobility_server::ServiceMobilityServer;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

/// gRPC message size limit: a 16 MiB context plus framing.
pub const MAX_MESSAGE: usize = MAX_CONTEXT + (1 << 20);

/// HTTP/2 flow-control windows. The defaults (64 KiB) make every context
/// larger than that wait a round trip for a WINDOW_UPDATE on the hot path.
pub const STREAM_WINDOW: u32 = 16 << 20;
pub const CONNECTION_WINDOW: u32 = 64 << 20;

/// Largest HTTP/2 frame accepted, so a context arrives in one frame rather
/// than as 16 KiB pieces.
pub const MAX_FRAME: u32 = 1 << 20;

fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .max_frame_size(Some(MAX_FRAME))
}

pub async fn serve_unix(node: Arc<Node>, listener: UnixListener) {
    let svc = ServiceMobilityServer::new(ServiceApi(Arc::clone(&node)))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let op = OperatorServer::new(OperatorApi(node));
    if let Err(e) = server()
        .add_service(svc)
        .add_service(op)
        .serve_with_incoming(UnixListenerStream::new(listener))
        .await
    {
        tracing::error!(error = %e, "API server stopped");
    }
}

pub async fn serve_operator_tcp(node: Arc<Node>, listener: TcpListener) {
    if let Err(e) = server()
        .add_service(OperatorServer::new(OperatorApi(node)))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await
    {
        tracing::error!(error = %e, "operator API server stopped");
    }
}

pub async fn serve_metrics(node: Arc<Node>, listener: TcpListener) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let node = Arc::clone(&node);
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    node.metrics.encode(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}
