//! [`InFlight`]: the sends a flusher has in progress, so that a flush returns only once what was
//! recorded before it has been sent.
//!
//! A flusher takes its buckets out from under a lock, then sends them without the lock (a send
//! may take a request timeout). A caller's flush that finds the buckets already taken by the
//! background thread must not return while that thread's send is still in flight: the caller
//! would read "nothing sent" and may exit, losing the payload. So each flush registers its send
//! ([`InFlight::start`]) under the same lock as it takes the buckets, and a flush returns after
//! [`InFlight::wait_idle`]. Flushes never wait for each other before taking buckets, so a flush
//! at shutdown always takes (and sends) what is left, however long another send takes.
//!
//! The tracker lives in per-process state (a forked child builds its own), so a send the
//! parent's thread had in flight at a fork never blocks the child.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Counts the sends in progress (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    sends: Mutex<usize>,
    ended: Condvar,
}

/// One send in progress; ends when dropped (also on unwind).
#[derive(Debug)]
pub(crate) struct Sending<'a>(&'a InFlight);

impl InFlight {
    fn sends(&self) -> MutexGuard<'_, usize> {
        // A plain count: a panic elsewhere leaves it meaningful.
        self.sends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a send. Call it under the lock the buckets are taken with, so that a flush
    /// finding them gone sees the send that took them.
    pub(crate) fn start(&self) -> Sending<'_> {
        *self.sends() += 1;
        Sending(self)
    }

    /// Waits until no send is in progress; false when `deadline` passes first (no deadline:
    /// as long as the sends in progress take, each bounded by its request timeout).
    pub(crate) fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        let mut sends = self.sends();
        while *sends > 0 {
            sends = match deadline {
                None => self.ended.wait(sends).unwrap_or_else(|e| e.into_inner()),
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.ended
                        .wait_timeout(sends, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        true
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let mut sends = self.0.sends();
        *sends = sends.saturating_sub(1);
        if *sends == 0 {
            self.0.ended.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn wait_idle_returns_after_the_send_ends() {
        let in_flight = InFlight::default();
        let ended = AtomicBool::new(false);
        std::thread::scope(|s| {
            let sending = in_flight.start();
            s.spawn(|| {
                assert!(in_flight.wait_idle(None));
                assert!(
                    ended.load(Ordering::SeqCst),
                    "returned while a send was in flight"
                );
            });
            std::thread::sleep(Duration::from_millis(50));
            ended.store(true, Ordering::SeqCst);
            drop(sending);
        });
        assert!(in_flight.wait_idle(Some(Instant::now())), "idle again");
    }

    #[test]
    fn a_deadline_gives_up_and_the_send_goes_on() {
        let in_flight = InFlight::default();
        let sending = in_flight.start();
        let start = Instant::now();
        assert!(!in_flight.wait_idle(Some(Instant::now() + Duration::from_millis(20))));
        assert!(start.elapsed() >= Duration::from_millis(20));
        let second = in_flight.start();
        drop(sending);
        assert!(
            !in_flight.wait_idle(Some(Instant::now())),
            "one send still in flight"
        );
        drop(second);
        assert!(in_flight.wait_idle(Some(Instant::now())));
    }
}
