//! The topology of ARCHITECTURE.md: `ue` — `sw` — {`enbc1`, `enbc2`, … `enbcN`},
//! every eNBC owning the same service address, `sw` routing it to one of them
//! (for all UE addresses at once, or per UE address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::capture::Capture;
use crate::error::{Result, TestbedError};
use crate::netns;
use crate::route::{HostRoute, RouteSocket};

/// A host of the topology.
///
/// `Enbc(i)` is the i-th eNBC (1-based) of a testbed with more than two;
/// `Node::enbc(1)` and `Node::enbc(2)` give [`Node::Enbc1`] and
/// [`Node::Enbc2`], and `Enbc(1) == Enbc1`, `Enbc(2) == Enbc2`.
#[derive(Debug, Clone, Copy)]
pub enum Node {
    /// The user's host; runs the unmodified client.
    Ue,
    /// The switching point standing in for the radio/GRE path.
    Sw,
    /// The eNodeB-Cloud serving first.
    Enbc1,
    /// The eNodeB-Cloud the user is handed over to.
    Enbc2,
    /// The i-th eNodeB-Cloud (1-based, at most [`MAX_ENBCS`]).
    Enbc(u8),
}

/// Most eNBCs a testbed can have (their links are numbered 2..=254).
pub const MAX_ENBCS: usize = 253;
/// Most UE addresses a testbed can have (hosts .2 to .254 of the UE link).
pub const MAX_UE_ADDRS: usize = 4096;

/// UE addresses that fit on the UE link's /24; further IPv4 addresses come
/// from [`UE_ROUTED_V4`], routed to the UE through `sw`.
const ON_LINK_UE_ADDRS: usize = 253;
/// The routed IPv4 block for UE addresses beyond the first 253.
const UE_ROUTED_V4: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 78, 0, 0), 16);

impl Node {
    /// The nodes of the default (two-eNBC) topology, in creation order.
    pub const ALL: [Node; 4] = [Node::Ue, Node::Sw, Node::Enbc1, Node::Enbc2];

    /// The i-th eNBC (1-based).
    pub fn enbc(i: usize) -> Node {
        match i {
            1 => Node::Enbc1,
            2 => Node::Enbc2,
            // Out-of-range indices stay unusable (no testbed has them).
            i => Node::Enbc(u8::try_from(i).unwrap_or(u8::MAX)),
        }
    }

    /// The eNBC's 1-based index, `None` for `ue` and `sw`.
    pub fn enbc_index(self) -> Option<usize> {
        match self {
            Node::Enbc1 => Some(1),
            Node::Enbc2 => Some(2),
            Node::Enbc(i) => Some(usize::from(i)),
            Node::Ue | Node::Sw => None,
        }
    }

    /// Canonical key: `Enbc(1)` and `Enbc1` are the same node.
    fn key(self) -> (u8, usize) {
        match self {
            Node::Ue => (0, 0),
            Node::Sw => (1, 0),
            n => (2, n.enbc_index().unwrap_or(0)),
        }
    }

    /// Short name, used as the namespace suffix.
    pub fn name(self) -> &'static str {
        match self {
            Node::Ue => "ue",
            Node::Sw => "sw",
            Node::Enbc1 => "enbc1",
            Node::Enbc2 => "enbc2",
            Node::Enbc(i) => enbc_name(usize::from(i)),
        }
    }

    /// Link number of the node's veth towards `sw` (also the third octet of its subnet).
    fn link(self) -> u8 {
        match self {
            Node::Ue => 1,
            Node::Sw => 0,
            // eNBC i has link i + 1 (enbc1: 2, enbc2: 3, …).
            n => u8::try_from(n.enbc_index().unwrap_or(0) + 1).unwrap_or(u8::MAX),
        }
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Node {}

impl std::hash::Hash for Node {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

/// `enbc<i>` as a `&'static str` (names are made once and kept).
fn enbc_name(i: usize) -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (0..=usize::from(u8::MAX))
            .map(|i| &*Box::leak(format!("enbc{i}").into_boxed_str()))
            .collect()
    });
    names.get(i).copied().unwrap_or("enbc?")
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
    /// The eNBC that serves the service address at the start (for every UE address).
    pub serving: Node,
    /// Number of eNBCs, 2..=[`MAX_ENBCS`]: `enbc1` … `enbcN`.
    pub enbcs: usize,
    /// Number of UE addresses, 1..=[`MAX_UE_ADDRS`], all on `ue`'s `eth0`:
    /// one per simulated UE (CXTP keys transfers by the UE's address). With
    /// more than one, `sw` routes each UE address's traffic to the service
    /// through a table of its own, so [`Testbed::switch_ue_to`] can move
    /// UEs one by one.
    pub ue_addrs: usize,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        Self {
            serving: Node::Enbc1,
            enbcs: 2,
            ue_addrs: 1,
        }
    }
}

/// First routing table (and rule priority) of the per-UE tables at `sw`.
const UE_TABLE_BASE: u32 = 1000;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A built topology; dropping it kills every process inside and removes the namespaces.
#[derive(Debug)]
pub struct Testbed {
    prefix: String,
    created: Vec<Node>,
    enbcs: usize,
    ue_addrs: usize,
    switch: Mutex<Option<Switch>>,
    captures: AtomicU32,
}

#[derive(Debug)]
struct Switch {
    socket: RouteSocket,
    /// `sw`'s interface index towards each eNBC (index 0: enbc1).
    oifs: Vec<u32>,
    /// Whether every UE address has its own table.
    per_ue: bool,
}

impl Testbed {
    /// Builds the topology. Needs root; call [`cleanup_stale`] first to remove
    /// leftovers of killed runs (done here too).
    pub fn new(opts: TestbedOptions) -> Result<Testbed> {
        if !netns::is_root() {
            return Err(TestbedError::NotRoot);
        }
        if !(2..=MAX_ENBCS).contains(&opts.enbcs) {
            return Err(TestbedError::Command {
                command: "Testbed::new".into(),
                detail: format!("enbcs = {}: must be 2..={MAX_ENBCS}", opts.enbcs),
            });
        }
        if !(1..=MAX_UE_ADDRS).contains(&opts.ue_addrs) {
            return Err(TestbedError::Command {
                command: "Testbed::new".into(),
                detail: format!("ue_addrs = {}: must be 1..={MAX_UE_ADDRS}", opts.ue_addrs),
            });
        }
        if !opts
            .serving
            .enbc_index()
            .is_some_and(|i| (1..=opts.enbcs).contains(&i))
        {
            return Err(TestbedError::Command {
                command: "Testbed::new".into(),
                detail: format!(
                    "serving = {:?}: not one of the {} eNBCs",
                    opts.serving, opts.enbcs
                ),
            });
        }
        cleanup_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tb = Testbed {
            prefix: format!("em{}x{}-", std::process::id(), n),
            created: Vec::new(),
            enbcs: opts.enbcs,
            ue_addrs: opts.ue_addrs,
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

    /// Every node of this testbed, in creation order: `ue`, `sw`, `enbc1` … `enbcN`.
    pub fn nodes(&self) -> Vec<Node> {
        let mut nodes = vec![Node::Ue, Node::Sw];
        nodes.extend(self.enbcs());
        nodes
    }

    /// The eNBCs: `enbc1` … `enbcN`.
    pub fn enbcs(&self) -> Vec<Node> {
        (1..=self.enbcs).map(Node::enbc).collect()
    }

    /// Number of UE addresses.
    pub fn ue_addr_count(&self) -> usize {
        self.ue_addrs
    }

    /// The `k`-th UE address (0-based; UE address 0 is `addr(Node::Ue, family)`).
    /// Panics if `k` is not below [`Testbed::ue_addr_count`].
    pub fn ue_addr(&self, k: usize, family: Family) -> IpAddr {
        assert!(
            k < self.ue_addrs,
            "ue_addr({k}): the testbed has {} UE addresses",
            self.ue_addrs
        );
        ue_host(k, family)
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

    /// Re-routes the service address at `sw` to `to` (any eNBC of the
    /// testbed) for every UE address, with one rtnetlink round trip.
    /// Panics if `to` is not an eNBC of this testbed.
    pub fn switch_to(&self, to: Node) -> Result<()> {
        let enbc = self.check_enbc(to, "switch_to");
        let mut guard = self.switch.lock().unwrap_or_else(|p| p.into_inner());
        let switch = guard.as_mut().expect("switch is set up by build()");
        let mut routes = service_routes(to, switch.oifs[enbc - 1], 0).to_vec();
        if switch.per_ue {
            for k in 0..self.ue_addrs {
                routes.extend(service_routes(to, switch.oifs[enbc - 1], ue_table(k)));
            }
        }
        switch.socket.replace(&routes)
    }

    /// Re-routes the service traffic of UE address `ue` (0-based) alone to
    /// `to`, with one rtnetlink round trip; other UEs keep their eNBC.
    /// Panics if `ue` or `to` is not part of this testbed.
    pub fn switch_ue_to(&self, ue: usize, to: Node) -> Result<()> {
        let enbc = self.check_enbc(to, "switch_ue_to");
        assert!(
            ue < self.ue_addrs,
            "switch_ue_to({ue}, ..): the testbed has {} UE addresses",
            self.ue_addrs
        );
        let mut guard = self.switch.lock().unwrap_or_else(|p| p.into_inner());
        let switch = guard.as_mut().expect("switch is set up by build()");
        if !switch.per_ue {
            drop(guard);
            return self.switch_to(to);
        }
        let routes = service_routes(to, switch.oifs[enbc - 1], ue_table(ue));
        switch.socket.replace(&routes)
    }

    fn check_enbc(&self, to: Node, what: &str) -> usize {
        match to.enbc_index() {
            Some(i) if (1..=self.enbcs).contains(&i) => i,
            _ => panic!(
                "{what}({to:?}): only the {} eNBCs serve the service address",
                self.enbcs
            ),
        }
    }

    /// Starts a tcpdump capture on `iface` inside `node` with a pcap filter
    /// (e.g. `"tcp port 80"`), returning once it listens.
    pub fn capture(&self, node: Node, iface: &str, filter: &str) -> Result<Capture> {
        let n = self.captures.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{}{}-{}.pcap", self.prefix, node.name(), n));
        Capture::start(&self.ns(node), iface, filter, path)
    }

    fn build(&mut self, opts: TestbedOptions) -> Result<()> {
        for node in self.nodes() {
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
        if self.ue_addrs > 1 {
            netns::ip(
                &["-6", "-n", &self.ns(Node::Sw), "-batch", "-"],
                Some(&self.sw_v6_rules()),
            )?;
        }
        let mut leaves = vec![Node::Ue];
        leaves.extend(self.enbcs());
        for node in leaves {
            netns::ip(
                &["-n", &self.ns(node), "-batch", "-"],
                Some(&self.leaf_batch(node)),
            )?;
        }
        let enbcs = self.enbcs();
        let per_ue = self.ue_addrs > 1;
        let switch = self.enter(Node::Sw, || -> Result<Switch> {
            let socket = RouteSocket::open()?;
            let oifs = enbcs
                .iter()
                .map(|&n| netns::ifindex(&sw_iface(n)))
                .collect::<Result<Vec<u32>>>()?;
            Ok(Switch {
                socket,
                oifs,
                per_ue,
            })
        })??;
        *self.switch.lock().unwrap_or_else(|p| p.into_inner()) = Some(switch);
        Ok(())
    }

    /// `ip -batch` commands for `sw`: veths to every node (peers created straight
    /// in their namespace), addresses, permanent neighbours, the service route.
    fn sw_batch(&self, serving: Node) -> String {
        let mut b = String::from("link set lo up\n");
        let mut leaves = vec![Node::Ue];
        leaves.extend(self.enbcs());
        for node in leaves {
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
            let hosts = if node == Node::Ue { self.ue_addrs } else { 1 };
            for k in 0..hosts {
                for f in [Family::V4, Family::V6] {
                    let addr = if node == Node::Ue {
                        ue_host(k, f)
                    } else {
                        link_addr(node, f, 2)
                    };
                    // Routed UE addresses have no neighbour entry of their own.
                    if f == Family::V4 && node == Node::Ue && k >= ON_LINK_UE_ADDRS {
                        continue;
                    }
                    b += &format!(
                        "neigh replace {addr} lladdr {} dev {sw_if} nud permanent\n",
                        mac(node, 2)
                    );
                }
            }
            if node == Node::Ue && self.ue_addrs > ON_LINK_UE_ADDRS {
                b += &format!(
                    "route add {}/{} via {} dev {sw_if}\n",
                    UE_ROUTED_V4.0,
                    UE_ROUTED_V4.1,
                    link_addr(Node::Ue, Family::V4, 2)
                );
            }
        }
        if self.ue_addrs > 1 {
            // Each UE address looks its service route up in a table of its own.
            for k in 0..self.ue_addrs {
                let table = ue_table(k);
                // (IPv6 rules need `ip -6`: see sw_v6_rules.)
                b += &format!(
                    "rule add from {} to {SERVICE_V4}/32 lookup {table} pref {table}\n",
                    ue_host(k, Family::V4)
                );
                for f in [Family::V4, Family::V6] {
                    let (service, len) = match f {
                        Family::V4 => (IpAddr::V4(SERVICE_V4), 32),
                        Family::V6 => (IpAddr::V6(SERVICE_V6), 128),
                    };
                    b += &format!(
                        "route add {service}/{len} via {} dev {} table {table}\n",
                        link_addr(serving, f, 2),
                        sw_iface(serving)
                    );
                }
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

    /// `ip -6 -batch` commands for `sw`: the per-UE IPv6 policy rules (`ip
    /// rule` takes IPv4 unless told `-6`, also in batch mode).
    fn sw_v6_rules(&self) -> String {
        let mut b = String::new();
        for k in 0..self.ue_addrs {
            let table = ue_table(k);
            b += &format!(
                "rule add from {} to {SERVICE_V6}/128 lookup {table} pref {table}\n",
                ue_host(k, Family::V6)
            );
        }
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
            for k in 1..self.ue_addrs {
                let prefix = if k < ON_LINK_UE_ADDRS { 24 } else { 32 };
                b += &format!(
                    "addr add {}/{prefix} dev {UPLINK}\n",
                    ue_host(k, Family::V4)
                );
                b += &format!(
                    "addr add {}/64 dev {UPLINK} nodad\n",
                    ue_host(k, Family::V6)
                );
            }
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
            if self.ue_addrs > ON_LINK_UE_ADDRS {
                b += &format!(
                    "route add {}/{} via {}\n",
                    UE_ROUTED_V4.0,
                    UE_ROUTED_V4.1,
                    link_addr(node, Family::V4, 1)
                );
            }
            // The other eNBCs (agents' MIH and CXTP traffic) through `sw`,
            // opening with [`PEER_WINDOW`].
            for other in self.enbcs() {
                if other != node {
                    b += &format!(
                        "route add {}/24 via {} {PEER_WINDOW}\n",
                        link_addr(other, Family::V4, 0),
                        link_addr(node, Family::V4, 1)
                    );
                    b += &format!(
                        "route add {}/64 via {} {PEER_WINDOW}\n",
                        link_addr(other, Family::V6, 0),
                        link_addr(node, Family::V6, 1)
                    );
                }
            }
        }
        b
    }
}

impl Testbed {
    /// Leaves the namespaces in place when this testbed is dropped (for
    /// inspection) and returns their names. [`cleanup_stale`] removes them
    /// once this process has exited.
    pub fn keep(&mut self) -> Vec<String> {
        std::mem::take(&mut self.created)
            .into_iter()
            .map(|n| self.ns(n))
            .collect()
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

/// The routing table (and rule priority) of UE address `k` at `sw`.
/// The `k`-th UE address: the first 253 on the UE link (10.77.1.2 …),
/// further IPv4 ones in 10.78.0.0/16 (10.78.0.1 …, routed through the UE
/// link); IPv6 ones all on the UE link's /64.
fn ue_host(k: usize, family: Family) -> IpAddr {
    match family {
        Family::V4 if k < ON_LINK_UE_ADDRS => link_addr(Node::Ue, family, k as u8 + 2),
        Family::V4 => {
            let m = k - ON_LINK_UE_ADDRS;
            let o = UE_ROUTED_V4.0.octets();
            IpAddr::V4(Ipv4Addr::new(
                o[0],
                o[1],
                (m / 254) as u8,
                (m % 254) as u8 + 1,
            ))
        }
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0x77, 1, 0, 0, 0, 0, k as u16 + 2)),
    }
}

fn ue_table(k: usize) -> u32 {
    UE_TABLE_BASE + u32::try_from(k).unwrap_or(u32::MAX - UE_TABLE_BASE)
}

/// Route attributes between eNBCs: an initial window of 64 segments (93 KB)
/// each way. A 75 KB context then leaves in one flight on a fresh CXTP
/// connection, and after every idle pause (Linux restarts an idle
/// connection's window at the route's initcwnd), instead of in five
/// slow-start rounds gated by the peer's ACKs.
const PEER_WINDOW: &str = "initcwnd 64 initrwnd 64";

/// The IPv4 and IPv6 host routes of the service address towards `to`.
fn service_routes(to: Node, oif: u32, table: u32) -> [HostRoute; 2] {
    [
        HostRoute {
            dst: IpAddr::V4(SERVICE_V4),
            gateway: link_addr(to, Family::V4, 2),
            oif,
            table,
        },
        HostRoute {
            dst: IpAddr::V6(SERVICE_V6),
            gateway: link_addr(to, Family::V6, 2),
            oif,
            table,
        },
    ]
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
    let enbc_n = node
        .strip_prefix("enbc")
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
    if !Node::ALL.iter().any(|n| n.name() == node) && !enbc_n {
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
        assert_eq!(owner_pid("em123x0-enbc17"), Some(123));
        assert_eq!(owner_pid("em123x0-enbc"), None);
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
        assert_eq!(
            link_addr(Node::enbc(4), Family::V4, 2),
            "10.77.5.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn numbered_enbcs_are_the_named_ones() {
        assert_eq!(Node::enbc(1), Node::Enbc1);
        assert_eq!(Node::Enbc(2), Node::Enbc2);
        assert_ne!(Node::Enbc(3), Node::Enbc2);
        assert_eq!(Node::enbc(3).name(), "enbc3");
        assert_eq!(Node::Enbc(1).name(), "enbc1");
        assert_eq!(Node::enbc(17).enbc_index(), Some(17));
        assert_eq!(Node::Ue.enbc_index(), None);
        let set: std::collections::HashSet<Node> = [Node::Enbc1, Node::Enbc(1)].into();
        assert_eq!(set.len(), 1);
    }
}
