//! Named network namespaces (`/run/netns/<name>`, the layout `ip netns` uses):
//! create, enter from a thread or a child process, find the processes inside,
//! delete. Its `unsafe` (like route.rs's) is confined to thin syscall wrappers.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Result, TestbedError};

/// Where `ip netns` keeps its bind-mounted namespace files.
pub const NETNS_DIR: &str = "/run/netns";

/// Path of the namespace file of `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Runs `ip` with the given arguments (and optional batch input on stdin).
pub(crate) fn ip(args: &[&str], batch: Option<&str>) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args)
        .stdin(if batch.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let command = format!("ip {}", args.join(" "));
    let mut child = cmd.spawn().map_err(|e| TestbedError::Command {
        command: command.clone(),
        detail: e.to_string(),
    })?;
    if let Some(text) = batch {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin was piped");
        stdin
            .write_all(text.as_bytes())
            .map_err(TestbedError::sys("write to ip -batch"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(TestbedError::sys("wait for ip"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TestbedError::Command {
            command,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Creates the named namespace.
pub fn create(name: &str) -> Result<()> {
    ip(&["netns", "add", name], None)
}

/// Kills every process inside the namespace, then removes its name. The
/// namespace itself lives on while sockets of this process still use it.
pub fn destroy(name: &str) -> Result<()> {
    kill_all(name);
    ip(&["netns", "del", name], None)
}

/// Opens the namespace file (to `setns` into it later).
pub fn open(name: &str) -> Result<File> {
    File::open(path(name)).map_err(TestbedError::sys("open /run/netns/<name>"))
}

/// Moves the calling thread into the network namespace behind `fd`.
pub fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is a valid, open descriptor for the lifetime of the call;
    // setns only changes the calling thread's namespace.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes `cmd` enter the namespace between fork and exec.
pub fn command_in(name: &str, cmd: &mut Command) -> Result<()> {
    let file = open(name)?;
    // SAFETY: the hook only calls setns(2), which is async-signal-safe, on a
    // descriptor owned by the closure (kept open until the closure is dropped
    // with the Command; it is close-on-exec, so the program never sees it).
    unsafe {
        cmd.pre_exec(move || setns_net(file.as_fd()));
    }
    Ok(())
}

/// Process ids whose network namespace is `name` (what `ip netns pids` does).
pub fn pids(name: &str) -> Vec<i32> {
    let Ok(meta) = fs::metadata(path(name)) else {
        return Vec::new();
    };
    let (dev, ino) = (meta.dev(), meta.ino());
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let ns = fs::metadata(entry.path().join("ns/net")).ok()?;
            (ns.dev() == dev && ns.ino() == ino).then_some(pid)
        })
        .collect()
}

/// SIGKILLs every process in the namespace and waits (bounded) until they are gone.
pub fn kill_all(name: &str) {
    let me = std::process::id() as i32;
    for _ in 0..50 {
        let victims: Vec<i32> = pids(name).into_iter().filter(|&p| p != me).collect();
        if victims.is_empty() {
            return;
        }
        for pid in victims {
            send_signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends `sig` to `pid`; errors (already gone) are ignored.
pub fn send_signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Names of all named namespaces.
pub fn list() -> Vec<String> {
    fs::read_dir(NETNS_DIR)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the effective uid is root (a cheap proxy for the capabilities needed).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The first line of every test (and bench) that needs root: panics, with
/// what to do, unless the effective uid is root. Such a test never passes by
/// skipping: CI runs as root, and a run without it fails loudly rather than
/// reporting green for tests that did nothing.
#[track_caller]
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (network namespaces, TCP_REPAIR): run it as root, as CI does \
         (effective uid {})",
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        unsafe { libc::geteuid() }
    );
}

/// Writes a sysctl of the calling thread's network namespace.
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let file = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    fs::write(&file, value).map_err(|e| TestbedError::Command {
        command: format!("sysctl {key}={value}"),
        detail: e.to_string(),
    })
}

/// Index of an interface in the calling thread's network namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let cname = std::ffi::CString::new(OsStr::new(name).as_encoded_bytes()).map_err(|_| {
        TestbedError::Command {
            command: "if_nametoindex".into(),
            detail: format!("bad interface name {name:?}"),
        }
    })?;
    // SAFETY: `cname` is a valid NUL-terminated string for the call.
    let idx = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if idx == 0 {
        Err(TestbedError::sys("if_nametoindex")(
            io::Error::last_os_error(),
        ))
    } else {
        Ok(idx)
    }
}
