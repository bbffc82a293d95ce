//! `dp_error` and `dp_status`: the one error style of the C ABI.
//!
//! A fallible function returns `dp_error *`: NULL on success, else an error the caller owns and frees
//! with `dp_error_free`. There is no thread-local "last error".

use std::ffi::{c_char, CStr, CString};

use engine::{Error, ErrorKind};

/// Stable status codes, carried by every `dp_error`.
///
/// The numbers are part of the ABI: new codes are appended, none is ever renumbered or reused (a
/// retired code stays here as a comment). Codes 1-10 map `data_pipeline::ErrorKind` one to one; later
/// codes are specific to the C boundary. A binding must treat an unknown code like
/// `DP_STATUS_INTERNAL`: a newer library may return codes an older header does not list.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum dp_status {
    /// No error (what `dp_error_code(NULL)` returns).
    DP_STATUS_OK = 0,
    /// A caller passed an invalid value (bad URL, unknown option value, out-of-range number, ...).
    DP_STATUS_INVALID_ARGUMENT = 1,
    /// Input bytes could not be decoded (malformed msgpack, wrong shape).
    DP_STATUS_DECODE = 2,
    /// Data could not be encoded in the requested format.
    DP_STATUS_ENCODE = 3,
    /// A network or socket error (connection refused, reset, ...).
    DP_STATUS_NETWORK = 4,
    /// The operation did not finish within its time bound.
    DP_STATUS_TIMEOUT = 5,
    /// The agent answered with an HTTP error status (see `dp_error_http_status`).
    DP_STATUS_HTTP = 6,
    /// The agent or the configuration does not support what was asked.
    DP_STATUS_UNSUPPORTED = 7,
    /// The object was shut down or is otherwise unusable.
    DP_STATUS_SHUTDOWN = 8,
    /// Work was dropped because a bound (queue bytes, cardinality) was reached.
    DP_STATUS_OVERFLOW = 9,
    /// A bug in the library (an invariant was broken).
    DP_STATUS_INTERNAL = 10,
    /// A required pointer argument was NULL (or a `dp_str`/`dp_bytes` had a NULL `ptr` and a
    /// non-zero `len`). The message names the argument.
    DP_STATUS_NULL_ARGUMENT = 11,
    /// A `dp_str` argument was not valid UTF-8. The message names the argument and the byte offset.
    DP_STATUS_INVALID_UTF8 = 12,
    /// The library panicked (a bug); the message is the panic's text. Out-params were not written;
    /// handles the call borrowed remain valid and must still be freed (a handle the function
    /// consumes is consumed, as on any error).
    DP_STATUS_PANIC = 13,
    /// The requested item does not exist (e.g. the agent sent no sampling rate for a service and no
    /// default rate).
    DP_STATUS_NOT_FOUND = 14,
}

impl dp_status {
    /// The status for an engine error kind.
    pub fn from_kind(kind: ErrorKind) -> dp_status {
        match kind {
            ErrorKind::InvalidArgument => dp_status::DP_STATUS_INVALID_ARGUMENT,
            ErrorKind::Decode => dp_status::DP_STATUS_DECODE,
            ErrorKind::Encode => dp_status::DP_STATUS_ENCODE,
            ErrorKind::Network => dp_status::DP_STATUS_NETWORK,
            ErrorKind::Timeout => dp_status::DP_STATUS_TIMEOUT,
            ErrorKind::Http => dp_status::DP_STATUS_HTTP,
            ErrorKind::Unsupported => dp_status::DP_STATUS_UNSUPPORTED,
            ErrorKind::Shutdown => dp_status::DP_STATUS_SHUTDOWN,
            ErrorKind::Overflow => dp_status::DP_STATUS_OVERFLOW,
            ErrorKind::Internal => dp_status::DP_STATUS_INTERNAL,
            // A kind added to the engine without its own code yet: still an error, never a panic.
            _ => dp_status::DP_STATUS_INTERNAL,
        }
    }

    /// The C name of the status, e.g. `"DP_STATUS_PANIC"`, as static NUL-terminated text.
    pub fn c_name(self) -> &'static CStr {
        match self {
            dp_status::DP_STATUS_OK => c"DP_STATUS_OK",
            dp_status::DP_STATUS_INVALID_ARGUMENT => c"DP_STATUS_INVALID_ARGUMENT",
            dp_status::DP_STATUS_DECODE => c"DP_STATUS_DECODE",
            dp_status::DP_STATUS_ENCODE => c"DP_STATUS_ENCODE",
            dp_status::DP_STATUS_NETWORK => c"DP_STATUS_NETWORK",
            dp_status::DP_STATUS_TIMEOUT => c"DP_STATUS_TIMEOUT",
            dp_status::DP_STATUS_HTTP => c"DP_STATUS_HTTP",
            dp_status::DP_STATUS_UNSUPPORTED => c"DP_STATUS_UNSUPPORTED",
            dp_status::DP_STATUS_SHUTDOWN => c"DP_STATUS_SHUTDOWN",
            dp_status::DP_STATUS_OVERFLOW => c"DP_STATUS_OVERFLOW",
            dp_status::DP_STATUS_INTERNAL => c"DP_STATUS_INTERNAL",
            dp_status::DP_STATUS_NULL_ARGUMENT => c"DP_STATUS_NULL_ARGUMENT",
            dp_status::DP_STATUS_INVALID_UTF8 => c"DP_STATUS_INVALID_UTF8",
            dp_status::DP_STATUS_PANIC => c"DP_STATUS_PANIC",
            dp_status::DP_STATUS_NOT_FOUND => c"DP_STATUS_NOT_FOUND",
        }
    }

    /// The C name of the status, e.g. `"DP_STATUS_PANIC"`.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("DP_STATUS_UNKNOWN")
    }

    /// Every status, in numeric order (for tests and `dp_status_name`).
    pub(crate) const ALL: [dp_status; 15] = [
        dp_status::DP_STATUS_OK,
        dp_status::DP_STATUS_INVALID_ARGUMENT,
        dp_status::DP_STATUS_DECODE,
        dp_status::DP_STATUS_ENCODE,
        dp_status::DP_STATUS_NETWORK,
        dp_status::DP_STATUS_TIMEOUT,
        dp_status::DP_STATUS_HTTP,
        dp_status::DP_STATUS_UNSUPPORTED,
        dp_status::DP_STATUS_SHUTDOWN,
        dp_status::DP_STATUS_OVERFLOW,
        dp_status::DP_STATUS_INTERNAL,
        dp_status::DP_STATUS_NULL_ARGUMENT,
        dp_status::DP_STATUS_INVALID_UTF8,
        dp_status::DP_STATUS_PANIC,
        dp_status::DP_STATUS_NOT_FOUND,
    ];
}

/// An error returned by a fallible function: a `dp_status` code, a UTF-8 NUL-terminated message and,
/// for `DP_STATUS_HTTP`, the HTTP status.
///
/// Owned by the caller: free it with `dp_error_free`. Immutable; safe to read from several threads at
/// once and to move between threads (Send + Sync).
pub struct dp_error {
    status: dp_status,
    message: CString,
    http_status: u16,
}

const _: () = {
    crate::assert_thread::send::<dp_error>();
    crate::assert_thread::sync::<dp_error>();
};

/// The Rust side of a `dp_error` before it crosses the boundary: what fallible bodies return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfiError {
    /// The status code.
    pub status: dp_status,
    /// The message (an interior NUL is replaced when it becomes C text).
    pub message: String,
    /// The HTTP status for `DP_STATUS_HTTP`, else 0.
    pub http_status: u16,
}

impl FfiError {
    /// A new error.
    pub fn new(status: dp_status, message: impl Into<String>) -> Self {
        FfiError {
            status,
            message: message.into(),
            http_status: 0,
        }
    }

    /// A NULL pointer was passed for the argument `arg`.
    pub fn null_argument(arg: &str) -> Self {
        Self::new(
            dp_status::DP_STATUS_NULL_ARGUMENT,
            format!("argument `{arg}` is NULL"),
        )
    }

    /// An invalid argument.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(dp_status::DP_STATUS_INVALID_ARGUMENT, message)
    }

    /// A caught panic.
    pub fn panic(message: impl Into<String>) -> Self {
        Self::new(dp_status::DP_STATUS_PANIC, message)
    }

    /// Moves the error to the heap for C.
    pub fn into_raw(self) -> *mut dp_error {
        let message = CString::new(self.message).unwrap_or_else(|e| {
            let mut bytes = e.into_vec();
            bytes.retain(|b| *b != 0);
            CString::new(bytes).unwrap_or_default()
        });
        Box::into_raw(Box::new(dp_error {
            status: self.status,
            message,
            http_status: self.http_status,
        }))
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        FfiError {
            status: dp_status::from_kind(e.kind()),
            message: e.message().to_owned(),
            http_status: e.http_status().unwrap_or(0),
        }
    }
}

/// The result of a fallible body.
pub type FfiResult<T = ()> = Result<T, FfiError>;

/// Borrows `*ptr` for the call, or fails with `DP_STATUS_NULL_ARGUMENT` naming `arg`.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` not mutated elsewhere during the call.
pub unsafe fn arg_ref<'a, T>(ptr: *const T, arg: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller guarantees a non-NULL `ptr` points to a live T.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null_argument(arg))
}

/// Borrows `*ptr` mutably for the call, or fails with `DP_STATUS_NULL_ARGUMENT` naming `arg`.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` not accessed elsewhere during the call.
pub unsafe fn arg_mut<'a, T>(ptr: *mut T, arg: &str) -> FfiResult<&'a mut T> {
    // SAFETY: the caller guarantees a non-NULL `ptr` points to a live T used by this call alone.
    unsafe { ptr.as_mut() }.ok_or_else(|| FfiError::null_argument(arg))
}

/// Takes ownership of a handle made by `Box::into_raw` (NULL fails, naming `arg`).
///
/// # Safety
/// `ptr` is NULL or a pointer from `Box::into_raw` that the caller gives up.
pub unsafe fn arg_take<T>(ptr: *mut T, arg: &str) -> FfiResult<Box<T>> {
    if ptr.is_null() {
        return Err(FfiError::null_argument(arg));
    }
    // SAFETY: non-NULL and, by contract, from Box::into_raw and given up by the caller.
    Ok(unsafe { Box::from_raw(ptr) })
}

/// Checks an out-param before any work is done (it is written only on success, by [`OutParam::write`]).
pub struct OutParam<T>(*mut T);

impl<T> OutParam<T> {
    /// Fails with `DP_STATUS_NULL_ARGUMENT` naming `arg` when `ptr` is NULL.
    pub fn new(ptr: *mut T, arg: &str) -> FfiResult<Self> {
        if ptr.is_null() {
            Err(FfiError::null_argument(arg))
        } else {
            Ok(OutParam(ptr))
        }
    }

    /// Writes the value (call only once the whole operation succeeded).
    ///
    /// # Safety
    /// The pointer given to [`OutParam::new`] is valid for a write of `T`.
    pub unsafe fn write(self, value: T) {
        // SAFETY: non-NULL (checked in new) and valid for writes by the caller's contract.
        unsafe { self.0.write(value) }
    }
}

/// Frees a handle made by `Box::into_raw`; NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or a pointer from `Box::into_raw` not yet freed.
pub unsafe fn free_box<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: by contract a live pointer from Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// The status code of `err`; `DP_STATUS_OK` when `err` is NULL.
///
/// The value is a `dp_status`; a newer library may return a code this header does not list.
/// (Should this function itself fail, which it cannot, it would answer `DP_STATUS_PANIC`.)
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dp_error_code(err: *const dp_error) -> dp_status {
    boundary! {
        // SAFETY: by contract NULL or a live dp_error.
        match unsafe { err.as_ref() } {
            Some(e) => e.status,
            None => dp_status::DP_STATUS_OK,
        }
    }
}

/// The error's message: UTF-8, NUL-terminated, never NULL (`""` when `err` is NULL).
///
/// The text is valid until `dp_error_free(err)`.
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dp_error_message(err: *const dp_error) -> *const c_char {
    boundary! {
        // SAFETY: by contract NULL or a live dp_error.
        match unsafe { err.as_ref() } {
            Some(e) => e.message.as_ptr(),
            None => c"".as_ptr(),
        }
    }
}

/// For `DP_STATUS_HTTP`, the HTTP status the agent answered with; 0 otherwise and when `err` is NULL.
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dp_error_http_status(err: *const dp_error) -> u16 {
    boundary! {
        // SAFETY: by contract NULL or a live dp_error.
        unsafe { err.as_ref() }.map_or(0, |e| e.http_status)
    }
}

/// Frees an error. NULL is a no-op.
///
/// # Safety
/// `err` is NULL or an error returned by this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn dp_error_free(err: *mut dp_error) {
    boundary! {
        // SAFETY: by contract NULL or a live dp_error given up by the caller.
        unsafe { free_box(err) }
    }
}

/// The C name of a status code (`"DP_STATUS_PANIC"`), or `"DP_STATUS_UNKNOWN"` for a number this
/// library does not know. Static text, never NULL, never freed.
#[no_mangle]
pub extern "C" fn dp_status_name(status: u32) -> *const c_char {
    boundary! {
        match dp_status::ALL.get(status as usize) {
            Some(s) => s.c_name().as_ptr(),
            None => c"DP_STATUS_UNKNOWN".as_ptr(),
        }
    }
}

/// Test helper: the status of `err` (`DP_STATUS_OK` for NULL), freeing it.
#[cfg(test)]
pub(crate) fn take_status(err: *mut dp_error) -> dp_status {
    // SAFETY: `err` is NULL or an error just returned by this library.
    let code = unsafe { dp_error_code(err) };
    // SAFETY: as above; freed once.
    unsafe { dp_error_free(err) };
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(p: *const c_char) -> String {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn codes_are_stable() {
        // The numbers are ABI: this table may only grow.
        let expected = [
            ("DP_STATUS_OK", 0),
            ("DP_STATUS_INVALID_ARGUMENT", 1),
            ("DP_STATUS_DECODE", 2),
            ("DP_STATUS_ENCODE", 3),
            ("DP_STATUS_NETWORK", 4),
            ("DP_STATUS_TIMEOUT", 5),
            ("DP_STATUS_HTTP", 6),
            ("DP_STATUS_UNSUPPORTED", 7),
            ("DP_STATUS_SHUTDOWN", 8),
            ("DP_STATUS_OVERFLOW", 9),
            ("DP_STATUS_INTERNAL", 10),
            ("DP_STATUS_NULL_ARGUMENT", 11),
            ("DP_STATUS_INVALID_UTF8", 12),
            ("DP_STATUS_PANIC", 13),
            ("DP_STATUS_NOT_FOUND", 14),
        ];
        assert_eq!(dp_status::ALL.len(), expected.len());
        for (s, (name, n)) in dp_status::ALL.iter().zip(expected) {
            assert_eq!(*s as u32, n);
            assert_eq!(s.name(), name);
            assert_eq!(text(dp_status_name(n)), name);
        }
        assert_eq!(text(dp_status_name(15)), "DP_STATUS_UNKNOWN");
        assert_eq!(text(dp_status_name(u32::MAX)), "DP_STATUS_UNKNOWN");
    }

    #[test]
    fn kinds_map_to_their_codes() {
        use ErrorKind::*;
        let kinds = [
            InvalidArgument,
            Decode,
            Encode,
            Network,
            Timeout,
            Http,
            Unsupported,
            Shutdown,
            Overflow,
            Internal,
        ];
        for (i, k) in kinds.into_iter().enumerate() {
            assert_eq!(dp_status::from_kind(k) as u32, i as u32 + 1, "{k:?}");
        }
    }

    #[test]
    fn engine_error_keeps_message_and_http_status() {
        let e: FfiError = Error::http(429, "too many").into();
        let raw = e.into_raw();
        unsafe {
            assert_eq!(dp_error_code(raw), dp_status::DP_STATUS_HTTP);
            assert_eq!(dp_error_http_status(raw), 429);
            assert_eq!(text(dp_error_message(raw)), "too many");
            dp_error_free(raw);
        }
    }

    #[test]
    fn null_error_reads_as_ok_and_interior_nul_is_dropped() {
        unsafe {
            assert_eq!(dp_error_code(std::ptr::null()), dp_status::DP_STATUS_OK);
            assert_eq!(text(dp_error_message(std::ptr::null())), "");
            assert_eq!(dp_error_http_status(std::ptr::null()), 0);
            dp_error_free(std::ptr::null_mut());
            let raw = FfiError::invalid_argument("a\0b").into_raw();
            assert_eq!(text(dp_error_message(raw)), "ab");
            dp_error_free(raw);
        }
    }
}
