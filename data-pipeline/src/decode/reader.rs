//! A zero-copy msgpack reader over a byte slice, for the decoders' hot path.
//!
//! Hand-written rather than built on `rmp::decode`: every read here is one bounds check and one
//! `match` on the marker byte, strings are borrowed from the input, and an error knows its byte
//! offset. The `primitives` group of `benches/codec.rs` measures it against the equivalent
//! `rmp::decode` calls (`read_str_from_slice`, `read_int`, `read_f64`) on strings, ints and
//! floats: 2.8 ms against 6.5 ms for the same buffer, which is why it exists. `rmp::Marker`
//! still names the marker found in type errors (cold path).
//!
//! Leniency follows the agent's own v0.4/v0.5 decoders (datadog-agent `pkg/proto/pbgo/trace`):
//! - strings: `str` or `bin`; `nil` reads as ""; invalid UTF-8 is repaired the way the agent does
//!   it (each byte that does not start a valid sequence becomes U+FFFD), into an owned string;
//! - integers: any msgpack int width; a negative int read into an unsigned field is
//!   reinterpreted (two's complement), as the agent does for tracers without unsigned types; a
//!   uint too large for a signed field is an error; `nil` reads as 0;
//! - floats (metrics): float64, float32 (the agent rejects float32; accepting it is a lossless
//!   widening) and any int; `nil` reads as 0;
//! - maps and arrays: `nil` reads as empty.

use crate::error::{Error, Result};
use crate::span::Str;

/// A cursor over a msgpack buffer. Every method either advances past one complete value and
/// returns it, or returns a decode error naming what was expected and the byte offset.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// msgpack `nil`.
pub(crate) const NIL: u8 = 0xc0;

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The byte offset of the next read.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next byte without consuming it.
    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes a `nil` if one is next; true if it did.
    #[inline]
    pub(crate) fn eat_nil(&mut self) -> bool {
        if self.peek() == Some(NIL) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline(always)]
    fn byte(&mut self, what: &'static str) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(eof(self.pos, what)),
        }
    }

    #[inline(always)]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(truncated(self.pos, n, self.remaining(), what)),
        }
    }

    #[inline(always)]
    fn be<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Length of a str/bin whose marker `m` was just read, or None if `m` is not a str/bin.
    #[inline(always)]
    fn str_len(&mut self, m: u8, what: &'static str) -> Result<Option<usize>> {
        Ok(Some(match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 | 0xc4 => self.byte(what)? as usize,
            0xda | 0xc5 => u16::from_be_bytes(self.be(what)?) as usize,
            0xdb | 0xc6 => u32::from_be_bytes(self.be(what)?) as usize,
            _ => return Ok(None),
        }))
    }

    /// The raw bytes of a str or bin (no UTF-8 check); used for map keys that are matched
    /// against known names. `nil` is not accepted (the agent rejects it as a map key).
    #[inline(always)]
    pub(crate) fn key(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let at = self.pos;
        if let Some(&m) = self.buf.get(at) {
            if m & 0xe0 == 0xa0 {
                let start = at + 1;
                if let Some(bytes) = self.buf.get(start..start + (m & 0x1f) as usize) {
                    self.pos = start + bytes.len();
                    return Ok(bytes);
                }
            }
        }
        let m = self.byte(what)?;
        match self.str_len(m, what)? {
            Some(n) => self.take(n, what),
            None => Err(type_error(at, what, "a string key", m)),
        }
    }

    /// A string: str or bin, borrowed when valid UTF-8, repaired (owned) otherwise; nil is "".
    #[inline(always)]
    pub(crate) fn str(&mut self, what: &'static str) -> Result<Str<'a>> {
        // Fast path: a complete fixstr (< 32 bytes), most keys and values of a span.
        let at = self.pos;
        if let Some(&m) = self.buf.get(at) {
            if m & 0xe0 == 0xa0 {
                let start = at + 1;
                if let Some(bytes) = self.buf.get(start..start + (m & 0x1f) as usize) {
                    self.pos = start + bytes.len();
                    if is_short_ascii(bytes) {
                        // SAFETY: every ASCII byte sequence is valid UTF-8.
                        return Ok(Str::borrowed(unsafe {
                            std::str::from_utf8_unchecked(bytes)
                        }));
                    }
                    return Ok(to_str(bytes));
                }
            }
        }
        self.str_slow(what)
    }

    #[inline(never)]
    fn str_slow(&mut self, what: &'static str) -> Result<Str<'a>> {
        let at = self.pos;
        let m = self.byte(what)?;
        let n = match self.str_len(m, what)? {
            Some(n) => n,
            None if m == NIL => return Ok(Str::borrowed("")),
            None => return Err(type_error(at, what, "a string", m)),
        };
        Ok(to_str(self.take(n, what)?))
    }

    /// Skips a string (str, bin or nil) without looking at its bytes.
    #[inline]
    pub(crate) fn skip_str(&mut self, what: &'static str) -> Result<()> {
        let at = self.pos;
        let m = self.byte(what)?;
        match self.str_len(m, what)? {
            Some(n) => self.take(n, what).map(|_| ()),
            None if m == NIL => Ok(()),
            None => Err(type_error(at, what, "a string", m)),
        }
    }

    /// Binary data: bin or str, borrowed; nil is empty.
    #[inline]
    pub(crate) fn bin(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let at = self.pos;
        let m = self.byte(what)?;
        match self.str_len(m, what)? {
            Some(n) => self.take(n, what),
            None if m == NIL => Ok(&[]),
            None => Err(type_error(at, what, "binary data", m)),
        }
    }

    /// Any integer as (is_negative, bits): unsigned values as themselves, signed as i64 bits.
    #[inline]
    fn int(&mut self, what: &'static str) -> Result<Result<u64, i64>> {
        let at = self.pos;
        let m = self.byte(what)?;
        Ok(match m {
            0x00..=0x7f => Ok(m as u64),
            0xe0..=0xff => Err(m as i8 as i64),
            0xcc => Ok(self.byte(what)? as u64),
            0xcd => Ok(u16::from_be_bytes(self.be(what)?) as u64),
            0xce => Ok(u32::from_be_bytes(self.be(what)?) as u64),
            0xcf => Ok(u64::from_be_bytes(self.be(what)?)),
            0xd0 => Err(self.byte(what)? as i8 as i64),
            0xd1 => Err(i16::from_be_bytes(self.be(what)?) as i64),
            0xd2 => Err(i32::from_be_bytes(self.be(what)?) as i64),
            0xd3 => Err(i64::from_be_bytes(self.be(what)?)),
            NIL => Ok(0),
            _ => return Err(type_error(at, what, "an integer", m)),
        })
    }

    /// The common unsigned encodings (positive fixint, uint8..uint64) without the generic
    /// dispatch; None for anything else (including a truncated value), left to the slow path.
    #[inline(always)]
    fn uint_fast(&mut self) -> Option<u64> {
        let at = self.pos;
        let rest = self.buf.get(at..)?;
        let (&m, rest) = rest.split_first()?;
        let (v, len) = match m {
            0x00..=0x7f => (m as u64, 1),
            0xcc => (*rest.first()? as u64, 2),
            0xcd => (u16::from_be_bytes(*rest.first_chunk()?) as u64, 3),
            0xce => (u32::from_be_bytes(*rest.first_chunk()?) as u64, 5),
            0xcf => (u64::from_be_bytes(*rest.first_chunk()?), 9),
            _ => return None,
        };
        self.pos = at + len;
        Some(v)
    }

    /// An unsigned 64-bit field (ids): any int; negative ints are reinterpreted as the agent does.
    #[inline(always)]
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        if let Some(v) = self.uint_fast() {
            return Ok(v);
        }
        self.u64_slow(what)
    }

    #[inline(never)]
    fn u64_slow(&mut self, what: &'static str) -> Result<u64> {
        Ok(match self.int(what)? {
            Ok(u) => u,
            Err(i) => i as u64,
        })
    }

    /// A signed 64-bit field (start, duration): any int; a uint above `i64::MAX` is an error.
    #[inline(always)]
    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64> {
        let at = self.pos;
        if let Some(v) = self.uint_fast() {
            if let Ok(v) = i64::try_from(v) {
                return Ok(v);
            }
            self.pos = at;
        }
        self.i64_slow(what)
    }

    #[inline(never)]
    fn i64_slow(&mut self, what: &'static str) -> Result<i64> {
        let at = self.pos;
        match self.int(what)? {
            Ok(u) => i64::try_from(u).map_err(|_| out_of_range(at, what, u, "int64")),
            Err(i) => Ok(i),
        }
    }

    /// A signed 32-bit field (error): any int within range.
    #[inline]
    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        let at = self.pos;
        match self.int(what)? {
            Ok(u) => i32::try_from(u).map_err(|_| out_of_range(at, what, u, "int32")),
            Err(i) => i32::try_from(i).map_err(|_| out_of_range(at, what, i, "int32")),
        }
    }

    /// An unsigned 32-bit field (link flags): any int within range; a negative int32 is
    /// reinterpreted (bit 31 is the "flags set" bit, which signed-only tracers write negative).
    #[inline]
    pub(crate) fn u32_lenient(&mut self, what: &'static str) -> Result<u32> {
        let at = self.pos;
        match self.int(what)? {
            Ok(u) => u32::try_from(u).map_err(|_| out_of_range(at, what, u, "uint32")),
            Err(i) => i32::try_from(i)
                .map(|i| i as u32)
                .map_err(|_| out_of_range(at, what, i, "uint32")),
        }
    }

    /// A non-negative index (v0.5 string table): a non-negative int that fits in u32.
    #[inline(always)]
    pub(crate) fn index(&mut self, what: &'static str) -> Result<usize> {
        let at = self.pos;
        match self.uint_fast() {
            Some(u) if u <= u64::from(u32::MAX) => Ok(u as usize),
            Some(u) => Err(out_of_range(at, what, u, "uint32")),
            None => self.index_slow(what),
        }
    }

    #[inline(never)]
    fn index_slow(&mut self, what: &'static str) -> Result<usize> {
        let at = self.pos;
        if self.peek() == Some(NIL) {
            return Err(type_error(at, what, "a string table index", NIL));
        }
        match self.int(what)? {
            Ok(u) if u <= u64::from(u32::MAX) => Ok(u as usize),
            Ok(u) => Err(out_of_range(at, what, u, "uint32")),
            Err(i) => Err(out_of_range(at, what, i, "uint32")),
        }
    }

    /// A float field (metrics): float64, float32 or any int; nil is 0.
    #[inline(always)]
    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64> {
        let at = self.pos;
        if let Some([0xcb, rest @ ..]) = self.buf.get(at..) {
            if let Some(b) = rest.first_chunk() {
                self.pos = at + 9;
                return Ok(f64::from_bits(u64::from_be_bytes(*b)));
            }
        }
        self.f64_slow(what)
    }

    #[inline(never)]
    fn f64_slow(&mut self, what: &'static str) -> Result<f64> {
        let at = self.pos;
        match self.peek() {
            Some(0xcb) => {
                self.pos += 1;
                Ok(f64::from_bits(u64::from_be_bytes(self.be(what)?)))
            }
            Some(0xca) => {
                self.pos += 1;
                Ok(f32::from_bits(u32::from_be_bytes(self.be(what)?)) as f64)
            }
            Some(0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xcf | 0xd0..=0xd3 | NIL) => {
                Ok(match self.int(what)? {
                    Ok(u) => u as f64,
                    Err(i) => i as f64,
                })
            }
            Some(m) => Err(type_error(at, what, "a number", m)),
            None => Err(eof(at, what)),
        }
    }

    /// A boolean; nil is false.
    #[inline]
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool> {
        let at = self.pos;
        match self.byte(what)? {
            0xc3 => Ok(true),
            0xc2 | NIL => Ok(false),
            m => Err(type_error(at, what, "a boolean", m)),
        }
    }

    /// A map header: the number of pairs; nil is an empty map.
    #[inline]
    pub(crate) fn map_len(&mut self, what: &'static str) -> Result<usize> {
        let at = self.pos;
        let m = self.byte(what)?;
        Ok(match m {
            0x80..=0x8f => (m & 0x0f) as usize,
            0xde => u16::from_be_bytes(self.be(what)?) as usize,
            0xdf => u32::from_be_bytes(self.be(what)?) as usize,
            NIL => 0,
            _ => return Err(type_error(at, what, "a map", m)),
        })
    }

    /// An array header: the number of elements; nil is an empty array.
    #[inline]
    pub(crate) fn array_len(&mut self, what: &'static str) -> Result<usize> {
        let at = self.pos;
        let m = self.byte(what)?;
        Ok(match m {
            0x90..=0x9f => (m & 0x0f) as usize,
            0xdc => u16::from_be_bytes(self.be(what)?) as usize,
            0xdd => u32::from_be_bytes(self.be(what)?) as usize,
            NIL => 0,
            _ => return Err(type_error(at, what, "an array", m)),
        })
    }

    /// Skips one complete value of any type (an unknown field's value).
    ///
    /// Iterative, not recursive: nested containers only add to a count of values still to skip,
    /// so arbitrarily deep nesting costs no stack. Every value consumes at least one byte, so the
    /// loop ends within `remaining()` iterations whatever the length prefixes claim.
    pub(crate) fn skip(&mut self, what: &'static str) -> Result<()> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let at = self.pos;
            let m = self.byte(what)?;
            let (data, children): (usize, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | NIL | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * (m & 0x0f) as u64),
                0x90..=0x9f => (0, (m & 0x0f) as u64),
                0xa0..=0xbf => ((m & 0x1f) as usize, 0),
                0xc4 | 0xd9 => (self.byte(what)? as usize, 0),
                0xc5 | 0xda => (u16::from_be_bytes(self.be(what)?) as usize, 0),
                0xc6 | 0xdb => (u32::from_be_bytes(self.be(what)?) as usize, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xca | 0xce | 0xd2 => (4, 0),
                0xcb | 0xcf | 0xd3 => (8, 0),
                0xdc => (0, u16::from_be_bytes(self.be(what)?) as u64),
                0xdd => (0, u32::from_be_bytes(self.be(what)?) as u64),
                0xde => (0, 2 * u16::from_be_bytes(self.be(what)?) as u64),
                0xdf => (0, 2 * u32::from_be_bytes(self.be(what)?) as u64),
                // fixext 1/2/4/8/16: type byte + data
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                // ext 8/16/32: length, then type byte + data
                0xc7 => (self.byte(what)? as usize + 1, 0),
                0xc8 => (u16::from_be_bytes(self.be(what)?) as usize + 1, 0),
                0xc9 => (u32::from_be_bytes(self.be(what)?) as usize + 1, 0),
                // 0xc1 is "never used" in msgpack.
                _ => return Err(type_error(at, what, "a msgpack value", m)),
            };
            if data > 0 {
                self.take(data, what)?;
            }
            pending = pending.saturating_add(children);
        }
        Ok(())
    }
}

/// True if `b`, at most 31 bytes (a fixstr), is all ASCII: a few overlapping word loads ORed
/// together instead of `is_ascii`'s loop, which cost more than the rest of reading a short
/// string. v0.4 decode (+ drop) of the bench payloads, callgrind: `realistic` 51.0M -> 46.1M
/// instructions, `links` 117.0M -> 110.8M.
#[inline(always)]
fn is_short_ascii(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let w = |c: Option<&[u8; 8]>| c.map_or(HIGH, |c| u64::from_ne_bytes(*c));
    let n = b.len();
    let bits = if n >= 8 {
        // First 8, last 8 and, past 16 bytes, the two middle words (overlaps are harmless).
        let mut x = w(b.first_chunk()) | w(b.last_chunk());
        if n > 16 {
            x |= w(b.get(8..).and_then(|r| r.first_chunk()))
                | w(b.get(..n - 8).and_then(|r| r.last_chunk()));
        }
        x
    } else if n >= 4 {
        let v = |c: Option<&[u8; 4]>| c.map_or(HIGH, |c| u64::from(u32::from_ne_bytes(*c)));
        v(b.first_chunk()) | v(b.last_chunk())
    } else {
        b.iter().fold(0, |a, &x| a | u64::from(x))
    };
    bits & HIGH == 0
}

/// Borrows `bytes` as a string when it is valid UTF-8, else repairs it (owned).
///
/// Most span strings are short ASCII: `is_ascii` checks a word at a time and costs a fraction of
/// `std::str::from_utf8` on them, so ASCII skips the full check. `from_utf8` was the largest
/// single cost of decoding the bench payload; this and the fixstr fast path of [`Reader::str`]
/// halved the instructions of a v0.4 decode (cachegrind: 106M -> 48M per payload).
///
/// Other strings are validated by `simdutf8` (SIMD; same verdict as std, tested below): on the `realistic` payload with a third of its meta values and
/// half of its resources made non-ASCII, a v0.4 decode took 74.7M instructions with
/// `std::str::from_utf8`, 65.0M with this. Long ASCII strings still go through `is_ascii` first:
/// `simdutf8` straight away cost 1-2% more on the ASCII payloads.
#[inline(always)]
fn to_str(bytes: &[u8]) -> Str<'_> {
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        return Str::borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    match simdutf8::basic::from_utf8(bytes) {
        Ok(s) => Str::borrowed(s),
        Err(_) => Str::owned(repair_utf8(bytes)),
    }
}

/// Repairs invalid UTF-8 as the agent does (Go's `strings.Reader.ReadRune`): every byte that does
/// not begin a valid UTF-8 sequence becomes one U+FFFD; valid sequences are kept.
pub(crate) fn repair_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let good = e.valid_up_to();
                // The prefix was just validated, so this never falls back to "".
                out.push_str(std::str::from_utf8(&bytes[..good]).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = &bytes[good + 1..];
            }
        }
    }
}

/// What a marker byte is, for error messages.
fn marker_name(m: u8) -> String {
    match rmp::Marker::from_u8(m) {
        rmp::Marker::Null => "nil".to_owned(),
        rmp::Marker::Reserved => "the reserved byte 0xc1".to_owned(),
        marker => format!("{marker:?} (0x{m:02x})"),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn type_error(at: usize, what: &str, expected: &str, m: u8) -> Error {
    Error::decode(
        at,
        format_args!("{what}: expected {expected}, found {}", marker_name(m)),
    )
}

#[cold]
#[inline(never)]
fn eof(at: usize, what: &str) -> Error {
    Error::decode(at, format_args!("{what}: unexpected end of input"))
}

#[cold]
#[inline(never)]
fn truncated(at: usize, wanted: usize, left: usize, what: &str) -> Error {
    Error::decode(
        at,
        format_args!("{what}: truncated input ({wanted} bytes announced, {left} left)"),
    )
}

#[cold]
#[inline(never)]
fn out_of_range(at: usize, what: &str, v: impl std::fmt::Display, ty: &str) -> Error {
    Error::decode(at, format_args!("{what}: {v} does not fit in {ty}"))
}

/// A decode error for a shape problem (wrong element count, bad index, ...).
#[cold]
#[inline(never)]
pub(crate) fn shape_error(at: usize, msg: impl std::fmt::Display) -> Error {
    Error::decode(at, msg)
}

/// Capacity to reserve for `n` announced elements that each take at least `min_bytes` bytes,
/// when `remaining` bytes are left: never more than the input could hold, and never more than a
/// fixed cap (the vector still grows past it if the data really is there).
#[inline]
pub(crate) fn presize(n: usize, remaining: usize, min_bytes: usize) -> usize {
    const CAP: usize = 1 << 16;
    n.min(remaining / min_bytes.max(1)).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ErrorKind;

    #[test]
    fn repairs_like_go() {
        // Go's ReadRune yields one U+FFFD per byte of an invalid or truncated sequence
        // (unlike Rust's from_utf8_lossy, which yields one per maximal invalid subpart).
        assert_eq!(repair_utf8(b"a\xe2\x82b"), "a\u{fffd}\u{fffd}b");
        assert_eq!(repair_utf8(b"\xff"), "\u{fffd}");
        assert_eq!(repair_utf8(b"ok\xed\xa0\x80"), "ok\u{fffd}\u{fffd}\u{fffd}");
        assert_eq!(repair_utf8("é\u{fffd}".as_bytes()), "é\u{fffd}");
        assert_eq!(repair_utf8(b"\xc3"), "\u{fffd}");
    }

    #[test]
    fn every_int_width() {
        let cases: &[(&[u8], u64, i64)] = &[
            (&[0x05], 5, 5),
            (&[0xff], u64::MAX, -1),
            (&[0xcc, 0xff], 255, 255),
            (&[0xcd, 0x01, 0x00], 256, 256),
            (&[0xce, 0, 1, 0, 0], 65536, 65536),
            (&[0xcf, 0, 0, 0, 1, 0, 0, 0, 0], 1 << 32, 1 << 32),
            (&[0xd0, 0x80], (-128i64) as u64, -128),
            (&[0xd1, 0x80, 0x00], (-32768i64) as u64, -32768),
            (
                &[0xd2, 0x80, 0, 0, 0],
                (i32::MIN as i64) as u64,
                i32::MIN as i64,
            ),
            (
                &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
                i64::MIN as u64,
                i64::MIN,
            ),
            (&[NIL], 0, 0),
        ];
        for (bytes, u, i) in cases {
            assert_eq!(Reader::new(bytes).u64("t").unwrap(), *u, "{bytes:?}");
            assert_eq!(Reader::new(bytes).i64("t").unwrap(), *i, "{bytes:?}");
            assert_eq!(Reader::new(bytes).f64("t").unwrap(), *i as f64, "{bytes:?}");
        }
        let big = [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let e = Reader::new(&big).i64("start").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("start"), "{}", e.message());
        assert_eq!(Reader::new(&big).f64("m").unwrap(), u64::MAX as f64);
        assert!(Reader::new(&[0xce, 0x80, 0, 0, 0]).i32("error").is_err());
        assert_eq!(
            Reader::new(&[0xd2, 0x80, 0, 0, 1]).i32("e").unwrap(),
            i32::MIN + 1
        );
        assert_eq!(
            Reader::new(&[0xd2, 0x80, 0, 0, 1])
                .u32_lenient("f")
                .unwrap(),
            0x8000_0001
        );
        assert!(Reader::new(&[0xcf, 0, 0, 0, 1, 0, 0, 0, 0])
            .u32_lenient("f")
            .is_err());
        assert!(Reader::new(&[0xff]).index("i").is_err());
        assert!(Reader::new(&[NIL]).index("i").is_err());
    }

    #[test]
    fn floats() {
        let mut b = vec![0xcb];
        b.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        assert_eq!(Reader::new(&b).f64("m").unwrap(), 1.5);
        let mut b = vec![0xca];
        b.extend_from_slice(&0.25f32.to_bits().to_be_bytes());
        assert_eq!(Reader::new(&b).f64("m").unwrap(), 0.25);
        let e = Reader::new(&[0xa1, b'x']).f64("metric").unwrap_err();
        assert!(e.message().contains("expected a number"), "{}", e.message());
        assert!(e.message().contains("at byte 0"), "{}", e.message());
    }

    #[test]
    fn strings() {
        assert_eq!(Reader::new(&[0xa2, b'h', b'i']).str("s").unwrap(), "hi");
        assert_eq!(Reader::new(&[0xc4, 2, b'h', b'i']).str("s").unwrap(), "hi");
        assert_eq!(Reader::new(&[NIL]).str("s").unwrap(), "");
        let s = Reader::new(&[0xa2, b'h', 0xff]).str("s").unwrap();
        assert!(s.is_owned());
        assert_eq!(s, "h\u{fffd}");
        let e = Reader::new(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'])
            .str("service")
            .unwrap_err();
        assert!(e.message().contains("truncated"), "{}", e.message());
        let e = Reader::new(&[0x01]).str("service").unwrap_err();
        assert!(e.message().contains("service"), "{}", e.message());
        assert!(e.message().contains("FixPos"), "{}", e.message());
    }

    #[test]
    fn skip_handles_every_type_and_deep_nesting() {
        // [1, -1, nil, true, "ab", bin(1), 1.0f32, 2.0f64, {a: [ext8]}, fixext4]
        let mut b = vec![0x9a, 0x01, 0xff, 0xc0, 0xc3, 0xa2, b'a', b'b', 0xc4, 1, 9];
        b.extend_from_slice(&[0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0x81, 0xa1, b'a', 0x91, 0xc7, 2, 5, 1, 2]);
        b.extend_from_slice(&[0xd6, 1, 1, 2, 3, 4]);
        b.push(0x07);
        let mut r = Reader::new(&b);
        r.skip("x").unwrap();
        assert_eq!(r.u64("tail").unwrap(), 7);
        assert_eq!(r.remaining(), 0);

        // 1M nested single-element arrays: no stack overflow, then a clean EOF error.
        let deep = vec![0x91u8; 1 << 20];
        assert!(Reader::new(&deep).skip("x").is_err());
        let mut deep_ok = vec![0x91u8; 1 << 20];
        deep_ok.push(0x00);
        let mut r = Reader::new(&deep_ok);
        r.skip("x").unwrap();
        assert_eq!(r.remaining(), 0);

        // A huge announced map with nothing behind it ends quickly with an error.
        assert!(Reader::new(&[0xdf, 0xff, 0xff, 0xff, 0xff])
            .skip("x")
            .is_err());
        assert!(Reader::new(&[0xc1]).skip("x").is_err());
    }

    #[test]
    fn short_ascii_check_agrees_with_is_ascii() {
        // Every length 0..=31, with one non-ASCII byte at every position (and none).
        for n in 0..32usize {
            let ascii = vec![b'a'; n];
            assert!(is_short_ascii(&ascii), "{n}");
            for i in 0..n {
                for high in [0x80u8, 0xc3, 0xff] {
                    let mut b = ascii.clone();
                    b[i] = high;
                    assert!(!is_short_ascii(&b), "{n} {i} {high:x}");
                    assert_eq!(is_short_ascii(&b), b.is_ascii());
                }
            }
        }
    }

    #[test]
    fn validation_agrees_with_std() {
        // Valid and invalid sequences (overlong, surrogate, above U+10FFFF, truncated, stray
        // continuation), alone, after an ASCII prefix and inside strings long enough for the
        // SIMD path (>= 64 bytes).
        let samples: &[&[u8]] = &[
            "é".as_bytes(),
            "日本".as_bytes(),
            "🦀".as_bytes(),
            "\u{10ffff}".as_bytes(),
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf0\x9f\xa6",
            b"\x80",
            b"\xff",
        ];
        for s in samples {
            for prefix in [0usize, 7, 40, 70] {
                for suffix in [0usize, 3, 64] {
                    let mut b = vec![b'a'; prefix];
                    b.extend_from_slice(s);
                    b.extend(std::iter::repeat_n(b'z', suffix));
                    let ours = to_str(&b);
                    match std::str::from_utf8(&b) {
                        Ok(v) => assert_eq!(ours.as_borrowed(), Some(v), "{b:?}"),
                        Err(_) => {
                            assert!(ours.is_owned());
                            assert_eq!(ours, repair_utf8(&b), "{b:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn presize_is_bounded() {
        assert_eq!(presize(10, 1000, 1), 10);
        assert_eq!(presize(usize::MAX, 100, 1), 100);
        assert_eq!(presize(usize::MAX, 100, 0), 100);
        assert_eq!(presize(usize::MAX, usize::MAX, 1), 1 << 16);
    }
}
