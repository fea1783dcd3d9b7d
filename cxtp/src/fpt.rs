//! Feature Profile Type (FPT) codes: what a Context Data Block carries.
//!
//! RFC 4065 §6 creates the IANA "Context Transfer Profile Type Registry"
//! (16-bit codes, Expert Review) with only two entries: 0 (reserved) and
//! 1 (IPv6 Multicast Listener Context). Neither RFC 4065 nor RFC 4067 sets
//! aside an experimental or private-use range, so edgemob claims one itself:
//!
//! | range | owner | use |
//! |---|---|---|
//! | `0x0000` | IANA | reserved |
//! | `0x0001` | IANA | IPv6 Multicast Listener Context |
//! | `0x0002..=0xDFFF` | IANA | future registrations (carried opaquely) |
//! | `0xE000..=0xE0FF` | edgemob | edgemob's own context types |
//! | `0xE100..=0xFFFE` | services | codes services register ([`Fpt::service`]) |
//! | `0xFFFF` | edgemob | reserved, never sent |
//!
//! The private block sits at the top of the space, far from where IANA
//! allocates (it has allocated one code in twenty years), and every code in
//! it uses edgemob's exact-length segment format (see the crate docs), so a
//! context's length survives the CDB's zero padding. Codes outside the block
//! are carried as plain RFC 4067 CDBs whose Data layout is the FPT
//! specification's business.

use std::fmt;

/// A 16-bit Feature Profile Type code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fpt(pub u16);

impl Fpt {
    /// IANA: reserved.
    pub const RESERVED: Fpt = Fpt(0x0000);
    /// IANA: IPv6 Multicast Listener Context.
    pub const IPV6_MULTICAST_LISTENER: Fpt = Fpt(0x0001);

    /// First code of edgemob's private block.
    pub const EDGEMOB_FIRST: u16 = 0xE000;
    /// Last code of edgemob's private block (inclusive).
    pub const EDGEMOB_LAST: u16 = 0xFFFE;

    /// edgemob: transfer manifest / continuation marker of a multi-CTD
    /// transfer. Internal to the large-context layer; never a context.
    pub const TRANSFER_MANIFEST: Fpt = Fpt(0xE000);
    /// edgemob: one TCP connection image (a frozen socket, TCP_REPAIR dump).
    pub const TCP_CONNECTION_IMAGE: Fpt = Fpt(0xE001);
    /// edgemob: a service's per-user application context blob.
    pub const SERVICE_APP_CONTEXT: Fpt = Fpt(0xE002);
    /// edgemob: the migration manifest the agents exchange — which service
    /// and which connection each other context of the transfer belongs to.
    pub const MIGRATION_MANIFEST: Fpt = Fpt(0xE003);

    /// First code services may register.
    pub const SERVICE_FIRST: u16 = 0xE100;
    /// Last code services may register (inclusive).
    pub const SERVICE_LAST: u16 = 0xFFFE;

    /// A service-registered code, `SERVICE_FIRST + offset`.
    ///
    /// Returns `None` when the result would leave the service range
    /// (`offset > 0x1EFE`), so a service can never collide with IANA codes
    /// or edgemob's own.
    pub const fn service(offset: u16) -> Option<Fpt> {
        match Self::SERVICE_FIRST.checked_add(offset) {
            Some(code) if code <= Self::SERVICE_LAST => Some(Fpt(code)),
            _ => None,
        }
    }

    /// Checks that `code` lies in the service range.
    pub const fn from_service_code(code: u16) -> Option<Fpt> {
        if code >= Self::SERVICE_FIRST && code <= Self::SERVICE_LAST {
            Some(Fpt(code))
        } else {
            None
        }
    }

    /// The raw code.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// Whether the code lies in edgemob's private block and so uses the
    /// exact-length segment format.
    pub const fn is_edgemob(self) -> bool {
        self.0 >= Self::EDGEMOB_FIRST && self.0 <= Self::EDGEMOB_LAST
    }

    /// Whether a service registered this code.
    pub const fn is_service(self) -> bool {
        self.0 >= Self::SERVICE_FIRST && self.0 <= Self::SERVICE_LAST
    }

    /// Whether a context may carry this code (the manifest code and the
    /// reserved codes may not).
    pub const fn is_context(self) -> bool {
        self.0 != Self::RESERVED.0 && self.0 != Self::TRANSFER_MANIFEST.0 && self.0 != 0xFFFF
    }
}

impl From<u16> for Fpt {
    fn from(code: u16) -> Self {
        Fpt(code)
    }
}

impl From<Fpt> for u16 {
    fn from(fpt: Fpt) -> Self {
        fpt.0
    }
}

impl fmt::Display for Fpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fpt::RESERVED => f.write_str("reserved(0x0000)"),
            Fpt::IPV6_MULTICAST_LISTENER => f.write_str("ipv6-multicast-listener(0x0001)"),
            Fpt::TRANSFER_MANIFEST => f.write_str("edgemob-transfer-manifest(0xE000)"),
            Fpt::TCP_CONNECTION_IMAGE => f.write_str("edgemob-tcp-connection-image(0xE001)"),
            Fpt::SERVICE_APP_CONTEXT => f.write_str("edgemob-service-app-context(0xE002)"),
            Fpt::MIGRATION_MANIFEST => f.write_str("edgemob-migration-manifest(0xE003)"),
            Fpt(code) => write!(f, "fpt(0x{code:04X})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_range_is_checked() {
        assert_eq!(Fpt::service(0), Some(Fpt(0xE100)));
        assert_eq!(Fpt::service(0x1EFE), Some(Fpt(0xFFFE)));
        assert_eq!(Fpt::service(0x1EFF), None);
        assert_eq!(Fpt::service(u16::MAX), None);
        assert_eq!(Fpt::from_service_code(0xE0FF), None);
        assert_eq!(Fpt::from_service_code(0xFFFF), None);
        assert!(Fpt::service(7).is_some_and(|f| f.is_service() && f.is_edgemob()));
    }

    #[test]
    fn classification() {
        assert!(!Fpt::IPV6_MULTICAST_LISTENER.is_edgemob());
        assert!(Fpt::TCP_CONNECTION_IMAGE.is_edgemob());
        assert!(!Fpt::TCP_CONNECTION_IMAGE.is_service());
        assert!(!Fpt::TRANSFER_MANIFEST.is_context());
        assert!(!Fpt::RESERVED.is_context());
        assert!(!Fpt(0xFFFF).is_edgemob());
        assert!(Fpt(0x1234).is_context());
        assert_eq!(
            Fpt::SERVICE_APP_CONTEXT.to_string(),
            "edgemob-service-app-context(0xE002)"
        );
    }
}
