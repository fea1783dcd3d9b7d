//! The response engine over real TCP sockets on 127.0.0.1, checked with a
//! std client and with curl.

mod common;

use common::*;
use edgemob_video_server::SessionConfig;
use std::io::{BufReader, Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn unpaced() -> SessionConfig {
    SessionConfig::default()
}

#[test]
fn full_file_and_headers() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    let file = std::fs::read(dir.path().join("video.mp4")).unwrap();
    let (r, _) = request(addr, &get("/video.mp4"));
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("Content-Type"), Some("video/mp4"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(
        r.header("Content-Length"),
        Some(VIDEO_LEN.to_string().as_str())
    );
    assert!(r.header("Date").is_some_and(|d| d.ends_with(" GMT")));
    let etag = r.header("ETag").unwrap();
    assert_eq!(etag.len(), 34);
    assert_eq!(sha(&r.body), sha(&file));

    let (r, _) = request(addr, &get("/sub/clip.webm"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("video/webm"));
    assert_eq!(
        r.body,
        std::fs::read(dir.path().join("sub/clip.webm")).unwrap()
    );

    let (r, _) = request(addr, &get("/empty.bin"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert!(r.body.is_empty());
}

#[test]
fn ranges() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    let file = std::fs::read(dir.path().join("video.mp4")).unwrap();
    let n = file.len();
    // (Range, status, octets a..=b expected)
    type Case = (String, u16, Option<(usize, usize)>);
    let cases: Vec<Case> = vec![
        ("bytes=0-0".into(), 206, Some((0, 0))),
        ("bytes=100-199".into(), 206, Some((100, 199))),
        ("bytes=1000000-".into(), 206, Some((1_000_000, n - 1))),
        ("bytes=-4096".into(), 206, Some((n - 4096, n - 1))),
        (
            format!("bytes={}-{}", n - 10, n + 1000),
            206,
            Some((n - 10, n - 1)),
        ),
        (format!("bytes={n}-"), 416, None),
        ("bytes=-0".into(), 416, None),
        ("bytes=0-1,5-6".into(), 200, Some((0, n - 1))),
        ("bytes=9-5".into(), 200, Some((0, n - 1))),
        ("pages=1-2".into(), 200, Some((0, n - 1))),
    ];
    for (range, status, want) in cases {
        let req = format!("GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: {range}\r\n\r\n");
        let (r, _) = request(addr, &req);
        assert_eq!(r.status, status, "{range}: {}", r.head);
        match (status, want) {
            (206, Some((a, b))) => {
                assert_eq!(
                    r.header("Content-Range"),
                    Some(format!("bytes {a}-{b}/{n}").as_str())
                );
                assert_eq!(sha(&r.body), sha(&file[a..=b]), "{range}");
            }
            (200, Some(_)) => {
                assert!(r.header("Content-Range").is_none());
                assert_eq!(sha(&r.body), sha(&file), "{range}");
            }
            (416, None) => {
                assert_eq!(
                    r.header("Content-Range"),
                    Some(format!("bytes */{n}").as_str())
                );
            }
            _ => unreachable!(),
        }
    }
    // If-Range: the current ETag lets the range through, anything else
    // gets the whole file.
    let (full, _) = request(addr, &get("/video.mp4"));
    let etag = full.header("ETag").unwrap().to_owned();
    let req = format!(
        "GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=5-9\r\nIf-Range: {etag}\r\n\r\n"
    );
    assert_eq!(request(addr, &req).0.status, 206);
    let req =
        "GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=5-9\r\nIf-Range: \"other\"\r\n\r\n";
    assert_eq!(request(addr, req).0.status, 200);
}

#[test]
fn head_and_keep_alive_in_sequence_and_pipelined() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    let file = std::fs::read(dir.path().join("video.mp4")).unwrap();
    let mut s = connect(addr);
    let mut r = BufReader::new(s.try_clone().unwrap());

    // In sequence.
    s.write_all(b"HEAD /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\n\r\n")
        .unwrap();
    let h = read_response(&mut r, true);
    assert_eq!(h.status, 200, "Range is ignored for HEAD");
    assert_eq!(
        h.header("Content-Length"),
        Some(VIDEO_LEN.to_string().as_str())
    );
    for (a, b) in [
        (0usize, 99usize),
        (500, 70_000),
        (VIDEO_LEN - 1, VIDEO_LEN - 1),
    ] {
        write!(
            s,
            "GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes={a}-{b}\r\n\r\n"
        )
        .unwrap();
        let g = read_response(&mut r, false);
        assert_eq!(g.status, 206);
        assert_eq!(g.body, &file[a..=b]);
    }
    s.write_all(get("/nope.mp4").as_bytes()).unwrap();
    assert_eq!(read_response(&mut r, false).status, 404);

    // Pipelined: several requests in one write, answered in order.
    let mut batch = String::new();
    batch.push_str("GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n");
    batch.push_str("HEAD /sub/clip.webm HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.push_str("GET /sub/clip.webm HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.push_str(
        "GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\nConnection: close\r\n\r\n",
    );
    s.write_all(batch.as_bytes()).unwrap();
    assert_eq!(read_response(&mut r, false).body, &file[10..20]);
    assert_eq!(read_response(&mut r, true).status, 200);
    assert_eq!(read_response(&mut r, false).body.len(), 100_000);
    let last = read_response(&mut r, false);
    assert_eq!(last.header("Connection"), Some("close"));
    assert_eq!(last.body, &file[VIDEO_LEN - 3..]);
    assert_clean_eof(&mut r);
}

#[test]
fn errors() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    // (request, status, connection stays open)
    let cases: &[(&str, u16, bool)] = &[
        ("GET /missing.mp4 HTTP/1.1\r\nHost: t\r\n\r\n", 404, true),
        ("GET /.hidden HTTP/1.1\r\nHost: t\r\n\r\n", 404, true),
        ("GET / HTTP/1.1\r\nHost: t\r\n\r\n", 404, true),
        ("GET /sub HTTP/1.1\r\nHost: t\r\n\r\n", 404, true),
        ("GET /../Cargo.toml HTTP/1.1\r\nHost: t\r\n\r\n", 400, true),
        ("GET /sub/../../x HTTP/1.1\r\nHost: t\r\n\r\n", 400, true),
        ("GET /%2e%2e/x HTTP/1.1\r\nHost: t\r\n\r\n", 400, true),
        (
            "GET /%2E%2E%2Fetc%2Fpasswd HTTP/1.1\r\nHost: t\r\n\r\n",
            400,
            true,
        ),
        ("GET /a%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400, true),
        ("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400, true),
        ("DELETE /video.mp4 HTTP/1.1\r\nHost: t\r\n\r\n", 405, true),
        (
            "POST /video.mp4 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody",
            405,
            false,
        ),
        ("GET /video.mp4 HTTP/1.1\r\n\r\n", 400, false),
        ("GET /video.mp4 HTTP/2.0\r\nHost: t\r\n\r\n", 505, false),
        ("NOT A REQUEST\r\n\r\n", 400, false),
        (
            "GET /video.mp4 HTTP/1.1\r\nHost: t\r\nBad Field: x\r\n\r\n",
            400,
            false,
        ),
    ];
    for (req, status, open) in cases {
        let (r, mut rd) = request(addr, req);
        assert_eq!(r.status, *status, "{req:?}: {}", r.head);
        if *status == 405 {
            assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        }
        if *open {
            // The connection still serves.
            rd.get_mut()
                .write_all(b"GET /video.mp4 HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(&mut rd, false).status, 206, "{req:?}");
        } else {
            assert_eq!(r.header("Connection"), Some("close"), "{req:?}");
            assert_clean_eof(&mut rd);
        }
    }
}

#[test]
fn oversized_heads_get_431() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    let mut req = String::from("GET /video.mp4 HTTP/1.1\r\nHost: t\r\n");
    while req.len() < 20_000 {
        req.push_str(
            "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    req.push_str("\r\n");
    let (r, mut rd) = request(addr, &req);
    assert_eq!(r.status, 431);
    assert_eq!(r.header("Connection"), Some("close"));
    // The rest of the head is drained, not left to reset the connection.
    assert_clean_eof(&mut rd);
}

#[test]
fn close_drains_unread_input_instead_of_resetting() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    let file = std::fs::read(dir.path().join("small.bin")).unwrap();
    for _ in 0..5 {
        let mut s = connect(addr);
        // A request that closes, then octets the server will never parse.
        let mut out = b"GET /small.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
        out.extend_from_slice(&[b'z'; 50_000]);
        s.write_all(&out).unwrap();
        let mut r = BufReader::new(s);
        let resp = read_response(&mut r, false);
        assert_eq!(sha(&resp.body), sha(&file));
        assert_clean_eof(&mut r);
    }
    // HTTP/1.0: closes unless asked to keep alive.
    let (r, mut rd) = request(addr, "GET /sub/clip.webm HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_clean_eof(&mut rd);
    let (r, mut rd) = request(
        addr,
        "GET /sub/clip.webm HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    rd.get_mut()
        .write_all(b"HEAD /sub/clip.webm HTTP/1.0\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut rd, true).status, 200);
    assert_clean_eof(&mut rd);
}

#[test]
fn client_eof_finishes_the_response_then_closes() {
    let dir = content_dir();
    let addr = start_server(dir.path(), unpaced());
    let mut s = connect(addr);
    s.write_all(get("/small.bin").as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).body.len(), 1 << 20);
    assert_clean_eof(&mut r);
}

#[test]
fn idle_connections_are_closed() {
    let dir = content_dir();
    let cfg = SessionConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..SessionConfig::default()
    };
    let addr = start_server(dir.path(), cfg);
    let (r, mut rd) = request(addr, &get("/sub/clip.webm"));
    assert_eq!(r.status, 200);
    let t = Instant::now();
    assert_clean_eof(&mut rd);
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn pacing_holds_the_bitrate() {
    let dir = content_dir();
    // 8 Mbit/s = 1,000,000 octets/s: 1 MiB takes about 1.03 s.
    let cfg = SessionConfig {
        bitrate: 8_000_000,
        ..SessionConfig::default()
    };
    let addr = start_server(dir.path(), cfg);
    let t = Instant::now();
    let (r, _) = request(addr, &get("/small.bin"));
    let took = t.elapsed();
    assert_eq!(r.body.len(), 1 << 20);
    assert!(
        took >= Duration::from_millis(950) && took <= Duration::from_millis(2500),
        "1 MiB at 8 Mbit/s took {took:?}"
    );
    // Unpaced, the same file is much faster.
    let addr = start_server(dir.path(), unpaced());
    let t = Instant::now();
    let (r, _) = request(addr, &get("/small.bin"));
    assert_eq!(r.body.len(), 1 << 20);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.stdout,
    )
}

#[test]
fn curl_downloads_ranges_and_reuses_connections() {
    let dir = content_dir();
    let addr = start_server(
        dir.path(),
        SessionConfig {
            bitrate: 400_000_000,
            ..SessionConfig::default()
        },
    );
    let file = std::fs::read(dir.path().join("video.mp4")).unwrap();
    let url = format!("http://{addr}/video.mp4");
    let out = tempfile::tempdir().unwrap();
    let o = |n: &str| out.path().join(n).to_string_lossy().into_owned();

    curl(&["-o", &o("full"), &url]);
    assert_eq!(sha(&std::fs::read(o("full")).unwrap()), sha(&file));

    let (code, _) = curl(&[
        "--range",
        "1000-1999",
        "-o",
        &o("r1"),
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(code, "206");
    assert_eq!(std::fs::read(o("r1")).unwrap(), &file[1000..2000]);

    curl(&["--range", "-777", "-o", &o("r2"), &url]);
    assert_eq!(std::fs::read(o("r2")).unwrap(), &file[file.len() - 777..]);

    curl(&["--range", "3000000-", "-o", &o("r3"), &url]);
    assert_eq!(
        sha(&std::fs::read(o("r3")).unwrap()),
        sha(&file[3_000_000..])
    );

    let (code, _) = curl(&[
        "--range",
        "99999999-",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(code, "416");

    // HEAD.
    let (head, _) = curl(&["-I", &url]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", file.len())),
        "{head}"
    );
    assert!(head.contains("Accept-Ranges: bytes\r\n"), "{head}");

    // Two transfers, one connection.
    let (connects, _) = curl(&[
        "-o",
        &o("k1"),
        "-o",
        &o("k2"),
        "-w",
        "%{num_connects} ",
        &url,
        &format!("http://{addr}/sub/clip.webm"),
    ]);
    assert_eq!(
        connects.trim(),
        "1 0",
        "the second transfer reuses the connection"
    );
    assert_eq!(sha(&std::fs::read(o("k1")).unwrap()), sha(&file));
    assert_eq!(
        std::fs::read(o("k2")).unwrap(),
        std::fs::read(dir.path().join("sub/clip.webm")).unwrap()
    );

    // No way out of the root, encoded or not.
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/sub/../../x",
    ] {
        let (code, _) = curl(&[
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{addr}{path}"),
        ]);
        assert_eq!(code, "400", "{path}");
    }
    let (code, _) = curl(&["-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", &url]);
    assert_eq!(code, "405");
}

#[test]
fn many_concurrent_paced_clients() {
    let dir = content_dir();
    let addr = start_server(
        dir.path(),
        SessionConfig {
            bitrate: 40_000_000,
            ..SessionConfig::default()
        },
    );
    let file = std::fs::read(dir.path().join("small.bin")).unwrap();
    let t = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let req = format!(
                    "GET /small.bin HTTP/1.1\r\nHost: t\r\nRange: bytes={}-\r\nConnection: close\r\n\r\n",
                    i * 1000
                );
                s.write_all(req.as_bytes()).unwrap();
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                all
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let all = c.join().unwrap();
        let mut r = BufReader::new(&all[..]);
        let resp = read_response(&mut r, false);
        assert_eq!(resp.status, 206);
        assert_eq!(resp.body, &file[i * 1000..]);
    }
    // Each connection is paced on its own: 16 × 1 MiB at 40 Mbit/s each
    // run side by side (about 0.2 s), not one after another (3.4 s).
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}
