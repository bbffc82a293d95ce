//! The library's version at run time (`DP_VERSION_*` in the header give it at compile time).

use std::ffi::c_char;

/// The version as static NUL-terminated text.
const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => c"unknown",
};

/// The library's version, `"MAJOR.MINOR.PATCH"`: static text, never NULL, never freed.
///
/// Compare with `DP_VERSION_MAJOR`/`_MINOR`/`_PATCH` to check that the library loaded at run time is
/// the one the program was compiled against.
#[no_mangle]
pub extern "C" fn dp_version() -> *const c_char {
    boundary! { VERSION.as_ptr() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_cargo() {
        let v = unsafe { std::ffi::CStr::from_ptr(dp_version()) };
        assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
    }
}
