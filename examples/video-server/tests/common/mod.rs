//! Shared by the loopback tests: content, a server thread, a small client.

#![allow(dead_code)]

use edgemob_video_server::{Library, SessionConfig, serve_standalone};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Deterministic pseudo-random content (xorshift64*).
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

pub const VIDEO_LEN: usize = 3 * 1024 * 1024 + 12_345;

/// A content directory: video.mp4, sub/clip.webm, empty.bin, .hidden,
/// small.bin (1 MiB).
pub fn content_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::write(p.join("video.mp4"), content(VIDEO_LEN, 1)).unwrap();
    std::fs::create_dir(p.join("sub")).unwrap();
    std::fs::write(p.join("sub/clip.webm"), content(100_000, 2)).unwrap();
    std::fs::write(p.join("empty.bin"), b"").unwrap();
    std::fs::write(p.join(".hidden"), b"secret").unwrap();
    std::fs::write(p.join("small.bin"), content(1 << 20, 3)).unwrap();
    dir
}

/// Runs the server without an agent on 127.0.0.1 in a thread of its own
/// (a current-thread runtime, as the binary uses).
pub fn start_server(root: &Path, cfg: SessionConfig) -> SocketAddr {
    let library = Library::open(root).expect("library");
    library.scan().expect("scan");
    start_with(library, cfg)
}

pub fn start_with(library: Arc<Library>, cfg: SessionConfig) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve_standalone(listener, library, cfg).await;
        });
    });
    rx.recv().unwrap()
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; `head_only` for responses to HEAD.
pub fn read_response(r: &mut impl BufRead, head_only: bool) -> Resp {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read head");
        assert!(n > 0, "connection closed inside a head: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("field");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut resp = Resp {
        status,
        head,
        headers,
        body: Vec::new(),
    };
    let len: usize = resp
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    if !head_only {
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).expect("read body");
    }
    resp
}

/// Sends `req` on a new connection and reads one response.
pub fn request(addr: SocketAddr, req: &str) -> (Resp, BufReader<TcpStream>) {
    let mut s = connect(addr);
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let head_only = req.starts_with("HEAD ");
    (read_response(&mut r, head_only), r)
}

pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Asserts the server closed the connection cleanly: EOF, not a reset.
pub fn assert_clean_eof(r: &mut impl Read) {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "unexpected octets after the response: {rest:?}"
        ),
        Err(e) => panic!("connection not closed cleanly: {e}"),
    }
}

/// How many octets a client has received, for the test to wait on: the
/// tests synchronise on what the client saw, not on the clock.
#[derive(Debug, Default)]
pub struct Progress {
    octets: Mutex<u64>,
    more: Condvar,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::default()
    }

    /// The octets received so far.
    pub fn octets(&self) -> u64 {
        *self.octets.lock().expect("not poisoned")
    }

    /// Blocks until at least `n` octets arrived in all; fails the test after
    /// `within`.
    pub fn wait_for(&self, n: u64, within: Duration) {
        let start = Instant::now();
        let got = self.octets.lock().expect("not poisoned");
        let (got, timeout) = self
            .more
            .wait_timeout_while(got, within, |got| *got < n)
            .expect("not poisoned");
        assert!(
            !timeout.timed_out(),
            "the client received {} octets in {:?}, waiting for {n}",
            *got,
            start.elapsed()
        );
    }

    fn add(&self, n: usize) {
        *self.octets.lock().expect("not poisoned") += n as u64;
        self.more.notify_all();
    }
}

/// A reader that counts what passes through it into a [`Progress`].
pub struct Counted<R> {
    pub inner: R,
    pub progress: Arc<Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n);
        Ok(n)
    }
}
