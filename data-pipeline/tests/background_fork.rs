//! Fork safety of the background exporter, with real `fork()`: while a parent thread keeps
//! enqueueing (so the queue lock may well be held at the instant of the fork), the parent forks
//! children that each enqueue and deliver their own traces, and send synchronously too. One
//! child forks a grandchild. Half the forks use the explicit hooks, half rely on detection at
//! the next call. A second round detects forks through a `pthread_atfork` notifier instead of
//! `getpid`.
//!
//! Checked: no child hangs (watchdog), every child exits 0 after its own checks (fresh counters,
//! its traces delivered, its account balanced), every trace arrives exactly once at the sink, and
//! no child re-sends the parent's queued traces.
//!
//! One test function on purpose: libtest runs the tests of a binary on parallel threads, and a
//! fork must not copy another test's half-done state.

mod background_support;
mod support;

use background_support::{id_range, reap_children, wait_child, watchdog, CountingSink};
use data_pipeline::exporter::{fork, Exporter, ExporterBuilder};
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::v04_payload;

const CHILD_PAYLOADS: u64 = 5;
const CHILD_TRACES_PER_PAYLOAD: u64 = 2;

fn child_base(round: u64, k: u64) -> u64 {
    (round * 1000 + k + 1) * 1_000_000
}

/// The ids a child (or grandchild) delivers from `base`.
fn child_ids(base: u64) -> HashSet<u64> {
    let mut ids = id_range(base, CHILD_PAYLOADS * CHILD_TRACES_PER_PAYLOAD);
    ids.insert(base + 100);
    ids
}

/// Runs in a child: never prints, never unwinds out; the exit status is the verdict.
fn child_work(ex: &Exporter, base: u64, hooks: bool, grandchild: bool) -> i32 {
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if hooks && fork::after_fork_child().is_err() {
            return 20;
        }
        let h0 = ex.health();
        if h0.traces_enqueued != 0 || h0.traces_pending != 0 || h0.traces_sent != 0 {
            return 10; // inherited the parent's counters or queue
        }
        if h0.forks < 1 {
            return 11;
        }
        for i in 0..CHILD_PAYLOADS {
            let payload = v04_payload(
                CHILD_TRACES_PER_PAYLOAD as usize,
                1,
                base + i * CHILD_TRACES_PER_PAYLOAD,
            );
            if ex.enqueue(&payload).is_err() {
                return 12;
            }
        }
        if ex.flush(Duration::from_secs(20)).is_err() {
            return 13;
        }
        // The synchronous path works in the child too (its own runtime and client).
        match ex.send(&v04_payload(1, 1, base + 100)) {
            Ok(r) if r.status == 200 => {}
            _ => return 14,
        }
        let h = ex.health();
        if h.traces_sent != CHILD_PAYLOADS * CHILD_TRACES_PER_PAYLOAD || !h.balanced() {
            return 15;
        }
        if grandchild {
            // SAFETY: fork in a test process; the grandchild only runs `child_work` then `_exit`.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = child_work(ex, base + 500, false, false);
                // SAFETY: ends the grandchild without running the parent's destructors.
                unsafe { libc::_exit(code) };
            }
            if pid < 0 || wait_child(pid, Duration::from_secs(40)) != Some(0) {
                return 17;
            }
        }
        if ex.shutdown(Duration::from_secs(10)).is_err() {
            return 16;
        }
        0
    }));
    r.unwrap_or(99)
}

/// One round: `forks` children (even ones use the explicit hooks) while a parent thread
/// enqueues, then the checks at the sink.
fn round(sink: &CountingSink, round: u64, forks: u64) {
    let ex = ExporterBuilder::new()
        .url(sink.url())
        .language("rust")
        .tracer_version("0.0.1-fork")
        .batch_max_delay(Duration::from_millis(10))
        .build()
        .unwrap();
    let parent_base = (round + 1) << 40;
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut children = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                ex.enqueue(&v04_payload(1, 1, parent_base + n)).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        for k in 0..forks {
            let hooks = k % 2 == 0;
            if hooks {
                fork::before_fork().unwrap();
            }
            // SAFETY: the child runs only `child_work` (no printing, no unwinding) then `_exit`.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = child_work(&ex, child_base(round, k), hooks, k == 3);
                // SAFETY: ends the child without running the parent's destructors or atexit.
                unsafe { libc::_exit(code) };
            }
            assert!(pid > 0, "fork failed");
            if hooks {
                fork::after_fork_parent().unwrap();
            }
            children.push((k, pid));
            std::thread::sleep(Duration::from_millis(15));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let failures = reap_children(children, Duration::from_secs(60));
    assert!(failures.is_empty(), "round {round}: {failures:?}");
    ex.shutdown(Duration::from_secs(30)).unwrap();
    let h = ex.health();
    let parent_traces = next.load(Ordering::Relaxed);
    assert_eq!(h.traces_enqueued, parent_traces);
    assert_eq!(h.traces_sent, parent_traces, "{h:?}");
    assert_eq!(h.forks, 0, "the parent never resets");
    assert!(h.balanced());

    let got = sink.arrivals();
    assert_eq!(
        got.duplicates(),
        0,
        "a trace arrived twice: a child re-sent parent data"
    );
    let ids = got.id_set();
    assert!(id_range(parent_base, parent_traces).is_subset(&ids));
    for k in 0..forks {
        let base = child_base(round, k);
        assert!(child_ids(base).is_subset(&ids), "round {round} child {k}");
        if k == 3 {
            assert!(child_ids(base + 500).is_subset(&ids), "grandchild");
        }
    }
}

extern "C" fn note_fork() {
    fork::note_fork_in_child();
}

fn fork_rounds(first: u64, second: u64) {
    let _w = watchdog("fork test", Duration::from_secs(300));
    let sink = CountingSink::start();
    // Round 1: the fork is detected with getpid.
    assert!(!fork::fork_notifier_installed());
    round(&sink, 0, first);
    // Round 2: a pthread_atfork child handler bumps the fork epoch (as the C ABI does).
    // SAFETY: registers a handler that only increments an atomic (async-signal-safe).
    let rc = unsafe { libc::pthread_atfork(None, None, Some(note_fork)) };
    assert_eq!(rc, 0);
    fork::set_fork_notifier_installed();
    round(&sink, 1, second);
}

#[test]
fn forks_while_enqueueing_children_and_parent_deliver_their_own() {
    fork_rounds(20, 10);
}

#[test]
#[ignore = "long: 200 + 100 forks; run alone with --ignored"]
fn many_forks() {
    fork_rounds(200, 100);
}
