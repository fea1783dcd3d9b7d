//! A migration without the agent: a session is stopped mid-response, its
//! context serialized and decoded, and a fresh session continues the same
//! response over the same (still open) socket. The client must receive
//! every octet exactly once.

mod common;

use common::*;
use edgemob_video_server::context::{BodyContext, ResponseContext};
use edgemob_video_server::{
    Control, ImportError, Library, Session, SessionConfig, SessionContext, Stop,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn paced(bitrate: u64) -> SessionConfig {
    SessionConfig {
        bitrate,
        ..SessionConfig::default()
    }
}

/// What the client saw.
struct Seen {
    responses: Vec<Resp>,
    clean_eof: bool,
}

/// The client: a full GET, then (once the first response is running) the
/// first half of a range request, the second half later, and a last request
/// that closes the connection. The octets it received, for the test to wait on.
fn client(addr: std::net::SocketAddr) -> (std::thread::JoinHandle<Seen>, Arc<Progress>) {
    let progress = Progress::new();
    let counted = Arc::clone(&progress);
    let client = std::thread::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET /video.mp4 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(Counted {
            inner: s.try_clone().unwrap(),
            progress: counted,
        });
        // The first response has begun.
        assert!(
            !r.fill_buf().unwrap().is_empty(),
            "closed before a response"
        );
        let second = b"GET /sub/clip.webm HTTP/1.1\r\nHost: t\r\nRange: bytes=500-";
        s.write_all(&second[..30]).unwrap();
        let first = read_response(&mut r, false);
        s.write_all(&second[30..]).unwrap();
        s.write_all(b"1499\r\n\r\n").unwrap();
        s.write_all(
            b"GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=-100\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let second = read_response(&mut r, false);
        let third = read_response(&mut r, false);
        let mut rest = Vec::new();
        let clean_eof = matches!(r.read_to_end(&mut rest), Ok(0));
        Seen {
            responses: vec![first, second, third],
            clean_eof,
        }
    });
    (client, progress)
}

/// Sends `Export(m)` once the client has received `at` octets of the body,
/// that is mid-body whatever the machine's speed.
fn export_at<M: Send + 'static>(
    progress: &Arc<Progress>,
    at: u64,
    tx: mpsc::UnboundedSender<Control<M>>,
    m: M,
) -> tokio::task::JoinHandle<()> {
    let progress = Arc::clone(progress);
    tokio::task::spawn_blocking(move || {
        progress.wait_for(at, Duration::from_secs(20));
        tx.send(Control::Export(m)).ok();
    })
}

fn check(seen: &Seen, root: &std::path::Path) {
    let video = std::fs::read(root.join("video.mp4")).unwrap();
    let clip = std::fs::read(root.join("sub/clip.webm")).unwrap();
    let [a, b, c] = &seen.responses[..] else {
        panic!("three responses")
    };
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len(), video.len());
    assert_eq!(sha(&a.body), sha(&video), "every octet exactly once");
    assert_eq!(b.status, 206);
    assert_eq!(b.body, &clip[500..1500]);
    assert_eq!(c.status, 206);
    assert_eq!(c.body, &video[video.len() - 100..]);
    assert!(seen.clean_eof, "closed with a FIN, not a reset");
}

#[test]
fn pause_serialize_resume_on_a_fresh_session_over_the_same_socket() {
    let dir = content_dir();
    let library = Library::open(dir.path()).unwrap();
    library.scan().unwrap();
    // 3 MiB at 16 Mbit/s: about 1.6 s, so the pause lands mid-body.
    let cfg = paced(16_000_000);
    let rt = runtime();
    let (seen, ctx) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, progress) = client(listener.local_addr().unwrap());
        let (stream, _) = listener.accept().await.unwrap();

        // The source eNBC.
        let mut source = Session::new(stream, Arc::clone(&library), cfg.clone());
        let (tx, mut rx) = mpsc::unbounded_channel::<Control<&'static str>>();
        let export = export_at(&progress, 512 << 10, tx, "migration 1");
        let stop = source.run(&mut rx).await;
        export.await.unwrap();
        assert!(matches!(stop, Stop::Export("migration 1")), "{stop:?}");
        source.exportable().unwrap();
        let ctx = source.context();
        let wire = ctx.encode_padded(75_000);
        assert_eq!(wire.len(), 75_000);
        let stream = source.into_stream();

        // The handover takes a while; the client keeps sending meanwhile
        // (its octets wait in the socket's receive queue). Not a wait for
        // anything: a stand-in for the time a real handover takes.
        tokio::time::sleep(Duration::from_millis(150)).await;

        // The target eNBC: a fresh session from the decoded context.
        let decoded = SessionContext::decode(&wire).unwrap();
        assert_eq!(decoded, ctx);
        let resumable = Session::prepare_resume(decoded, &library, cfg.clone())
            .await
            .unwrap();
        let mut target = resumable.attach(stream);
        let (_tx2, mut rx2) = mpsc::unbounded_channel::<Control<()>>();
        let stop = target.run(&mut rx2).await;
        assert!(matches!(stop, Stop::Closed), "{stop:?}");
        assert_eq!(target.requests_served(), 3);
        (client.await_join().await, ctx)
    });
    // Stopped mid-body of the first response, with the second request
    // partly read: both travelled in the context.
    let resp = ctx.response.as_ref().expect("a response in progress");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.head_written as usize, resp.head.len());
    let body = resp.body.as_ref().unwrap();
    assert_eq!(body.file, "video.mp4");
    assert!(
        body.sent > 100_000 && body.sent < VIDEO_LEN as u64 - 100_000,
        "sent {}",
        body.sent
    );
    assert_eq!(
        ctx.pending_input,
        b"GET /sub/clip.webm HTTP/1.1\r\nHost: t\r\nRange: bytes=500-"[..30]
    );
    check(&seen, dir.path());
}

#[test]
fn rollback_resumes_the_same_session() {
    let dir = content_dir();
    let library = Library::open(dir.path()).unwrap();
    library.scan().unwrap();
    let cfg = paced(16_000_000);
    let rt = runtime();
    let seen = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, progress) = client(listener.local_addr().unwrap());
        let (stream, _) = listener.accept().await.unwrap();
        let mut s = Session::new(stream, Arc::clone(&library), cfg);
        let (tx, mut rx) = mpsc::unbounded_channel::<Control<u32>>();
        // Three exports, each mid-body of the first response (the client
        // receives nothing while the session is frozen).
        let exports_sent = {
            let (progress, tx) = (Arc::clone(&progress), tx.clone());
            tokio::task::spawn_blocking(move || {
                for i in 0..3u32 {
                    progress.wait_for(u64::from(i + 1) * (768 << 10), Duration::from_secs(20));
                    tx.send(Control::Export(i)).ok();
                }
            })
        };
        let mut exports = 0;
        loop {
            match s.run(&mut rx).await {
                Stop::Export(_) => {
                    exports += 1;
                    let before = s.context();
                    // Frozen for a while, then rolled back: carry on. The
                    // sleep is the frozen time, not a wait for anything.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    assert_eq!(s.context().response, before.response);
                    tx.send(Control::Resume).unwrap();
                }
                Stop::Closed => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(exports, 3);
        exports_sent.await.unwrap();
        client.await_join().await
    });
    check(&seen, dir.path());
}

#[test]
fn resume_with_a_partly_written_head() {
    let dir = content_dir();
    let library = Library::open(dir.path()).unwrap();
    library.scan().unwrap();
    let video = std::fs::read(dir.path().join("video.mp4")).unwrap();
    let id = library.lookup_blocking("video.mp4").unwrap().id;
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Type: video/mp4\r\nContent-Length: 50000\r\nContent-Range: bytes 100-50099/{}\r\n\r\n",
        video.len()
    )
    .into_bytes();
    let rt = runtime();
    let got = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = connect(addr);
            let mut r = BufReader::new(s.try_clone().unwrap());
            let resp = read_response(&mut r, false);
            // The pipelined request carried in the context was answered too.
            let next = read_response(&mut r, true);
            s.write_all(b"GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n")
                .unwrap();
            let last = read_response(&mut r, false);
            assert_clean_eof(&mut r);
            (resp, next, last)
        });
        let (stream, _) = listener.accept().await.unwrap();
        // The source had written 17 head octets when it stopped.
        let mut sent = 0;
        while sent < 17 {
            stream.writable().await.unwrap();
            if let Ok(n) = stream.try_write(&head[sent..17]) {
                sent += n;
            }
        }
        let ctx = SessionContext {
            requests_served: 0,
            pace_credit: 0,
            pending_input: b"HEAD /sub/clip.webm HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            response: Some(ResponseContext {
                status: 206,
                head: head.clone(),
                head_written: 17,
                close_after: false,
                body: Some(BodyContext {
                    file: "video.mp4".into(),
                    content: id,
                    start: 100,
                    end: 50_100,
                    sent: 0,
                }),
            }),
        };
        let ctx = SessionContext::decode(&ctx.encode()).unwrap();
        let mut s = Session::prepare_resume(ctx, &library, paced(80_000_000))
            .await
            .unwrap()
            .attach(stream);
        let (_tx, mut rx) = mpsc::unbounded_channel::<Control<()>>();
        assert!(matches!(s.run(&mut rx).await, Stop::Closed));
        client.await_join().await
    });
    let (resp, next, last) = got;
    assert_eq!(resp.head.as_bytes(), &head[..]);
    assert_eq!(resp.body, &video[100..50_100]);
    assert_eq!(next.status, 200);
    assert_eq!(next.header("Content-Length"), Some("100000"));
    assert_eq!(last.body, &video[..10]);
}

#[test]
fn imports_are_refused_when_the_file_is_missing_or_differs() {
    let dir = content_dir();
    let library = Library::open(dir.path()).unwrap();
    library.scan().unwrap();
    let id = library.lookup_blocking("video.mp4").unwrap().id;
    let ctx = |file: &str, content| SessionContext {
        response: Some(ResponseContext {
            status: 200,
            head: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            head_written: 0,
            close_after: false,
            body: Some(BodyContext {
                file: file.into(),
                content,
                start: 0,
                end: 10,
                sent: 0,
            }),
        }),
        ..SessionContext::default()
    };
    let rt = runtime();
    rt.block_on(async {
        let cfg = SessionConfig::default();
        assert!(
            Session::prepare_resume(ctx("video.mp4", id), &library, cfg.clone())
                .await
                .is_ok()
        );
        let r = Session::prepare_resume(ctx("gone.mp4", id), &library, cfg.clone()).await;
        assert!(matches!(r, Err(ImportError::Missing(n)) if n == "gone.mp4"));
        let mut other = id;
        other.sha256[0] ^= 1;
        let r = Session::prepare_resume(ctx("video.mp4", other), &library, cfg.clone()).await;
        assert!(matches!(r, Err(ImportError::Differs { .. })), "{r:?}");
        // No response in progress: nothing to check.
        assert!(
            Session::prepare_resume(SessionContext::default(), &library, cfg)
                .await
                .is_ok()
        );
    });
}

/// Joins a client thread without blocking the runtime's only thread.
trait AwaitJoin<T> {
    async fn await_join(self) -> T;
}

impl<T: Send + 'static> AwaitJoin<T> for std::thread::JoinHandle<T> {
    async fn await_join(self) -> T {
        tokio::task::spawn_blocking(move || self.join().expect("client thread"))
            .await
            .unwrap()
    }
}
