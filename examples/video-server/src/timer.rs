//! A precise one-shot timer for the pacer.
//!
//! The runtime's timers tick in whole milliseconds: a pause of 1 ms lasts
//! 1 to 2 ms, so the pacer's chunks of about 1 ms left in bursts every
//! ~2.2 ms, and every migration's client stall included such a gap. A
//! timerfd wakes within microseconds of its deadline. Only short waits
//! (pacing at high bit rates) use one, created on first need: slow
//! streams and idle timeouts keep the runtime's timers and cost no file
//! descriptor.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Waits shorter than this use a timerfd.
pub const PRECISE_BELOW: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A session's timer: a timerfd once a short wait needed one.
#[derive(Debug, Default)]
pub struct PaceTimer {
    fd: Option<AsyncFd<Fd>>,
    /// Creating the timerfd failed once (say, out of descriptors): the
    /// runtime's timers are used from then on.
    unavailable: bool,
}

impl PaceTimer {
    /// Returns at `at` (at once if it has passed).
    pub async fn sleep_until(&mut self, at: Instant) {
        let now = Instant::now();
        if at <= now {
            return;
        }
        let wait = at - now;
        if wait < PRECISE_BELOW
            && let Some(fd) = self.fd()
        {
            if precise(fd, wait).await.is_ok() {
                return;
            }
            // A timerfd that fails to arm or read is given up on.
            self.fd = None;
            self.unavailable = true;
        }
        tokio::time::sleep_until(at).await;
    }

    fn fd(&mut self) -> Option<&AsyncFd<Fd>> {
        if self.fd.is_none() && !self.unavailable {
            let made = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .map_err(io::Error::from)
            .and_then(|t| {
                // SAFETY: `Fd` owns the timerfd and always reports the same
                // descriptor; it is closed only when the AsyncFd drops it.
                unsafe { AsyncFd::register_with_interest(Fd(t), Interest::READABLE) }
                    .map_err(io::Error::from)
            });
            match made {
                Ok(fd) => self.fd = Some(fd),
                Err(e) => {
                    tracing::debug!(error = %e, "no timerfd; pacing with the runtime's timers");
                    self.unavailable = true;
                }
            }
        }
        self.fd.as_ref()
    }
}

/// Arms `fd` to expire after `wait` and waits for the expiry.
async fn precise(fd: &AsyncFd<Fd>, wait: Duration) -> io::Result<()> {
    // Arming resets the expiry count, so an expiry left unread by an
    // earlier wait (the session woke for something else) is dropped.
    fd.get_ref()
        .0
        .set(
            Expiration::OneShot(TimeSpec::from_duration(wait)),
            TimerSetTimeFlags::empty(),
        )
        .map_err(io::Error::from)?;
    loop {
        let mut ready = fd.readable().await?;
        match ready.try_io(|f| f.get_ref().0.wait().map_err(io::Error::from)) {
            Ok(r) => return r,
            // Readiness left from an earlier expiry: wait again.
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_waits_use_a_timerfd_and_never_end_early() {
        let mut t = PaceTimer::default();
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(300);
            t.sleep_until(at).await;
            assert!(Instant::now() >= at, "woke before its deadline");
        }
        assert!(t.fd.is_some(), "a short wait uses a timerfd");
    }

    #[tokio::test]
    async fn long_waits_and_past_deadlines_need_no_descriptor() {
        let mut t = PaceTimer::default();
        t.sleep_until(Instant::now() - Duration::from_millis(1))
            .await;
        t.sleep_until(Instant::now() + PRECISE_BELOW + Duration::from_millis(1))
            .await;
        assert!(t.fd.is_none());
    }

    #[tokio::test]
    async fn an_expiry_left_unread_does_not_end_the_next_wait_early() {
        let mut t = PaceTimer::default();
        // Armed, expired, never read (the session woke for something
        // else), and seen readable by the runtime.
        let fd = t.fd().expect("a timerfd");
        fd.get_ref()
            .0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(Duration::from_millis(1))),
                TimerSetTimeFlags::empty(),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(3));
        drop(fd.readable().await.unwrap());
        let at = Instant::now() + Duration::from_millis(5);
        t.sleep_until(at).await;
        assert!(Instant::now() >= at, "the stale expiry ended the wait");
    }
}
