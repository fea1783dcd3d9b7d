//! One agent per network namespace and per API path. A second agent would
//! share the namespace's nf_tables lock table and its MIH identity, or take
//! over the first one's API sockets and delete them when it exits; it
//! refuses to start instead, with one line saying which.

use std::fs::File;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};

/// Abstract Unix socket names belong to the network namespace: binding one
/// is a per-namespace lock that the kernel drops when the process dies,
/// however it dies.
const NAMESPACE_LOCK: &[u8] = b"edgemob-agent";

/// Why this agent may not start.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "another edgemob agent runs in this network namespace (it owns the namespace's network lock table); stop it first"
    )]
    NamespaceTaken,
    #[error(
        "another edgemob agent serves {api} (it holds {lock}); stop it first, or give this one another listen.api"
    )]
    ApiTaken { api: String, lock: String },
    #[error("cannot take {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Held for the agent's lifetime.
#[derive(Debug)]
pub struct Instance {
    _namespace: UnixListener,
    _api: nix::fcntl::Flock<File>,
}

/// The lock file beside an API socket.
pub fn lock_path(api: &Path) -> PathBuf {
    let mut p = api.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl Instance {
    /// Takes this namespace and `api`, or says who has them.
    pub fn acquire(api: &Path) -> Result<Instance, InstanceError> {
        let io_err = |what: String| move |source| InstanceError::Io { what, source };
        let addr = SocketAddr::from_abstract_name(NAMESPACE_LOCK)
            .map_err(io_err("the namespace's agent lock".into()))?;
        let namespace = UnixListener::bind_addr(&addr).map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse {
                InstanceError::NamespaceTaken
            } else {
                InstanceError::Io {
                    what: "the namespace's agent lock".into(),
                    source: e,
                }
            }
        })?;
        let lock = lock_path(api);
        if let Some(dir) = lock.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io_err(lock.display().to_string()))?;
        let api_lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                InstanceError::ApiTaken {
                    api: api.display().to_string(),
                    lock: lock.display().to_string(),
                }
            } else {
                InstanceError::Io {
                    what: lock.display().to_string(),
                    source: errno.into(),
                }
            }
        })?;
        Ok(Instance {
            _namespace: namespace,
            _api: api_lock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_path_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("enbc1.sock");
        // Both in this test's namespace: the namespace lock is taken by the
        // first; the API lock is checked on its own below.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&api))
            .unwrap();
        let _held =
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
        match Instance::acquire(&api) {
            Err(InstanceError::ApiTaken { api: a, .. }) => {
                assert_eq!(a, api.display().to_string())
            }
            Err(InstanceError::NamespaceTaken) => {} // another agent runs here
            other => panic!("{other:?}"),
        }
        assert_eq!(
            lock_path(Path::new("/run/edgemob/enbc1.sock")),
            Path::new("/run/edgemob/enbc1.sock.lock")
        );
    }
}
