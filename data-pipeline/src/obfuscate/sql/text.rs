//! Byte-level text helpers with Go's semantics: both obfuscators step through the query byte by
//! byte in places (as the agent does), so a token can end inside a multi-byte character. Decoding
//! here follows Go's `utf8.DecodeRune` (an invalid byte reads as U+FFFD of size 1), and the final
//! output is turned into a `String` the way Go's JSON encoder does (one U+FFFD per invalid byte).

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// U+FFFD, what an invalid byte decodes to.
pub(crate) const RUNE_ERROR: u32 = 0xFFFD;

/// Decodes the character starting at `s[i]` (`i < s.len()`): `(code point, byte length)`, or
/// `(RUNE_ERROR, 1)` when the bytes there are not valid UTF-8.
#[inline]
pub(crate) fn decode(s: &[u8], i: usize) -> (u32, usize) {
    let b0 = s[i];
    if b0 < 0x80 {
        return (u32::from(b0), 1);
    }
    let need = match b0 {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    match s.get(i..i + need).and_then(|b| std::str::from_utf8(b).ok()) {
        Some(t) => match t.chars().next() {
            Some(c) => (c as u32, need),
            None => (RUNE_ERROR, 1),
        },
        None => (RUNE_ERROR, 1),
    }
}

/// Go's `utf8.RuneLen` for a valid scalar (used for lengths of decoded characters).
#[inline]
pub(crate) fn rune_len(c: u32) -> usize {
    match c {
        0..=0x7F => 1,
        0x80..=0x7FF => 2,
        0x800..=0xFFFF => 3,
        _ => 4,
    }
}

/// Appends the UTF-8 encoding of `c` (U+FFFD for a non-scalar, as Go's `WriteRune`).
#[inline]
pub(crate) fn push_rune(out: &mut Vec<u8>, c: u32) {
    if c < 0x80 {
        out.push(c as u8);
        return;
    }
    let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// The character for `%c` in an error message.
pub(crate) fn display_char(c: u32) -> char {
    char::from_u32(c).unwrap_or('\u{FFFD}')
}

/// Go's `unicode.IsLetter` (general category L).
#[inline]
pub(crate) fn is_unicode_letter(c: u32) -> bool {
    if c < 0x80 {
        let b = c as u8;
        return b.is_ascii_alphabetic();
    }
    match char::from_u32(c) {
        Some(ch) => ch.general_category_group() == GeneralCategoryGroup::Letter,
        None => false,
    }
}

/// Go's `unicode.IsNumber` (general category N), for characters above ASCII.
#[inline]
pub(crate) fn is_unicode_number(c: u32) -> bool {
    match char::from_u32(c) {
        Some(ch) => ch.is_numeric(),
        None => false,
    }
}

/// Go's `unicode.IsSpace` (the White_Space property, which is what `char::is_whitespace` tests).
#[inline]
pub(crate) fn is_unicode_space(c: u32) -> bool {
    match c {
        0x09..=0x0D | 0x20 => true,
        0..=0x7F => false,
        _ => char::from_u32(c).is_some_and(char::is_whitespace),
    }
}

/// Go's `strings.TrimSpace` on bytes.
pub(crate) fn trim_space(s: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < s.len() {
        let (c, n) = decode(s, start);
        if !is_unicode_space(c) {
            break;
        }
        start += n;
    }
    let mut end = s.len();
    while end > start {
        // find the start of the last character
        let mut k = end - 1;
        while k > start && (s[k] & 0xC0) == 0x80 && end - k < 4 {
            k -= 1;
        }
        let (c, n) = decode(s, k);
        if k + n != end {
            // an invalid trailing byte: not a space
            break;
        }
        if !is_unicode_space(c) {
            break;
        }
        end = k;
    }
    &s[start..end]
}

/// Turns bytes into a `String`, replacing each invalid byte with U+FFFD as Go's JSON encoder does.
pub(crate) fn into_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut out = Vec::with_capacity(bytes.len() + 8);
            let mut i = 0;
            while i < bytes.len() {
                let (c, n) = decode(&bytes, i);
                if c == RUNE_ERROR && n == 1 {
                    out.extend_from_slice("\u{FFFD}".as_bytes());
                } else {
                    out.extend_from_slice(&bytes[i..i + n]);
                }
                i += n;
            }
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// Replaces each run of ASCII digits with one `?` (the agent's `replaceDigits`), appending to `out`.
pub(crate) fn push_replacing_digits(out: &mut Vec<u8>, s: &[u8]) {
    let mut in_digits = false;
    for &b in s {
        if b.is_ascii_digit() {
            if !in_digits {
                out.push(b'?');
                in_digits = true;
            }
        } else {
            in_digits = false;
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_like_go() {
        assert_eq!(decode("é".as_bytes(), 0), (0xE9, 2));
        assert_eq!(decode("é".as_bytes(), 1), (RUNE_ERROR, 1));
        assert_eq!(decode(b"\xE2\x82", 0), (RUNE_ERROR, 1));
    }

    #[test]
    fn letters_and_spaces() {
        assert!(is_unicode_letter('ó' as u32));
        assert!(!is_unicode_letter(0x0301)); // combining mark: alphabetic-ish, not a letter
        assert!(!is_unicode_letter('٩' as u32));
        assert!(is_unicode_space(0xA0) && is_unicode_space(0x3000) && !is_unicode_space(0x200B));
    }

    #[test]
    fn trim_and_lossy() {
        assert_eq!(trim_space(" \u{a0}a b\u{3000}\n".as_bytes()), b"a b");
        assert_eq!(trim_space(b"a\xC3"), b"a\xC3");
        assert_eq!(
            into_string(b"a\xE2\x82 \xAC".to_vec()),
            "a\u{FFFD}\u{FFFD} \u{FFFD}"
        );
        let mut o = Vec::new();
        push_replacing_digits(&mut o, b"ab12c3");
        assert_eq!(o, b"ab?c?");
    }
}
