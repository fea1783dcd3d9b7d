//! The guest kernel's own memory reclaim, as the demo's report states it.
//!
//! A DAMON scheme with the `pageout` action (run by the `kdamond` kernel
//! thread) reclaims memory in slices of about a millisecond and up to
//! several, and on a kernel without full preemption an agent or service
//! woken on that CPU waits until the slice yields (eval/README). The demo
//! reports whether such a scheme was running, so its tails are read with
//! that in mind. Read from sysfs; nothing is changed.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where DAMON's sysfs interface lives.
const DAMON_SYSFS: &str = "/sys/kernel/mm/damon/admin/kdamonds";

/// One running pageout scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamonPageout {
    /// The kdamond it runs in (`kdamond.N`).
    pub kdamond: usize,
    /// CPU time it may take per reset interval, ms (0: no time quota).
    pub quota_ms: u64,
    pub reset_interval_ms: u64,
}

/// The pageout schemes of every running kdamond; empty where DAMON's
/// sysfs interface is absent or unreadable.
pub fn damon_pageout() -> Vec<DamonPageout> {
    pageout_under(Path::new(DAMON_SYSFS))
}

fn pageout_under(root: &Path) -> Vec<DamonPageout> {
    let read = |p: &Path| Some(std::fs::read_to_string(p).ok()?.trim().to_owned());
    let num = |p: &Path| read(p).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let mut out = Vec::new();
    for kdamond in numbered(root) {
        let dir = root.join(kdamond.to_string());
        if read(&dir.join("state")).as_deref() != Some("on") {
            continue;
        }
        for ctx in numbered(&dir.join("contexts")) {
            let schemes = dir.join(format!("contexts/{ctx}/schemes"));
            for scheme in numbered(&schemes) {
                let s = schemes.join(scheme.to_string());
                if read(&s.join("action")).as_deref() == Some("pageout") {
                    out.push(DamonPageout {
                        kdamond,
                        quota_ms: num(&s.join("quotas/ms")),
                        reset_interval_ms: num(&s.join("quotas/reset_interval_ms")),
                    });
                }
            }
        }
    }
    out
}

/// The process ids of the running kdamond threads, from DAMON's sysfs
/// (`kdamonds/N/pid`, `-1` when stopped); empty without DAMON.
pub fn kdamond_pids() -> Vec<u32> {
    pids_under(Path::new(DAMON_SYSFS))
}

fn pids_under(root: &Path) -> Vec<u32> {
    numbered(root)
        .into_iter()
        .filter_map(|k| {
            let s = std::fs::read_to_string(root.join(format!("{k}/pid"))).ok()?;
            s.trim().parse().ok()
        })
        .collect()
}

/// The numbered entries of a DAMON sysfs directory, in order.
fn numbered(dir: &Path) -> Vec<usize> {
    let mut n: Vec<usize> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    n.sort_unstable();
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, v: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{v}\n")).unwrap();
    }

    #[test]
    fn finds_running_pageout_schemes_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "nr_kdamonds", "3");
        write(r, "0/state", "on");
        write(r, "0/contexts/0/schemes/0/action", "pageout");
        write(r, "0/contexts/0/schemes/0/quotas/ms", "50");
        write(r, "0/contexts/0/schemes/0/quotas/reset_interval_ms", "1000");
        write(r, "0/contexts/0/schemes/1/action", "stat");
        write(r, "1/state", "off");
        write(r, "1/contexts/0/schemes/0/action", "pageout");
        write(r, "2/state", "on");
        write(r, "2/contexts/0/schemes/0/action", "pageout");
        assert_eq!(
            pageout_under(r),
            vec![
                DamonPageout {
                    kdamond: 0,
                    quota_ms: 50,
                    reset_interval_ms: 1000
                },
                DamonPageout {
                    kdamond: 2,
                    quota_ms: 0,
                    reset_interval_ms: 0
                },
            ]
        );
    }

    #[test]
    fn nothing_where_there_is_no_damon() {
        let t = tempfile::tempdir().unwrap();
        assert!(pageout_under(&t.path().join("absent")).is_empty());
        assert!(pageout_under(t.path()).is_empty());
        assert!(pids_under(&t.path().join("absent")).is_empty());
    }

    #[test]
    fn the_pids_of_running_kdamonds_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "0/pid", "21540");
        write(r, "1/pid", "-1");
        write(r, "2/pid", "77");
        assert_eq!(pids_under(r), vec![21540, 77]);
    }
}
