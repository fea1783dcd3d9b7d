//! # edgemob-sdk — write a service that follows its users
//!
//! A service instance runs on every eNodeB-Cloud (eNBC). It registers with
//! the local edgemob agent, registers each user (UE) with the TCP
//! connection(s) it serves it on, and reacts to events: when a UE is handed
//! over, the agent asks for its context, freezes its connections and moves
//! both to the eNBC of the new cell, where the same service receives the
//! context and the live, restored connections.
//!
//! Services run unprivileged. Sockets travel to and from the agent over its
//! descriptor channel (`SCM_RIGHTS`); only the agent touches `TCP_REPAIR`.
//!
//! ```no_run
//! use edgemob_sdk::{Agent, Event, SERVICE_CONTEXT};
//!
//! # async fn run(listener: tokio::net::TcpListener) -> Result<(), edgemob_sdk::Error> {
//! let agent = Agent::connect("/run/edgemob/enbc1.sock").await?;
//! let service = agent.register_service("echo", &[SERVICE_CONTEXT]).await?;
//! let mut events = service.events().await?;
//!
//! // A user connects: serve it, and tell the agent which socket is theirs.
//! let (stream, peer) = listener.accept().await?;
//! let ue = format!("ue-{}", peer.ip());
//! service.register_user(&ue, &[(0, &stream)]).await?;
//!
//! while let Some(event) = events.next().await {
//!     match event? {
//!         // Handover: stop using the UE's sockets and hand over its state.
//!         Event::ExportRequested(request) => {
//!             let context = b"offset=4096".to_vec();
//!             request.export(context).await?;
//!         }
//!         // A UE arrived: its state and its connections, already live.
//!         Event::ContextArrived(arrival) => {
//!             let (context, connections) = arrival.take().await?;
//!             println!("{} resumes with {} bytes of context", context.ue, context.data.len());
//!             # let _ = connections;
//!         }
//!         // Moved away: the sockets were dropped silently; forget the UE.
//!         Event::Completed { ue, .. } => println!("{ue} left"),
//!         // Rolled back: keep serving the UE exactly where it stopped.
//!         Event::RolledBack { ue, reason, .. } => println!("{ue} stays: {reason}"),
//!         Event::Failed { .. } => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod error;
mod fds;
mod link;

pub use bytes::Bytes;
pub use edgemob_paas_api::v1 as proto;
pub use error::Error;

use edgemob_paas_api::descriptor_channel_path;
use edgemob_paas_api::v1::service_mobility_client::ServiceMobilityClient;
use edgemob_paas_api::v1::{self as pb, service_event};
use fds::FdChannel;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Feature Profile Type codes (RFC 4067) that tag contexts: use
/// [`SERVICE_CONTEXT`], or a code of your own from [`Fpt::service`].
pub use edgemob_cxtp::Fpt;

/// edgemob's Feature Profile Type for a service's application context.
pub const SERVICE_CONTEXT: Fpt = Fpt::SERVICE_APP_CONTEXT;

/// gRPC message limit: a 16 MiB context plus framing.
const MAX_MESSAGE: usize = 17 << 20;

/// How long to wait for an announced socket. The agent hands it over once
/// the UE's path reaches this eNBC (its `CompleteHandover`, or the agent's
/// activation timer) or revokes it, and a closed channel ends the wait too:
/// the agent decides. This bound only guards against an agent that never
/// answers; a short one would abandon live connections whose handover
/// completes late (a burst of many UEs), leaving them open and unserved.
const SOCKET_WAIT: Duration = Duration::from_secs(600);

/// The allocator setting for a service's process: call it first thing in
/// `main` (the agent runs with the same).
pub use edgemob_paas_api::memory::{HEAP_RESERVE, keep_freed_memory};

/// A connection to the local edgemob agent.
#[derive(Debug, Clone)]
pub struct Agent {
    client: ServiceMobilityClient<Channel>,
    fds: Arc<FdChannel>,
    path: PathBuf,
}

impl Agent {
    /// Connects to the agent's API socket (and its descriptor channel).
    pub async fn connect(api_socket: impl AsRef<Path>) -> Result<Agent, Error> {
        let path = api_socket.as_ref().to_path_buf();
        let channel = unix_channel(&path).await?;
        let fds = FdChannel::open(&descriptor_channel_path(&path)).await?;
        Ok(Agent {
            client: ServiceMobilityClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            fds,
            path,
        })
    }

    /// The API socket this agent was reached on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Registers a service instance under `name` (the same on every eNBC),
    /// exporting contexts with the given FPT codes.
    pub async fn register_service(&self, name: &str, fpts: &[Fpt]) -> Result<Service, Error> {
        let resp = self
            .client
            .clone()
            .register_service(pb::RegisterServiceRequest {
                name: name.to_owned(),
                fpts: fpts.iter().map(|f| u32::from(f.code())).collect(),
                channel_id: self.fds.id,
            })
            .await?
            .into_inner();
        Ok(Service {
            agent: self.clone(),
            handle: resp.service_handle,
            name: name.to_owned(),
            link: None,
        })
    }
}

/// A client of an agent's Operator service. `agent` is the path of its API
/// socket (optionally prefixed `unix:`), or `http://host:port` when the
/// agent serves the Operator service on TCP too.
pub async fn operator_client(
    agent: &str,
) -> Result<proto::operator_client::OperatorClient<Channel>, Error> {
    edgemob_paas_api::client::operator_client(agent)
        .await
        .map_err(|e| Error::Connect {
            path: agent.strip_prefix("unix:").unwrap_or(agent).to_owned(),
            source: std::io::Error::other(e),
        })
}

/// Opens a gRPC channel over a Unix socket.
pub async fn unix_channel(path: &Path) -> Result<Channel, Error> {
    edgemob_paas_api::client::unix_channel(path)
        .await
        .map_err(|e| Error::Connect {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })
}

/// A registered service instance.
#[derive(Debug, Clone)]
pub struct Service {
    agent: Agent,
    handle: u64,
    name: String,
    /// Set on the copies that [`Events`] hands out when it runs over the
    /// service link: their answers take the link too.
    link: Option<Arc<link::Link>>,
}

impl Service {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn client(&self) -> ServiceMobilityClient<Channel> {
        self.agent.client.clone()
    }

    /// Declares that this service serves `ue` over `connections`
    /// (`(connection id, socket)` pairs). The sockets are handed to the
    /// agent, which keeps a duplicate so it can move them; the service keeps
    /// using its own.
    pub async fn register_user<S: AsFd>(
        &self,
        ue: &str,
        connections: &[(u32, &S)],
    ) -> Result<(), Error> {
        let mut conns = Vec::with_capacity(connections.len());
        for (id, sock) in connections {
            let token = rand::random::<u64>();
            self.agent.fds.put(token, sock.as_fd()).await?;
            conns.push(pb::Connection {
                connection_id: *id,
                fd_token: token,
            });
        }
        self.client()
            .register_user(pb::RegisterUserRequest {
                service_handle: self.handle,
                ue: ue.to_owned(),
                ue_address: String::new(),
                cell: 0,
                connections: conns,
            })
            .await?;
        Ok(())
    }

    /// This service no longer serves `ue`.
    pub async fn deregister_user(&self, ue: &str) -> Result<(), Error> {
        self.client()
            .deregister_user(pb::DeregisterUserRequest {
                service_handle: self.handle,
                ue: ue.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Removes this service instance (and its users) from the agent.
    pub async fn deregister(self) -> Result<(), Error> {
        self.client()
            .deregister_service(pb::DeregisterServiceRequest {
                service_handle: self.handle,
            })
            .await?;
        Ok(())
    }

    /// The service's events, in order. They come over the agent's service
    /// link, and the answers to them ([`ExportRequest::export`],
    /// [`Arrival::take`]) go back the same way: the fastest path, without
    /// HTTP/2. An agent without a link gets the gRPC `WatchEvents` stream.
    pub async fn events(&self) -> Result<Events, Error> {
        let path = edgemob_paas_api::link_path(&self.agent.path);
        match link::Link::attach(&path, self.handle).await? {
            Some((link, rx)) => Ok(Events {
                service: Service {
                    link: Some(Arc::new(link)),
                    ..self.clone()
                },
                source: Source::Link(rx),
            }),
            None => self.events_over_grpc().await,
        }
    }

    /// The service's events over the gRPC `WatchEvents` stream, answered
    /// with gRPC calls: for comparison with [`Service::events`], or where
    /// the service link is not wanted.
    pub async fn events_over_grpc(&self) -> Result<Events, Error> {
        let stream = self
            .client()
            .watch_events(pb::WatchEventsRequest {
                service_handle: self.handle,
            })
            .await?
            .into_inner();
        Ok(Events {
            service: Service {
                link: None,
                ..self.clone()
            },
            source: Source::Grpc(Box::new(stream)),
        })
    }
}

#[derive(Debug)]
enum Source {
    Grpc(Box<tonic::Streaming<pb::ServiceEvent>>),
    Link(link::EventRx),
}

/// The stream of a service's events.
#[derive(Debug)]
pub struct Events {
    service: Service,
    source: Source,
}

impl Events {
    /// The next event; `None` when the agent closed the stream.
    pub async fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            let ev = match &mut self.source {
                Source::Grpc(stream) => match stream.message().await {
                    Ok(Some(ev)) => {
                        tracing::trace!("event received");
                        ev
                    }
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e.into())),
                },
                Source::Link(rx) => match rx.recv().await? {
                    Ok(ev) => ev,
                    Err(e) => return Some(Err(e)),
                },
            };
            let s = self.service.clone();
            // An event kind this SDK does not know yet: skip it.
            let Some(event) = ev.event else { continue };
            return Some(Ok(match event {
                service_event::Event::ExportRequested(e) => Event::ExportRequested(ExportRequest {
                    service: s,
                    migration_id: e.migration_id,
                    ue: e.ue,
                    target_cell: e.target_cell,
                }),
                service_event::Event::ContextArrived(e) => Event::ContextArrived(Arrival {
                    service: s,
                    event: e,
                }),
                service_event::Event::Completed(e) => Event::Completed {
                    migration_id: e.migration_id,
                    ue: e.ue,
                    outgoing: e.direction == pb::Direction::Out as i32,
                },
                service_event::Event::RolledBack(e) => Event::RolledBack {
                    migration_id: e.migration_id,
                    ue: e.ue,
                    reason: e.reason,
                },
                service_event::Event::Failed(e) => Event::Failed {
                    migration_id: e.migration_id,
                    ue: e.ue,
                    reason: e.reason,
                },
            }));
        }
    }
}

/// What the agent tells a service.
#[derive(Debug)]
pub enum Event {
    /// A UE is being handed over: stop using its sockets, then
    /// [`ExportRequest::export`] its context.
    ExportRequested(ExportRequest),
    /// A UE arrived with its context and live connections.
    ContextArrived(Arrival),
    /// A migration finished. `outgoing`: the UE left (drop its sockets, which
    /// were already frozen and are closed silently); otherwise it arrived.
    Completed {
        migration_id: u64,
        ue: String,
        outgoing: bool,
    },
    /// A migration failed after export: resume serving the UE.
    RolledBack {
        migration_id: u64,
        ue: String,
        reason: String,
    },
    /// A migration failed before anything was frozen; nothing changed.
    Failed {
        migration_id: u64,
        ue: String,
        reason: String,
    },
}

/// The agent asks for a UE's context.
#[derive(Debug)]
pub struct ExportRequest {
    service: Service,
    pub migration_id: u64,
    pub ue: String,
    pub target_cell: u32,
}

impl ExportRequest {
    /// Hands over the UE's application context (FPT: the first one the
    /// service registered). A `Vec<u8>` becomes [`Bytes`] without a copy.
    pub async fn export(self, context: impl Into<Bytes>) -> Result<(), Error> {
        self.send(context.into(), 0, String::new()).await
    }

    /// Hands over a context tagged with a specific FPT code.
    pub async fn export_as(self, fpt: Fpt, context: impl Into<Bytes>) -> Result<(), Error> {
        self.send(context.into(), u32::from(fpt.code()), String::new())
            .await
    }

    /// The service cannot export this UE now; the migration is rolled back.
    pub async fn refuse(self, reason: &str) -> Result<(), Error> {
        self.send(Bytes::new(), 0, reason.to_owned()).await
    }

    async fn send(self, context: Bytes, fpt: u32, error: String) -> Result<(), Error> {
        tracing::trace!(migration = self.migration_id, "ExportContext call");
        let req = pb::ExportContextRequest {
            service_handle: self.service.handle,
            migration_id: self.migration_id,
            ue: self.ue,
            context,
            fpt,
            error,
        };
        match &self.service.link {
            Some(link) => link.call(pb::link_call::Call::ExportContext(req)).await,
            None => {
                self.service.client().export_context(req).await?;
                Ok(())
            }
        }
    }
}

/// A UE's context as it arrived.
#[derive(Debug, Clone)]
pub struct ArrivedContext {
    pub migration_id: u64,
    pub ue: String,
    pub ue_address: String,
    pub source_cell: u32,
    pub fpt: Fpt,
    /// The context's octets, as they came off the agent's link (no copy).
    pub data: Bytes,
}

/// A UE is arriving: its context now, its connections once the handover
/// completes.
#[derive(Debug)]
pub struct Arrival {
    service: Service,
    event: pb::ContextArrived,
}

impl Arrival {
    pub fn ue(&self) -> &str {
        &self.event.ue
    }

    pub fn migration_id(&self) -> u64 {
        self.event.migration_id
    }

    /// The UE's application context, to check before accepting.
    pub fn context(&self) -> &[u8] {
        &self.event.context
    }

    /// Accepts the UE (acknowledging the import) and waits for its
    /// connections, which the agent hands over live when the UE's radio
    /// path reaches this eNBC. From then on the service owns the UE. If the
    /// migration is cancelled first, returns [`Error::Cancelled`] and the
    /// UE stays with the source.
    pub async fn take(self) -> Result<(ArrivedContext, Vec<(u32, tokio::net::TcpStream)>), Error> {
        self.ack(true, "").await?;
        let mut conns = Vec::with_capacity(self.event.connections.len());
        for c in &self.event.connections {
            let fd = match self.service.agent.fds.take(c.fd_token, SOCKET_WAIT).await {
                Ok(fd) => fd,
                Err(fds::NoSocket::Revoked) => {
                    return Err(Error::Cancelled {
                        ue: self.event.ue.clone(),
                    });
                }
                Err(fds::NoSocket::TimedOut | fds::NoSocket::ChannelClosed) => {
                    return Err(Error::MissingSocket {
                        ue: self.event.ue.clone(),
                        token: c.fd_token,
                    });
                }
            };
            let std = std::net::TcpStream::from(fd);
            std.set_nonblocking(true)?;
            conns.push((c.connection_id, tokio::net::TcpStream::from_std(std)?));
        }
        let e = self.event;
        Ok((
            ArrivedContext {
                migration_id: e.migration_id,
                ue: e.ue,
                ue_address: e.ue_address,
                source_cell: e.source_cell,
                fpt: Fpt(e.fpt as u16),
                data: e.context,
            },
            conns,
        ))
    }

    /// Refuses the arrival (the migration rolls back to the source).
    pub async fn refuse(self, reason: &str) -> Result<(), Error> {
        self.ack(false, reason).await
    }

    async fn ack(&self, success: bool, error: &str) -> Result<(), Error> {
        tracing::trace!(migration = self.event.migration_id, "ImportContext call");
        let req = pb::ImportContextRequest {
            service_handle: self.service.handle,
            migration_id: self.event.migration_id,
            ue: self.event.ue.clone(),
            success,
            error: error.to_owned(),
        };
        match &self.service.link {
            Some(link) => link.call(pb::link_call::Call::ImportContext(req)).await,
            None => {
                self.service.client().import_context(req).await?;
                Ok(())
            }
        }
    }
}
