//! Debugging aids for bindings and their tests.

use crate::error::{dp_error, FfiResult};
use crate::slice::dp_str;

/// Panics inside the library on purpose, so a binding can test its handling of `DP_STATUS_PANIC`.
///
/// Always returns an error: `DP_STATUS_PANIC` whose message contains `message` (or `"dp_debug_panic"`
/// when `message` is empty), or `DP_STATUS_NULL_ARGUMENT`/`DP_STATUS_INVALID_UTF8` for a bad `message`.
/// The panic is caught at the boundary like any other; the process is not affected (Rust's default
/// panic hook prints the panic's location to stderr unless the host installed another hook).
/// Thread-safe.
///
/// # Safety
/// `message` is a valid `dp_str` for the duration of the call.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_debug_panic(message: dp_str) -> *mut dp_error {
    boundary! {
        // SAFETY: message is valid for the call.
        let text = unsafe { message.as_str("message") }?;
        let text = if text.is_empty() { "dp_debug_panic" } else { text };
        forced_panic(text)
    }
}

#[allow(clippy::panic)] // the whole point of this function
fn forced_panic(text: &str) -> FfiResult {
    panic!("{text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{dp_error_code, dp_error_free, dp_error_message, dp_status};

    #[test]
    fn forced_panic_becomes_a_panic_status() {
        unsafe {
            let err = dp_debug_panic(dp_str::of("on purpose"));
            assert_eq!(dp_error_code(err), dp_status::DP_STATUS_PANIC);
            let msg = std::ffi::CStr::from_ptr(dp_error_message(err));
            assert_eq!(msg.to_str().ok(), Some("on purpose"));
            dp_error_free(err);
            let bad = [0xc3u8];
            let err = dp_debug_panic(dp_str {
                ptr: bad.as_ptr().cast(),
                len: 1,
            });
            assert_eq!(dp_error_code(err), dp_status::DP_STATUS_INVALID_UTF8);
            dp_error_free(err);
        }
    }
}
