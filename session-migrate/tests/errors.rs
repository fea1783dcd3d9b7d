//! Clear errors: no CAP_NET_ADMIN, and sockets not in ESTABLISHED.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;

use edgemob_session_migrate::{
    DumpError, LockError, NetLock, RestoreError, TcpState, dump, restore,
};
use edgemob_testbed::{Node, Testbed, TestbedOptions};
use support::*;

const CAP_NET_ADMIN: u32 = 12;

/// Drops CAP_NET_ADMIN from the calling thread's effective set (capabilities
/// are per thread in Linux).
fn drop_cap_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data slots, as the ABI requires.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn without_cap_net_admin_every_entry_point_says_so() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let (client, mut server) = pair(
        &tb,
        Node::Enbc1,
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
    );
    let mut sent = 0;
    write_until_full(&mut server, 1, &mut sent, 1000);
    let (img, frozen) = dump(server.as_fd()).unwrap();
    let server = frozen.thaw().unwrap();
    tb.enter(Node::Enbc1, || {
        drop_cap_net_admin();
        let err = dump(server.as_fd()).unwrap_err();
        assert!(matches!(err, DumpError::NeedsCapNetAdmin), "{err}");
        assert!(err.to_string().contains("CAP_NET_ADMIN"));
        let err = restore(&img).unwrap_err();
        assert!(matches!(err, RestoreError::NeedsCapNetAdmin), "{err}");
        assert!(err.to_string().contains("CAP_NET_ADMIN"));
        let err = NetLock::open().unwrap_err();
        assert!(matches!(err, LockError::NeedsCapNetAdmin), "{err}");
    })
    .unwrap();
    drop(client);
}

#[test]
fn sockets_not_established_are_refused_naming_the_state() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    tb.enter(Node::Enbc1, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = dump(listener.as_fd()).unwrap_err();
        assert!(
            matches!(
                err,
                DumpError::NotEstablished {
                    state: TcpState::Listen
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("LISTEN"));
        // The peer closed: CLOSE_WAIT.
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(client);
        // The FIN arrived (end of stream) once the socket is in CLOSE_WAIT.
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(std::io::Read::read(&mut server, &mut [0u8; 1]).unwrap(), 0);
        let err = dump(server.as_fd()).unwrap_err();
        assert!(
            matches!(
                err,
                DumpError::NotEstablished {
                    state: TcpState::CloseWait
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("CLOSE_WAIT"));
    })
    .unwrap();
}
