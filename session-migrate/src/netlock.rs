//! The network lock: while a connection is between sockets, the packets
//! that reach this host for it are dropped (never answered: a kernel without
//! a socket for them would send an RST and the client would abort). As in
//! CRIU, per namespace one `inet` table holds a set of
//! `addr . port . addr . port` keys (IPv4 and IPv6) and rules that drop
//! matching TCP packets, letting packets marked 0xC114 through. Per
//! migration only set elements change, in one batch.
//!
//! Unlike CRIU, nothing is dropped on the way out. Between the lock and the
//! dump the source's kernel may still transmit (paced or TSQ-deferred
//! segments); dropped on the way out, those segments would be counted as in
//! flight in the image, the target would wait for the UE to acknowledge
//! data it never got, and only a loss-recovery timer would resend it (a
//! 35 ms stall seen in the demo). Let through, they reach the UE, and
//! every later output of the frozen socket carries the same octets as the
//! image. Incoming packets are what must not reach a socket in the middle
//! of a move.
//!
//! The table, as `nft list table inet edgemob_lock` shows it:
//!
//! ```text
//! table inet edgemob_lock {
//!     set conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service }
//!     set conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service }
//!     chain input {
//!         type filter hook input priority filter; policy accept;
//!         meta mark 0x0000c114 accept
//!         ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop
//!         ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop
//!     }
//! }
//! ```

use std::net::{IpAddr, SocketAddr};

use crate::error::LockError;
use crate::image::FourTuple;
use crate::nfnl::{Batch, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NfSocket};

/// Name of the lock table in every namespace.
pub const LOCK_TABLE: &str = "edgemob_lock";
/// The one chain of the lock table: it sees packets arriving at this host.
const LOCK_CHAIN: &str = "input";
/// The chain of outgoing packets that earlier builds also had.
const OLD_OUTPUT_CHAIN: &str = "output";
/// Packets carrying this mark pass the lock (CRIU's SOCCR_MARK).
pub const LOCK_EXEMPT_MARK: u32 = 0xC114;

const SET4: &str = "conns4";
const SET6: &str = "conns6";
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NF_INET_LOCAL_IN: u32 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

// nf_tables message types.
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
/// Like DELSETELEM but not an error when the element is absent (kernel 6.3+).
/// Like DELCHAIN / DELRULE but not an error when absent (kernel 6.3+).
const NFT_MSG_DESTROYCHAIN: u16 = 27;
const NFT_MSG_DESTROYRULE: u16 = 28;
const NFT_MSG_DESTROYSETELEM: u16 = 30;

// Attributes.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ID: u16 = 10;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_SET_ID: u16 = 4;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
/// Set flag: elements may carry a timeout.
const NFT_SET_TIMEOUT: u32 = 0x10;

/// How long the kernel keeps a lock entry at most. A safety net: every
/// entry is removed by its migration long before (the longest hold is the
/// source's linger after a move, 10 s by default); one left by an agent that
/// died goes by itself even if no agent starts again in its namespace.
pub const LOCK_ENTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

const NFT_META_MARK: u32 = 3;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_REG_VERDICT: u32 = 0;
/// First 32-bit register; concatenations use consecutive 4-byte slots from here.
const NFT_REG32_00: u32 = 8;

// nft's datatype ids, concatenated 6 bits each (they only tell `nft` how to print keys).
const TYPE_IPV4: u32 = 7;
const TYPE_IPV6: u32 = 8;
const TYPE_INET_SERVICE: u32 = 13;
const KEY_LEN4: usize = 16;
const KEY_LEN6: usize = 40;
/// Elements per message: keeps nested attributes below their 64 KiB length limit.
const ELEMS_PER_MSG: usize = 512;
/// Batches above this size are split (the socket's send buffer limits one send).
const MAX_BATCH: usize = 128 << 10;

/// Per-namespace handle on the lock table. Opening it creates the table on
/// first use; [`lock`](Self::lock) and [`unlock`](Self::unlock) then change
/// only set elements, each call one netlink round trip.
#[derive(Debug)]
pub struct NetLock {
    sock: NfSocket,
    /// How entries are removed: DESTROY (Linux 6.3+) ignores entries that
    /// are not there; older kernels only have DEL, which fails the whole
    /// batch on one missing entry.
    removal: Removal,
}

/// How this kernel removes set elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Not known yet: DESTROY is tried first.
    Unknown,
    Destroy,
    /// Linux before 6.3: DEL, tolerating entries that are not there.
    Del,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Add,
    /// DESTROY: entries not there are no error (Linux 6.3+).
    Remove,
    /// DEL: an entry not there fails the batch.
    Delete,
    /// DEL of one direction of a connection only.
    DeleteOneWay {
        reverse: bool,
    },
}

impl NetLock {
    /// Opens the lock of the calling thread's network namespace, creating
    /// the table, sets and rules atomically if they do not exist yet.
    pub fn open() -> Result<Self, LockError> {
        let mut lock = NetLock {
            sock: NfSocket::open()?,
            removal: Removal::Unknown,
        };
        match lock.create_table() {
            Err(LockError::Rejected { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                match lock.remove_output_chain() {
                    // A kernel without DESTROY (before 6.3) never ran the
                    // builds that made that chain.
                    Err(LockError::Rejected { source, .. })
                        if source.raw_os_error() == Some(libc::EINVAL) => {}
                    other => other?,
                }
                Ok(lock)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(lock),
        }
    }

    /// Opens this namespace's lock for its one owner, the agent: a table an
    /// earlier, dead owner left behind is deleted with every entry in it
    /// (those connections are not moving any more; their packets must not
    /// be black-holed) and made anew. Returns the lock and whether a table
    /// was left behind. The caller must be the namespace's only user of the
    /// lock (the agent makes sure of that before calling).
    pub fn take_over() -> Result<(Self, bool), LockError> {
        let mut lock = NetLock {
            sock: NfSocket::open()?,
            removal: Removal::Unknown,
        };
        match lock.create_table() {
            Ok(()) => Ok((lock, false)),
            Err(LockError::Rejected { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                let mut b = lock.sock.batch();
                let seq = lock.sock.next_seq();
                b.begin_msg(seq, NFT_MSG_DELTABLE, "DELTABLE", NFPROTO_INET, NLM_F_ACK);
                b.attr_str(NFTA_TABLE_NAME, LOCK_TABLE);
                b.end_msg();
                lock.sock.commit(b)?;
                lock.create_table()?;
                Ok((lock, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Drops every packet of these connections that arrives here (in either
    /// direction, so a connection with both ends on this host is held
    /// both ways). Idempotent.
    pub fn lock(&mut self, tuples: &[FourTuple]) -> Result<(), LockError> {
        self.change(tuples, Op::Add)
    }

    /// Lets these connections' packets through again. Unlocking a connection
    /// that is not locked is not an error.
    pub fn unlock(&mut self, tuples: &[FourTuple]) -> Result<(), LockError> {
        if self.removal == Removal::Del {
            return self.unlock_with_del(tuples);
        }
        match self.change(tuples, Op::Remove) {
            Err(LockError::Rejected { source, .. })
                if self.removal == Removal::Unknown
                    && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                // No DESTROY messages before Linux 6.3.
                self.removal = Removal::Del;
                self.unlock_with_del(tuples)
            }
            Ok(()) => {
                self.removal = Removal::Destroy;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Removes entries with DEL (kernels before 6.3): all at once, and one
    /// by one, skipping those not there, if that fails for a missing one.
    fn unlock_with_del(&mut self, tuples: &[FourTuple]) -> Result<(), LockError> {
        let missing = |e: &LockError| matches!(e, LockError::Rejected { source, .. } if source.raw_os_error() == Some(libc::ENOENT));
        match self.change(tuples, Op::Delete) {
            Err(e) if missing(&e) => {}
            other => return other,
        }
        for &t in tuples {
            for reverse in [false, true] {
                match self.change(&[t], Op::DeleteOneWay { reverse }) {
                    Err(e) if missing(&e) => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    /// Removes entries the way kernels before 6.3 must, whatever this one
    /// supports: tests of that path run on any kernel.
    #[doc(hidden)]
    pub fn use_del_for_removal(&mut self) {
        self.removal = Removal::Del;
    }

    /// Deletes the lock table of this namespace (and every lock in it).
    pub fn remove(mut self) -> Result<(), LockError> {
        let mut b = self.sock.batch();
        let seq = self.sock.next_seq();
        b.begin_msg(seq, NFT_MSG_DELTABLE, "DELTABLE", NFPROTO_INET, NLM_F_ACK);
        b.attr_str(NFTA_TABLE_NAME, LOCK_TABLE);
        b.end_msg();
        self.sock.commit(b)
    }

    /// Earlier builds also dropped outgoing packets, in a chain `output`;
    /// a table left by one loses that chain (and its rules) here. Nothing
    /// happens when there is none.
    fn remove_output_chain(&mut self) -> Result<(), LockError> {
        let mut b = self.sock.batch();
        let seq = self.sock.next_seq();
        b.begin_msg(
            seq,
            NFT_MSG_DESTROYRULE,
            "DESTROYRULE",
            NFPROTO_INET,
            NLM_F_ACK,
        );
        b.attr_str(NFTA_RULE_TABLE, LOCK_TABLE);
        b.attr_str(NFTA_RULE_CHAIN, OLD_OUTPUT_CHAIN);
        b.end_msg();
        let seq = self.sock.next_seq();
        b.begin_msg(
            seq,
            NFT_MSG_DESTROYCHAIN,
            "DESTROYCHAIN",
            NFPROTO_INET,
            NLM_F_ACK,
        );
        b.attr_str(NFTA_CHAIN_TABLE, LOCK_TABLE);
        b.attr_str(NFTA_CHAIN_NAME, OLD_OUTPUT_CHAIN);
        b.end_msg();
        self.sock.commit(b)
    }

    fn change(&mut self, tuples: &[FourTuple], op: Op) -> Result<(), LockError> {
        let mut keys4 = Vec::new();
        let mut keys6 = Vec::new();
        for t in tuples {
            // Both directions: packets from the socket and packets to it.
            let both = [(t.local, t.peer), (t.peer, t.local)];
            let ways = match op {
                Op::DeleteOneWay { reverse: false } => &both[..1],
                Op::DeleteOneWay { reverse: true } => &both[1..],
                _ => &both[..],
            };
            for &(src, dst) in ways {
                match (wire_ip(&src), wire_ip(&dst)) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        keys4.push(key(&s.octets(), src.port(), &d.octets(), dst.port()))
                    }
                    (s, d) => keys6.push(key(&v6_octets(s), src.port(), &v6_octets(d), dst.port())),
                }
            }
        }
        let mut batch = self.sock.batch();
        for (set, keys) in [(SET4, &keys4), (SET6, &keys6)] {
            for chunk in keys.chunks(ELEMS_PER_MSG) {
                if batch.len() > MAX_BATCH {
                    let full = std::mem::replace(&mut batch, self.sock.batch());
                    self.sock.commit(full)?;
                }
                let seq = self.sock.next_seq();
                let (msg, name, flags) = match op {
                    Op::Add => (NFT_MSG_NEWSETELEM, "NEWSETELEM", NLM_F_CREATE | NLM_F_ACK),
                    Op::Remove => (NFT_MSG_DESTROYSETELEM, "DESTROYSETELEM", NLM_F_ACK),
                    Op::Delete | Op::DeleteOneWay { .. } => {
                        (NFT_MSG_DELSETELEM, "DELSETELEM", NLM_F_ACK)
                    }
                };
                batch.begin_msg(seq, msg, name, NFPROTO_INET, flags);
                batch.attr_str(NFTA_SET_ELEM_LIST_TABLE, LOCK_TABLE);
                batch.attr_str(NFTA_SET_ELEM_LIST_SET, set);
                batch.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
                for k in chunk {
                    batch.nest_start(NFTA_LIST_ELEM);
                    batch.nest_start(NFTA_SET_ELEM_KEY);
                    batch.attr(NFTA_DATA_VALUE, k);
                    batch.nest_end();
                    if op == Op::Add {
                        let ms = LOCK_ENTRY_TIMEOUT.as_millis() as u64;
                        batch.attr(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
                    }
                    batch.nest_end();
                }
                batch.nest_end();
                batch.end_msg();
            }
        }
        self.sock.commit(batch)
    }

    fn create_table(&mut self) -> Result<(), LockError> {
        let mut b = self.sock.batch();
        let seq = self.sock.next_seq();
        b.begin_msg(
            seq,
            NFT_MSG_NEWTABLE,
            "NEWTABLE",
            NFPROTO_INET,
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        );
        b.attr_str(NFTA_TABLE_NAME, LOCK_TABLE);
        b.end_msg();
        {
            let (chain, hook) = (LOCK_CHAIN, NF_INET_LOCAL_IN);
            let seq = self.sock.next_seq();
            b.begin_msg(
                seq,
                NFT_MSG_NEWCHAIN,
                "NEWCHAIN",
                NFPROTO_INET,
                NLM_F_CREATE | NLM_F_ACK,
            );
            b.attr_str(NFTA_CHAIN_TABLE, LOCK_TABLE);
            b.attr_str(NFTA_CHAIN_NAME, chain);
            b.nest_start(NFTA_CHAIN_HOOK);
            b.attr_be32(NFTA_HOOK_HOOKNUM, hook);
            b.attr_be32(NFTA_HOOK_PRIORITY, 0);
            b.nest_end();
            b.attr_str(NFTA_CHAIN_TYPE, "filter");
            b.end_msg();
        }
        for (set, id, ip_type, key_len) in [
            (SET4, 1, TYPE_IPV4, KEY_LEN4),
            (SET6, 2, TYPE_IPV6, KEY_LEN6),
        ] {
            let seq = self.sock.next_seq();
            b.begin_msg(
                seq,
                NFT_MSG_NEWSET,
                "NEWSET",
                NFPROTO_INET,
                NLM_F_CREATE | NLM_F_ACK,
            );
            b.attr_str(NFTA_SET_TABLE, LOCK_TABLE);
            b.attr_str(NFTA_SET_NAME, set);
            b.attr_be32(NFTA_SET_FLAGS, NFT_SET_TIMEOUT);
            let key_type =
                (((ip_type << 6 | TYPE_INET_SERVICE) << 6 | ip_type) << 6) | TYPE_INET_SERVICE;
            b.attr_be32(NFTA_SET_KEY_TYPE, key_type);
            b.attr_be32(NFTA_SET_KEY_LEN, key_len as u32);
            b.attr_be32(NFTA_SET_ID, id);
            b.end_msg();
        }
        {
            let chain = LOCK_CHAIN;
            let seq = self.sock.next_seq();
            rule(&mut b, seq, chain, |b| {
                meta(b, NFT_META_MARK);
                cmp_eq(b, &LOCK_EXEMPT_MARK.to_ne_bytes());
                verdict(b, NF_ACCEPT);
            });
            for (set, id, nfproto, addr_len, saddr_off, daddr_off) in [
                (SET4, 1, NFPROTO_IPV4, 4u32, 12u32, 16u32),
                (SET6, 2, NFPROTO_IPV6, 16, 8, 24),
            ] {
                let seq = self.sock.next_seq();
                rule(&mut b, seq, chain, |b| {
                    meta(b, NFT_META_NFPROTO);
                    cmp_eq(b, &[nfproto]);
                    meta(b, NFT_META_L4PROTO);
                    cmp_eq(b, &[libc::IPPROTO_TCP as u8]);
                    // saddr . sport . daddr . dport, each in 4-byte register slots.
                    let words = addr_len / 4;
                    payload(
                        b,
                        NFT_REG32_00,
                        NFT_PAYLOAD_NETWORK_HEADER,
                        saddr_off,
                        addr_len,
                    );
                    payload(b, NFT_REG32_00 + words, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2);
                    payload(
                        b,
                        NFT_REG32_00 + words + 1,
                        NFT_PAYLOAD_NETWORK_HEADER,
                        daddr_off,
                        addr_len,
                    );
                    payload(
                        b,
                        NFT_REG32_00 + 2 * words + 1,
                        NFT_PAYLOAD_TRANSPORT_HEADER,
                        2,
                        2,
                    );
                    expr(b, "lookup", |b| {
                        b.attr_str(NFTA_LOOKUP_SET, set);
                        b.attr_be32(NFTA_LOOKUP_SREG, NFT_REG32_00);
                        b.attr_be32(NFTA_LOOKUP_SET_ID, id);
                    });
                    verdict(b, NF_DROP);
                });
            }
        }
        self.sock.commit(b)
    }
}

/// The address as it appears in IP headers (IPv4-mapped IPv6 sockets speak IPv4).
fn wire_ip(addr: &SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        v4 => v4,
    }
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// A set key: each field padded to 4 bytes, ports in network order.
fn key(src: &[u8], sport: u16, dst: &[u8], dport: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(KEY_LEN6);
    k.extend_from_slice(src);
    k.extend_from_slice(&sport.to_be_bytes());
    k.extend_from_slice(&[0, 0]);
    k.extend_from_slice(dst);
    k.extend_from_slice(&dport.to_be_bytes());
    k.extend_from_slice(&[0, 0]);
    k
}

fn rule(b: &mut Batch, seq: u32, chain: &str, exprs: impl FnOnce(&mut Batch)) {
    b.begin_msg(
        seq,
        NFT_MSG_NEWRULE,
        "NEWRULE",
        NFPROTO_INET,
        NLM_F_CREATE | NLM_F_ACK,
    );
    b.attr_str(NFTA_RULE_TABLE, LOCK_TABLE);
    b.attr_str(NFTA_RULE_CHAIN, chain);
    b.nest_start(NFTA_RULE_EXPRESSIONS);
    exprs(b);
    b.nest_end();
    b.end_msg();
}

fn expr(b: &mut Batch, name: &str, data: impl FnOnce(&mut Batch)) {
    b.nest_start(NFTA_LIST_ELEM);
    b.attr_str(NFTA_EXPR_NAME, name);
    b.nest_start(NFTA_EXPR_DATA);
    data(b);
    b.nest_end();
    b.nest_end();
}

fn meta(b: &mut Batch, key: u32) {
    expr(b, "meta", |b| {
        b.attr_be32(NFTA_META_KEY, key);
        b.attr_be32(NFTA_META_DREG, NFT_REG32_00);
    });
}

fn cmp_eq(b: &mut Batch, value: &[u8]) {
    expr(b, "cmp", |b| {
        b.attr_be32(NFTA_CMP_SREG, NFT_REG32_00);
        b.attr_be32(NFTA_CMP_OP, NFT_CMP_EQ);
        b.nest_start(NFTA_CMP_DATA);
        b.attr(NFTA_DATA_VALUE, value);
        b.nest_end();
    });
}

fn payload(b: &mut Batch, dreg: u32, base: u32, offset: u32, len: u32) {
    expr(b, "payload", |b| {
        b.attr_be32(NFTA_PAYLOAD_DREG, dreg);
        b.attr_be32(NFTA_PAYLOAD_BASE, base);
        b.attr_be32(NFTA_PAYLOAD_OFFSET, offset);
        b.attr_be32(NFTA_PAYLOAD_LEN, len);
    });
}

fn verdict(b: &mut Batch, code: u32) {
    expr(b, "immediate", |b| {
        b.attr_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        b.nest_start(NFTA_IMMEDIATE_DATA);
        b.nest_start(NFTA_DATA_VERDICT);
        b.attr_be32(NFTA_VERDICT_CODE, code);
        b.nest_end();
        b.nest_end();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_pad_ports_to_register_slots() {
        let k = key(&[10, 0, 0, 1], 80, &[10, 0, 0, 2], 1234);
        assert_eq!(k, [10, 0, 0, 1, 0, 80, 0, 0, 10, 0, 0, 2, 0x04, 0xd2, 0, 0]);
        assert_eq!(k.len(), KEY_LEN4);
        let k6 = key(&[0; 16], 1, &[0; 16], 2);
        assert_eq!(k6.len(), KEY_LEN6);
    }

    #[test]
    fn mapped_addresses_lock_as_ipv4() {
        let a: SocketAddr = "[::ffff:10.77.0.1]:80".parse().unwrap();
        assert_eq!(wire_ip(&a), "10.77.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn concatenated_key_type_matches_nft() {
        // `nft` encodes ipv4_addr . inet_service . ipv4_addr . inet_service as 0x1cd1cd.
        let t = (((TYPE_IPV4 << 6 | TYPE_INET_SERVICE) << 6 | TYPE_IPV4) << 6) | TYPE_INET_SERVICE;
        assert_eq!(t, 0x001c_d1cd);
    }
}
