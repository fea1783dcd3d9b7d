//! The binary's command line.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_edgemob-video-server");

#[test]
fn help_lists_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--agent <PATH>",
        "EDGEMOB_AGENT",
        "--listen <ADDR:PORT>",
        "--root <DIR>",
        "--bitrate <BITS_PER_S>",
        "--name <NAME>",
        "[default: video]",
        "--ready-file <PATH>",
        "--context-pad <BYTES>",
        "--idle-timeout <SECS>",
        "--standalone",
        "--log <LEVEL>",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    let dir = content_dir();
    let root = dir.path().to_str().unwrap();
    for args in [
        vec!["--listen", "127.0.0.1:0", "--root", root],
        vec!["--standalone", "--listen", "nowhere", "--root", root],
        vec![
            "--standalone",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
            "--bitrate",
            "8X",
        ],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("EDGEMOB_AGENT")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A missing agent is an error at start, not a hang.
    let out = Command::new(BIN)
        .args([
            "--agent",
            "/nonexistent/agent.sock",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent"));
}

#[test]
fn standalone_announces_readiness_serves_and_stops_on_sigterm() {
    let dir = content_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ready = dir.path().join("ready");
    let mut child = Command::new(BIN)
        .args(["--standalone", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--root")
        .arg(dir.path())
        .args(["--bitrate", "500M"])
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    assert_eq!(std::fs::read(&ready).unwrap(), b"ready\n");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = connect(addr);
    s.write_all(b"GET /small.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-10\r\n\r\n")
        .unwrap();
    let r = read_response(&mut BufReader::new(s), false);
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 10);
    let pid = child.id();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited.send(child.wait()));
    sigterm(pid);
    match exit.recv_timeout(Duration::from_secs(5)) {
        Ok(st) => {
            let st = st.unwrap();
            assert!(st.success(), "{st:?}");
        }
        Err(_) => {
            // Not reaped yet, so the pid is still our child's.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("did not stop within 5 s of SIGTERM");
        }
    }
}

fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}
