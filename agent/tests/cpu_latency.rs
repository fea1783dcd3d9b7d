//! The agent's CPU-latency request on the real device, as root (where the
//! agent runs): while held, the system-wide target the kernel reports is
//! zero.

use edgemob_agent::config::CpuLatencyMode;
use edgemob_agent::cpu_latency::{CpuLatency, DEVICE};
use prometheus_client::metrics::counter::Counter;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn the_kernel_sees_the_request_while_it_is_held() {
    edgemob_testbed::require_root();
    let dev = Path::new(DEVICE);
    let target = || {
        let b = std::fs::read(dev).unwrap();
        i32::from_ne_bytes(b[..4].try_into().unwrap())
    };
    let cpu = CpuLatency::open(
        CpuLatencyMode::Migrations,
        Duration::from_secs(60),
        dev,
        Counter::default(),
    )
    .unwrap();
    cpu.kick();
    assert!(cpu.held());
    assert_eq!(target(), 0);
}
