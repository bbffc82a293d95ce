//! Logging: the library logs through the `log` facade; `dp_set_log_callback` forwards records to the
//! host. Silent by default (nothing is ever written to stdout or stderr by the library).

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::{Arc, Once, RwLock};

use crate::error::{dp_error, dp_status, FfiError, FfiResult};
use crate::slice::dp_str;

/// A log level: one of the `DP_LOG_LEVEL_*` values. A larger value is more verbose.
pub type dp_log_level = u32;
/// No logging (what the library does until `dp_set_log_callback` is called).
pub const DP_LOG_LEVEL_OFF: dp_log_level = 0;
/// Errors only.
pub const DP_LOG_LEVEL_ERROR: dp_log_level = 1;
/// Warnings and errors.
pub const DP_LOG_LEVEL_WARN: dp_log_level = 2;
/// Informational messages and above.
pub const DP_LOG_LEVEL_INFO: dp_log_level = 3;
/// Debug messages and above.
pub const DP_LOG_LEVEL_DEBUG: dp_log_level = 4;
/// Everything.
pub const DP_LOG_LEVEL_TRACE: dp_log_level = 5;

/// Receives one log record.
///
/// `level` is `DP_LOG_LEVEL_ERROR` .. `DP_LOG_LEVEL_TRACE`; `target` names the library module that
/// logged; `message` is the text. Both views are UTF-8, NUL-terminated (the NUL is not counted in
/// `len`) and valid only during the call: copy what you keep.
///
/// Called on whichever thread logs, including the library's background threads; calls may overlap,
/// so the callback must be thread-safe. It should return quickly. Records logged by library functions
/// that the callback itself calls are dropped (no recursion).
pub type dp_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: dp_log_level,
        target: dp_str,
        message: dp_str,
    ),
>;

/// Frees a `user_data` the library was given, once the library no longer uses it.
pub type dp_user_data_free = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The installed host callback.
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, dp_log_level, dp_str, dp_str),
    user_data: *mut c_void,
    user_data_free: dp_user_data_free,
}

// SAFETY: `dp_set_log_callback` documents that the callback and user_data are used from any thread,
// concurrently; the host promises they allow it.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(free) = self.user_data_free {
            // SAFETY: the host gave us this function for this pointer; called exactly once, after the
            // last callback call that used it (we hold the last reference).
            unsafe { free(self.user_data) }
        }
    }
}

/// The current sink. Callers clone the `Arc` and release the lock before calling out, so a callback
/// that replaces the callback does not deadlock, and a replaced sink is dropped after its last call.
static SINK: RwLock<Option<Arc<Sink>>> = RwLock::new(None);
static INSTALL: Once = Once::new();
static LOGGER: Forwarder = Forwarder;

thread_local! {
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// The `log::Log` that forwards to the host callback.
struct Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || IN_CALLBACK.with(Cell::get) {
            return;
        }
        let sink = match SINK.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let Some(sink) = sink else { return };
        let mut target = String::with_capacity(record.target().len() + 1);
        target.push_str(record.target());
        target.push('\0');
        let mut message = record.args().to_string();
        message.push('\0');
        let view = |s: &String| dp_str {
            ptr: s.as_ptr().cast(),
            len: s.len() - 1,
        };
        IN_CALLBACK.with(|c| c.set(true));
        // SAFETY: the host's callback with its user_data; the views live until the call returns.
        unsafe {
            (sink.callback)(
                sink.user_data,
                level_to_c(record.level()),
                view(&target),
                view(&message),
            )
        };
        IN_CALLBACK.with(|c| c.set(false));
    }

    fn flush(&self) {}
}

fn level_to_c(level: log::Level) -> dp_log_level {
    match level {
        log::Level::Error => DP_LOG_LEVEL_ERROR,
        log::Level::Warn => DP_LOG_LEVEL_WARN,
        log::Level::Info => DP_LOG_LEVEL_INFO,
        log::Level::Debug => DP_LOG_LEVEL_DEBUG,
        log::Level::Trace => DP_LOG_LEVEL_TRACE,
    }
}

fn level_filter(level: dp_log_level) -> FfiResult<log::LevelFilter> {
    Ok(match level {
        DP_LOG_LEVEL_OFF => log::LevelFilter::Off,
        DP_LOG_LEVEL_ERROR => log::LevelFilter::Error,
        DP_LOG_LEVEL_WARN => log::LevelFilter::Warn,
        DP_LOG_LEVEL_INFO => log::LevelFilter::Info,
        DP_LOG_LEVEL_DEBUG => log::LevelFilter::Debug,
        DP_LOG_LEVEL_TRACE => log::LevelFilter::Trace,
        other => {
            return Err(FfiError::invalid_argument(format!(
            "argument `level` is {other}; expected DP_LOG_LEVEL_OFF (0) .. DP_LOG_LEVEL_TRACE (5)"
        )))
        }
    })
}

fn replace_sink(new: Option<Arc<Sink>>) {
    let old = match SINK.write() {
        Ok(mut guard) => std::mem::replace(&mut *guard, new),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), new),
    };
    // Dropped outside the lock: may call the host's user_data_free.
    drop(old);
}

/// Sends the library's log records at `level` and more severe to `callback`; replaces any previous
/// callback. The library is silent until this is called, and never writes to stdout or stderr.
///
/// - `callback` NULL: logging stops (level is ignored); `user_data`/`user_data_free` are not used.
/// - `level`: one of `DP_LOG_LEVEL_OFF` .. `DP_LOG_LEVEL_TRACE`; anything else is
///   `DP_STATUS_INVALID_ARGUMENT`.
/// - `user_data` is passed to every call; `user_data_free` (may be NULL) is called once with it when
///   the callback is replaced or removed and no call to it is running any more.
///
/// On success an INFO record "log callback installed" is delivered (if `level` allows it). On error
/// nothing changes and `user_data` stays the caller's. `DP_STATUS_UNSUPPORTED` means another Rust
/// component of the process already installed a `log` logger.
///
/// Thread-safe; see `dp_log_callback` for the threads the callback runs on.
///
/// # Safety
/// `callback` and `user_data_free` are NULL or valid functions; `user_data` is valid for them from any
/// thread until `user_data_free` is called.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_set_log_callback(
    callback: dp_log_callback,
    user_data: *mut c_void,
    user_data_free: dp_user_data_free,
    level: dp_log_level,
) -> *mut dp_error {
    boundary! {
        let Some(callback) = callback else {
            log::set_max_level(log::LevelFilter::Off);
            replace_sink(None);
            return Ok(());
        };
        let filter = level_filter(level)?;
        let mut installed = true;
        INSTALL.call_once(|| installed = log::set_logger(&LOGGER).is_ok());
        if !installed || !is_ours() {
            return Err(FfiError::new(
                dp_status::DP_STATUS_UNSUPPORTED,
                "another `log` logger is already installed in this process",
            ));
        }
        replace_sink(Some(Arc::new(Sink {
            callback,
            user_data,
            user_data_free,
        })));
        log::set_max_level(filter);
        log::info!(target: "data_pipeline_ffi", "log callback installed at level {filter}");
        Ok(())
    }
}

/// True when the process-wide `log` logger is ours.
fn is_ours() -> bool {
    std::ptr::addr_eq(log::logger(), &LOGGER as &dyn log::Log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{dp_error_code, dp_error_free};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    static RECORDS: Mutex<Vec<(u32, String, String)>> = Mutex::new(Vec::new());
    static FREED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn record(
        _ud: *mut c_void,
        level: dp_log_level,
        target: dp_str,
        msg: dp_str,
    ) {
        let t = unsafe { target.as_str("t") }.unwrap_or("?").to_owned();
        let m = unsafe { msg.as_str("m") }.unwrap_or("?").to_owned();
        // The views are NUL-terminated.
        assert_eq!(unsafe { *msg.ptr.add(msg.len) }, 0);
        if let Ok(mut r) = RECORDS.lock() {
            r.push((level, t, m));
        }
    }

    unsafe extern "C" fn free_ud(ud: *mut c_void) {
        assert_eq!(ud as usize, 0x1234);
        FREED.fetch_add(1, Ordering::SeqCst);
    }

    // One test: the logger is process-global.
    #[test]
    fn callback_receives_records_filters_by_level_and_frees_user_data() {
        unsafe {
            let err = dp_set_log_callback(Some(record), std::ptr::null_mut(), None, 9);
            assert_eq!(dp_error_code(err), dp_status::DP_STATUS_INVALID_ARGUMENT);
            dp_error_free(err);

            let ud = 0x1234 as *mut c_void;
            let err = dp_set_log_callback(Some(record), ud, Some(free_ud), DP_LOG_LEVEL_INFO);
            assert!(err.is_null());
            log::debug!("hidden");
            log::warn!("shown {}", 1);
            let got = RECORDS.lock().map(|r| r.clone()).unwrap_or_default();
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0].0, DP_LOG_LEVEL_INFO);
            assert_eq!(got[0].1, "data_pipeline_ffi");
            assert!(got[0].2.starts_with("log callback installed"));
            assert_eq!(got[1].0, DP_LOG_LEVEL_WARN);
            assert_eq!(got[1].2, "shown 1");
            assert_eq!(FREED.load(Ordering::SeqCst), 0);

            // Removing the callback frees user_data once and silences the library.
            let err = dp_set_log_callback(None, std::ptr::null_mut(), None, DP_LOG_LEVEL_TRACE);
            assert!(err.is_null());
            assert_eq!(FREED.load(Ordering::SeqCst), 1);
            log::error!("dropped");
            assert_eq!(RECORDS.lock().map(|r| r.len()).unwrap_or(0), 2);
        }
    }
}
