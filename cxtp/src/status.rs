//! Status codes of CTDR and CTAA entries.
//!
//! RFC 4067 defines only 0 (success, §2.5.4: "zero for success") and
//! `BAD_CHECKSUM` = 0x01 (§4); other values are "context-specific". edgemob
//! defines a few for its own FPTs in the upper half so they never collide
//! with the RFC's low values.

use std::fmt;

/// One octet of status for one FPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(pub u8);

impl Status {
    /// The context was received and installed.
    pub const SUCCESS: Status = Status(0x00);
    /// RFC 4067 §4: the transport checksum failed.
    pub const BAD_CHECKSUM: Status = Status(0x01);
    /// edgemob: the receiver refused the context (policy, capacity).
    pub const REJECTED: Status = Status(0x80);
    /// edgemob: the context arrived but could not be restored
    /// (e.g. a TCP connection image failed TCP_REPAIR restore).
    pub const RESTORE_FAILED: Status = Status(0x81);
    /// edgemob: the transfer arrived incomplete or malformed.
    pub const INCOMPLETE: Status = Status(0x82);

    /// Whether this is success.
    pub fn is_success(self) -> bool {
        self == Status::SUCCESS
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Status::SUCCESS => f.write_str("success"),
            Status::BAD_CHECKSUM => f.write_str("BAD_CHECKSUM"),
            Status::REJECTED => f.write_str("rejected"),
            Status::RESTORE_FAILED => f.write_str("restore-failed"),
            Status::INCOMPLETE => f.write_str("incomplete"),
            Status(code) => write!(f, "status(0x{code:02X})"),
        }
    }
}
