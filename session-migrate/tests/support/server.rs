//! A minimal migratable HTTP service and the migration sequence an agent
//! runs (lock, dump, path switch, restore, unlock, activate; or rollback).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use edgemob_session_migrate::{NetLock, TcpStreamImage, dump, restore_frozen};
use edgemob_testbed::{Node, Testbed};
use sha2::{Digest, Sha256};

use super::{fill, mismatch};

/// Seed of the download stream (server to UE).
pub const DOWN: u8 = 0x5a;
/// Seed of the upload stream (UE to server).
pub const UP: u8 = 0xa5;

/// The application context of one HTTP exchange: what the service would
/// hand over next to the socket image.
#[derive(Debug)]
pub struct Session {
    pub stream: TcpStream,
    /// Response header still to send.
    pub header: Vec<u8>,
    pub down_sent: u64,
    pub down_total: u64,
    pub up_received: u64,
    pub up_total: u64,
    pub up_hash: Sha256,
}

impl Session {
    /// Reads the request (`GET /<bytes>` or `POST /<bytes>` with a body) and
    /// prepares the response.
    pub fn accept(mut stream: TcpStream) -> Session {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1];
        while !req.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut buf).unwrap(), 1, "request ended early");
            req.push(buf[0]);
        }
        let text = String::from_utf8_lossy(&req).to_string();
        let path = text.split_whitespace().nth(1).unwrap();
        let down_total: u64 = path.trim_start_matches('/').parse().unwrap();
        let up_total = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let header =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {down_total}\r\nConnection: close\r\n\r\n")
                .into_bytes();
        stream.set_nonblocking(true).unwrap();
        Session {
            stream,
            header,
            down_sent: 0,
            down_total,
            up_received: 0,
            up_total,
            up_hash: Sha256::new(),
        }
    }

    pub fn done(&self) -> bool {
        self.header.is_empty()
            && self.down_sent == self.down_total
            && self.up_received == self.up_total
    }

    /// Serves until done or `stop` is set; stops only between system calls,
    /// so the session and the socket agree.
    pub fn serve(mut self, stop: &AtomicBool, pace: Option<Duration>) -> Session {
        let mut out = vec![0u8; 64 << 10];
        let mut inp = vec![0u8; 64 << 10];
        while !self.done() && !stop.load(Ordering::Acquire) {
            let mut progressed = false;
            if !self.header.is_empty() {
                match self.stream.write(&self.header) {
                    Ok(n) => {
                        self.header.drain(..n);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write header: {e}"),
                }
            } else if self.down_sent < self.down_total {
                let n = out.len().min((self.down_total - self.down_sent) as usize);
                fill(&mut out[..n], DOWN, self.down_sent);
                match self.stream.write(&out[..n]) {
                    Ok(w) => {
                        self.down_sent += w as u64;
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write body at {}: {e}", self.down_sent),
                }
            }
            if self.up_received < self.up_total {
                match self.stream.read(&mut inp) {
                    Ok(0) => panic!("upload ended at {}", self.up_received),
                    Ok(r) => {
                        if let Some(at) = mismatch(&inp[..r], UP, self.up_received) {
                            panic!("upload byte {at} differs");
                        }
                        self.up_hash.update(&inp[..r]);
                        self.up_received += r as u64;
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("read upload: {e}"),
                }
            }
            if let Some(p) = pace {
                // Woken early by `Serving::stop`: a service stops when asked.
                std::thread::park_timeout(p);
            } else if !progressed {
                wait(&self.stream, self.up_received < self.up_total);
            }
        }
        self
    }

    /// Reads whatever is left so `close()` does not turn into an RST.
    pub fn finish(mut self) {
        self.stream.set_nonblocking(false).unwrap();
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while matches!(self.stream.read(&mut buf), Ok(n) if n > 0) {}
    }
}

fn wait(s: &TcpStream, read: bool) {
    let mut pfd = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLOUT | if read { libc::POLLIN } else { 0 },
        revents: 0,
    };
    // SAFETY: one valid pollfd, 2 ms timeout.
    unsafe { libc::poll(&raw mut pfd, 1, 2) };
}

/// A session served on its own thread until stopped.
pub struct Serving {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Session>,
}

impl Serving {
    pub fn start(session: Session, pace: Option<Duration>) -> Serving {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Serving {
            stop,
            handle: std::thread::spawn(move || session.serve(&flag, pace)),
        }
    }

    /// Stops serving and hands back the session (the service's context export).
    pub fn stop(self) -> Session {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        self.handle.join().unwrap()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// One NetLock per eNBC, opened inside its namespace.
pub struct Locks {
    pub enbc1: NetLock,
    pub enbc2: NetLock,
}

impl Locks {
    pub fn open(tb: &Testbed) -> Locks {
        Locks {
            enbc1: tb.enter(Node::Enbc1, || NetLock::open().unwrap()).unwrap(),
            enbc2: tb.enter(Node::Enbc2, || NetLock::open().unwrap()).unwrap(),
        }
    }

    pub fn of(&mut self, node: Node) -> &mut NetLock {
        match node {
            Node::Enbc1 => &mut self.enbc1,
            Node::Enbc2 => &mut self.enbc2,
            other => panic!("{other:?} holds no service"),
        }
    }
}

/// What a migration took.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Lock on the source until the target socket is live.
    pub frozen: Duration,
    pub dump: Duration,
    pub restore: Duration,
    /// Wall clock when the source was frozen.
    pub at: SystemTime,
}

/// Moves sessions from `from` to `to` the way the agent does. With
/// `fail_before_restore`, the migration is abandoned after the dump and the
/// source thaws (rollback).
pub fn migrate(
    tb: &Testbed,
    locks: &mut Locks,
    from: Node,
    to: Node,
    sessions: Vec<Session>,
    fail_before_restore: bool,
) -> (Vec<Session>, Timing) {
    let at = SystemTime::now();
    let t0 = Instant::now();
    let tuples: Vec<_> = sessions
        .iter()
        .map(|s| super::tuple_of(&s.stream))
        .collect();
    locks.of(from).lock(&tuples).unwrap();
    let mut frozen = Vec::new();
    let mut wires = Vec::new();
    let mut contexts = Vec::new();
    for s in sessions {
        let (img, f) = dump(s.stream.as_fd()).unwrap();
        let mut wire = Vec::new();
        img.encode(&mut wire);
        wires.push(wire);
        frozen.push(f);
        contexts.push((
            s.header,
            s.down_sent,
            s.down_total,
            s.up_received,
            s.up_total,
            s.up_hash,
        ));
        drop(s.stream); // the frozen copy keeps the socket
    }
    let dump_time = t0.elapsed();
    let rebuild = |stream: TcpStream, c: (Vec<u8>, u64, u64, u64, u64, Sha256)| {
        stream.set_nonblocking(true).unwrap();
        Session {
            stream,
            header: c.0,
            down_sent: c.1,
            down_total: c.2,
            up_received: c.3,
            up_total: c.4,
            up_hash: c.5,
        }
    };
    if fail_before_restore {
        locks.of(from).unlock(&tuples).unwrap();
        let sessions = frozen
            .into_iter()
            .zip(contexts)
            .map(|(f, c)| rebuild(TcpStream::from(f.thaw().unwrap()), c))
            .collect();
        let frozen_for = t0.elapsed();
        return (
            sessions,
            Timing {
                frozen: frozen_for,
                dump: dump_time,
                restore: Duration::ZERO,
                at,
            },
        );
    }
    locks.of(to).lock(&tuples).unwrap();
    tb.switch_to(to).unwrap();
    let t1 = Instant::now();
    let restored = tb
        .enter(to, || {
            wires
                .iter()
                .map(|w| restore_frozen(&TcpStreamImage::decode(w).unwrap()).unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap();
    let restore_time = t1.elapsed();
    locks.of(to).unlock(&tuples).unwrap();
    let streams: Vec<TcpStream> = restored
        .into_iter()
        .map(|r| TcpStream::from(r.activate().unwrap()))
        .collect();
    let frozen_for = t0.elapsed();
    for f in frozen {
        f.release();
    }
    locks.of(from).unlock(&tuples).unwrap();
    let sessions = streams
        .into_iter()
        .zip(contexts)
        .map(|(s, c)| rebuild(s, c))
        .collect();
    (
        sessions,
        Timing {
            frozen: frozen_for,
            dump: dump_time,
            restore: restore_time,
            at,
        },
    )
}

/// sha256 of the first `len` bytes of stream `seed`.
pub fn stream_sha256(seed: u8, len: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        fill(&mut buf[..n], seed, done);
        h.update(&buf[..n]);
        done += n as u64;
    }
    h.finalize().into()
}

/// The service address as curl wants it in a URL.
pub fn url(addr: SocketAddr, bytes: u64) -> String {
    match addr {
        SocketAddr::V4(a) => format!("http://{a}/{bytes}"),
        SocketAddr::V6(a) => format!("http://[{}]:{}/{bytes}", a.ip(), a.port()),
    }
}

/// A client that uploads `up` bytes while downloading `down` bytes; returns
/// the sha256 of the download. Runs in the UE namespace.
pub fn updown_client(
    tb: &Testbed,
    service: SocketAddr,
    up: u64,
    down: u64,
) -> JoinHandle<[u8; 32]> {
    let stream = tb
        .enter(Node::Ue, || TcpStream::connect(service).unwrap())
        .unwrap();
    std::thread::spawn(move || {
        let mut writer = stream.try_clone().unwrap();
        let uploader = std::thread::spawn(move || {
            writer
                .write_all(
                    format!("POST /{down} HTTP/1.1\r\nContent-Length: {up}\r\n\r\n").as_bytes(),
                )
                .unwrap();
            let mut buf = vec![0u8; 32 << 10];
            let mut sent = 0;
            while sent < up {
                let n = buf.len().min((up - sent) as usize);
                fill(&mut buf[..n], UP, sent);
                writer.write_all(&buf[..n]).unwrap();
                sent += n as u64;
                // Keep the upload going for the whole download.
                std::thread::sleep(Duration::from_micros(500));
            }
        });
        let mut reader = stream;
        reader
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            reader.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < down {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "download ended at {got}");
            h.update(&buf[..n]);
            got += n as u64;
        }
        uploader.join().unwrap();
        h.finalize().into()
    })
}

/// Starts curl in `ue` downloading `bytes` from `service` (at most at
/// `limit_rate`, curl's syntax), its output hashed as it arrives.
pub fn curl(
    tb: &Testbed,
    service: SocketAddr,
    bytes: u64,
    limit_rate: Option<&str>,
) -> (
    std::process::Child,
    std::thread::JoinHandle<([u8; 32], u64)>,
) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "60", "-o", "-"]);
    if let Some(rate) = limit_rate {
        cmd.args(["--limit-rate", rate]);
    }
    cmd.arg(url(service, bytes))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = tb.spawn(Node::Ue, cmd).unwrap();
    let mut out = child.stdout.take().unwrap();
    let hasher = std::thread::spawn(move || {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let r = out.read(&mut buf).unwrap();
            if r == 0 {
                break;
            }
            h.update(&buf[..r]);
            n += r as u64;
        }
        (h.finalize().into(), n)
    });
    (child, hasher)
}
