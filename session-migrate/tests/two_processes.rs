//! Two processes, one namespace: a server process dumps its connection with
//! data in flight both ways (unread bytes in its receive queue, unacked and
//! unsent bytes in its send queue) and exits; a second process restores it
//! from the image file and carries on. The client checks every byte.
//!
//! The client runs in `ue`; while the first server fills its send queue, a
//! lock in `ue` loses the segments in flight, so some stay unacknowledged.
//! The test binary re-executes itself with `EM_ROLE` set to play the servers.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use edgemob_session_migrate::{NetLock, TcpStreamImage, dump, restore_frozen};
use edgemob_testbed::{Node, Testbed, TestbedOptions};
use sha2::{Digest, Sha256};
use support::*;

const TEST: &str = "two_processes_dump_and_restore";
const ADDR: &str = "10.77.0.1:7777";
const UP: u8 = 0x31;
const DOWN: u8 = 0x42;
const UP_TOTAL: u64 = 1 << 20;
const DOWN_TOTAL: u64 = 8 << 20;
/// The upload bytes the first server reads before it is dumped.
const UP_READ_BEFORE: u64 = 64 << 10;

#[test]
fn two_processes_dump_and_restore() {
    match std::env::var("EM_ROLE").as_deref() {
        Ok("dump") => return dump_role(),
        Ok("restore") => return restore_role(),
        _ => {}
    }
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let image = std::env::temp_dir().join(format!("em-image-{}.bin", std::process::id()));
    let go = std::env::temp_dir().join(format!("em-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let role = |name: &str| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
            .env("EM_ROLE", name)
            .env("EM_IMAGE", &image)
            .env("EM_GO", &go)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        tb.spawn(Node::Enbc1, cmd).unwrap()
    };
    let first = role("dump");
    let addr: SocketAddr = ADDR.parse().unwrap();
    let mut client = tb
        .enter(Node::Ue, || {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match TcpStream::connect(addr) {
                    Ok(s) => return s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => panic!("connect: {e}"),
                }
            }
        })
        .unwrap();
    let mut writer = client.try_clone().unwrap();
    let uploader = std::thread::spawn(move || write_stream(&mut writer, UP, 0, UP_TOTAL));
    // The upload piles up in the server's receive queue; then segments in
    // flight towards the UE get lost (and so stay unacknowledged).
    std::thread::sleep(Duration::from_millis(300));
    let mut ue_lock = tb.enter(Node::Ue, || NetLock::open().unwrap()).unwrap();
    let tuple = tuple_of(&client);
    ue_lock.lock(&[tuple]).unwrap();
    std::fs::write(&go, b"go").unwrap();
    // The client reads nothing until the first server has been dumped.
    check(first, "dumping");
    ue_lock.unlock(&[tuple]).unwrap();
    let second = role("restore");
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < DOWN_TOTAL {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "download ended at {got}");
        h.update(&buf[..n]);
        got += n as u64;
    }
    uploader.join().unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut verdict = Vec::new();
    client.read_to_end(&mut verdict).unwrap();
    assert_eq!(
        h.finalize()[..],
        server_sha(DOWN, DOWN_TOTAL)[..],
        "download sha256"
    );
    assert_eq!(
        verdict,
        server_sha(UP, UP_TOTAL),
        "the restored server saw the exact upload (its sha256)"
    );
    check(second, "restoring");
    let _ = std::fs::remove_file(&image);
    let _ = std::fs::remove_file(&go);
}

/// Waits for a server process; its own test-harness output is shown only on failure.
fn check(child: std::process::Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if let Some(at) = text.find("dumped:") {
        println!("{}", text[at..].lines().next().unwrap_or_default());
    }
    assert!(out.status.success(), "the {what} process failed:\n{text}");
}

fn server_sha(seed: u8, len: u64) -> Vec<u8> {
    support::server::stream_sha256(seed, len).to_vec()
}

/// First server: accept, read a little, lock, fill the send queue, dump, exit.
fn dump_role() {
    let listener = TcpListener::bind(ADDR).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut up = vec![0u8; UP_READ_BEFORE as usize];
    conn.read_exact(&mut up).unwrap();
    assert_eq!(mismatch(&up, UP, 0), None);
    // The rest of the upload piles up unread until the test says go.
    let go = std::env::var("EM_GO").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&go).exists() {
        assert!(Instant::now() < deadline, "no go from the test");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lock = NetLock::open().unwrap();
    let tuple = tuple_of(&conn);
    // Segments sent now are lost on the way (the UE-side lock): they stay
    // unacknowledged, and what exceeds the congestion window stays unsent.
    let mut down_sent = 0;
    write_until_full(&mut conn, DOWN, &mut down_sent, DOWN_TOTAL);
    std::thread::sleep(Duration::from_millis(20));
    lock.lock(&[tuple]).unwrap();
    let (img, frozen) = dump(conn.as_fd()).unwrap();
    println!(
        "dumped: receive queue {} B, send queue {} B ({} unacked, {} unsent)",
        img.recv_queue.len(),
        img.send_queue.len(),
        img.unacked().len(),
        img.unsent_len
    );
    assert!(!img.recv_queue.is_empty() && !img.unacked().is_empty() && img.unsent_len > 0);
    let mut file = Vec::new();
    file.extend_from_slice(&UP_READ_BEFORE.to_le_bytes());
    file.extend_from_slice(&down_sent.to_le_bytes());
    img.encode(&mut file);
    std::fs::write(std::env::var("EM_IMAGE").unwrap(), file).unwrap();
    drop(conn);
    frozen.release();
    // The lock stays: the restoring process removes it once its socket is live.
}

/// Second server: restore from the file, unlock, finish both streams.
fn restore_role() {
    let file = std::fs::read(std::env::var("EM_IMAGE").unwrap()).unwrap();
    let up_read = u64::from_le_bytes(file[0..8].try_into().unwrap());
    let down_sent = u64::from_le_bytes(file[8..16].try_into().unwrap());
    let img = TcpStreamImage::decode(&file[16..]).unwrap();
    let mut lock = NetLock::open().unwrap();
    let restored = restore_frozen(&img).unwrap();
    lock.unlock(&[img.tuple]).unwrap();
    let mut conn = TcpStream::from(restored.activate().unwrap());
    let mut writer = conn.try_clone().unwrap();
    let downloader = std::thread::spawn(move || {
        write_stream(&mut writer, DOWN, down_sent, DOWN_TOTAL - down_sent)
    });
    // The whole upload, from where the first server stopped reading: the
    // restored receive queue comes first.
    let mut h = Sha256::new();
    let mut head = vec![0u8; up_read as usize];
    fill(&mut head, UP, 0);
    h.update(&head);
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = up_read;
    while got < UP_TOTAL {
        let n = conn
            .read(&mut buf[..(UP_TOTAL - got).min(64 << 10) as usize])
            .unwrap();
        assert!(n > 0, "upload ended at {got}");
        assert_eq!(mismatch(&buf[..n], UP, got), None, "upload byte differs");
        h.update(&buf[..n]);
        got += n as u64;
    }
    downloader.join().unwrap();
    // Read to EOF (the client's FIN), then answer with the upload's sha256.
    assert_eq!(conn.read(&mut buf).unwrap(), 0);
    conn.write_all(&h.finalize()).unwrap();
}
