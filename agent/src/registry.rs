//! What this eNBC serves: service instances, their users (UEs) and the
//! users' connections, plus each UE's migration state.
//!
//! One mutex guards it all; every critical section is short and never
//! awaits.

use crate::fdserver::ChannelConn;
use crate::migration::table::MigrationTable;
use edgemob_cxtp::Fpt;
use edgemob_paas_api::v1 as pb;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::sync::mpsc;

pub type ServiceHandle = u64;

/// Events buffered for a service that is slow to read them.
pub const EVENT_BUFFER: usize = 4096;

/// One of a UE's TCP connections: the agent's duplicate of the service's
/// socket, which is what gets frozen and dumped.
#[derive(Debug)]
pub struct Conn {
    pub id: u32,
    pub fd: OwnedFd,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

#[derive(Debug)]
pub struct ServiceRec {
    pub name: String,
    pub fpts: Vec<Fpt>,
    pub channel: Arc<ChannelConn>,
    pub events: mpsc::Sender<pb::ServiceEvent>,
    /// Taken by the service's WatchEvents call.
    pub events_rx: Option<mpsc::Receiver<pb::ServiceEvent>>,
}

impl ServiceRec {
    /// Queues an event; false if the service no longer listens.
    pub fn notify(&self, ev: pb::service_event::Event) -> bool {
        self.events
            .try_send(pb::ServiceEvent { event: Some(ev) })
            .is_ok()
    }
}

#[derive(Debug)]
pub struct UeRec {
    pub addr: IpAddr,
    pub cell: u32,
    pub services: BTreeMap<ServiceHandle, Vec<Conn>>,
    /// Set while a migration of this UE runs (either direction).
    pub migrating: Option<u64>,
}

/// A service's answer to ExportRequested.
#[derive(Debug)]
pub struct ExportReply {
    /// Shares the service link's read buffer (see `edgemob_paas_api::link`).
    pub context: bytes::Bytes,
    pub fpt: u32,
    pub error: String,
}

/// A service's answer to ContextArrived.
#[derive(Debug)]
pub struct ImportReply {
    pub success: bool,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct Registry {
    next_handle: ServiceHandle,
    pub services: HashMap<ServiceHandle, ServiceRec>,
    pub users: BTreeMap<String, UeRec>,
    /// Each UE's migration state (running, lingering, switched early).
    pub migrations: MigrationTable,
}

impl Registry {
    pub fn add_service(
        &mut self,
        name: String,
        fpts: Vec<Fpt>,
        channel: Arc<ChannelConn>,
    ) -> ServiceHandle {
        self.next_handle += 1;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        self.services.insert(
            self.next_handle,
            ServiceRec {
                name,
                fpts,
                channel,
                events: tx,
                events_rx: Some(rx),
            },
        );
        self.next_handle
    }

    pub fn service_by_name(&self, name: &str) -> Option<(ServiceHandle, &ServiceRec)> {
        self.services
            .iter()
            .find(|(_, s)| s.name == name)
            .map(|(h, s)| (*h, s))
    }

    /// Removes a service and its users' connections. UEs left with no
    /// service are forgotten. Returns the connections dropped.
    pub fn remove_service(&mut self, handle: ServiceHandle) -> usize {
        if self.services.remove(&handle).is_none() {
            return 0;
        }
        let mut dropped = 0;
        self.users.retain(|_, ue| {
            if ue.migrating.is_none() {
                dropped += ue.services.remove(&handle).map_or(0, |c| c.len());
            }
            !ue.services.is_empty() || ue.migrating.is_some()
        });
        dropped
    }

    /// Services of a process whose descriptor channel closed.
    pub fn services_on_channel(&self, channel: u64) -> Vec<ServiceHandle> {
        self.services
            .iter()
            .filter(|(_, s)| s.channel.id == channel)
            .map(|(h, _)| *h)
            .collect()
    }

    pub fn connection_count(&self) -> usize {
        self.users
            .values()
            .flat_map(|u| u.services.values())
            .map(Vec::len)
            .sum()
    }
}
