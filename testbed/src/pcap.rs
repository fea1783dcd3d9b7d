//! A small reader for the pcap files tcpdump writes, just enough to answer
//! what the migration tests ask of a capture: how many RST segments, how many
//! retransmissions, and the largest gap between data-bearing segments that
//! reached one host.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Result, TestbedError};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const TCP_RST: u8 = 0x04;

/// One TCP segment seen in a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment {
    /// Capture timestamp.
    pub at: SystemTime,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    /// Payload length from the IP header (not limited by the snap length).
    pub payload_len: u32,
}

impl TcpSegment {
    /// Whether the RST flag is set.
    pub fn is_rst(&self) -> bool {
        self.flags & TCP_RST != 0
    }
}

/// What a capture says about a transfer towards one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureStats {
    /// TCP segments in the capture.
    pub segments: usize,
    /// Segments with RST set, either direction.
    pub rst: usize,
    /// Data-bearing segments addressed to the receiver.
    pub data_segments: usize,
    /// Data-bearing segments to the receiver that repeated already-seen bytes.
    pub retransmissions: usize,
    /// Largest gap between consecutive data-bearing segments to the receiver.
    pub max_gap: Duration,
    /// When the segment that ended the largest gap arrived.
    pub max_gap_end: Option<SystemTime>,
}

/// Reads every TCP segment (IPv4 or IPv6 over Ethernet, Linux SLL or raw IP).
pub fn read_tcp_segments(path: &Path) -> Result<Vec<TcpSegment>> {
    let bad = |detail: &str| TestbedError::Pcap {
        path: path.display().to_string(),
        detail: detail.to_owned(),
    };
    let data = fs::read(path).map_err(TestbedError::sys("read pcap"))?;
    if data.len() < 24 {
        return Err(bad("shorter than the 24-byte global header"));
    }
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let (swap, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (false, true),
        0xd4c3_b2a1 => (true, false),
        0x4d3c_b2a1 => (true, true),
        _ => return Err(bad("not a pcap file (unknown magic)")),
    };
    let rd32 = |b: &[u8]| {
        let v = u32::from_le_bytes(b[..4].try_into().unwrap());
        if swap { v.swap_bytes() } else { v }
    };
    let linktype = rd32(&data[20..24]);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let sec = rd32(&data[off..]);
        let frac = rd32(&data[off + 4..]);
        let caplen = rd32(&data[off + 8..]) as usize;
        off += 16;
        if off + caplen > data.len() {
            break; // a record cut short by tcpdump being stopped
        }
        let frame = &data[off..off + caplen];
        off += caplen;
        let sub = if nanos {
            Duration::from_nanos(frac.into())
        } else {
            Duration::from_micros(frac.into())
        };
        let at = UNIX_EPOCH + Duration::from_secs(sec.into()) + sub;
        let l3 = match linktype {
            LINKTYPE_ETHERNET => ethernet_payload(frame),
            LINKTYPE_LINUX_SLL => frame
                .get(16..)
                .map(|p| (u16::from_be_bytes([frame[14], frame[15]]), p)),
            LINKTYPE_RAW => frame
                .first()
                .map(|b| (if b >> 4 == 6 { 0x86dd } else { 0x0800 }, frame)),
            _ => return Err(bad("unsupported link type")),
        };
        if let Some(seg) = l3.and_then(|(ethertype, p)| parse_ip(ethertype, p, at)) {
            out.push(seg);
        }
    }
    Ok(out)
}

fn ethernet_payload(frame: &[u8]) -> Option<(u16, &[u8])> {
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut off = 14;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        off = 18;
    }
    Some((ethertype, frame.get(off..)?))
}

fn parse_ip(ethertype: u16, p: &[u8], at: SystemTime) -> Option<TcpSegment> {
    let (src, dst, l4, l4_len) = match ethertype {
        0x0800 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            if *p.get(9)? != 6 || ihl < 20 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
            let src = Ipv4Addr::from(<[u8; 4]>::try_from(p.get(12..16)?).ok()?);
            let dst = Ipv4Addr::from(<[u8; 4]>::try_from(p.get(16..20)?).ok()?);
            (
                IpAddr::V4(src),
                IpAddr::V4(dst),
                p.get(ihl..)?,
                total.checked_sub(ihl)?,
            )
        }
        0x86dd => {
            if *p.get(6)? != 6 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(p.get(8..24)?).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(p.get(24..40)?).ok()?);
            (IpAddr::V6(src), IpAddr::V6(dst), p.get(40..)?, plen)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    let seq = u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?);
    let doff = usize::from(l4.get(12)? >> 4) * 4;
    let flags = *l4.get(13)?;
    Some(TcpSegment {
        at,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        flags,
        payload_len: l4_len.saturating_sub(doff) as u32,
    })
}

/// Counts RSTs and measures the data flow towards `receiver`.
pub fn analyze(segments: &[TcpSegment], receiver: IpAddr) -> CaptureStats {
    let mut stats = CaptureStats {
        segments: segments.len(),
        rst: segments.iter().filter(|s| s.is_rst()).count(),
        data_segments: 0,
        retransmissions: 0,
        max_gap: Duration::ZERO,
        max_gap_end: None,
    };
    // Highest sequence end seen per flow, to spot repeated bytes.
    let mut seen: Vec<(SocketAddr, SocketAddr, u32)> = Vec::new();
    let mut last: Option<SystemTime> = None;
    for seg in data_to(segments, receiver) {
        stats.data_segments += 1;
        let end = seg.seq.wrapping_add(seg.payload_len);
        match seen
            .iter_mut()
            .find(|(s, d, _)| *s == seg.src && *d == seg.dst)
        {
            Some((_, _, high)) => {
                if (end.wrapping_sub(*high) as i32) <= 0 {
                    stats.retransmissions += 1;
                } else {
                    *high = end;
                }
            }
            None => seen.push((seg.src, seg.dst, end)),
        }
        if let Some(prev) = last {
            let gap = seg.at.duration_since(prev).unwrap_or_default();
            if gap > stats.max_gap {
                stats.max_gap = gap;
                stats.max_gap_end = Some(seg.at);
            }
        }
        last = Some(seg.at);
    }
    stats
}

/// The gap, at `receiver`, between the last data-bearing segment before `at`
/// and the first one after it: the stall a client saw around a migration.
pub fn gap_around(segments: &[TcpSegment], receiver: IpAddr, at: SystemTime) -> Option<Duration> {
    let mut before = None;
    for seg in data_to(segments, receiver) {
        if seg.at <= at {
            before = Some(seg.at);
        } else {
            return before.and_then(|b| seg.at.duration_since(b).ok());
        }
    }
    None
}

fn data_to(segments: &[TcpSegment], receiver: IpAddr) -> impl Iterator<Item = &TcpSegment> {
    segments
        .iter()
        .filter(move |s| s.dst.ip() == receiver && s.payload_len > 0 && !s.is_rst())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(ms: u64, seq: u32, len: u32, flags: u8) -> TcpSegment {
        TcpSegment {
            at: UNIX_EPOCH + Duration::from_millis(ms),
            src: "10.0.0.1:80".parse().unwrap(),
            dst: "10.0.0.2:5000".parse().unwrap(),
            seq,
            flags,
            payload_len: len,
        }
    }

    #[test]
    fn gaps_rsts_and_retransmissions() {
        let segs = [
            seg(0, 1, 100, 0x18),
            seg(5, 101, 100, 0x18),
            seg(30, 101, 100, 0x18), // retransmission, 25 ms gap
            seg(31, 201, 0, 0x14),   // RST, no data
            seg(32, 201, 100, 0x18),
        ];
        let stats = analyze(&segs, "10.0.0.2".parse().unwrap());
        assert_eq!(stats.segments, 5);
        assert_eq!(stats.rst, 1);
        assert_eq!(stats.data_segments, 4);
        assert_eq!(stats.retransmissions, 1);
        assert_eq!(stats.max_gap, Duration::from_millis(25));
        let around = gap_around(
            &segs,
            "10.0.0.2".parse().unwrap(),
            UNIX_EPOCH + Duration::from_millis(10),
        );
        assert_eq!(around, Some(Duration::from_millis(25)));
    }

    #[test]
    fn parses_an_ethernet_ipv4_tcp_frame() {
        let mut frame = vec![0u8; 14];
        frame[12] = 0x08;
        let mut ip = vec![
            0x45, 0, 0, 52, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&(20u16 + 20 + 12).to_be_bytes());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&80u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&7u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = TCP_RST;
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        let (ethertype, payload) = ethernet_payload(&frame).unwrap();
        let s = parse_ip(ethertype, payload, UNIX_EPOCH).unwrap();
        assert_eq!(s.src, "10.0.0.1:80".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:5000".parse().unwrap());
        assert_eq!(s.seq, 7);
        assert_eq!(s.payload_len, 12);
        assert!(s.is_rst());
    }
}
