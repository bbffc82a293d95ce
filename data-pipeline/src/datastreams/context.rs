//! The pathway context a message carries: pathway hash, pathway start and edge start, with its
//! binary codec (`LE64 hash ‖ zigzag varint ms ‖ zigzag varint ms`) and base64 text form.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Encoding: standard alphabet with `=` padding.
const B64_ENCODE: GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Decoding: standard alphabet, padding optional, non-zero trailing bits tolerated (as Go's
/// `base64.StdEncoding` does). The URL-safe alphabet is refused.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// At most this many bytes per varint; the last one carries 8 bits (8 * 7 + 8 = 64).
const MAX_VARINT_LEN: usize = 9;
/// The longest binary context: 8 + 9 + 9 bytes.
pub const MAX_ENCODED_LEN: usize = 8 + 2 * MAX_VARINT_LEN;
/// Text contexts longer than this cannot be valid (base64 of [`MAX_ENCODED_LEN`] bytes, padded)
/// and are refused before decoding; longer inputs with trailing bytes are still accepted in
/// binary form.
const MAX_BASE64_LEN: usize = 4096;

const NS_PER_MS: i64 = 1_000_000;

/// Appends the zigzag varint of `v` (7 bits a byte, low group first, at most 9 bytes).
pub fn encode_zigzag_varint(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; MAX_VARINT_LEN];
    let n = write_zigzag_varint(v, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

#[inline]
fn write_zigzag_varint(v: i64, buf: &mut [u8; MAX_VARINT_LEN]) -> usize {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut i = 0;
    while i < MAX_VARINT_LEN - 1 && u >= 0x80 {
        buf[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    buf[i] = u as u8;
    i + 1
}

/// Decodes a zigzag varint at the start of `bytes`: the value and the bytes read, or `None`
/// when the input ends inside the varint.
pub fn decode_zigzag_varint(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut u: u64 = 0;
    for (i, &b) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        let shift = 7 * i as u32;
        if b < 0x80 || i == MAX_VARINT_LEN - 1 {
            u |= u64::from(b) << shift;
            let v = ((u >> 1) as i64) ^ -((u & 1) as i64);
            return Some((v, i + 1));
        }
        u |= u64::from(b & 0x7f) << shift;
    }
    None
}

/// The direction of a checkpoint (its `direction:` tag), for loop protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Direction {
    /// No `direction:` tag (or no checkpoint yet).
    #[default]
    Unset,
    /// `direction:in`.
    In,
    /// `direction:out`.
    Out,
    /// Any other value, by its FNV-1 hash.
    Other(u64),
}

impl Direction {
    /// The direction of the first `direction:` tag among `edge_tags`.
    pub(crate) fn of_tags(edge_tags: &[&str]) -> Direction {
        for t in edge_tags {
            if let Some(v) = t.strip_prefix("direction:") {
                return match v {
                    "in" => Direction::In,
                    "out" => Direction::Out,
                    other => Direction::Other(super::hash::fnv1_64(other.as_bytes())),
                };
            }
        }
        Direction::Unset
    }
}

/// Loop-protection state: the direction of the last checkpoint, and the parent hash and edge
/// start that the last direction change used. Local only: it is not propagated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LoopState {
    pub(crate) previous_direction: Direction,
    pub(crate) saved_parent: u64,
    pub(crate) saved_edge_start_ns: i64,
}

/// A pathway context: where a message is in its pathway. Times are nanoseconds since the Unix
/// epoch locally; on the wire they are milliseconds (truncated).
///
/// Besides the propagated fields it remembers, locally, the state loop protection needs (see
/// [`super::checkpoint`]); a decoded context starts without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathwayContext {
    hash: u64,
    pathway_start_ns: i64,
    edge_start_ns: i64,
    pub(crate) loop_state: LoopState,
}

/// A binary context on the stack (at most [`MAX_ENCODED_LEN`] bytes); derefs to `[u8]`.
#[derive(Debug, Clone, Copy)]
pub struct EncodedContext {
    buf: [u8; MAX_ENCODED_LEN],
    len: usize,
}

impl std::ops::Deref for EncodedContext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Base64 text of a context on the stack (at most 36 ASCII chars); derefs to `str`.
#[derive(Debug, Clone, Copy)]
pub struct EncodedBase64 {
    buf: [u8; MAX_BASE64_ENCODED_LEN],
    len: usize,
}

/// The longest base64 text of a context: 4 * ceil(26 / 3).
pub const MAX_BASE64_ENCODED_LEN: usize = 36;

impl std::ops::Deref for EncodedBase64 {
    type Target = str;
    fn deref(&self) -> &str {
        // Only base64 alphabet bytes are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl PathwayContext {
    /// A context with `hash`, pathway start and edge start in ns since the epoch.
    pub fn new(hash: u64, pathway_start_ns: i64, edge_start_ns: i64) -> Self {
        PathwayContext {
            hash,
            pathway_start_ns,
            edge_start_ns,
            loop_state: LoopState::default(),
        }
    }

    /// A context from millisecond times (as carried on the wire). Times beyond ±292 years
    /// from the epoch saturate.
    pub fn from_millis(hash: u64, pathway_start_ms: i64, edge_start_ms: i64) -> Self {
        Self::new(
            hash,
            pathway_start_ms.saturating_mul(NS_PER_MS),
            edge_start_ms.saturating_mul(NS_PER_MS),
        )
    }

    pub(crate) fn with_loop_state(mut self, state: LoopState) -> Self {
        self.loop_state = state;
        self
    }

    /// The pathway hash (0: none).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// When the pathway started (its first checkpoint), ns since the epoch.
    pub fn pathway_start_ns(&self) -> i64 {
        self.pathway_start_ns
    }

    /// When the last checkpoint happened, ns since the epoch.
    pub fn edge_start_ns(&self) -> i64 {
        self.edge_start_ns
    }

    /// [`Self::pathway_start_ns`] in ms, truncated (the wire value).
    pub fn pathway_start_ms(&self) -> i64 {
        self.pathway_start_ns / NS_PER_MS
    }

    /// [`Self::edge_start_ns`] in ms, truncated (the wire value).
    pub fn edge_start_ms(&self) -> i64 {
        self.edge_start_ns / NS_PER_MS
    }

    /// Whether the propagated fields (hash, and times in ms) are equal: what a receiver sees.
    pub fn same_on_wire(&self, other: &PathwayContext) -> bool {
        self.hash == other.hash
            && self.pathway_start_ms() == other.pathway_start_ms()
            && self.edge_start_ms() == other.edge_start_ms()
    }

    /// The binary form: `LE64(hash) ‖ varint(zigzag(pathway_start_ms)) ‖
    /// varint(zigzag(edge_start_ms))`, 20 bytes for present-day times.
    #[inline]
    pub fn encode(&self) -> EncodedContext {
        let mut out = EncodedContext {
            buf: [0; MAX_ENCODED_LEN],
            len: 8,
        };
        out.buf[..8].copy_from_slice(&self.hash.to_le_bytes());
        let mut v = [0u8; MAX_VARINT_LEN];
        for ms in [self.pathway_start_ms(), self.edge_start_ms()] {
            let n = write_zigzag_varint(ms, &mut v);
            out.buf[out.len..out.len + n].copy_from_slice(&v[..n]);
            out.len += n;
        }
        out
    }

    /// The binary form in a `Vec`.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    /// The text form: standard base64 of [`Self::encode`], `=`-padded (28 chars for 20 bytes).
    pub fn encode_base64(&self) -> String {
        self.encode_base64_buf().to_string()
    }

    /// [`Self::encode_base64`] without allocating.
    #[inline]
    pub fn encode_base64_buf(&self) -> EncodedBase64 {
        let mut out = EncodedBase64 {
            buf: [0; MAX_BASE64_ENCODED_LEN],
            len: 0,
        };
        // 36 bytes always fit the base64 of at most 26 bytes.
        out.len = B64_ENCODE
            .encode_slice(&*self.encode(), &mut out.buf)
            .unwrap_or(0);
        out
    }

    /// Decodes the binary form. Never fails loudly: fewer than 8 bytes or a truncated varint
    /// give `None`; bytes after the two varints are ignored.
    #[inline]
    pub fn decode(bytes: &[u8]) -> Option<PathwayContext> {
        let hash = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let rest = &bytes[8..];
        let (pathway_start_ms, n) = decode_zigzag_varint(rest)?;
        let (edge_start_ms, _) = decode_zigzag_varint(&rest[n..])?;
        Some(PathwayContext::from_millis(
            hash,
            pathway_start_ms,
            edge_start_ms,
        ))
    }

    /// Decodes the text form: standard base64, padding optional. Empty input, another alphabet
    /// (URL-safe), stray characters or a bad binary payload give `None`.
    #[inline]
    pub fn decode_base64(text: impl AsRef<[u8]>) -> Option<PathwayContext> {
        let text = text.as_ref();
        if text.is_empty() || text.len() > MAX_BASE64_LEN {
            return None;
        }
        // Decode into the stack: only the first MAX_ENCODED_LEN bytes can matter, but trailing
        // bytes must still be valid base64, so longer inputs go through a Vec.
        let mut buf = [0u8; 48];
        if text.len() <= 64 {
            let n = B64_DECODE.decode_slice(text, &mut buf).ok()?;
            Self::decode(&buf[..n])
        } else {
            let bytes = B64_DECODE.decode(text).ok()?;
            Self::decode(&bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn zigzag_varint_known_values() {
        for (v, h) in [
            (0i64, "00"),
            (-1, "01"),
            (1, "02"),
            (63, "7e"),
            (-64, "7f"),
            (64, "8001"),
            (1000, "d00f"),
            (1700000000000, "80a0abfef962"),
            (-1700000000000, "ff9fabfef962"),
        ] {
            let mut out = Vec::new();
            encode_zigzag_varint(v, &mut out);
            assert_eq!(hex(&out), h, "{v}");
            assert_eq!(decode_zigzag_varint(&out), Some((v, out.len())));
        }
    }

    #[test]
    fn zigzag_varint_extremes_use_nine_bytes() {
        for v in [i64::MAX, i64::MIN, i64::MIN + 1, 1 << 62, -(1 << 62)] {
            let mut out = Vec::new();
            encode_zigzag_varint(v, &mut out);
            assert!(out.len() <= 9);
            assert_eq!(decode_zigzag_varint(&out), Some((v, out.len())), "{v}");
        }
        let mut out = Vec::new();
        encode_zigzag_varint(i64::MIN, &mut out);
        assert_eq!(out.len(), 9);
        assert_eq!(out[8], 0xff, "the 9th byte carries 8 bits");
        // Truncated: continuation bit set on the last byte.
        assert_eq!(decode_zigzag_varint(&[0x80, 0x80]), None);
        assert_eq!(decode_zigzag_varint(&[]), None);
        // Nine continuation bytes: the 9th is taken whole, the rest ignored.
        assert!(decode_zigzag_varint(&[0xff; 12]).is_some());
    }

    #[test]
    fn encode_known_context() {
        let c = PathwayContext::from_millis(234, 1699996400000, 1700000000000);
        assert_eq!(hex(&c.encode()), "ea0000000000000080e6f3faf96280a0abfef962");
        assert_eq!(c.encode_base64(), "6gAAAAAAAACA5vP6+WKAoKv++WI=");
        assert_eq!(&*c.encode_base64_buf(), "6gAAAAAAAACA5vP6+WKAoKv++WI=");
        let d = PathwayContext::decode_base64("6gAAAAAAAACA5vP6+WKAoKv++WI=").unwrap();
        assert_eq!(d, c);
        assert_eq!(d.pathway_start_ms(), 1699996400000);
    }

    #[test]
    fn ns_are_truncated_to_ms() {
        let c = PathwayContext::new(1, 1_500_999_999, -1_999_999);
        assert_eq!(c.pathway_start_ms(), 1500);
        assert_eq!(c.edge_start_ms(), -1, "toward zero");
        let d = PathwayContext::decode(&c.encode()).unwrap();
        assert!(d.same_on_wire(&c));
        assert_eq!(d.pathway_start_ns(), 1_500_000_000);
    }

    #[test]
    fn forgiving_decoder() {
        let good = PathwayContext::from_millis(u64::MAX, 1712345678901, 1712345679250);
        let bytes = good.encode_to_vec();
        let text = good.encode_base64();
        // Short inputs and truncated varints.
        for n in 0..bytes.len() {
            assert_eq!(PathwayContext::decode(&bytes[..n]), None, "len {n}");
        }
        // Trailing bytes are ignored.
        let mut long = bytes.clone();
        long.extend_from_slice(b"trailing");
        assert_eq!(PathwayContext::decode(&long), Some(good));
        let long_text = B64_ENCODE.encode(&long);
        assert_eq!(PathwayContext::decode_base64(&long_text), Some(good));
        // Missing padding accepted.
        assert_eq!(
            PathwayContext::decode_base64(text.trim_end_matches('=')),
            Some(good)
        );
        // URL-safe alphabet, garbage, empty: none.
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
        assert_ne!(url_safe, text);
        assert_eq!(PathwayContext::decode_base64(&url_safe), None);
        assert_eq!(PathwayContext::decode_base64(""), None);
        assert_eq!(PathwayContext::decode_base64("!!!!"), None);
        assert_eq!(
            PathwayContext::decode_base64(" 6gAAAAAAAACA5vP6+WKAoKv++WI="),
            None
        );
        assert_eq!(
            PathwayContext::decode_base64("AAAA"),
            None,
            "3 bytes: too short"
        );
        assert_eq!(PathwayContext::decode_base64("A".repeat(10_000)), None);
        let big = B64_ENCODE.encode([0x01u8; 200]);
        assert!(
            PathwayContext::decode_base64(big).is_some(),
            "200 bytes, varints within"
        );
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let c = PathwayContext::from_millis(7, i64::MAX, i64::MIN);
        let d = PathwayContext::decode(&c.encode()).unwrap();
        assert_eq!(d.hash(), 7);
        assert!(d.same_on_wire(&c));
        assert_eq!(d.pathway_start_ms(), i64::MAX / 1_000_000);
        assert!(c.encode().len() <= MAX_ENCODED_LEN);
        let text = c.encode_base64_buf();
        assert!(text.len() <= MAX_BASE64_ENCODED_LEN);
        assert_eq!(
            PathwayContext::decode_base64(&*text).map(|d| d.hash()),
            Some(7)
        );
    }
}
