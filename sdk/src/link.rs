//! The client side of the service link: events and the ExportContext /
//! ImportContext calls without HTTP/2 (see `edgemob_paas_api::link`).
//!
//! A reader task owns the socket's read half: events go to the service's
//! [`crate::Events`], results to the call that waits for them, so a service
//! may await a call from inside its event loop.

use crate::Error;
use edgemob_paas_api::link::{self, Decoder};
use edgemob_paas_api::v1::{self as pb, link_call::Call, link_frame::Frame};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<pb::LinkResult>>>>;

/// What the reader hands to [`crate::Events`].
pub(crate) type EventRx = mpsc::UnboundedReceiver<Result<pb::ServiceEvent, Error>>;

/// A service's attached link.
#[derive(Debug)]
pub(crate) struct Link {
    wr: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU32,
}

impl Link {
    /// Connects to the agent's link at `path` and attaches it to the
    /// service `handle`. `Ok(None)`: the agent offers no link there.
    pub(crate) async fn attach(path: &Path, handle: u64) -> Result<Option<(Link, EventRx)>, Error> {
        let stream = match UnixStream::connect(path).await {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(Error::Connect {
                    path: path.display().to_string(),
                    source: e,
                });
            }
        };
        let (mut rd, mut wr) = stream.into_split();
        let attach = pb::LinkFrame {
            frame: Some(Frame::Attach(pb::WatchEventsRequest {
                service_handle: handle,
            })),
        };
        wr.write_all(&link::encode(&attach)).await?;
        let mut dec = Decoder::new();
        match read_frame(&mut rd, &mut dec).await? {
            Some(Frame::Result(r)) if r.id == 0 => status(r)?,
            Some(_) => {
                return Err(Error::Protocol(
                    "the service link did not answer the attach".into(),
                ));
            }
            None => return Err(Error::LinkClosed),
        }
        let pending: Pending = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(read_loop(rd, dec, Arc::clone(&pending), tx));
        Ok(Some((
            Link {
                wr: tokio::sync::Mutex::new(wr),
                pending,
                next_id: AtomicU32::new(1),
            },
            rx,
        )))
    }

    /// Runs a call and waits for the agent to have taken it in.
    pub(crate) async fn call(&self, call: Call) -> Result<(), Error> {
        let id = loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                break id;
            }
        };
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("not poisoned").insert(id, tx);
        // An exported context is written from the service's own buffer,
        // not copied into the frame.
        let parts = link::encode_parts(pb::LinkFrame {
            frame: Some(Frame::Call(pb::LinkCall {
                id,
                call: Some(call),
            })),
        });
        let written = link::write_parts(&mut *self.wr.lock().await, &parts).await;
        if let Err(e) = written {
            self.pending.lock().expect("not poisoned").remove(&id);
            return Err(e.into());
        }
        status(rx.await.map_err(|_| Error::LinkClosed)?)
    }
}

fn status(r: pb::LinkResult) -> Result<(), Error> {
    if r.code == 0 {
        Ok(())
    } else {
        Err(Error::Rpc(tonic::Status::new(r.code.into(), r.message)))
    }
}

async fn read_frame(rd: &mut OwnedReadHalf, dec: &mut Decoder) -> Result<Option<Frame>, Error> {
    loop {
        match dec.next_frame() {
            Ok(Some(pb::LinkFrame { frame: Some(f) })) => return Ok(Some(f)),
            // A kind this SDK does not know yet.
            Ok(Some(pb::LinkFrame { frame: None })) => continue,
            Ok(None) => {}
            Err(e) => return Err(Error::Protocol(e.to_string())),
        }
        // Straight into the decoder's buffer: frames are cut out of it.
        if rd.read_buf(dec.read_buf()).await? == 0 {
            return Ok(None);
        }
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    mut dec: Decoder,
    pending: Pending,
    events: mpsc::UnboundedSender<Result<pb::ServiceEvent, Error>>,
) {
    loop {
        match read_frame(&mut rd, &mut dec).await {
            Ok(Some(Frame::Event(ev))) => {
                tracing::trace!("event received");
                let _ = events.send(Ok(ev));
            }
            Ok(Some(Frame::Result(r))) => {
                if let Some(tx) = pending.lock().expect("not poisoned").remove(&r.id) {
                    let _ = tx.send(r);
                }
            }
            Ok(Some(_)) => {
                let _ = events.send(Err(Error::Protocol(
                    "unexpected frame on the service link".into(),
                )));
                break;
            }
            Ok(None) => break,
            Err(e) => {
                let _ = events.send(Err(e));
                break;
            }
        }
    }
    // Calls still waiting learn that the link is gone.
    pending.lock().expect("not poisoned").clear();
}
