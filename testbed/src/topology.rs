//! The four-namespace topology of ARCHITECTURE.md: `ue` — `sw` — {`enbc1`, `enbc2`},
//! both eNBCs owning the same service address, `sw` routing it to one of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::capture::Capture;
use crate::error::{Result, TestbedError};
use crate::netns;
use crate::route::{HostRoute, RouteSocket};

/// A host of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// The user's host; runs the unmodified client.
    Ue,
    /// The switching point standing in for the radio/GRE path.
    Sw,
    /// The eNodeB-Cloud serving first.
    Enbc1,
    /// The eNodeB-Cloud the user is handed over to.
    Enbc2,
}

impl Node {
    /// All nodes, in creation order.
    pub const ALL: [Node; 4] = [Node::Ue, Node::Sw, Node::Enbc1, Node::Enbc2];

    /// Short name, used as the namespace suffix.
    pub fn name(self) -> &'static str {
        match self {
            Node::Ue => "ue",
            Node::Sw => "sw",
            Node::Enbc1 => "enbc1",
            Node::Enbc2 => "enbc2",
        }
    }

    /// Link number of the node's veth towards `sw` (also the third octet of its subnet).
    fn link(self) -> u8 {
        match self {
            Node::Ue => 1,
            Node::Enbc1 => 2,
            Node::Enbc2 => 3,
            Node::Sw => 0,
        }
    }
}

/// IP version of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// The service address both eNBCs own (on `lo`).
pub const SERVICE_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The IPv6 service address both eNBCs own (on `lo`).
pub const SERVICE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 1);
/// Name of every non-`sw` node's interface towards `sw`.
pub const UPLINK: &str = "eth0";

/// Options of a testbed.
#[derive(Debug, Clone)]
pub struct TestbedOptions {
    /// The eNBC that serves the service address at the start.
    pub serving: Node,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        Self {
            serving: Node::Enbc1,
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A built topology; dropping it kills every process inside and removes the namespaces.
#[derive(Debug)]
pub struct Testbed {
    prefix: String,
    created: Vec<Node>,
    switch: Mutex<Option<Switch>>,
    captures: AtomicU32,
}

#[derive(Debug)]
struct Switch {
    socket: RouteSocket,
    /// Prebuilt routes per eNBC (IPv4 and IPv6 host routes of the service address).
    to_enbc1: [HostRoute; 2],
    to_enbc2: [HostRoute; 2],
}

impl Testbed {
    /// Builds the topology. Needs root; call [`cleanup_stale`] first to remove
    /// leftovers of killed runs (done here too).
    pub fn new(opts: TestbedOptions) -> Result<Testbed> {
        if !netns::is_root() {
            return Err(TestbedError::NotRoot);
        }
        cleanup_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tb = Testbed {
            prefix: format!("em{}x{}-", std::process::id(), n),
            created: Vec::new(),
            switch: Mutex::new(None),
            captures: AtomicU32::new(0),
        };
        tb.build(opts)?;
        Ok(tb)
    }

    /// The namespace name of a node (for `ip netns exec`).
    pub fn ns(&self, node: Node) -> String {
        format!("{}{}", self.prefix, node.name())
    }

    /// Address of a node on its link to `sw` (for `sw` itself: its side of the UE link).
    pub fn addr(&self, node: Node, family: Family) -> IpAddr {
        match (node, family) {
            (Node::Sw, f) => link_addr(Node::Ue, f, 1),
            (n, f) => link_addr(n, f, 2),
        }
    }

    /// The service address (the same on both eNBCs).
    pub fn service_addr(&self, family: Family) -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(SERVICE_V4),
            Family::V6 => IpAddr::V6(SERVICE_V6),
        }
    }

    /// Runs a program inside a node's namespace.
    pub fn spawn(&self, node: Node, mut cmd: Command) -> Result<Child> {
        netns::command_in(&self.ns(node), &mut cmd)?;
        cmd.spawn().map_err(|e| TestbedError::Command {
            command: format!("{cmd:?}"),
            detail: e.to_string(),
        })
    }

    /// Runs `f` on a thread that has entered the node's network namespace;
    /// sockets it creates stay in that namespace after it returns. A panic in
    /// `f` is propagated.
    pub fn enter<T, F>(&self, node: Node, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let file = netns::open(&self.ns(node))?;
        std::thread::scope(|s| {
            let handle = s.spawn(|| {
                netns::setns_net(std::os::fd::AsFd::as_fd(&file))
                    .map_err(TestbedError::sys("setns(CLONE_NEWNET)"))?;
                Ok(f())
            });
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Sets a sysctl (e.g. `net.ipv4.tcp_timestamps`) inside a node's namespace.
    pub fn sysctl(&self, node: Node, key: &str, value: &str) -> Result<()> {
        self.enter(node, || netns::write_sysctl(key, value))?
    }

    /// Re-routes the service address at `sw` to `to` (`Enbc1` or `Enbc2`)
    /// with one rtnetlink round trip.
    pub fn switch_to(&self, to: Node) -> Result<()> {
        let mut guard = self.switch.lock().unwrap_or_else(|p| p.into_inner());
        let switch = guard.as_mut().expect("switch is set up by build()");
        let routes = match to {
            Node::Enbc1 => switch.to_enbc1,
            Node::Enbc2 => switch.to_enbc2,
            other => panic!("switch_to({other:?}): only Enbc1 and Enbc2 serve the service address"),
        };
        switch.socket.replace(&routes)
    }

    /// Starts a tcpdump capture on `iface` inside `node` with a pcap filter
    /// (e.g. `"tcp port 80"`), returning once it listens.
    pub fn capture(&self, node: Node, iface: &str, filter: &str) -> Result<Capture> {
        let n = self.captures.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{}{}-{}.pcap", self.prefix, node.name(), n));
        Capture::start(&self.ns(node), iface, filter, path)
    }

    fn build(&mut self, opts: TestbedOptions) -> Result<()> {
        for node in Node::ALL {
            netns::create(&self.ns(node))?;
            self.created.push(node);
            self.enter(node, || -> Result<()> {
                for (key, value) in [
                    ("net.ipv6.conf.all.accept_dad", "0"),
                    ("net.ipv6.conf.default.accept_dad", "0"),
                    ("net.ipv4.conf.all.rp_filter", "0"),
                    ("net.ipv4.conf.default.rp_filter", "0"),
                ] {
                    netns::write_sysctl(key, value)?;
                }
                if node == Node::Sw {
                    netns::write_sysctl("net.ipv4.ip_forward", "1")?;
                    netns::write_sysctl("net.ipv6.conf.default.forwarding", "1")?;
                    netns::write_sysctl("net.ipv6.conf.all.forwarding", "1")?;
                }
                Ok(())
            })??;
        }
        netns::ip(
            &["-n", &self.ns(Node::Sw), "-batch", "-"],
            Some(&self.sw_batch(opts.serving)),
        )?;
        for node in [Node::Ue, Node::Enbc1, Node::Enbc2] {
            netns::ip(
                &["-n", &self.ns(node), "-batch", "-"],
                Some(&self.leaf_batch(node)),
            )?;
        }
        let switch = self.enter(Node::Sw, || -> Result<Switch> {
            let socket = RouteSocket::open()?;
            let route = |node: Node| -> Result<[HostRoute; 2]> {
                let oif = netns::ifindex(&sw_iface(node))?;
                Ok([
                    HostRoute {
                        dst: IpAddr::V4(SERVICE_V4),
                        gateway: link_addr(node, Family::V4, 2),
                        oif,
                    },
                    HostRoute {
                        dst: IpAddr::V6(SERVICE_V6),
                        gateway: link_addr(node, Family::V6, 2),
                        oif,
                    },
                ])
            };
            Ok(Switch {
                socket,
                to_enbc1: route(Node::Enbc1)?,
                to_enbc2: route(Node::Enbc2)?,
            })
        })??;
        *self.switch.lock().unwrap_or_else(|p| p.into_inner()) = Some(switch);
        Ok(())
    }

    /// `ip -batch` commands for `sw`: veths to every node (peers created straight
    /// in their namespace), addresses, permanent neighbours, the service route.
    fn sw_batch(&self, serving: Node) -> String {
        let mut b = String::from("link set lo up\n");
        for node in [Node::Ue, Node::Enbc1, Node::Enbc2] {
            let sw_if = sw_iface(node);
            let peer_ns = self.ns(node);
            b += &format!(
                "link add {sw_if} address {} type veth peer name {UPLINK} address {} netns {peer_ns}\n",
                mac(node, 1),
                mac(node, 2)
            );
            b += &format!("link set {sw_if} up\n");
            b += &format!(
                "addr add {}/24 dev {sw_if}\n",
                link_addr(node, Family::V4, 1)
            );
            b += &format!(
                "addr add {}/64 dev {sw_if} nodad\n",
                link_addr(node, Family::V6, 1)
            );
            for f in [Family::V4, Family::V6] {
                b += &format!(
                    "neigh replace {} lladdr {} dev {sw_if} nud permanent\n",
                    link_addr(node, f, 2),
                    mac(node, 2)
                );
            }
        }
        b += &format!(
            "route add {SERVICE_V4}/32 via {} dev {}\n",
            link_addr(serving, Family::V4, 2),
            sw_iface(serving)
        );
        b += &format!(
            "route add {SERVICE_V6}/128 via {} dev {}\n",
            link_addr(serving, Family::V6, 2),
            sw_iface(serving)
        );
        b
    }

    /// `ip -batch` commands for `ue` or an eNBC.
    fn leaf_batch(&self, node: Node) -> String {
        let mut b = String::from("link set lo up\n");
        b += &format!("link set {UPLINK} up\n");
        b += &format!(
            "addr add {}/24 dev {UPLINK}\n",
            link_addr(node, Family::V4, 2)
        );
        b += &format!(
            "addr add {}/64 dev {UPLINK} nodad\n",
            link_addr(node, Family::V6, 2)
        );
        for f in [Family::V4, Family::V6] {
            b += &format!(
                "neigh replace {} lladdr {} dev {UPLINK} nud permanent\n",
                link_addr(node, f, 1),
                mac(node, 1)
            );
        }
        if node == Node::Ue {
            b += &format!("route add default via {}\n", link_addr(node, Family::V4, 1));
            b += &format!("route add default via {}\n", link_addr(node, Family::V6, 1));
        } else {
            b += &format!("addr add {SERVICE_V4}/32 dev lo\n");
            b += &format!("addr add {SERVICE_V6}/128 dev lo nodad\n");
            b += &format!(
                "route add {}/24 via {}\n",
                link_addr(Node::Ue, Family::V4, 0),
                link_addr(node, Family::V4, 1)
            );
            b += &format!(
                "route add {}/64 via {}\n",
                link_addr(Node::Ue, Family::V6, 0),
                link_addr(node, Family::V6, 1)
            );
        }
        b
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for node in self.created.iter().rev() {
            let _ = netns::destroy(&self.ns(*node));
        }
    }
}

/// Address `host` on the link between `sw` and `node` (host 1 is `sw`'s side).
fn link_addr(node: Node, family: Family, host: u8) -> IpAddr {
    let link = node.link();
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 77, link, host)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x77,
            u16::from(link),
            0,
            0,
            0,
            0,
            u16::from(host),
        )),
    }
}

/// `sw`'s interface towards `node`.
fn sw_iface(node: Node) -> String {
    format!("sw-{}", node.name())
}

/// Fixed MAC of `host` on `node`'s link, so neighbours can be made permanent.
fn mac(node: Node, host: u8) -> String {
    format!("02:77:00:00:{:02x}:{:02x}", node.link(), host)
}

/// Removes namespaces left by killed runs: names with this crate's prefix
/// (`em<pid>x<n>-`) whose owner pid is gone. Processes inside are killed first.
pub fn cleanup_stale() {
    for name in netns::list() {
        if let Some(pid) = owner_pid(&name)
            && !netns::pid_alive(pid)
        {
            let _ = netns::destroy(&name);
        }
    }
}

/// The owner pid encoded in a testbed namespace name, if it is one.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("em")?;
    let (pid, rest) = rest.split_once('x')?;
    let (counter, node) = rest.split_once('-')?;
    if counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !Node::ALL.iter().any(|n| n.name() == node) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_only_matches_our_names() {
        assert_eq!(owner_pid("em123x0-ue"), Some(123));
        assert_eq!(owner_pid("em123x10-enbc2"), Some(123));
        assert_eq!(owner_pid("em123x-ue"), None);
        assert_eq!(owner_pid("emacs-ue"), None);
        assert_eq!(owner_pid("em123x0-other"), None);
        assert_eq!(owner_pid("foo"), None);
    }

    #[test]
    fn addresses_are_distinct_per_link() {
        assert_eq!(
            link_addr(Node::Ue, Family::V4, 2),
            "10.77.1.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            link_addr(Node::Enbc2, Family::V6, 1),
            "fd00:77:3::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(mac(Node::Enbc1, 2), "02:77:00:00:02:02");
    }
}
