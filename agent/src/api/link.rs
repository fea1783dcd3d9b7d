//! The service link: a service's events and its ExportContext /
//! ImportContext calls as length-prefixed protobuf frames on a Unix stream
//! socket (`paas.proto` explains why and the framing), beside gRPC.
//!
//! One connection per service instance: the first frame attaches it to
//! its handle, then a writer task sends events and call results while this
//! task reads calls and runs them exactly as the gRPC handlers do.

use super::service::ServiceApi;
use edgemob_paas_api::link::{self, Decoder};
use edgemob_paas_api::v1::{self as pb, link_call::Call, link_frame::Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tonic::Status;

/// Accepts service links forever.
pub async fn serve_link(api: ServiceApi, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_one(api.clone(), stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a service link");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Reads frames until one is complete; `None` at the end of the stream or
/// when the stream is out of step (then counted).
async fn read_frame(api: &ServiceApi, rd: &mut OwnedReadHalf, dec: &mut Decoder) -> Option<Frame> {
    loop {
        match dec.next_frame() {
            Ok(Some(pb::LinkFrame { frame: Some(f) })) => return Some(f),
            // A kind this agent does not know yet.
            Ok(Some(pb::LinkFrame { frame: None })) => continue,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "service link out of step; closing it");
                api.0.metrics.dropped("service_link", "malformed");
                return None;
            }
        }
        // Straight into the decoder's buffer: an exported context is cut
        // out of it and travels on to the CTD without a copy.
        match rd.read_buf(dec.read_buf()).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn result(id: u32, r: Result<(), Status>) -> Vec<u8> {
    let (code, message) = match r {
        Ok(()) => (0, String::new()),
        Err(s) => (s.code() as i32, s.message().to_owned()),
    };
    link::encode(&pb::LinkFrame {
        frame: Some(Frame::Result(pb::LinkResult { id, code, message })),
    })
}

async fn serve_one(api: ServiceApi, stream: UnixStream) {
    let (mut rd, mut wr) = stream.into_split();
    let mut dec = Decoder::new();
    let handle = match read_frame(&api, &mut rd, &mut dec).await {
        Some(Frame::Attach(a)) => a.service_handle,
        Some(_) => {
            api.0.metrics.dropped("service_link", "not_attached");
            let _ = wr
                .write_all(&result(
                    0,
                    Err(Status::failed_precondition(
                        "attach the service link to a service handle first",
                    )),
                ))
                .await;
            return;
        }
        None => return,
    };
    let events = match api.take_events(handle) {
        Ok(rx) => rx,
        Err(s) => {
            let _ = wr.write_all(&result(0, Err(s))).await;
            return;
        }
    };
    if wr.write_all(&result(0, Ok(()))).await.is_err() {
        return;
    }
    tracing::debug!(handle, "service link attached");
    let (results_tx, results_rx) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(wr, events, results_rx));
    while let Some(frame) = read_frame(&api, &mut rd, &mut dec).await {
        let Frame::Call(call) = frame else {
            api.0.metrics.dropped("service_link", "unexpected_frame");
            continue;
        };
        let outcome = match call.call {
            Some(Call::ExportContext(r)) => api.export(r),
            Some(Call::ImportContext(r)) => api.import(r),
            None => Err(Status::unimplemented(
                "this agent does not know that service-link call",
            )),
        };
        // What the call unblocked goes first: after an ImportContext the
        // migration sends its CTDR, after an ExportContext it freezes the
        // sockets. Answered before, the service would wake (on this CPU,
        // often) ahead of them, and it has nothing urgent to do.
        tokio::task::yield_now().await;
        if results_tx.send(result(call.id, outcome)).is_err() {
            break;
        }
    }
    tracing::debug!(handle, "service link closed");
}

/// Sends call results and the service's events, in order, until either
/// side is done.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut events: mpsc::Receiver<pb::ServiceEvent>,
    mut results: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    loop {
        let parts = tokio::select! {
            biased;
            r = results.recv() => match r {
                Some(b) => link::Parts { head: b, tail: Default::default() },
                None => return,
            },
            // An arrived context is written from the CTD's memory, not
            // copied into the frame.
            e = events.recv() => match e {
                Some(ev) => link::encode_parts(pb::LinkFrame { frame: Some(Frame::Event(ev)) }),
                // The service was deregistered.
                None => return,
            },
        };
        if link::write_parts(&mut wr, &parts).await.is_err() {
            return;
        }
        tracing::trace!(
            octets = parts.head.len() + parts.tail.len(),
            "service link frame written"
        );
    }
}
