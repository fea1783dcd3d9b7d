//! The content directory: safe lookups and content identifiers.
//!
//! Every eNBC holds the same files. A file's [`ContentId`] (size and
//! SHA-256) travels in a UE's context so that the eNBC it moves to can
//! check its own copy is the same before it takes the UE over. Hashes are
//! computed once, when the server starts ([`Library::scan`]), and again
//! only for a file that changed (size or modification time) since.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Identifies a file's content: its size and SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentId {
    pub size: u64,
    pub sha256: [u8; 32],
}

impl ContentId {
    /// The strong entity tag sent in `ETag`: the first 128 bits of the hash.
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex(&self.sha256[..16]))
    }

    /// Hashes everything `r` yields.
    pub fn of_reader(mut r: impl Read) -> io::Result<ContentId> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ContentId {
            size,
            sha256: h.finalize().into(),
        })
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ContentId({} octets, sha256 {})",
            self.size,
            hex(&self.sha256)
        )
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether `name` is a file name the server could have produced from a
/// request target ([`crate::http::target_name`]): relative, `/`-separated,
/// no empty segments, no segment starting with `.`, no NUL.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && name
            .split('/')
            .all(|s| !s.is_empty() && !s.starts_with('.'))
}

/// Why a file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no such file")]
    NotFound,
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    size: u64,
    mtime: Option<SystemTime>,
    id: ContentId,
}

/// A file opened for serving, with its content identifier.
#[derive(Debug)]
pub struct OpenFile {
    pub file: File,
    pub id: ContentId,
}

/// The content directory every UE is served from.
#[derive(Debug)]
pub struct Library {
    root: PathBuf,
    /// The root, open: lookups resolve beneath it in one system call.
    root_dir: File,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Library {
    /// Opens the content directory `root` (nothing is hashed yet; see
    /// [`Library::scan`]).
    pub fn open(root: impl AsRef<Path>) -> io::Result<Arc<Library>> {
        let root = root.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let root_dir = File::open(&root)?;
        Ok(Arc::new(Library {
            root,
            root_dir,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// The content directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hashes every servable file under the root (hidden files and
    /// directories are skipped, and so are entries that cannot be read), so
    /// that requests and imports find their identifiers ready. Returns how
    /// many files and octets were hashed.
    pub fn scan(&self) -> io::Result<(usize, u64)> {
        let mut stack = vec![(self.root.clone(), String::new())];
        let (mut files, mut octets) = (0, 0);
        while let Some((dir, prefix)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                // Only an unreadable root is fatal.
                Err(e) if prefix.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(dir = %prefix, error = %e, "cannot index");
                    continue;
                }
            };
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let Ok(fname) = entry.file_name().into_string() else {
                    continue;
                };
                if fname.starts_with('.') {
                    continue;
                }
                let name = if prefix.is_empty() {
                    fname
                } else {
                    format!("{prefix}/{fname}")
                };
                // Follows symbolic links, as serving does.
                let Ok(meta) = std::fs::metadata(entry.path()) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push((entry.path(), name));
                } else if meta.is_file() {
                    match self.lookup_blocking(&name) {
                        Ok(f) => {
                            files += 1;
                            octets += f.id.size;
                        }
                        Err(e) => tracing::warn!(file = %name, error = %e, "cannot index"),
                    }
                }
            }
        }
        Ok((files, octets))
    }

    /// Opens `name` (a [`valid_name`]) inside the root. Symbolic links are
    /// followed only while they stay inside the root.
    fn open_file(&self, name: &str) -> Result<(File, u64, Option<SystemTime>), LookupError> {
        if !valid_name(name) {
            return Err(LookupError::NotFound);
        }
        let file = match self.open_beneath(name) {
            Some(opened) => opened?,
            None => self.open_canonical(name)?,
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(LookupError::NotFound);
        }
        Ok((file, meta.len(), meta.modified().ok()))
    }

    /// The usual case in one `openat2(RESOLVE_BENEATH)`, where resolving
    /// the path component by component took a `readlink` each and an
    /// import waits on it. `None` when the kernel cannot decide it this way
    /// (no `openat2`, or an absolute symbolic link, which it refuses even
    /// when it points inside the root): [`Library::open_canonical`] then.
    fn open_beneath(&self, name: &str) -> Option<Result<File, LookupError>> {
        use nix::errno::Errno;
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(&self.root_dir, name, how) {
            Ok(fd) => Some(Ok(File::from(fd))),
            Err(Errno::EXDEV | Errno::ENOSYS | Errno::EPERM | Errno::ELOOP) => None,
            Err(Errno::ENOENT | Errno::ENOTDIR) => Some(Err(LookupError::NotFound)),
            Err(e) => Some(Err(io::Error::from(e).into())),
        }
    }

    /// Resolves `name` to its canonical path and opens it if that lies
    /// inside the root.
    fn open_canonical(&self, name: &str) -> Result<File, LookupError> {
        let path = match self.root.join(name).canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LookupError::NotFound),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(LookupError::NotFound);
            }
            Err(e) => return Err(e.into()),
        };
        if !path.starts_with(&self.root) {
            return Err(LookupError::NotFound);
        }
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LookupError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    fn cached(&self, name: &str, size: u64, mtime: Option<SystemTime>) -> Option<ContentId> {
        let cache = self.cache.lock().expect("not poisoned");
        cache
            .get(name)
            .filter(|c| c.size == size && c.mtime == mtime && mtime.is_some())
            .map(|c| c.id)
    }

    fn remember(&self, name: &str, size: u64, mtime: Option<SystemTime>, id: ContentId) {
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(name.to_owned(), Cached { size, mtime, id });
    }

    /// Opens `name` and identifies it, hashing it here if it is new or
    /// changed since it was last hashed.
    pub fn lookup_blocking(&self, name: &str) -> Result<OpenFile, LookupError> {
        let (file, size, mtime) = self.open_file(name)?;
        if let Some(id) = self.cached(name, size, mtime) {
            return Ok(OpenFile { file, id });
        }
        let id = hash_open_file(&file)?;
        self.remember(name, size, mtime, id);
        Ok(OpenFile { file, id })
    }

    /// Opens `name` and identifies it; a file that must be hashed first is
    /// hashed on the blocking pool so other sessions keep running.
    pub async fn lookup(self: &Arc<Self>, name: &str) -> Result<OpenFile, LookupError> {
        let (file, size, mtime) = self.open_file(name)?;
        if let Some(id) = self.cached(name, size, mtime) {
            return Ok(OpenFile { file, id });
        }
        tracing::debug!(file = %name, "hashing a new or changed file");
        let (lib, name) = (Arc::clone(self), name.to_owned());
        tokio::task::spawn_blocking(move || {
            let id = hash_open_file(&file)?;
            lib.remember(&name, size, mtime, id);
            Ok(OpenFile { file, id })
        })
        .await
        .map_err(|e| LookupError::Io(io::Error::other(e)))?
    }
}

/// Hashes an open file from its start, without moving its cursor.
fn hash_open_file(file: &File) -> io::Result<ContentId> {
    use std::os::unix::fs::FileExt;
    struct At<'a>(&'a File, u64);
    impl Read for At<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read_at(buf, self.1)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    ContentId::of_reader(At(file, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.mp4"), b"hello").unwrap();
        std::fs::write(root.join("sub/b.mp4"), b"world!").unwrap();
        std::fs::write(dir.path().join("secret"), b"nope").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("a.mp4"), root.join("in.mp4")).unwrap();
        std::os::unix::fs::symlink("../a.mp4", root.join("sub/rel.mp4")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("sub/up")).unwrap();
        let lib = Library::open(&root).unwrap();
        assert_eq!(lib.scan().unwrap(), (4, 21));
        let a = lib.lookup_blocking("a.mp4").unwrap();
        assert_eq!(a.id.size, 5);
        assert_eq!(a.id, lib.lookup_blocking("in.mp4").unwrap().id);
        assert_eq!(a.id, lib.lookup_blocking("sub/rel.mp4").unwrap().id);
        assert_eq!(lib.lookup_blocking("sub/b.mp4").unwrap().id.size, 6);
        for bad in [
            "out",
            "sub/up",
            "sub",
            "missing",
            "../secret",
            "/etc/passwd",
            "",
            "a.mp4/x",
        ] {
            assert!(
                matches!(lib.lookup_blocking(bad), Err(LookupError::NotFound)),
                "{bad}"
            );
        }
        assert_eq!(
            a.id.etag(),
            "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"",
            "sha256(\"hello\")"
        );
    }

    #[test]
    fn changed_files_are_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"one").unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let one = lib.lookup_blocking("a").unwrap().id;
        std::fs::write(dir.path().join("a"), b"three").unwrap();
        let three = lib.lookup_blocking("a").unwrap().id;
        assert_ne!(one, three);
        assert_eq!(three.size, 5);
    }

    #[test]
    fn names() {
        for ok in ["a", "a/b.mp4", "x y/z"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", ".a", "a/../b", "a/./b", "a\0b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
