//! msgpack primitives appended to a `Vec<u8>`, for the encoders' hot path.
//!
//! Hand-written rather than `rmp::encode::write_*` into the Vec: a short string is one reserve,
//! one push and one copy, other values one `extend_from_slice` of a stack array, and nothing can
//! fail except a length msgpack cannot express (no `io::Error` to carry). Measured on the whole
//! encoders with the bench payload (cachegrind, instructions per payload): with these functions
//! implemented over `rmp::encode` instead, v0.4 encoding costs 26.2M instead of 21.2M and v0.5
//! 54.1M instead of 49.0M. (The `primitives` group of `benches/codec.rs` shows the two about
//! equal in isolation, where the compiler inlines rmp's writes as well.) The output is
//! byte-identical to rmp's smallest encodings (tested below); floats are always float64.

use crate::error::{Error, ErrorKind, Result};

#[cold]
#[inline(never)]
fn too_long(what: &str, n: usize) -> Error {
    Error::new(
        ErrorKind::Encode,
        format!("{what} of length {n} exceeds the msgpack limit of 2^32-1"),
    )
}

/// A string (`str` family).
#[inline(always)]
pub(crate) fn str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let b = s.as_bytes();
    if b.len() < 32 {
        out.reserve(1 + b.len());
        out.push(0xa0 | b.len() as u8);
        out.extend_from_slice(b);
        return Ok(());
    }
    str_long(out, b)
}

#[inline(never)]
fn str_long(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = b.len();
    if n < 256 {
        out.reserve(2 + n);
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n < 65536 {
        out.reserve(3 + n);
        let l = (n as u16).to_be_bytes();
        out.extend_from_slice(&[0xda, l[0], l[1]]);
    } else {
        let l = u32::try_from(n).map_err(|_| too_long("string", n))?;
        out.reserve(5 + n);
        let l = l.to_be_bytes();
        out.extend_from_slice(&[0xdb, l[0], l[1], l[2], l[3]]);
    }
    out.extend_from_slice(b);
    Ok(())
}

/// Binary data (`bin` family).
#[inline]
pub(crate) fn bin(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = b.len();
    if n < 256 {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n < 65536 {
        let l = (n as u16).to_be_bytes();
        out.extend_from_slice(&[0xc5, l[0], l[1]]);
    } else {
        let l = u32::try_from(n).map_err(|_| too_long("binary value", n))?;
        let l = l.to_be_bytes();
        out.extend_from_slice(&[0xc6, l[0], l[1], l[2], l[3]]);
    }
    out.extend_from_slice(b);
    Ok(())
}

/// An unsigned integer, smallest encoding.
#[inline]
pub(crate) fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 256 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 65536 {
        let b = (v as u16).to_be_bytes();
        out.extend_from_slice(&[0xcd, b[0], b[1]]);
    } else if v <= u32::MAX as u64 {
        let b = (v as u32).to_be_bytes();
        out.extend_from_slice(&[0xce, b[0], b[1], b[2], b[3]]);
    } else {
        let b = v.to_be_bytes();
        out.extend_from_slice(&[0xcf, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
}

/// A v0.5 string table index: [`uint`] for a `u32`, always inlined (one per string written).
/// The v0.5 encode of the bench's `realistic` payload took 53.5M instructions with `uint` (not
/// inlined there), 49.4M with this (callgrind).
#[inline(always)]
pub(crate) fn index(out: &mut Vec<u8>, v: u32) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 256 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 65536 {
        let b = (v as u16).to_be_bytes();
        out.extend_from_slice(&[0xcd, b[0], b[1]]);
    } else {
        let b = v.to_be_bytes();
        out.extend_from_slice(&[0xce, b[0], b[1], b[2], b[3]]);
    }
}

/// A signed integer, smallest encoding (non-negative values use the unsigned forms).
#[inline]
pub(crate) fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i16::MIN as i64 {
        let b = (v as i16).to_be_bytes();
        out.extend_from_slice(&[0xd1, b[0], b[1]]);
    } else if v >= i32::MIN as i64 {
        let b = (v as i32).to_be_bytes();
        out.extend_from_slice(&[0xd2, b[0], b[1], b[2], b[3]]);
    } else {
        let b = v.to_be_bytes();
        out.extend_from_slice(&[0xd3, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
}

/// A float64.
#[inline]
pub(crate) fn f64(out: &mut Vec<u8>, v: f64) {
    let b = v.to_bits().to_be_bytes();
    out.extend_from_slice(&[0xcb, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
}

/// A boolean.
#[inline]
pub(crate) fn bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

/// A map header for `n` pairs.
#[inline]
pub(crate) fn map_len(out: &mut Vec<u8>, n: usize) -> Result<()> {
    if n < 16 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        let b = (n as u16).to_be_bytes();
        out.extend_from_slice(&[0xde, b[0], b[1]]);
    } else {
        let b = u32::try_from(n)
            .map_err(|_| too_long("map", n))?
            .to_be_bytes();
        out.extend_from_slice(&[0xdf, b[0], b[1], b[2], b[3]]);
    }
    Ok(())
}

/// An array header for `n` elements.
#[inline]
pub(crate) fn array_len(out: &mut Vec<u8>, n: usize) -> Result<()> {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n < 65536 {
        let b = (n as u16).to_be_bytes();
        out.extend_from_slice(&[0xdc, b[0], b[1]]);
    } else {
        let b = u32::try_from(n)
            .map_err(|_| too_long("array", n))?
            .to_be_bytes();
        out.extend_from_slice(&[0xdd, b[0], b[1], b[2], b[3]]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our encodings are byte-identical to rmp's smallest encodings.
    #[test]
    fn matches_rmp() {
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut a = Vec::new();
            uint(&mut a, v);
            let mut b = Vec::new();
            rmp::encode::write_uint(&mut b, v).unwrap();
            assert_eq!(a, b, "{v}");
        }
        for v in [0u32, 127, 128, 255, 256, 65535, 65536, u32::MAX] {
            let mut a = Vec::new();
            index(&mut a, v);
            let mut b = Vec::new();
            uint(&mut b, v.into());
            assert_eq!(a, b, "index {v}");
        }
        for v in [
            0i64,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
            i64::MAX,
            100,
            300,
        ] {
            let mut a = Vec::new();
            int(&mut a, v);
            let mut b = Vec::new();
            rmp::encode::write_sint(&mut b, v).unwrap();
            assert_eq!(a, b, "{v}");
        }
        for n in [0usize, 31, 32, 255, 256, 65535, 65536] {
            let s = "x".repeat(n);
            let mut a = Vec::new();
            str(&mut a, &s).unwrap();
            let mut b = Vec::new();
            rmp::encode::write_str(&mut b, &s).unwrap();
            assert_eq!(a, b, "str {n}");
            let mut a = Vec::new();
            bin(&mut a, s.as_bytes()).unwrap();
            let mut b = Vec::new();
            rmp::encode::write_bin(&mut b, s.as_bytes()).unwrap();
            assert_eq!(a, b, "bin {n}");
        }
        for n in [0usize, 15, 16, 65535, 65536] {
            let mut a = Vec::new();
            map_len(&mut a, n).unwrap();
            let mut b = Vec::new();
            rmp::encode::write_map_len(&mut b, n as u32).unwrap();
            assert_eq!(a, b, "map {n}");
            let mut a = Vec::new();
            array_len(&mut a, n).unwrap();
            let mut b = Vec::new();
            rmp::encode::write_array_len(&mut b, n as u32).unwrap();
            assert_eq!(a, b, "array {n}");
        }
        let mut a = Vec::new();
        f64(&mut a, -1.25);
        let mut b = Vec::new();
        rmp::encode::write_f64(&mut b, -1.25).unwrap();
        assert_eq!(a, b);
        let mut a = Vec::new();
        bool(&mut a, true);
        bool(&mut a, false);
        assert_eq!(a, [0xc3, 0xc2]);
    }
}
