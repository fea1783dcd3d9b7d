//! What this eNBC serves: service instances, their users (UEs) and the
//! users' connections, plus the migrations waiting on a service's answer.
//!
//! One mutex guards it all; every critical section is short and never
//! awaits.

use crate::fdserver::ChannelConn;
use edgemob_cxtp::Fpt;
use edgemob_paas_api::v1 as pb;
use edgemob_session_migrate::FourTuple;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

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

/// A handover this eNBC (as target) accepted and awaits the CTD of.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub ue: String,
    pub ue_addr: Option<IpAddr>,
    pub peer: String,
    pub source_cell: u32,
    pub target_cell: u32,
    pub until: Instant,
    /// The UE's connections the source announced (4-tuples whose peer is
    /// the UE's address).
    pub announced: Vec<FourTuple>,
    /// Whether `announced` is in the network lock already.
    pub locked: bool,
}

impl Expectation {
    /// The tuples this expectation holds in the network lock.
    pub fn locked_tuples(&self) -> &[FourTuple] {
        if self.locked { &self.announced } else { &[] }
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    next_handle: ServiceHandle,
    pub services: HashMap<ServiceHandle, ServiceRec>,
    pub users: BTreeMap<String, UeRec>,
    pub exports: HashMap<(u64, ServiceHandle), oneshot::Sender<ExportReply>>,
    pub imports: HashMap<(u64, ServiceHandle), oneshot::Sender<ImportReply>>,
    pub expectations: HashMap<u64, Expectation>,
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

    /// Drops accepted handovers whose CTD never came.
    /// Forgets the handovers whose CTD did not come in time; returns them.
    pub fn expire_expectations(&mut self, now: Instant) -> Vec<Expectation> {
        self.take_expectations(|e| e.until <= now)
    }

    /// Removes and returns the expectations matching `f`.
    pub fn take_expectations(&mut self, f: impl Fn(&Expectation) -> bool) -> Vec<Expectation> {
        self.expectations
            .extract_if(|_, e| f(e))
            .map(|(_, e)| e)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn expectation(ue: &str, until: Instant, locked: bool) -> Expectation {
        Expectation {
            ue: ue.into(),
            ue_addr: Some("10.77.1.2".parse().unwrap()),
            peer: "10.77.2.2".into(),
            source_cell: 1,
            target_cell: 2,
            until,
            announced: vec![FourTuple {
                local: "10.77.0.1:80".parse().unwrap(),
                peer: "10.77.1.2:40000".parse().unwrap(),
            }],
            locked,
        }
    }

    #[test]
    fn expired_expectations_come_back_with_what_they_hold_locked() {
        let now = Instant::now();
        let mut reg = Registry::default();
        reg.expectations
            .insert(1, expectation("ue-a", now - Duration::from_millis(1), true));
        reg.expectations.insert(
            2,
            expectation("ue-b", now - Duration::from_millis(1), false),
        );
        reg.expectations
            .insert(3, expectation("ue-c", now + Duration::from_secs(1), true));
        let mut gone = reg.expire_expectations(now);
        gone.sort_by(|a, b| a.ue.cmp(&b.ue));
        assert_eq!(gone.len(), 2);
        assert_eq!(
            gone[0].locked_tuples().len(),
            1,
            "ue-a's lock must be undone"
        );
        assert!(gone[1].locked_tuples().is_empty(), "ue-b held no lock");
        assert_eq!(reg.expectations.keys().copied().collect::<Vec<_>>(), [3]);
        let taken = reg.take_expectations(|e| e.ue == "ue-c");
        assert_eq!(taken.len(), 1);
        assert!(reg.expectations.is_empty());
    }
}
