//! tcpdump captures inside a namespace: started and confirmed listening
//! before the caller goes on (so no early segment is missed), stopped and
//! flushed on `finish`, killed and removed on drop. `--immediate-mode` matters:
//! without it libpcap hands packets over in ring blocks up to a second late,
//! and a capture stopped sooner loses them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Result, TestbedError};
use crate::netns;
use crate::pcap::{self, TcpSegment};

/// Headers only: enough for IPv6 + TCP with options, keeps 64 MiB transfers small on disk.
const SNAPLEN: &str = "200";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running tcpdump writing to a pcap file.
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
    stderr: Option<JoinHandle<String>>,
}

impl Capture {
    /// Starts tcpdump on `iface` in namespace `ns`, writing to `path`, and
    /// returns once tcpdump says it is listening.
    pub(crate) fn start(ns: &str, iface: &str, filter: &str, path: PathBuf) -> Result<Self> {
        let mut cmd = Command::new("tcpdump");
        cmd.args([
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            SNAPLEN,
            "-Z",
            "root",
            "-w",
        ])
        .arg(&path)
        .args(filter.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        netns::command_in(ns, &mut cmd)?;
        let mut child = cmd.spawn().map_err(|e| TestbedError::Command {
            command: format!("tcpdump -i {iface} {filter}"),
            detail: e.to_string(),
        })?;
        let stderr = child.stderr.take().expect("stderr was piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                if line.contains("listening on")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut capture = Capture {
            child: Some(child),
            path,
            stderr: Some(reader),
        };
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            let detail = capture.stop_and_collect();
            return Err(TestbedError::CaptureStart {
                iface: iface.to_owned(),
                detail,
            });
        }
        Ok(capture)
    }

    /// The pcap file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops tcpdump (SIGINT, so it flushes) and returns every TCP segment captured.
    pub fn finish(mut self) -> Result<Vec<TcpSegment>> {
        self.stop_and_collect();
        pcap::read_tcp_segments(&self.path)
    }

    /// Like [`finish`](Self::finish), and keeps a copy of the pcap file at
    /// `keep` for a closer look (Wireshark, `tshark -r`).
    pub fn finish_keeping(mut self, keep: &Path) -> Result<Vec<TcpSegment>> {
        self.stop_and_collect();
        std::fs::copy(&self.path, keep).map_err(|source| TestbedError::Sys {
            call: "copy the capture",
            source,
        })?;
        pcap::read_tcp_segments(&self.path)
    }

    fn stop_and_collect(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            // tcpdump drops what is still in its ring when interrupted: let
            // it drain first (the file stops growing), bounded to one second.
            let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let mut last = size(&self.path);
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(25));
                let now = size(&self.path);
                if now == last {
                    break;
                }
                last = now;
            }
            netns::send_signal(child.id() as i32, libc::SIGINT);
            // Bounded wait for a clean exit, then force it.
            let mut exited = false;
            for _ in 0..300 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop_and_collect();
        let _ = std::fs::remove_file(&self.path);
    }
}
