//! `ServiceMobility`: the paper's six calls and the event stream.

use crate::migration::table::{SourceEvent, TargetEvent};
use crate::node::Node;
use crate::registry::{Conn, ExportReply, ImportReply, UeRec};
use edgemob_cxtp::Fpt;
use edgemob_paas_api::v1 as pb;
use edgemob_paas_api::v1::service_mobility_server::ServiceMobility;
use nix::sys::socket::{SockaddrStorage, getpeername, getsockname, getsockopt, sockopt};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Largest application context a service may export.
pub const MAX_CONTEXT: usize = 16 << 20;
/// How long RegisterUser waits for a socket sent just before it.
const CLAIM_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ServiceApi(pub Arc<Node>);

fn to_sockaddr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}

/// Checks that `fd` is a connected TCP socket and returns its addresses.
fn tcp_addresses(fd: &OwnedFd) -> Result<(SocketAddr, SocketAddr), String> {
    let kind = getsockopt(fd, sockopt::SockType).map_err(|e| format!("not a socket ({e})"))?;
    if kind != nix::sys::socket::SockType::Stream {
        return Err("not a stream socket".into());
    }
    let local: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(|e| e.to_string())?;
    let peer: SockaddrStorage =
        getpeername(fd.as_raw_fd()).map_err(|_| "not connected".to_string())?;
    match (to_sockaddr(&local), to_sockaddr(&peer)) {
        (Some(l), Some(p)) => Ok((l, p)),
        _ => Err("not an IPv4 or IPv6 socket".into()),
    }
}

fn handle_err(h: u64) -> Status {
    Status::not_found(format!("no service registered with handle {h}"))
}

/// The calls a migration waits on, shared by gRPC and the service link.
impl ServiceApi {
    /// ExportContext: a service answers ExportRequested.
    pub fn export(&self, r: pb::ExportContextRequest) -> Result<(), Status> {
        tracing::trace!(migration = r.migration_id, "ExportContext");
        if r.context.len() > MAX_CONTEXT {
            return Err(Status::invalid_argument(format!(
                "context of {} octets exceeds the {MAX_CONTEXT}-octet limit",
                r.context.len()
            )));
        }
        let mut reg = self.0.reg.lock().expect("not poisoned");
        let svc = reg
            .services
            .get(&r.service_handle)
            .ok_or_else(|| handle_err(r.service_handle))?;
        let fpt = if r.fpt == 0 {
            svc.fpts[0]
        } else {
            match svc.fpts.iter().find(|f| u32::from(f.code()) == r.fpt) {
                Some(f) => *f,
                None => {
                    return Err(Status::invalid_argument(format!(
                        "FPT {:#x} was not registered by service {}",
                        r.fpt, svc.name
                    )));
                }
            }
        };
        let service = r.service_handle;
        let entry = reg
            .migrations
            .find_outgoing_mut(&r.ue, r.migration_id)
            .filter(|o| o.exporting.contains(&service))
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no export of UE {} is pending for migration {:#x} (too late?)",
                    r.ue, r.migration_id
                ))
            })?;
        entry.exporting.remove(&service);
        let _ = entry.events.send(SourceEvent::Exported {
            service,
            reply: ExportReply {
                context: r.context,
                fpt: u32::from(fpt.code()),
                error: r.error,
            },
        });
        Ok(())
    }

    /// ImportContext: a service answers ContextArrived.
    pub fn import(&self, r: pb::ImportContextRequest) -> Result<(), Status> {
        tracing::trace!(migration = r.migration_id, "ImportContext");
        let service = r.service_handle;
        let mut reg = self.0.reg.lock().expect("not poisoned");
        let entry = reg
            .migrations
            .find_incoming_mut(&r.ue, r.migration_id)
            .filter(|i| i.importing.contains(&service))
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no import of UE {} is pending for migration {:#x} (too late?)",
                    r.ue, r.migration_id
                ))
            })?;
        entry.importing.remove(&service);
        let _ = entry.events.send(TargetEvent::Imported {
            service,
            reply: ImportReply {
                success: r.success,
                error: r.error,
            },
        });
        Ok(())
    }

    /// Hands a service's event queue to its one watcher (WatchEvents or
    /// the service link).
    pub fn take_events(&self, h: u64) -> Result<mpsc::Receiver<pb::ServiceEvent>, Status> {
        let mut reg = self.0.reg.lock().expect("not poisoned");
        let s = reg.services.get_mut(&h).ok_or_else(|| handle_err(h))?;
        s.events_rx.take().ok_or_else(|| {
            Status::failed_precondition("this service's events are already being watched")
        })
    }
}

#[tonic::async_trait]
impl ServiceMobility for ServiceApi {
    async fn register_service(
        &self,
        req: Request<pb::RegisterServiceRequest>,
    ) -> Result<Response<pb::RegisterServiceResponse>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() || r.name.len() > 255 {
            return Err(Status::invalid_argument(
                "service name must be 1 to 255 octets",
            ));
        }
        if r.fpts.is_empty() {
            return Err(Status::invalid_argument(
                "register at least one FPT code for the service's contexts",
            ));
        }
        let mut fpts = Vec::with_capacity(r.fpts.len());
        for f in &r.fpts {
            let fpt = u16::try_from(*f).ok().map(Fpt);
            match fpt {
                Some(f) if f == Fpt::SERVICE_APP_CONTEXT || f.is_service() => fpts.push(f),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "FPT {f:#x} is not for services: use {:#06x} or a code in {:#06x}..={:#06x}",
                        Fpt::SERVICE_APP_CONTEXT.code(),
                        Fpt::SERVICE_FIRST,
                        Fpt::SERVICE_LAST
                    )));
                }
            }
        }
        let channel = self.0.fds.channel(r.channel_id).ok_or_else(|| {
            Status::failed_precondition(format!(
                "descriptor channel {} is not open: connect to the agent's .fds socket first",
                r.channel_id
            ))
        })?;
        let mut reg = self.0.reg.lock().expect("not poisoned");
        if let Some((h, _)) = reg.service_by_name(&r.name) {
            return Err(Status::already_exists(format!(
                "service {} is already registered on this eNBC (handle {h})",
                r.name
            )));
        }
        let handle = reg.add_service(r.name.clone(), fpts, channel);
        drop(reg);
        self.0.update_gauges();
        tracing::info!(service = %r.name, handle, "service registered");
        Ok(Response::new(pb::RegisterServiceResponse {
            service_handle: handle,
        }))
    }

    async fn deregister_service(
        &self,
        req: Request<pb::DeregisterServiceRequest>,
    ) -> Result<Response<pb::DeregisterServiceResponse>, Status> {
        let h = req.into_inner().service_handle;
        let mut reg = self.0.reg.lock().expect("not poisoned");
        if !reg.services.contains_key(&h) {
            return Err(handle_err(h));
        }
        reg.remove_service(h);
        drop(reg);
        self.0.update_gauges();
        Ok(Response::new(pb::DeregisterServiceResponse {}))
    }

    async fn register_user(
        &self,
        req: Request<pb::RegisterUserRequest>,
    ) -> Result<Response<pb::RegisterUserResponse>, Status> {
        let r = req.into_inner();
        if r.ue.is_empty() || r.ue.len() > edgemob_mih::MAX_MIHF_ID_LEN {
            return Err(Status::invalid_argument(
                "UE identity must be 1 to 253 octets",
            ));
        }
        let channel = {
            let reg = self.0.reg.lock().expect("not poisoned");
            let s = reg
                .services
                .get(&r.service_handle)
                .ok_or_else(|| handle_err(r.service_handle))?;
            Arc::clone(&s.channel)
        };
        let mut conns = Vec::with_capacity(r.connections.len());
        for c in &r.connections {
            let fd = channel.claim(c.fd_token, CLAIM_WAIT).await.ok_or_else(|| {
                Status::invalid_argument(format!(
                    "connection {}: no socket was sent under token {:#x} on the descriptor channel",
                    c.connection_id, c.fd_token
                ))
            })?;
            let (local, peer) = tcp_addresses(&fd).map_err(|e| {
                Status::invalid_argument(format!("connection {}: {e}", c.connection_id))
            })?;
            let _ = fd.as_fd();
            conns.push(Conn {
                id: c.connection_id,
                fd,
                local,
                peer,
            });
        }
        let addr: IpAddr = if r.ue_address.is_empty() {
            conns.first().map(|c| c.peer.ip()).ok_or_else(|| {
                Status::invalid_argument("give ue_address or at least one connection")
            })?
        } else {
            r.ue_address.parse().map_err(|_| {
                Status::invalid_argument(format!(
                    "ue_address {:?} is not an IP address",
                    r.ue_address
                ))
            })?
        };
        let cell = if r.cell == 0 {
            self.0.cfg.cells[0]
        } else {
            r.cell
        };
        if !self.0.cfg.serves(cell) {
            return Err(Status::invalid_argument(format!(
                "cell {cell} is not served by this eNBC"
            )));
        }
        let mut reg = self.0.reg.lock().expect("not poisoned");
        if !reg.services.contains_key(&r.service_handle) {
            return Err(handle_err(r.service_handle));
        }
        let ue = reg.users.entry(r.ue.clone()).or_insert_with(|| UeRec {
            addr,
            cell,
            services: Default::default(),
            migrating: None,
        });
        if ue.migrating.is_some() {
            return Err(Status::failed_precondition(format!(
                "UE {} is being migrated",
                r.ue
            )));
        }
        if ue.addr != addr {
            return Err(Status::invalid_argument(format!(
                "UE {} is registered with address {}, not {addr}",
                r.ue, ue.addr
            )));
        }
        ue.cell = cell;
        ue.services.insert(r.service_handle, conns);
        drop(reg);
        self.0.update_gauges();
        Ok(Response::new(pb::RegisterUserResponse {}))
    }

    async fn deregister_user(
        &self,
        req: Request<pb::DeregisterUserRequest>,
    ) -> Result<Response<pb::DeregisterUserResponse>, Status> {
        let r = req.into_inner();
        let mut reg = self.0.reg.lock().expect("not poisoned");
        let Some(ue) = reg.users.get_mut(&r.ue) else {
            return Err(Status::not_found(format!("UE {} is not registered", r.ue)));
        };
        if ue.migrating.is_some() {
            return Err(Status::failed_precondition(format!(
                "UE {} is being migrated",
                r.ue
            )));
        }
        ue.services.remove(&r.service_handle);
        if ue.services.is_empty() {
            reg.users.remove(&r.ue);
        }
        drop(reg);
        self.0.update_gauges();
        Ok(Response::new(pb::DeregisterUserResponse {}))
    }

    async fn export_context(
        &self,
        req: Request<pb::ExportContextRequest>,
    ) -> Result<Response<pb::ExportContextResponse>, Status> {
        self.export(req.into_inner())?;
        Ok(Response::new(pb::ExportContextResponse {}))
    }

    async fn import_context(
        &self,
        req: Request<pb::ImportContextRequest>,
    ) -> Result<Response<pb::ImportContextResponse>, Status> {
        self.import(req.into_inner())?;
        Ok(Response::new(pb::ImportContextResponse {}))
    }

    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<pb::ServiceEvent, Status>> + Send>>;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let rx = self.take_events(req.into_inner().service_handle)?;
        let stream =
            tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok);
        Ok(Response::new(Box::pin(stream)))
    }
}
