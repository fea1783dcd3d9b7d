//! Receivers allocate for octets received, never for octets claimed.
//!
//! This binary counts every allocation with an instrumented global
//! allocator, so it holds a single test: nothing else allocates meanwhile.

use std::alloc::System;
use std::net::IpAddr;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use edgemob_cxtp::transfer::{Context, EncodeOptions, encode_transfer};
use edgemob_cxtp::{Config, Endpoint, Event, Fpt, Message, TransferError};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 8, 7));

/// Octets allocated while running `f`.
fn allocated<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    (
        out,
        change.bytes_allocated + change.bytes_reallocated.max(0) as usize,
    )
}

/// A first CTD whose manifest claims `total` octets in `ctds` CTDs, with
/// one full segment of a context claiming `ctx_total` octets.
fn lying_first_ctd(total: u64, ctds: u32, ctx_total: u32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(&[0x23, 0x80, 0, 0]); // CTD, IPv4; length patched below
    b.put_u32(0);
    b.put_slice(&[10, 9, 8, 7]);
    b.put_slice(&[0xE0, 0x00, 3, 0, 1, 1]);
    b.put_u16(1);
    b.put_u32(77);
    b.put_u32(ctds);
    b.put_u64(total);
    b.put_slice(&[0xE0, 0x02, 255, 0]);
    b.put_u16(0); // context index
    b.put_u16(2024); // segment length
    b.put_u32(0); // offset
    b.put_u32(ctx_total);
    b.put_bytes(0xAB, 2024);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

#[test]
fn allocation_follows_received_octets() {
    let now = Instant::now();

    // 1. Decoding a full 65,535-octet class CTD: one copy plus the CDB list.
    let contexts = [Context::new(Fpt::SERVICE_APP_CONTEXT, vec![5u8; 60_000])];
    let mut frames = BytesMut::new();
    let opts = EncodeOptions {
        max_transfer_bytes: u64::MAX,
        ..EncodeOptions::default()
    };
    encode_transfer(MN, &contexts, &opts, &mut frames).expect("encodes");
    let frame = frames.freeze().to_vec();
    let (msg, bytes) = allocated(|| Message::decode(&frame));
    assert!(msg.is_ok());
    assert!(
        bytes <= frame.len() + 4096,
        "decode allocated {bytes} for {} octets",
        frame.len()
    );

    // 2. Garbage decodes allocate nothing.
    let (res, bytes) = allocated(|| Message::decode(&[0x23, 0x80, 0xFF, 0xFF, 1, 2, 3]));
    assert!(res.is_err());
    assert_eq!(bytes, 0);

    // 3. A manifest and a segment claiming 60 MiB (under the 64 MiB limit)
    //    with one 2 KB segment actually sent: the endpoint keeps ~one frame.
    let mut ep = Endpoint::new(Config::default());
    let lie = lying_first_ctd(60 << 20, u32::MAX, 60 << 20);
    let (res, bytes) = allocated(|| ep.handle_input(&lie, now));
    assert!(res.is_ok());
    assert!(ep.poll_event().is_none(), "waiting for more");
    assert!(
        bytes <= 4 * lie.len() + 16_384,
        "allocated {bytes} for a {}-octet frame",
        lie.len()
    );

    // 4. A 4 GiB claim is refused before anything is kept.
    let mut ep = Endpoint::new(Config::default());
    let lie = lying_first_ctd(4 << 30, 70_000, u32::MAX);
    let (_, bytes) = allocated(|| ep.handle_input(&lie, now));
    assert!(bytes <= 4 * lie.len() + 16_384, "allocated {bytes}");
    assert_eq!(
        ep.poll_event(),
        Some(Event::TransferFailed {
            mn: MN,
            error: TransferError::TooLarge {
                claimed: 4 << 30,
                limit: 64 << 20
            }
        })
    );

    // 5. A header claiming 65,535 octets, 4 of them sent: no reservation.
    let mut ep = Endpoint::new(Config::default());
    let (_, bytes) = allocated(|| ep.handle_input(&[0x23, 0x80, 0xFF, 0xFF], now));
    assert!(bytes <= 1024, "allocated {bytes} for a 4-octet claim");
}
