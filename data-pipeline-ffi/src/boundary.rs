//! The one panic boundary every export runs in.
//!
//! `boundary! { body }` runs `body` inside [`std::panic::catch_unwind`]. The body's value decides what
//! the C caller gets, through [`Output`]:
//! - a fallible body evaluates to `Result<(), FfiError>` and the export returns `dp_error *` (NULL on
//!   success); a panic becomes an error with `DP_STATUS_PANIC` and the panic's message;
//! - an infallible body evaluates to its C value (pointer, number, view); a panic returns the neutral
//!   value of that type (NULL, 0, an empty view) and is logged at error level.
//!
//! No panic hook is installed: the process-wide hook belongs to the host. (Rust's default hook still
//! prints the panic's location to stderr, as any Rust library in the process would.)

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{dp_error, dp_status, FfiError};
use crate::slice::{dp_bytes, dp_str};

/// Wraps the body of an `extern "C"` function; see the module docs.
macro_rules! boundary {
    ($($body:tt)*) => {
        $crate::boundary::run(move || { $($body)* })
    };
}

/// What a boundary body may evaluate to, and what C receives for it (also after a panic).
pub trait Output {
    /// The C return type.
    type C;
    /// Converts a normal result.
    fn into_c(self) -> Self::C;
    /// The value returned when the body panicked with `message`.
    fn on_panic(message: String) -> Self::C;
}

impl Output for Result<(), FfiError> {
    type C = *mut dp_error;
    fn into_c(self) -> *mut dp_error {
        match self {
            Ok(()) => std::ptr::null_mut(),
            Err(e) => e.into_raw(),
        }
    }
    fn on_panic(message: String) -> *mut dp_error {
        FfiError::panic(message).into_raw()
    }
}

/// Infallible outputs: the neutral value after a panic is given per type.
macro_rules! neutral_output {
    ($($t:ty => $neutral:expr),* $(,)?) => {$(
        impl Output for $t {
            type C = $t;
            fn into_c(self) -> $t { self }
            fn on_panic(message: String) -> $t {
                log::error!(target: "data_pipeline_ffi", "panic caught at the C boundary: {message}");
                $neutral
            }
        }
    )*};
}

impl Output for dp_status {
    type C = dp_status;
    fn into_c(self) -> dp_status {
        self
    }
    fn on_panic(message: String) -> dp_status {
        log::error!(target: "data_pipeline_ffi", "panic caught at the C boundary: {message}");
        dp_status::DP_STATUS_PANIC
    }
}

neutral_output! {
    () => (),
    bool => false,
    u16 => 0,
    u32 => 0,
    u64 => 0,
    i64 => 0,
    usize => 0,
    f64 => 0.0,
    dp_str => dp_str::EMPTY,
    dp_bytes => dp_bytes::EMPTY,
}

impl<T> Output for *mut T {
    type C = *mut T;
    fn into_c(self) -> *mut T {
        self
    }
    fn on_panic(message: String) -> *mut T {
        log::error!(target: "data_pipeline_ffi", "panic caught at the C boundary: {message}");
        std::ptr::null_mut()
    }
}

impl<T> Output for *const T {
    type C = *const T;
    fn into_c(self) -> *const T {
        self
    }
    fn on_panic(message: String) -> *const T {
        log::error!(target: "data_pipeline_ffi", "panic caught at the C boundary: {message}");
        std::ptr::null()
    }
}

/// Runs `f`, turning a panic into [`Output::on_panic`]. Use through `boundary!`.
pub fn run<O: Output>(f: impl FnOnce() -> O) -> O::C {
    // AssertUnwindSafe: after a panic the only state the caller sees is the returned error or neutral
    // value; handles touched by the panicking call stay valid Rust objects (at worst half-updated).
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(out) => out.into_c(),
        Err(payload) => O::on_panic(payload_text(payload.as_ref())),
    }
}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::error::{dp_error_code, dp_error_free, dp_error_message, dp_status};
    use std::ffi::CStr;

    #[test]
    fn fallible_ok_is_null_and_panic_is_an_error_with_the_payload() {
        let ok: *mut dp_error = run(|| -> Result<(), FfiError> { Ok(()) });
        assert!(ok.is_null());
        let err: *mut dp_error = run(|| -> Result<(), FfiError> { panic!("boom {}", 42) });
        unsafe {
            assert_eq!(dp_error_code(err), dp_status::DP_STATUS_PANIC);
            let msg = CStr::from_ptr(dp_error_message(err)).to_str().unwrap_or("");
            assert!(msg.contains("boom 42"), "{msg}");
            dp_error_free(err);
        }
    }

    #[test]
    fn infallible_panics_return_the_neutral_value() {
        assert!(run(|| -> *mut u8 { panic!("x") }).is_null());
        assert!(run(|| -> *const u8 { panic!("x") }).is_null());
        assert_eq!(run(|| -> u32 { panic!("x") }), 0);
        assert_eq!(run(|| -> u64 { panic!("x") }), 0);
        assert_eq!(run(|| -> i64 { panic!("x") }), 0);
        assert_eq!(run(|| -> u16 { panic!("x") }), 0);
        assert_eq!(run(|| -> usize { panic!("x") }), 0);
        assert_eq!(run(|| -> f64 { panic!("x") }), 0.0);
        assert!(!run(|| -> bool { panic!("x") }));
        assert_eq!(run(|| -> dp_str { panic!("x") }).len, 0);
        assert_eq!(run(|| -> dp_bytes { panic!("x") }).len, 0);
        run(|| -> () { panic!("x") });
        assert_eq!(run(|| 7u32), 7);
    }

    #[test]
    fn payload_text_of_non_string_payloads() {
        let payload: Box<dyn Any + Send> = Box::new(5u8);
        assert_eq!(
            payload_text(payload.as_ref()),
            "panic with a non-string payload"
        );
        let payload: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(payload_text(payload.as_ref()), "owned");
    }
}
