//! The migration signalling flow of the paper's Fig. 7, on both sides.
//!
//! The flow is two sans-IO state machines, [`OutgoingMigration`] (source)
//! and [`IncomingMigration`] (target), fed observations and a clock and
//! returning actions, as `quinn-proto` sits under `quinn`. The tokio tasks
//! in [`source`] and [`target`] only carry actions out and feed results
//! back; [`table::MigrationTable`] holds each UE's migration state. The
//! machines are tested in memory, wired to each other, in `pair_tests`.

mod admission;
pub mod error;
mod frozen;
pub mod incoming;
pub mod manifest;
pub mod outgoing;
pub mod source;
pub mod table;
pub mod target;

#[cfg(test)]
mod pair_tests;

pub use error::{MigrationError, Side};
pub use incoming::{Arrival, InAction, InInput, InState, IncomingConfig, IncomingMigration};
pub use outgoing::{OutAction, OutInput, OutState, OutgoingConfig, OutgoingMigration};

use crate::history::{Outcome, Phases};
use crate::node::Node;
use edgemob_paas_api::v1 as pb;

/// What the services of a migration are told when it ends (the SDK's
/// MigrationCompleted / MigrationRolledBack / MigrationFailed events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Completed,
    /// The source keeps serving the UE; its services resume it.
    RolledBack(String),
    /// The migration did not happen (or, on the target, was given up).
    Failed(String),
}

/// How a migration ended, for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    pub error: Option<MigrationError>,
    pub phases: Phases,
    pub connections: u32,
}

impl Notice {
    /// The SDK event for this notice.
    pub fn event(&self, migration_id: u64, ue: &str, side: Side) -> pb::service_event::Event {
        use pb::service_event::Event as Ev;
        let direction = match side {
            Side::Source => pb::Direction::Out,
            Side::Target => pb::Direction::In,
        } as i32;
        match self {
            Notice::Completed => Ev::Completed(pb::MigrationCompleted {
                migration_id,
                ue: ue.to_owned(),
                direction,
            }),
            Notice::RolledBack(reason) => Ev::RolledBack(pb::MigrationRolledBack {
                migration_id,
                ue: ue.to_owned(),
                reason: reason.clone(),
            }),
            Notice::Failed(reason) => Ev::Failed(pb::MigrationFailed {
                migration_id,
                ue: ue.to_owned(),
                reason: reason.clone(),
                direction,
            }),
        }
    }
}

/// Sends an event to every service in `handles` that is still registered.
pub(crate) fn notify_services(
    node: &Node,
    handles: &[u64],
    ev: impl Fn() -> pb::service_event::Event,
) {
    let reg = node.reg.lock().expect("not poisoned");
    for h in handles {
        if let Some(s) = reg.services.get(h)
            && !s.notify(ev())
        {
            tracing::warn!(service = %s.name, "service is not reading its events");
        }
    }
}
