//! The migration manifest: the first context of every edgemob transfer
//! (FPT `MIGRATION_MANIFEST`). It says which migration the transfer belongs
//! to and which service and connection each following context is for:
//!
//! ```text
//! contexts[0]      manifest (this message, protobuf)
//! contexts[1..=s]  one application context per service (its FPT)
//! contexts[s+1..]  one TCP connection image per connection (TCP_CONNECTION_IMAGE)
//! ```

use edgemob_cxtp::{Context, Fpt};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Manifest {
    #[prost(uint64, tag = "1")]
    pub migration_id: u64,
    #[prost(string, tag = "2")]
    pub ue: String,
    #[prost(uint32, tag = "3")]
    pub source_cell: u32,
    #[prost(uint32, tag = "4")]
    pub target_cell: u32,
    #[prost(message, repeated, tag = "5")]
    pub services: Vec<ManifestService>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ManifestService {
    #[prost(string, tag = "1")]
    pub name: String,
    /// FPT of the service's application context.
    #[prost(uint32, tag = "2")]
    pub fpt: u32,
    /// Index of the application context in the transfer.
    #[prost(uint32, tag = "3")]
    pub context_index: u32,
    #[prost(message, repeated, tag = "4")]
    pub connections: Vec<ManifestConn>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ManifestConn {
    #[prost(uint32, tag = "1")]
    pub connection_id: u32,
    /// Index of the connection's TCP image in the transfer.
    #[prost(uint32, tag = "2")]
    pub image_index: u32,
}

/// Why a transfer's contexts do not form a valid migration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the transfer does not start with a migration manifest")]
    Missing,
    #[error("the migration manifest does not decode: {0}")]
    Decode(String),
    #[error(
        "service {service}: context index {index} is not an application context of FPT {fpt:#06x}"
    )]
    BadContextIndex {
        service: String,
        index: u32,
        fpt: u32,
    },
    #[error("service {service}: image index {index} is not a TCP connection image")]
    BadImageIndex { service: String, index: u32 },
    #[error("context {0} is referenced twice")]
    Reused(u32),
}

impl Manifest {
    pub fn to_context(&self) -> Context {
        Context::new(Fpt::MIGRATION_MANIFEST, prost::Message::encode_to_vec(self))
    }

    /// Decodes the manifest of `contexts` and checks every index it holds.
    pub fn parse(contexts: &[Context]) -> Result<Manifest, ManifestError> {
        let first = contexts.first().ok_or(ManifestError::Missing)?;
        if first.fpt != Fpt::MIGRATION_MANIFEST {
            return Err(ManifestError::Missing);
        }
        let m: Manifest = prost::Message::decode(first.data.as_ref())
            .map_err(|e| ManifestError::Decode(e.to_string()))?;
        let mut used = vec![false; contexts.len()];
        used[0] = true;
        let mut claim = |i: u32| -> Result<&Context, ManifestError> {
            let slot = used.get_mut(i as usize).ok_or(ManifestError::Reused(i))?;
            if *slot {
                return Err(ManifestError::Reused(i));
            }
            *slot = true;
            Ok(&contexts[i as usize])
        };
        for s in &m.services {
            let c = claim(s.context_index).map_err(|_| ManifestError::BadContextIndex {
                service: s.name.clone(),
                index: s.context_index,
                fpt: s.fpt,
            })?;
            if u32::from(c.fpt.code()) != s.fpt || c.fpt == Fpt::TCP_CONNECTION_IMAGE {
                return Err(ManifestError::BadContextIndex {
                    service: s.name.clone(),
                    index: s.context_index,
                    fpt: s.fpt,
                });
            }
            for conn in &s.connections {
                let c = claim(conn.image_index).map_err(|_| ManifestError::BadImageIndex {
                    service: s.name.clone(),
                    index: conn.image_index,
                })?;
                if c.fpt != Fpt::TCP_CONNECTION_IMAGE {
                    return Err(ManifestError::BadImageIndex {
                        service: s.name.clone(),
                        index: conn.image_index,
                    });
                }
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Manifest, Vec<Context>) {
        let m = Manifest {
            migration_id: 9,
            ue: "imsi-1".into(),
            source_cell: 1,
            target_cell: 2,
            services: vec![ManifestService {
                name: "video".into(),
                fpt: 0xE002,
                context_index: 1,
                connections: vec![ManifestConn {
                    connection_id: 0,
                    image_index: 2,
                }],
            }],
        };
        let contexts = vec![
            m.to_context(),
            Context::new(Fpt::SERVICE_APP_CONTEXT, b"offset=1".to_vec()),
            Context::new(Fpt::TCP_CONNECTION_IMAGE, b"image".to_vec()),
        ];
        (m, contexts)
    }

    #[test]
    fn a_manifest_round_trips_and_checks_its_indices() {
        let (m, c) = sample();
        assert_eq!(Manifest::parse(&c).unwrap(), m);
        assert_eq!(Manifest::parse(&c[1..]), Err(ManifestError::Missing));
        let mut bad = c.clone();
        bad.swap(1, 2);
        assert!(matches!(
            Manifest::parse(&bad),
            Err(ManifestError::BadContextIndex { .. })
        ));
        let mut m2 = m.clone();
        m2.services[0].connections[0].image_index = 1;
        let mut c2 = c.clone();
        c2[0] = m2.to_context();
        assert!(Manifest::parse(&c2).is_err(), "one context used twice");
        let mut m3 = m;
        m3.services[0].connections[0].image_index = 7;
        c2[0] = m3.to_context();
        assert!(matches!(
            Manifest::parse(&c2),
            Err(ManifestError::BadImageIndex { index: 7, .. })
        ));
        c2[0] = Context::new(Fpt::MIGRATION_MANIFEST, vec![0xFF; 3]);
        assert!(matches!(
            Manifest::parse(&c2),
            Err(ManifestError::Decode(_))
        ));
    }
}
