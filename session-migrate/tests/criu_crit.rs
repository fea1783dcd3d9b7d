//! CRIU image files checked with CRIU's own `crit decode`, field by field,
//! for an image dumped from a real socket.

mod support;

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

use edgemob_session_migrate::{TcpStreamImage, criu, dump, read_criu_images, write_criu_images};
use edgemob_testbed::{Node, Testbed, TestbedOptions};
use serde_json::Value;
use support::*;

fn crit_decode(path: &Path) -> Option<Value> {
    let out = match Command::new("crit")
        .args(["decode", "--pretty", "-i"])
        .arg(path)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "skipping crit check: crit not runnable ({e}); scripts/install-deps.sh installs it"
            );
            return None;
        }
    };
    assert!(
        out.status.success(),
        "crit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("crit prints JSON"))
}

fn dumped_image(tb: &Testbed, listen: &str) -> TcpStreamImage {
    let (mut client, mut server) = pair(tb, Node::Enbc1, listen.parse::<SocketAddr>().unwrap());
    let mut sent = 0;
    write_until_full(&mut client, 1, &mut sent, 10_000);
    let mut down = 0;
    write_until_full(&mut server, 2, &mut down, 20_000);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (img, frozen) = dump(server.as_fd()).unwrap();
    drop(frozen.thaw().unwrap());
    drop(client);
    img
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn crit_decodes_our_images_with_the_fields_we_wrote() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let images = vec![
        dumped_image(&tb, "127.0.0.1:0"),
        dumped_image(&tb, "[::1]:0"),
    ];
    let dir = std::env::temp_dir().join(format!("em-crit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_criu_images(&dir, &images).unwrap();
    assert_eq!(
        read_criu_images(&dir).unwrap(),
        images,
        "our reader reads back what we wrote"
    );

    let Some(files) = crit_decode(&dir.join("files.img")) else {
        return;
    };
    assert_eq!(files["magic"], "FILES");
    let entries = files["entries"].as_array().unwrap();
    assert_eq!(entries.len(), images.len());
    for (i, (entry, img)) in entries.iter().zip(&images).enumerate() {
        assert_eq!(entry["type"], "INETSK");
        assert_eq!(entry["id"], i + 1);
        let isk = &entry["isk"];
        assert_eq!(isk["ino"], img.ino);
        assert_eq!(
            isk["family"],
            if img.tuple.local.is_ipv4() {
                "INET"
            } else {
                "INET6"
            }
        );
        assert_eq!(isk["type"], "STREAM");
        assert_eq!(isk["proto"], "TCP");
        assert_eq!(isk["state"], "ESTABLISHED");
        assert_eq!(isk["src_port"], img.tuple.local.port());
        assert_eq!(isk["dst_port"], img.tuple.peer.port());
        assert_eq!(isk["src_addr"][0], img.tuple.local.ip().to_string());
        assert_eq!(isk["dst_addr"][0], img.tuple.peer.ip().to_string());
        assert_eq!(isk["opts"]["so_sndbuf"], img.buffers.sndbuf);
        assert_eq!(isk["opts"]["so_rcvbuf"], img.buffers.rcvbuf);

        let stream = crit_decode(&dir.join(criu::tcp_stream_file(img.ino))).unwrap();
        assert_eq!(stream["magic"], "TCP_STREAM");
        let e = &stream["entries"][0];
        assert_eq!(e["inq_len"], img.recv_queue.len());
        assert_eq!(e["inq_seq"], img.inq_seq);
        assert_eq!(e["outq_len"], img.send_queue.len());
        assert_eq!(e["outq_seq"], img.outq_seq);
        assert_eq!(e["unsq_len"], img.unsent_len);
        assert_eq!(e["mss_clamp"], img.mss_clamp);
        let ws = img.options.window_scale.unwrap();
        assert_eq!(e["snd_wscale"], ws.snd);
        assert_eq!(e["rcv_wscale"], ws.rcv);
        assert_eq!(e["timestamp"], img.options.timestamp.unwrap());
        assert_eq!(e["opt_mask"], "0x7", "timestamps, SACK and window scaling");
        assert_eq!(e["nodelay"], img.nodelay);
        for (field, v) in [
            ("snd_wl1", img.window.snd_wl1),
            ("snd_wnd", img.window.snd_wnd),
            ("max_window", img.window.max_window),
            ("rcv_wnd", img.window.rcv_wnd),
            ("rcv_wup", img.window.rcv_wup),
        ] {
            assert_eq!(e[field], v, "{field}");
        }
        let strip = |v: &Value| v.as_str().unwrap().replace('\n', "");
        assert_eq!(strip(&e["extra"]["inq"]), b64(&img.recv_queue));
        assert_eq!(strip(&e["extra"]["outq"]), b64(&img.send_queue));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
