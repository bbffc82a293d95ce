//! [`FlushGate`]: one flush at a time, so that a flush returns only once what was recorded before
//! it has been sent.
//!
//! A flusher takes its buckets out from under a lock, then sends them without the lock (a send
//! may take a request timeout). Without a gate, a caller's flush that finds the buckets already
//! taken by the background thread returns at once, while that thread's send is still in flight:
//! the caller reads "nothing sent" and may exit, losing the payload. Taking the buckets and
//! sending them under one turn of the gate closes that window.
//!
//! Gates live in per-process state (a forked child builds its own), so a turn the parent's thread
//! held at a fork never blocks the child.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// One flush at a time (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct FlushGate {
    busy: Mutex<bool>,
    freed: Condvar,
}

/// A flush's turn at the gate; given back when dropped (also on unwind).
#[derive(Debug)]
pub(crate) struct FlushTurn<'a>(&'a FlushGate);

impl FlushGate {
    fn busy(&self) -> MutexGuard<'_, bool> {
        // A plain flag: a panic elsewhere leaves it meaningful.
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the flush in progress, if any, then takes the turn. `None` when `deadline`
    /// passes first (no deadline: waits as long as that flush's send may take).
    pub(crate) fn turn(&self, deadline: Option<Instant>) -> Option<FlushTurn<'_>> {
        let mut busy = self.busy();
        while *busy {
            busy = match deadline {
                None => self.freed.wait(busy).unwrap_or_else(|e| e.into_inner()),
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.freed
                        .wait_timeout(busy, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        *busy = true;
        Some(FlushTurn(self))
    }
}

impl Drop for FlushTurn<'_> {
    fn drop(&mut self) {
        *self.0.busy() = false;
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_second_turn_waits_for_the_first() {
        let gate = FlushGate::default();
        let first_done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let turn = gate.turn(None).unwrap();
            s.spawn(|| {
                let _second = gate.turn(None).unwrap();
                assert!(
                    first_done.load(Ordering::SeqCst),
                    "took the turn while it was held"
                );
            });
            std::thread::sleep(Duration::from_millis(50));
            first_done.store(true, Ordering::SeqCst);
            drop(turn);
        });
        assert!(gate.turn(Some(Instant::now())).is_some(), "free again");
    }

    #[test]
    fn a_deadline_gives_up_and_frees_nothing() {
        let gate = FlushGate::default();
        let held = gate.turn(None).unwrap();
        let start = Instant::now();
        assert!(gate
            .turn(Some(Instant::now() + Duration::from_millis(20)))
            .is_none());
        assert!(start.elapsed() >= Duration::from_millis(20));
        drop(held);
        assert!(gate.turn(Some(Instant::now())).is_some());
    }
}
