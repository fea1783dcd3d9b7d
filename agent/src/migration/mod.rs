//! The migration signalling flow of the paper's Fig. 7, on both sides.

pub mod manifest;
pub mod source;
pub mod target;

use crate::node::Node;
use edgemob_paas_api::v1 as pb;

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

pub(crate) fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
