//! Dump and restore of connections holding 75 KB of queued data (25 KB
//! unread in the receive queue, 50 KB unsent in the send queue), one and
//! 1,000 at a time, and the network lock of one more 4-tuple. Needs root:
//! it builds its own namespaces with the testbed and skips with a message
//! otherwise.
//!
//! Run: `cargo bench -p edgemob-session-migrate --bench migrate`

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use edgemob_session_migrate::{FourTuple, NetLock, TcpStreamImage, dump, restore};
use edgemob_testbed::{Node, Testbed, TestbedOptions};

const RECV_QUEUED: usize = 25 << 10;
const SEND_QUEUED: usize = 50 << 10;

/// `n` server sockets, each with 75 KB queued; the lock holds their tuples so
/// nothing leaves them (send-queue bytes stay unsent).
fn setup(tb: &Testbed, n: usize, port: u16) -> (Vec<TcpStream>, Vec<TcpStream>, NetLock) {
    tb.enter(Node::Enbc1, || {
        let mut lock = NetLock::open().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let listener = TcpListener::bind(addr).unwrap();
        let mut clients = Vec::with_capacity(n);
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = TcpStream::connect(addr).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            c.write_all(&vec![1u8; RECV_QUEUED]).unwrap();
            lock.lock(&[FourTuple {
                local: s.local_addr().unwrap(),
                peer: s.peer_addr().unwrap(),
            }])
            .unwrap();
            s.write_all(&vec![2u8; SEND_QUEUED]).unwrap();
            clients.push(c);
            servers.push(s);
        }
        std::thread::sleep(Duration::from_millis(50));
        (clients, servers, lock)
    })
    .unwrap()
}

fn benches(c: &mut Criterion) {
    edgemob_testbed::require_root();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim);
    }
    let tb = Testbed::new(TestbedOptions::default()).unwrap();

    for (n, port, samples) in [(1usize, 9200u16, 200usize), (1000, 9201, 10)] {
        let (_clients, servers, _lock) = setup(&tb, n, port);
        let (img, frozen) = dump(servers[0].as_fd()).unwrap();
        assert_eq!(
            img.recv_queue.len() + img.send_queue.len(),
            RECV_QUEUED + SEND_QUEUED
        );
        drop(frozen.thaw().unwrap());
        let mut group = c.benchmark_group(format!("{n}x75KB"));
        group.sample_size(samples);
        group.bench_function("dump", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let dumped: Vec<_> = servers.iter().map(|s| dump(s.as_fd()).unwrap()).collect();
                    total += t.elapsed();
                    for (_, f) in dumped {
                        drop(f.thaw().unwrap());
                    }
                }
                total
            })
        });
        // Restore needs the tuples free: dump once more and release the originals.
        let images: Vec<TcpStreamImage> = servers
            .iter()
            .map(|s| {
                let (img, f) = dump(s.as_fd()).unwrap();
                f.release();
                img
            })
            .collect();
        drop(servers);
        group.bench_function("restore", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let restored: Vec<OwnedFd> = tb
                        .enter(Node::Enbc1, || {
                            let t = Instant::now();
                            let fds: Vec<OwnedFd> =
                                images.iter().map(|i| restore(i).unwrap()).collect();
                            total += t.elapsed();
                            fds
                        })
                        .unwrap();
                    for fd in restored {
                        dump(fd.as_fd()).unwrap().1.release();
                    }
                }
                total
            })
        });
        // The network lock of one more 4-tuple: one nf_tables transaction
        // on the migration's critical path (the unlock, not timed, is
        // another).
        let extra = [FourTuple {
            local: "10.99.0.1:80".parse().unwrap(),
            peer: "10.99.0.2:40000".parse().unwrap(),
        }];
        // A netlink socket stays in the namespace it was opened in.
        let mut lock = tb.enter(Node::Enbc1, || NetLock::open().unwrap()).unwrap();
        group.bench_function("lock", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    lock.lock(&extra).unwrap();
                    total += t.elapsed();
                    lock.unlock(&extra).unwrap();
                }
                total
            })
        });
        group.finish();
    }
}

criterion_group!(migrate, benches);
criterion_main!(migrate);
