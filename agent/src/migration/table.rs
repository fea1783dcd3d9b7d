//! Each UE's migration state, in one table keyed by UE: the migration
//! running out of this eNBC, the one arriving, the drop rules lingering
//! after a UE left, and a path switch reported before anything arrived.
//! The tasks that run migrations own their state machines; the table holds
//! the way to reach them, so the APIs and the peers' messages find them.

use super::manifest::Manifest;
use crate::cxtp_link::Arrived;
use crate::history::Record;
use crate::registry::{ExportReply, ImportReply, ServiceHandle};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a path switch reported before its handover was accepted is kept.
pub const SWITCHED_EARLY_KEEP: Duration = Duration::from_secs(10);

/// What reaches a running outgoing migration from outside its task.
#[derive(Debug)]
pub enum SourceEvent {
    Exported {
        service: ServiceHandle,
        reply: ExportReply,
    },
    /// The service's process went away while its export was awaited.
    ServiceGone(ServiceHandle),
}

/// What reaches an incoming migration from outside its task.
#[derive(Debug)]
pub enum TargetEvent {
    /// The CTD(s), with the manifest they were routed by.
    Arrived(Arrived, Manifest),
    Imported {
        service: ServiceHandle,
        reply: ImportReply,
    },
    ServiceGone(ServiceHandle),
    PathSwitched,
    Cancelled,
    SourceAbandoned,
}

#[derive(Debug)]
pub struct OutgoingEntry {
    pub id: u64,
    pub events: mpsc::UnboundedSender<SourceEvent>,
    /// TriggerHandover callers waiting for the record.
    pub waiters: Vec<oneshot::Sender<Record>>,
    /// Services whose ExportContext is awaited.
    pub exporting: BTreeSet<ServiceHandle>,
}

#[derive(Debug)]
pub struct IncomingEntry {
    pub id: u64,
    pub peer: String,
    pub ue_addr: Option<IpAddr>,
    pub events: mpsc::UnboundedSender<TargetEvent>,
    /// Services whose ImportContext is awaited.
    pub importing: BTreeSet<ServiceHandle>,
}

/// A UE that left: its drop rules stay until the target reports the
/// handover complete (firing `ended`) or the linger ends.
#[derive(Debug)]
pub struct Departed {
    pub id: u64,
    pub ended: oneshot::Sender<()>,
}

/// One UE's migration state.
#[derive(Debug, Default)]
pub struct UeMigrations {
    pub outgoing: Option<OutgoingEntry>,
    pub incoming: Option<IncomingEntry>,
    pub departed: Option<Departed>,
    pub switched_early: Option<Instant>,
}

impl UeMigrations {
    fn is_empty(&self) -> bool {
        self.outgoing.is_none()
            && self.incoming.is_none()
            && self.departed.is_none()
            && self.switched_early.is_none()
    }
}

/// Every UE's migration state.
#[derive(Debug, Default)]
pub struct MigrationTable {
    by_ue: HashMap<String, UeMigrations>,
}

impl MigrationTable {
    pub fn get(&self, ue: &str) -> Option<&UeMigrations> {
        self.by_ue.get(ue)
    }

    pub fn entry(&mut self, ue: &str) -> &mut UeMigrations {
        self.by_ue.entry(ue.to_owned()).or_default()
    }

    /// Changes one UE's state and forgets the UE when nothing is left.
    pub fn update<R>(&mut self, ue: &str, f: impl FnOnce(&mut UeMigrations) -> R) -> Option<R> {
        let slot = self.by_ue.get_mut(ue)?;
        let r = f(slot);
        if slot.is_empty() {
            self.by_ue.remove(ue);
        }
        Some(r)
    }

    /// The outgoing migration `id` of `ue`, if it runs.
    pub fn outgoing_mut(&mut self, ue: &str, id: u64) -> Option<&mut OutgoingEntry> {
        self.by_ue
            .get_mut(ue)?
            .outgoing
            .as_mut()
            .filter(|o| o.id == id)
    }

    /// The incoming migration `id` of `ue`, if it runs.
    pub fn incoming_mut(&mut self, ue: &str, id: u64) -> Option<&mut IncomingEntry> {
        self.by_ue
            .get_mut(ue)?
            .incoming
            .as_mut()
            .filter(|i| i.id == id)
    }

    /// The outgoing migration `id`, looked up by `ue` first (a service's
    /// answer names both), else among all.
    pub fn find_outgoing_mut(&mut self, ue: &str, id: u64) -> Option<&mut OutgoingEntry> {
        if self.outgoing_mut(ue, id).is_some() {
            return self.outgoing_mut(ue, id);
        }
        self.by_ue
            .values_mut()
            .filter_map(|m| m.outgoing.as_mut())
            .find(|o| o.id == id)
    }

    /// The incoming migration `id`, looked up by `ue` first, else among all.
    pub fn find_incoming_mut(&mut self, ue: &str, id: u64) -> Option<&mut IncomingEntry> {
        if self.incoming_mut(ue, id).is_some() {
            return self.incoming_mut(ue, id);
        }
        self.by_ue
            .values_mut()
            .filter_map(|m| m.incoming.as_mut())
            .find(|i| i.id == id)
    }

    /// The incoming migration from `peer` for the UE at `addr`.
    pub fn incoming_from(&self, peer: &str, addr: IpAddr) -> Option<(&str, &IncomingEntry)> {
        self.by_ue.iter().find_map(|(ue, m)| {
            m.incoming
                .as_ref()
                .filter(|i| i.peer == peer && i.ue_addr == Some(addr))
                .map(|i| (ue.as_str(), i))
        })
    }

    /// Tells every migration waiting on `service` that it is gone.
    pub fn service_gone(&mut self, service: ServiceHandle) {
        for m in self.by_ue.values_mut() {
            if let Some(o) = &mut m.outgoing
                && o.exporting.remove(&service)
            {
                let _ = o.events.send(SourceEvent::ServiceGone(service));
            }
            if let Some(i) = &mut m.incoming
                && i.importing.remove(&service)
            {
                let _ = i.events.send(TargetEvent::ServiceGone(service));
            }
        }
    }

    /// Forgets path switches nobody claimed in time.
    pub fn expire_switched_early(&mut self, now: Instant) {
        self.by_ue.retain(|_, m| {
            if m.switched_early
                .is_some_and(|at| now.duration_since(at) >= SWITCHED_EARLY_KEEP)
            {
                m.switched_early = None;
            }
            !m.is_empty()
        });
    }

    /// How many UEs have a migration running (either direction).
    pub fn running(&self) -> usize {
        self.by_ue
            .values()
            .filter(|m| m.outgoing.is_some() || m.incoming.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ue_is_forgotten_when_nothing_of_it_is_left() {
        let mut t = MigrationTable::default();
        t.entry("ue-a").switched_early = Some(Instant::now() - SWITCHED_EARLY_KEEP);
        t.entry("ue-b").switched_early = Some(Instant::now());
        t.expire_switched_early(Instant::now());
        assert!(t.get("ue-a").is_none());
        assert!(t.get("ue-b").is_some());
        t.update("ue-b", |m| m.switched_early = None);
        assert!(t.get("ue-b").is_none());
    }

    #[test]
    fn a_service_that_goes_away_reaches_the_migrations_waiting_on_it() {
        let mut t = MigrationTable::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        t.entry("ue-a").outgoing = Some(OutgoingEntry {
            id: 7,
            events: tx,
            waiters: Vec::new(),
            exporting: [3, 4].into(),
        });
        t.service_gone(3);
        t.service_gone(9);
        assert!(matches!(rx.try_recv(), Ok(SourceEvent::ServiceGone(3))));
        assert!(rx.try_recv().is_err());
        assert_eq!(t.outgoing_mut("ue-a", 7).unwrap().exporting.len(), 1);
        assert!(t.outgoing_mut("ue-a", 8).is_none());
    }
}
