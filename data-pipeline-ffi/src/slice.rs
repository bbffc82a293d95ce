//! `dp_str` and `dp_bytes`: borrowed input views (pointer + length).
//!
//! A view is borrowed for the duration of the call only; whatever the library keeps is copied. `ptr`
//! may be NULL only when `len` is 0. Strings need no NUL terminator and must be valid UTF-8: invalid
//! UTF-8 is reported as `DP_STATUS_INVALID_UTF8`, never a panic.

use std::ffi::c_char;

use crate::error::{dp_status, FfiError, FfiResult};

/// A borrowed UTF-8 string: `len` bytes at `ptr`, no NUL terminator needed.
///
/// `ptr` may be NULL only when `len` is 0. Build one from a literal with `DP_STR("text")` or from a
/// C string with `dp_str_from_cstr(s)`. When the library returns a `dp_str` (log callback), its lifetime
/// is stated where it is returned.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dp_str {
    /// The first byte (NULL allowed only when `len` is 0).
    pub ptr: *const c_char,
    /// The number of bytes, excluding any NUL terminator.
    pub len: usize,
}

/// Borrowed binary data: `len` bytes at `ptr`.
///
/// `ptr` may be NULL only when `len` is 0. When the library returns a `dp_bytes` (a response body), its
/// lifetime is stated where it is returned.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dp_bytes {
    /// The first byte (NULL allowed only when `len` is 0).
    pub ptr: *const u8,
    /// The number of bytes.
    pub len: usize,
}

impl dp_str {
    /// The empty view `{NULL, 0}`.
    pub const EMPTY: dp_str = dp_str {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// A view of `s` (for values the library hands out).
    pub fn of(s: &str) -> dp_str {
        dp_str {
            ptr: s.as_ptr().cast(),
            len: s.len(),
        }
    }

    /// The bytes of the view, checked for NULL.
    ///
    /// # Safety
    /// When `ptr` is not NULL it points to `len` readable bytes that outlive `'a`.
    pub unsafe fn as_bytes<'a>(&self, arg: &str) -> FfiResult<&'a [u8]> {
        // SAFETY: forwarded contract.
        unsafe { raw_slice(self.ptr.cast(), self.len, arg) }
    }

    /// The string, checked for NULL and UTF-8.
    ///
    /// # Safety
    /// When `ptr` is not NULL it points to `len` readable bytes that outlive `'a`.
    pub unsafe fn as_str<'a>(&self, arg: &str) -> FfiResult<&'a str> {
        // SAFETY: forwarded contract.
        let bytes = unsafe { self.as_bytes(arg) }?;
        std::str::from_utf8(bytes).map_err(|e| {
            FfiError::new(
                dp_status::DP_STATUS_INVALID_UTF8,
                format!(
                    "argument `{arg}` is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })
    }

    /// An owned copy of the string, checked for NULL and UTF-8.
    ///
    /// # Safety
    /// When `ptr` is not NULL it points to `len` readable bytes.
    pub unsafe fn to_string(&self, arg: &str) -> FfiResult<String> {
        // SAFETY: forwarded contract.
        unsafe { self.as_str(arg) }.map(str::to_owned)
    }
}

impl dp_bytes {
    /// The empty view `{NULL, 0}`.
    pub const EMPTY: dp_bytes = dp_bytes {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// A view of `b` (for values the library hands out).
    pub fn from_slice(b: &[u8]) -> dp_bytes {
        dp_bytes {
            ptr: b.as_ptr(),
            len: b.len(),
        }
    }

    /// The bytes of the view, checked for NULL.
    ///
    /// # Safety
    /// When `ptr` is not NULL it points to `len` readable bytes that outlive `'a`.
    pub unsafe fn as_slice<'a>(&self, arg: &str) -> FfiResult<&'a [u8]> {
        // SAFETY: forwarded contract.
        unsafe { raw_slice(self.ptr, self.len, arg) }
    }
}

/// `len` bytes at `ptr`; `{NULL, 0}` is the empty slice; `{NULL, n>0}` is a NULL-argument error.
unsafe fn raw_slice<'a>(ptr: *const u8, len: usize, arg: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::new(
            dp_status::DP_STATUS_NULL_ARGUMENT,
            format!("argument `{arg}` has a NULL ptr and len {len}"),
        ));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid_argument(format!(
            "argument `{arg}` has an impossible len {len}"
        )));
    }
    // SAFETY: non-NULL, len <= isize::MAX, readable per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_views_are_fine_even_with_null() {
        unsafe {
            assert_eq!(dp_str::EMPTY.as_str("s"), Ok(""));
            assert_eq!(dp_bytes::EMPTY.as_slice("b"), Ok(&[][..]));
        }
    }

    #[test]
    fn null_with_len_is_a_null_argument_error() {
        let s = dp_str {
            ptr: std::ptr::null(),
            len: 3,
        };
        let e = unsafe { s.as_str("service") }.err();
        assert_eq!(
            e.map(|e| (e.status, e.message)),
            Some((
                dp_status::DP_STATUS_NULL_ARGUMENT,
                "argument `service` has a NULL ptr and len 3".to_owned()
            ))
        );
    }

    #[test]
    fn bad_utf8_names_argument_and_offset() {
        let raw = b"ab\xffc";
        let s = dp_str {
            ptr: raw.as_ptr().cast(),
            len: raw.len(),
        };
        let e = unsafe { s.as_str("name") }.err();
        assert_eq!(
            e.as_ref().map(|e| e.status),
            Some(dp_status::DP_STATUS_INVALID_UTF8)
        );
        assert!(e.map(|e| e.message).unwrap_or_default().contains("`name`"));
        let ok = dp_str::of("héllo");
        assert_eq!(unsafe { ok.as_str("x") }, Ok("héllo"));
    }
}
