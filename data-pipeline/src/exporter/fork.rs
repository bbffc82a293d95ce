//! Surviving `fork()`: what does not cross it, how a child process recovers, and the explicit
//! hooks for hosts that fork (pre-fork servers: gunicorn, uwsgi, Resque, PHP-FPM).
//!
//! A child process keeps a copy of the parent's memory but only the thread that called `fork()`.
//! Every other thread is gone: the background worker, and the tokio runtime's drivers. Every lock
//! that another thread held at that instant stays held forever in the child. So the child must never
//! touch the parent's runtime, HTTP client, queue or their locks. It must also not *drop* them, because
//! dropping a runtime or a connection pool takes their locks.
//!
//! The rule here: everything that does not survive a fork lives in a [`ForkLocal`] cell. A cell
//! remembers the process that filled it. In another process, the next access builds a fresh value
//! and swaps it in with a compare-and-swap (no lock). The stale value is **leaked**: never dropped,
//! never touched. So a child never inherits the parent's queued traces (it starts with an empty
//! queue and zeroed counters), and it never deadlocks on a lock the parent held.
//!
//! Detecting the fork on the next call costs one check per call:
//! - by default, the process id (`getpid`, a system call; about 0.4 µs on a loaded VM, 0.05 µs on
//!   bare metal);
//! - after [`set_fork_notifier_installed`], one atomic load. That function is for a host (the C ABI) that
//!   registered a `pthread_atfork` child handler calling [`note_fork_in_child`]. The handler only
//!   increments an atomic, so it is async-signal-safe and cannot deadlock. Calls off the hot path
//!   (flush, shutdown, health, the hooks, `send`) always compare the process id too, in case a
//!   fork bypassed the atfork handlers (a raw `clone`).
//!
//! The explicit hooks [`before_fork`], [`after_fork_parent`] and [`after_fork_child`] apply to every
//! live exporter of the process (through a registry of weak references):
//! - `before_fork` pauses each background worker at a safe point: it then holds no lock of ours
//!   and runs none of our code until resumed. It also holds the registry lock until the
//!   `after_fork_*` call, so no exporter is being created across the fork.
//! - `after_fork_parent` resumes the workers.
//! - `after_fork_child` resets every exporter for the child at once, rather than on its next call.
//!   It is a no-op for state that already belongs to the calling process.
//!
//! What the child leaks: the parent's runtime, client and queue memory, and the
//! few file descriptors they hold (pooled agent connections, the runtime's epoll and event fds).
//! These stay open until the child exits or execs.

use crate::Result;
use std::cell::RefCell;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};

/// Incremented in each child process by the host's `pthread_atfork` child handler.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Set once a host installed a handler that calls [`note_fork_in_child`].
static NOTIFIER_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Records that this process is a fresh child. Meant for a `pthread_atfork` child handler (the C
/// ABI installs one): it only increments an atomic, which is async-signal-safe.
pub fn note_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// Declares that [`note_fork_in_child`] runs in every child of this process (a `pthread_atfork`
/// child handler is installed). From then on the hot paths, such as `enqueue`, detect a fork with one
/// atomic load instead of a `getpid` system call. This applies to state created after this call. It
/// cannot be undone: the handler stays installed.
pub fn set_fork_notifier_installed() {
    NOTIFIER_INSTALLED.store(true, Ordering::Release);
}

/// True once [`set_fork_notifier_installed`] was called in this process or an ancestor.
pub fn fork_notifier_installed() -> bool {
    NOTIFIER_INSTALLED.load(Ordering::Acquire)
}

/// The process a value was created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Birth {
    pid: u32,
    epoch: u64,
    /// The fork notifier was installed when the value was created, so every later fork bumps
    /// the epoch.
    notified: bool,
}

impl Birth {
    /// The current process.
    pub(crate) fn now() -> Birth {
        // Read the flag first: a fork after this point bumps the epoch read next.
        let notified = NOTIFIER_INSTALLED.load(Ordering::Acquire);
        Birth {
            pid: std::process::id(),
            epoch: FORK_EPOCH.load(Ordering::Relaxed),
            notified,
        }
    }

    /// True while still in the creating process: the cheap check of the hot paths.
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        if self.notified {
            FORK_EPOCH.load(Ordering::Relaxed) == self.epoch
        } else {
            std::process::id() == self.pid
        }
    }

    /// Like [`Birth::is_current`], but always compares the process id too (off the hot path).
    pub(crate) fn is_current_strict(&self) -> bool {
        FORK_EPOCH.load(Ordering::Relaxed) == self.epoch && std::process::id() == self.pid
    }
}

struct Slot<T> {
    birth: Birth,
    value: T,
}

/// Where the parent's leaked state goes in a child: a lock-free list rooted in a static. Nothing
/// is ever freed or read through it; it only keeps that memory *reachable*, so leak checkers
/// (valgrind, LeakSanitizer) see it as deliberately retained rather than lost.
struct Grave {
    _leaked: *mut u8,
    next: *mut Grave,
}

static GRAVEYARD: AtomicPtr<Grave> = AtomicPtr::new(std::ptr::null_mut());

fn bury<T>(p: *mut T) {
    let grave = Box::into_raw(Box::new(Grave {
        _leaked: p.cast(),
        next: std::ptr::null_mut(),
    }));
    let mut head = GRAVEYARD.load(Ordering::Relaxed);
    loop {
        // SAFETY: `grave` is ours until published by the CAS below.
        unsafe { (*grave).next = head };
        match GRAVEYARD.compare_exchange_weak(head, grave, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

/// A value that belongs to one process: a fresh one is built in a forked child on first access,
/// and the parent's is leaked (see the module docs). Lock-free: a pointer swapped by CAS.
pub(crate) struct ForkLocal<T> {
    /// A leaked `Box<Slot<T>>`, or null before the first access of an [`ForkLocal::empty`] cell.
    /// A slot is freed only by `Drop` (with `&mut self`, so no reference is out), and only if it
    /// belongs to the dropping process. Replaced slots are never freed, so a `&T` handed out
    /// stays valid as long as `&self` does.
    ptr: AtomicPtr<Slot<T>>,
    _owns: PhantomData<*mut T>,
}

// SAFETY: the cell owns its `T` (dropped by whichever thread drops the cell: needs `T: Send`) and
// hands out `&T` to every thread (needs `T: Sync`), and values built by one thread through `&self`
// may be dropped by another (needs `T: Send` again).
unsafe impl<T: Send> Send for ForkLocal<T> {}
// SAFETY: see above.
unsafe impl<T: Send + Sync> Sync for ForkLocal<T> {}

impl<T> ForkLocal<T> {
    /// A cell holding `value` for the current process.
    pub(crate) fn new(value: T) -> Self {
        Self::with_birth(value, Birth::now())
    }

    fn with_birth(value: T, birth: Birth) -> Self {
        let slot = Box::into_raw(Box::new(Slot { birth, value }));
        ForkLocal {
            ptr: AtomicPtr::new(slot),
            _owns: PhantomData,
        }
    }

    /// An empty cell (for statics): the first access builds the value.
    pub(crate) const fn empty() -> Self {
        ForkLocal {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    fn slot(&self) -> Option<&Slot<T>> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: non-null pointers come from `Box::into_raw` and are freed only in `drop`.
        unsafe { p.as_ref() }
    }

    /// The value for this process, after building a fresh one with `make` if the cell was
    /// filled in another process (or is empty). `make` gets the stale value, if any: it may
    /// read it but must not block on it (its locks may be held forever); use `try_lock`.
    #[inline]
    pub(crate) fn get(&self, make: impl FnOnce(Option<&T>) -> Result<T>) -> Result<&T> {
        match self.slot() {
            Some(s) if s.birth.is_current() => Ok(&s.value),
            _ => self.replace(make, false),
        }
    }

    /// Like [`ForkLocal::get`] for a `make` that cannot fail.
    #[inline]
    pub(crate) fn get_or_make(&self, make: impl FnOnce(Option<&T>) -> T) -> &T {
        match self.slot() {
            Some(s) if s.birth.is_current() => &s.value,
            _ => match self.replace(|stale| Ok::<T, Infallible>(make(stale)), false) {
                Ok(v) => v,
                Err(never) => match never {},
            },
        }
    }

    /// Like [`ForkLocal::get`], with the strict check (process id and epoch).
    pub(crate) fn get_strict(&self, make: impl FnOnce(Option<&T>) -> Result<T>) -> Result<&T> {
        match self.slot() {
            Some(s) if s.birth.is_current_strict() => Ok(&s.value),
            _ => self.replace(make, true),
        }
    }

    /// The value if it belongs to this process (strict check); never builds one.
    pub(crate) fn current(&self) -> Option<&T> {
        self.slot()
            .filter(|s| s.birth.is_current_strict())
            .map(|s| &s.value)
    }

    #[cold]
    fn replace<E>(
        &self,
        make: impl FnOnce(Option<&T>) -> std::result::Result<T, E>,
        strict: bool,
    ) -> std::result::Result<&T, E> {
        let mut seen = self.ptr.load(Ordering::Acquire);
        // SAFETY: as in `slot`.
        let stale = unsafe { seen.as_ref() }.map(|s| &s.value);
        let fresh = Box::into_raw(Box::new(Slot {
            birth: Birth::now(),
            value: make(stale)?,
        }));
        loop {
            match self
                .ptr
                .compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // The stale slot is leaked on purpose (see the module docs).
                Ok(_) => {
                    if !seen.is_null() {
                        bury(seen);
                    }
                    // SAFETY: `fresh` was just published and is never freed while `&self` lives.
                    return Ok(unsafe { &(*fresh).value });
                }
                Err(now) => {
                    // Another thread of this process replaced it first: use theirs if it is
                    // current, else try again over it.
                    // SAFETY: as in `slot`.
                    let other = unsafe { now.as_ref() };
                    let ok = other.is_some_and(|s| {
                        if strict {
                            s.birth.is_current_strict()
                        } else {
                            s.birth.is_current()
                        }
                    });
                    if ok {
                        // SAFETY: `fresh` was never published: this thread owns it.
                        drop(unsafe { Box::from_raw(fresh) });
                        // SAFETY: `now` is non-null (checked by `ok`) and never freed while
                        // `&self` lives.
                        return Ok(unsafe { &(*now).value });
                    }
                    seen = now;
                }
            }
        }
    }
}

impl<T> Drop for ForkLocal<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        // SAFETY: as in `slot`; `&mut self` means no reference is out.
        let Some(slot) = (unsafe { p.as_ref() }) else {
            return;
        };
        if slot.birth.is_current_strict() {
            // SAFETY: created by `Box::into_raw`, not freed before, owned by this process.
            drop(unsafe { Box::from_raw(p) });
        } else {
            // The parent's value, left alone in the child (see the module docs).
            bury(p);
        }
    }
}

/// A lock for a forked child: a copy of the parent's value (`stale`) taken without blocking
/// (`try_lock`), or the default when a parent thread held the lock at the fork, so that no thread
/// ever waits on a lock whose holder did not survive the fork.
fn copy_without_blocking<T: Clone + Default>(stale: Option<&Mutex<T>>) -> Mutex<T> {
    let copy = stale.and_then(|m| m.try_lock().ok().map(|v| v.clone()));
    Mutex::new(copy.unwrap_or_default())
}

/// A value behind a lock, one per process. A child starts from the parent's value
/// ([`ForkLocalMutex::inherited`], for snapshots such as sampling rates; copied without
/// blocking) or from the default ([`ForkLocalMutex::per_process`], for counters, which count
/// what each process did, as [`super::Health`] does).
pub(crate) struct ForkLocalMutex<T> {
    value: ForkLocal<Mutex<T>>,
    inherit: bool,
}

impl<T: Clone + Default> ForkLocalMutex<T> {
    /// A lock holding `value`; a child starts from a copy of the parent's.
    pub(crate) fn inherited(value: T) -> Self {
        ForkLocalMutex {
            value: ForkLocal::new(Mutex::new(value)),
            inherit: true,
        }
    }

    /// A lock holding `value`; a child starts from the default.
    pub(crate) fn per_process(value: T) -> Self {
        ForkLocalMutex {
            value: ForkLocal::new(Mutex::new(value)),
            inherit: false,
        }
    }

    /// This process's value, locked (a poisoned lock is taken over: the values kept here are
    /// counters and snapshots that a panic cannot leave torn).
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.value
            .get_or_make(|stale| {
                if self.inherit {
                    copy_without_blocking(stale)
                } else {
                    Mutex::default()
                }
            })
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ForkLocalMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never blocks: the value when this process's lock is free, else a placeholder.
        match self.value.current().and_then(|m| m.try_lock().ok()) {
            Some(v) => v.fmt(f),
            None => f.write_str("<locked or from another process>"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process-wide hooks
// ---------------------------------------------------------------------------------------------

/// What an exporter does around a fork.
pub(crate) trait ForkAware: Send + Sync {
    /// Pauses background work at a safe point (bounded wait).
    fn before_fork(&self);
    /// Resumes after `before_fork`, in the parent.
    fn after_fork_parent(&self);
    /// Resets in the child (no-op for state of the calling process).
    fn after_fork_child(&self);
}

/// Weak references to every live exporter.
type Entries = Vec<Weak<dyn ForkAware>>;
type Registry = Mutex<Entries>;

/// Every live exporter. Fork-local itself: a child gets a copy made without blocking (or an empty
/// one if a parent thread held the lock at the fork; those exporters still reset on their own
/// next call).
static REGISTRY: ForkLocal<Registry> = ForkLocal::empty();

thread_local! {
    /// The registry lock taken by `before_fork`, held until `after_fork_parent`/`_child`.
    static HELD: RefCell<Option<MutexGuard<'static, Entries>>> =
        const { RefCell::new(None) };
}

fn registry() -> Result<&'static Registry> {
    REGISTRY.get_strict(|stale| Ok(copy_without_blocking(stale)))
}

fn lock_registry(r: &'static Registry) -> MutexGuard<'static, Entries> {
    // Entries are weak references: a panic while holding the lock cannot leave them torn.
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds an exporter to the registry the process-wide hooks walk.
pub(crate) fn register(item: Weak<dyn ForkAware>) -> Result<()> {
    let held = HELD.with(|h| {
        h.borrow_mut().as_mut().map(|g| {
            g.retain(|w| w.strong_count() > 0);
            g.push(item.clone());
        })
    });
    if held.is_some() {
        // Between `before_fork` and `after_fork_*` on this very thread: the lock is ours.
        return Ok(());
    }
    let mut g = lock_registry(registry()?);
    g.retain(|w| w.strong_count() > 0);
    g.push(item);
    Ok(())
}

fn live(g: &[Weak<dyn ForkAware>]) -> Vec<std::sync::Arc<dyn ForkAware>> {
    g.iter().filter_map(Weak::upgrade).collect()
}

/// Prepares every exporter of the process for `fork()`: pauses each background worker at a safe
/// point and holds the exporter registry until [`after_fork_parent`] or [`after_fork_child`].
/// Waits at most about one second per worker. Call it right before `fork()`, on the thread that forks.
/// A second call without an `after_fork_*` in between does nothing.
pub fn before_fork() -> Result<()> {
    if HELD.with(|h| h.borrow().is_some()) {
        return Ok(());
    }
    let g = lock_registry(registry()?);
    for e in live(&g) {
        e.before_fork();
    }
    HELD.with(|h| *h.borrow_mut() = Some(g));
    Ok(())
}

/// Resumes the workers paused by [`before_fork`]. Call it in the parent right after `fork()`.
/// Without a prior `before_fork` on this thread, it resumes every exporter anyway (harmless).
pub fn after_fork_parent() -> Result<()> {
    let held = HELD.with(|h| h.borrow_mut().take());
    let g = match held {
        Some(g) => g,
        None => lock_registry(registry()?),
    };
    for e in live(&g) {
        e.after_fork_parent();
    }
    Ok(())
}

/// Resets every exporter for the child process: empty queues, zeroed counters, a new transport,
/// and a new worker at the next enqueue. The parent's state is leaked. Call it in the child right
/// after `fork()`. Without it, each exporter resets itself on its next call.
pub fn after_fork_child() -> Result<()> {
    let held = HELD.with(|h| h.borrow_mut().take());
    let items = match held {
        // Taken before the fork by this thread: consistent, and ours to release.
        Some(g) => {
            let items = live(&g);
            drop(g);
            items
        }
        None => {
            // Not taken by `before_fork`: never block on the parent's copy of the lock.
            match REGISTRY.current() {
                Some(parents) => match parents.try_lock() {
                    Ok(g) => live(&g),
                    Err(_) => Vec::new(),
                },
                None => match registry() {
                    Ok(r) => r.try_lock().map(|g| live(&g)).unwrap_or_default(),
                    Err(_) => Vec::new(),
                },
            }
        }
    };
    for e in items {
        e.after_fork_child();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ErrorKind};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>, u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn foreign_birth() -> Birth {
        // A process id that is not ours (ids are > 0; ours is not u32::MAX).
        Birth {
            pid: u32::MAX,
            epoch: FORK_EPOCH.load(Ordering::Relaxed),
            notified: false,
        }
    }

    /// An inherited or per-process lock as a forked child sees it: built in another process.
    fn in_child(value: u64, inherit: bool) -> ForkLocalMutex<u64> {
        ForkLocalMutex {
            value: ForkLocal::with_birth(Mutex::new(value), foreign_birth()),
            inherit,
        }
    }

    #[test]
    fn fork_local_mutex_copies_the_parent_value_without_blocking() {
        // Free in the "parent": the child starts from a copy.
        let m = in_child(7, true);
        assert_eq!(*m.lock(), 7);
        *m.lock() += 1;
        assert_eq!(*m.lock(), 8);
        // Held in the "parent" (by a thread that does not exist in the child): the child
        // starts from the default instead of waiting forever.
        let m = in_child(7, true);
        let parent = m.value.slot().map(|s| &s.value);
        let _held = parent.map(|p| p.lock().unwrap());
        assert_eq!(*m.lock(), 0);
    }

    #[test]
    fn per_process_fork_local_mutex_starts_from_the_default() {
        // Counters count what each process did: the parent's value is not carried over.
        let m = in_child(7, false);
        assert_eq!(*m.lock(), 0);
        *m.lock() += 1;
        assert_eq!(*m.lock(), 1);
    }

    #[test]
    fn current_value_is_kept() {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = ForkLocal::new(Counted(drops.clone(), 1));
        let mut built = 0;
        let v = cell
            .get(|_| {
                built += 1;
                Ok(Counted(drops.clone(), 2))
            })
            .unwrap();
        assert_eq!(v.1, 1);
        assert_eq!(built, 0);
        assert_eq!(cell.current().map(|c| c.1), Some(1));
        drop(cell);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "own value dropped");
    }

    #[test]
    fn foreign_value_is_replaced_and_leaked() {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = ForkLocal::with_birth(Counted(drops.clone(), 1), foreign_birth());
        assert!(cell.current().is_none());
        let mut saw_stale = None;
        let v = cell
            .get(|stale| {
                saw_stale = stale.map(|s| s.1);
                Ok(Counted(drops.clone(), 2))
            })
            .unwrap();
        assert_eq!(v.1, 2);
        assert_eq!(saw_stale, Some(1));
        assert_eq!(cell.get(|_| unreachable!()).unwrap().1, 2);
        drop(cell);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "only the fresh value is dropped; the foreign one is leaked"
        );
    }

    #[test]
    fn foreign_value_is_not_dropped() {
        let drops = Arc::new(AtomicUsize::new(0));
        drop(ForkLocal::with_birth(
            Counted(drops.clone(), 1),
            foreign_birth(),
        ));
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn empty_cell_builds_once_and_failures_leave_it_empty() {
        let cell: ForkLocal<u32> = ForkLocal::empty();
        assert!(cell.current().is_none());
        let err = cell
            .get(|_| Err(Error::new(ErrorKind::Internal, "nope")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(cell.current().is_none());
        assert_eq!(*cell.get(|_| Ok(7)).unwrap(), 7);
        assert_eq!(*cell.get_strict(|_| Ok(8)).unwrap(), 7);
    }

    #[test]
    fn racing_replacements_agree_on_one_value() {
        let drops = Arc::new(AtomicUsize::new(0));
        let builds = Arc::new(AtomicUsize::new(0));
        let cell = Arc::new(ForkLocal::with_birth(
            Counted(drops.clone(), 0),
            foreign_birth(),
        ));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let seen: Vec<u32> = (1..=8)
            .map(|i| {
                let (cell, drops, builds, barrier) =
                    (cell.clone(), drops.clone(), builds.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    cell.get(|_| {
                        builds.fetch_add(1, Ordering::SeqCst);
                        // Widen the race window.
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(Counted(drops, i))
                    })
                    .unwrap()
                    .1
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        assert_ne!(seen[0], 0, "the foreign value is never handed out");
        // Every loser dropped its own value; the winner's is in the cell; the foreign one leaked.
        let built = builds.load(Ordering::SeqCst);
        assert!(built >= 1);
        assert_eq!(drops.load(Ordering::SeqCst), built - 1);
    }

    #[test]
    fn epoch_check_when_notifier_installed() {
        let b = Birth {
            pid: std::process::id(),
            epoch: FORK_EPOCH.load(Ordering::Relaxed),
            notified: true,
        };
        assert!(b.is_current() && b.is_current_strict());
        let other = Birth {
            epoch: b.epoch.wrapping_add(1),
            ..b
        };
        assert!(!other.is_current() && !other.is_current_strict());
        let other_pid = Birth { pid: u32::MAX, ..b };
        assert!(other_pid.is_current(), "fast check trusts the epoch");
        assert!(!other_pid.is_current_strict());
    }
}
