//! Why a migration did not complete: one typed error for both sides, mapped
//! here — and only here — to what each audience is told: the MIH Status and
//! reason code of a refused commit, the CXTP status per Feature Profile Type
//! of a CTDR, the history [`Outcome`], and the text of the SDK events.

use crate::history::Outcome;
use edgemob_cxtp::{Fpt, Status as CxtpStatus};
use edgemob_mih::Reason;

/// Everything that can end a migration other than success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    // ---- source side: the commit
    #[error("target {peer} refused: {why}")]
    Refused { peer: String, why: String },
    #[error(
        "no MIH_N2N_HO_Commit response from {peer} within {waited_ms} ms{}",
        if *.acknowledged { " (request acknowledged)" } else { "" }
    )]
    CommitTimeout {
        peer: String,
        waited_ms: u64,
        acknowledged: bool,
    },
    #[error("unexpected {message} from {peer}")]
    CommitUnexpected { peer: String, message: String },
    #[error("cannot send MIH_N2N_HO_Commit: {0}")]
    CommitSend(String),

    // ---- either side: the services
    #[error("service {service} is not listening for events")]
    ServiceNotListening { service: String, fpt: Fpt },
    #[error("services did not export within {waited_ms} ms")]
    ExportTimeout { waited_ms: u64 },
    #[error("service {service} refused to export: {why}")]
    ExportRefused { service: String, why: String },
    #[error("service {service} went away during the export")]
    ExportServiceGone { service: String },
    #[error("services did not import within {waited_ms} ms")]
    ImportTimeout { waited_ms: u64, fpt: Fpt },
    #[error("service {service} refused the import: {why}")]
    ImportRefused {
        service: String,
        fpt: Fpt,
        why: String,
    },
    #[error("service {service} went away during the import")]
    ImportServiceGone { service: String, fpt: Fpt },

    // ---- source side: the sockets and the transfer
    #[error("UE {0} was deregistered during the migration")]
    UeDeregistered(String),
    #[error("cannot lock the UE's connections: {0}")]
    Lock(String),
    #[error("{0}")]
    Dump(String),
    #[error("no CXTP link to {peer}")]
    NoCxtpLink { peer: String },
    #[error("cannot send the contexts: {0}")]
    TransferSend(String),
    #[error("target {peer} could not install the contexts: {statuses}")]
    NotInstalled { peer: String, statuses: String },
    #[error("no CTDR from {peer} within {waited_ms} ms")]
    NoCtdr { peer: String, waited_ms: u64 },
    #[error("{peer} cancelled the transfer")]
    TransferCancelled { peer: String },
    #[error("CXTP connection to {peer} lost during the transfer")]
    ConnectionLost { peer: String },

    // ---- target side: admission
    #[error("request lacks edgemob's migration id or UE address")]
    IncompleteRequest,
    #[error("{enbc} does not serve cell {cell}")]
    CellNotServed { enbc: String, cell: u32 },
    #[error("service {service} is not registered on {enbc}")]
    ServiceNotHosted { service: String, enbc: String },
    #[error("service {service} on {enbc} does not accept contexts of FPT {fpt:#06x}")]
    FptNotAccepted {
        service: String,
        enbc: String,
        fpt: u16,
    },
    #[error("UE {ue} is already served by {enbc}")]
    AlreadyServed { ue: String, enbc: String },

    // ---- target side: the arrival
    #[error("no accepted MIH_N2N_HO_Commit from {peer} for UE {ue} (migration {id:#x})")]
    NotAccepted { peer: String, ue: String, id: u64 },
    #[error("transfer without a valid migration manifest: {0}")]
    BadManifest(String),
    #[error("service {0} is no longer registered here")]
    ServiceNoLongerHosted(String),
    #[error("connection image {connection} does not decode: {why}")]
    BadImage { connection: u32, why: String },
    #[error("{0}")]
    Restore(String),
    #[error("no CTD from {peer} within {waited_ms} ms of the accepted commit")]
    CtdNeverCame { peer: String, waited_ms: u64 },
    #[error("{peer} cancelled the transfer before the handover completed")]
    SourceCancelled { peer: String },
    #[error("{peer} abandoned the handover it had committed")]
    SourceAbandoned { peer: String },
}

/// Which end of a migration is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl MigrationError {
    /// The history outcome of a migration that ended with this error.
    ///
    /// A target's refusal is `Rejected` on both sides. On the source, a
    /// commit that never got an answer is `Failed` (nothing was frozen);
    /// every later failure is `RolledBack` (the UE stays served here). On
    /// the target every failure after admission is `Failed`.
    pub fn outcome(&self, side: Side) -> Outcome {
        use MigrationError as E;
        match (side, self) {
            (_, E::Refused { .. })
            | (
                Side::Target,
                E::IncompleteRequest
                | E::CellNotServed { .. }
                | E::ServiceNotHosted { .. }
                | E::FptNotAccepted { .. }
                | E::AlreadyServed { .. },
            ) => Outcome::Rejected,
            (Side::Source, E::CommitTimeout { .. } | E::CommitUnexpected { .. })
            | (Side::Source, E::CommitSend(_)) => Outcome::Failed,
            (Side::Source, _) => Outcome::RolledBack,
            (Side::Target, _) => Outcome::Failed,
        }
    }

    /// The reason code a target puts in a refused MIH_N2N_HO_Commit
    /// response (edgemob's vendor TLV); `None` for errors that are not
    /// admission refusals.
    pub fn mih_reason_code(&self) -> Option<u16> {
        use MigrationError as E;
        Some(match self {
            E::IncompleteRequest | E::CellNotServed { .. } => Reason::INCOMPLETE_REQUEST,
            E::ServiceNotHosted { .. } | E::FptNotAccepted { .. } => Reason::SERVICE_NOT_HOSTED,
            E::AlreadyServed { .. } => Reason::BUSY,
            _ => return None,
        })
    }

    /// The CTDR a target answers a transfer with when it fails with this
    /// error: one status per FPT present in the transfer (`fpts`, sorted
    /// and unique). The context to blame gets the failure status, the rest
    /// success — or all are rejected when nothing of the transfer is usable.
    pub fn ctdr_statuses(&self, fpts: &[Fpt]) -> Vec<(Fpt, CxtpStatus)> {
        use MigrationError as E;
        let blame = |culprit: Fpt, status: CxtpStatus| {
            fpts.iter()
                .map(|&f| {
                    (
                        f,
                        if f == culprit {
                            status
                        } else {
                            CxtpStatus::SUCCESS
                        },
                    )
                })
                .collect()
        };
        match self {
            E::BadManifest(_) => fpts
                .iter()
                .map(|&f| {
                    (
                        f,
                        if f == Fpt::MIGRATION_MANIFEST {
                            CxtpStatus::INCOMPLETE
                        } else {
                            CxtpStatus::REJECTED
                        },
                    )
                })
                .collect(),
            E::BadImage { .. } => blame(Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::INCOMPLETE),
            E::Restore(_) | E::Lock(_) => {
                blame(Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::RESTORE_FAILED)
            }
            E::ServiceNotListening { fpt, .. }
            | E::ImportTimeout { fpt, .. }
            | E::ImportRefused { fpt, .. }
            | E::ImportServiceGone { fpt, .. } => blame(*fpt, CxtpStatus::REJECTED),
            _ => fpts.iter().map(|&f| (f, CxtpStatus::REJECTED)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_audience_hears_its_own_code_for_one_error() {
        let fpts = [
            Fpt::MIGRATION_MANIFEST,
            Fpt::TCP_CONNECTION_IMAGE,
            Fpt(0xE002),
        ];
        let e = MigrationError::ImportRefused {
            service: "video".into(),
            fpt: Fpt(0xE002),
            why: "full".into(),
        };
        assert_eq!(e.outcome(Side::Target), Outcome::Failed);
        assert_eq!(e.mih_reason_code(), None);
        assert_eq!(
            e.ctdr_statuses(&fpts),
            vec![
                (Fpt::MIGRATION_MANIFEST, CxtpStatus::SUCCESS),
                (Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::SUCCESS),
                (Fpt(0xE002), CxtpStatus::REJECTED),
            ]
        );
        assert_eq!(e.to_string(), "service video refused the import: full");

        let refused = MigrationError::AlreadyServed {
            ue: "imsi-1".into(),
            enbc: "enbc2".into(),
        };
        assert_eq!(refused.outcome(Side::Target), Outcome::Rejected);
        assert_eq!(refused.mih_reason_code(), Some(Reason::BUSY));

        let restore = MigrationError::Restore("cannot restore".into());
        assert!(
            restore
                .ctdr_statuses(&fpts)
                .contains(&(Fpt::TCP_CONNECTION_IMAGE, CxtpStatus::RESTORE_FAILED))
        );
        let manifest = MigrationError::BadManifest("truncated".into());
        assert_eq!(
            manifest.ctdr_statuses(&fpts)[0],
            (Fpt::MIGRATION_MANIFEST, CxtpStatus::INCOMPLETE)
        );
    }

    #[test]
    fn the_source_fails_before_freezing_and_rolls_back_after() {
        let timeout = MigrationError::CommitTimeout {
            peer: "enbc2".into(),
            waited_ms: 200,
            acknowledged: true,
        };
        assert_eq!(timeout.outcome(Side::Source), Outcome::Failed);
        assert_eq!(
            timeout.to_string(),
            "no MIH_N2N_HO_Commit response from enbc2 within 200 ms (request acknowledged)"
        );
        let refused = MigrationError::Refused {
            peer: "enbc2".into(),
            why: "busy".into(),
        };
        assert_eq!(refused.outcome(Side::Source), Outcome::Rejected);
        let lost = MigrationError::ConnectionLost {
            peer: "enbc2".into(),
        };
        assert_eq!(lost.outcome(Side::Source), Outcome::RolledBack);
    }
}
