//! `dp_string`: text the library returns and the caller owns (results of the standalone
//! obfuscation and normalization functions).

use crate::error::{free_box, FfiResult, OutParam};
use crate::slice::dp_str;

/// Owned UTF-8 text returned by the library, NUL-terminated. Read it with `dp_string_view`, free it
/// with `dp_string_free`.
///
/// Immutable: thread-safe (Send + Sync).
pub struct dp_string {
    /// The text followed by one NUL byte (not part of the text).
    text: String,
}

const _: () = {
    crate::assert_thread::send::<dp_string>();
    crate::assert_thread::sync::<dp_string>();
};

impl dp_string {
    /// Writes a new `dp_string` holding `text` to `out`.
    pub(crate) fn write(out: OutParam<*mut dp_string>, text: impl Into<String>) -> FfiResult {
        let mut text = text.into();
        text.push('\0');
        let handle = Box::into_raw(Box::new(dp_string { text }));
        // SAFETY: `out` was checked non-NULL and is valid for writes by the caller's contract.
        unsafe { out.write(handle) };
        Ok(())
    }

    /// The text without its NUL terminator.
    pub fn as_str(&self) -> &str {
        &self.text[..self.text.len() - 1]
    }
}

/// The text of `s`: `ptr` is NUL-terminated (so it can be used as a C string when the text has no
/// NUL of its own), `len` does not count the terminator. Valid until `dp_string_free(s)`; `{NULL, 0}`
/// when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live `dp_string`.
#[no_mangle]
pub unsafe extern "C" fn dp_string_view(s: *const dp_string) -> dp_str {
    boundary! {
        // SAFETY: forwarded contract.
        match unsafe { s.as_ref() } {
            Some(s) => dp_str::of(s.as_str()),
            None => dp_str::EMPTY,
        }
    }
}

/// Frees a string. NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a live `dp_string`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn dp_string_free(s: *mut dp_string) {
    boundary! {
        // SAFETY: by contract NULL or a live string given up by the caller.
        unsafe { free_box(s) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn view_is_nul_terminated_and_null_safe() {
        let mut s: *mut dp_string = std::ptr::null_mut();
        dp_string::write(OutParam::new(&mut s, "out").unwrap(), "abc").unwrap();
        unsafe {
            let v = dp_string_view(s);
            assert_eq!(v.len, 3);
            assert_eq!(std::slice::from_raw_parts(v.ptr.cast::<u8>(), 4), b"abc\0");
            dp_string_free(s);
            let v = dp_string_view(std::ptr::null());
            assert!(v.ptr.is_null() && v.len == 0);
            dp_string_free(std::ptr::null_mut());
        }
    }
}
