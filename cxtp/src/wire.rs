//! Bounds-checked reading of a message body, and address encoding.
//!
//! Every read goes through [`Reader`], which returns
//! [`DecodeError::Truncated`] instead of panicking, so no decode path
//! indexes input directly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};

/// Cursor over a received message. Slices are zero-copy views of `buf`.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a Bytes, pos: usize) -> Self {
        Reader { buf, pos }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take_slice(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        let end = self.pos.checked_add(n).filter(|_| n <= available);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                field,
                needed: n,
                available,
            }),
        }
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take_slice(n, field)?;
        Ok(self.buf.slice(start..start + n))
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let s = self.take_slice(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn addr(&mut self, ipv4: bool, field: &'static str) -> Result<IpAddr, DecodeError> {
        Ok(if ipv4 {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))
        })
    }
}

/// Octets an address takes on the wire.
pub(crate) fn addr_len(addr: &IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

/// Writes an address in network order.
pub(crate) fn put_addr<B: BufMut + ?Sized>(out: &mut B, addr: &IpAddr) {
    match addr {
        IpAddr::V4(a) => out.put_slice(&a.octets()),
        IpAddr::V6(a) => out.put_slice(&a.octets()),
    }
}

/// Checks that all addresses of one message share the family the V bit names.
pub(crate) fn same_family(a: &IpAddr, b: &IpAddr) -> Result<(), EncodeError> {
    if a.is_ipv4() == b.is_ipv4() {
        Ok(())
    } else {
        Err(EncodeError::MixedAddressFamilies)
    }
}

/// Rounds up to the next multiple of 8.
pub(crate) const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}
