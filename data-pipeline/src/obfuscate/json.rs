//! JSON bodies (Elasticsearch / OpenSearch bodies, MongoDB queries, SQL execution plans):
//! every value becomes `"?"` except under the configured `keep_values` keys; values under
//! `obfuscate_sql_values` keys go through SQL obfuscation. `pkg/obfuscate/json.go` and its
//! scanner are the reference for the exact output, including on invalid input: the output is
//! whatever was obfuscated before the first syntax error, followed by `...`.
//!
//! The scanner is an iterative byte-at-a-time state machine (no recursion): time is linear and
//! memory is bounded by the nesting depth, which is capped at [`MAX_DEPTH`] (deeper input is
//! treated as a syntax error). Several top-level values in a row (`{..} {..}`, as in
//! Elasticsearch bulk bodies) are accepted.

use std::borrow::Cow;
use std::collections::HashSet;

/// Maximum nesting depth of objects and arrays; deeper input ends obfuscation like a syntax
/// error (Go's standard JSON scanner uses the same bound).
pub const MAX_DEPTH: usize = 10_000;

/// What a transformer returns when SQL obfuscation of a value fails (the agent's text).
pub const SQL_FAILURE_TEXT: &str =
    "Datadog-agent failed to obfuscate SQL string. Enable agent debug logs for more info.";

/// Settings of one JSON obfuscator.
#[derive(Debug, Clone, Default)]
pub struct JsonConfig {
    /// Obfuscate this kind of body at all.
    pub enabled: bool,
    /// Keys whose values (and everything below them) are kept as they are.
    pub keep_values: Vec<String>,
    /// Keys whose (string) values go through SQL obfuscation instead of becoming `"?"`.
    pub obfuscate_sql_values: Vec<String>,
}

/// A JSON obfuscator for one configuration (build once, use from any thread).
#[derive(Debug, Clone, Default)]
pub struct JsonObfuscator {
    keep: HashSet<Box<str>>,
    transform: HashSet<Box<str>>,
}

/// Result of one scanner step (what the byte means).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Continue,
    BeginLiteral,
    BeginObject,
    ObjectKey,
    ObjectValue,
    EndObject,
    BeginArray,
    ArrayValue,
    EndArray,
    SkipSpace,
    End,
    Error,
}

/// Scanner states (one per state function of the reference scanner).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    EscU,
    EscU1,
    EscU12,
    EscU123,
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    T,
    Tr,
    Tru,
    F,
    Fa,
    Fal,
    Fals,
    N,
    Nu,
    Nul,
    Error,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

struct Scanner {
    step: St,
    stack: Vec<Parse>,
    end_top: bool,
    failed: bool,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            step: St::BeginValue,
            stack: Vec::new(),
            end_top: false,
            failed: false,
        }
    }

    fn reset(&mut self) {
        self.step = St::BeginValue;
        self.stack.clear();
        self.end_top = false;
        self.failed = false;
    }

    fn error(&mut self) -> Op {
        self.step = St::Error;
        self.failed = true;
        Op::Error
    }

    fn push(&mut self, p: Parse) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            return false;
        }
        self.stack.push(p);
        true
    }

    fn pop(&mut self) {
        let n = self.stack.len().saturating_sub(1);
        if n == 0 {
            // As the reference: the last entry stays, the top-level value is complete.
            self.step = St::EndTop;
            self.end_top = true;
            return;
        }
        self.stack.truncate(n);
        self.step = St::EndValue;
    }

    fn eof(&mut self) -> Op {
        if self.failed {
            return Op::Error;
        }
        if self.end_top {
            return Op::End;
        }
        self.step(b' ');
        if self.end_top {
            return Op::End;
        }
        self.failed = true;
        Op::Error
    }

    fn begin_value(&mut self, c: u8) -> Op {
        if c <= b' ' && is_space(c) {
            return Op::SkipSpace;
        }
        match c {
            b'{' => {
                self.step = St::BeginStringOrEmpty;
                if !self.push(Parse::ObjectKey) {
                    return self.error();
                }
                Op::BeginObject
            }
            b'[' => {
                self.step = St::BeginValueOrEmpty;
                if !self.push(Parse::ArrayValue) {
                    return self.error();
                }
                Op::BeginArray
            }
            b'"' => self.lit(St::InString),
            b'-' => self.lit(St::Neg),
            b'0' => self.lit(St::Zero),
            b't' => self.lit(St::T),
            b'f' => self.lit(St::F),
            b'n' => self.lit(St::N),
            b'1'..=b'9' => self.lit(St::One),
            _ => self.error(),
        }
    }

    fn lit(&mut self, next: St) -> Op {
        self.step = next;
        Op::BeginLiteral
    }

    fn cont(&mut self, next: St) -> Op {
        self.step = next;
        Op::Continue
    }

    fn end_value(&mut self, c: u8) -> Op {
        let n = self.stack.len();
        if n == 0 {
            self.step = St::EndTop;
            self.end_top = true;
            return self.end_top_state(c);
        }
        if c <= b' ' && is_space(c) {
            self.step = St::EndValue;
            return Op::SkipSpace;
        }
        match self.stack[n - 1] {
            Parse::ObjectKey => {
                if c == b':' {
                    self.stack[n - 1] = Parse::ObjectValue;
                    self.step = St::BeginValue;
                    return Op::ObjectKey;
                }
                self.error()
            }
            Parse::ObjectValue => {
                if c == b',' {
                    self.stack[n - 1] = Parse::ObjectKey;
                    self.step = St::BeginString;
                    return Op::ObjectValue;
                }
                if c == b'}' {
                    self.pop();
                    return Op::EndObject;
                }
                self.error()
            }
            Parse::ArrayValue => {
                if c == b',' {
                    self.step = St::BeginValue;
                    return Op::ArrayValue;
                }
                if c == b']' {
                    self.pop();
                    return Op::EndArray;
                }
                self.error()
            }
        }
    }

    fn end_top_state(&mut self, c: u8) -> Op {
        if !is_space(c) {
            // Another top-level value may follow (Elasticsearch bulk bodies).
            self.reset();
            return self.step(c);
        }
        Op::End
    }

    fn number_end(&mut self, c: u8) -> Op {
        // state0: after the integer part.
        match c {
            b'.' => self.cont(St::Dot),
            b'e' | b'E' => self.cont(St::E),
            _ => self.end_value(c),
        }
    }

    fn step(&mut self, c: u8) -> Op {
        let hex = c.is_ascii_hexdigit();
        match self.step {
            St::BeginValue => self.begin_value(c),
            St::BeginValueOrEmpty => {
                if c <= b' ' && is_space(c) {
                    return Op::SkipSpace;
                }
                if c == b']' {
                    return self.end_value(c);
                }
                self.begin_value(c)
            }
            St::BeginStringOrEmpty => {
                if c <= b' ' && is_space(c) {
                    return Op::SkipSpace;
                }
                let n = self.stack.len();
                if c == b'}' && n > 0 {
                    self.stack[n - 1] = Parse::ObjectValue;
                    return self.end_value(c);
                }
                self.begin_string(c)
            }
            St::BeginString => self.begin_string(c),
            St::EndValue => self.end_value(c),
            St::EndTop => self.end_top_state(c),
            St::InString => match c {
                b'"' => self.cont(St::EndValue),
                b'\\' => self.cont(St::InStringEsc),
                _ if c < 0x20 => self.error(),
                _ => Op::Continue,
            },
            St::InStringEsc => match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => self.cont(St::InString),
                b'u' => self.cont(St::EscU),
                _ => self.error(),
            },
            St::EscU if hex => self.cont(St::EscU1),
            St::EscU1 if hex => self.cont(St::EscU12),
            St::EscU12 if hex => self.cont(St::EscU123),
            St::EscU123 if hex => self.cont(St::InString),
            St::EscU | St::EscU1 | St::EscU12 | St::EscU123 => self.error(),
            St::Neg => match c {
                b'0' => self.cont(St::Zero),
                b'1'..=b'9' => self.cont(St::One),
                _ => self.error(),
            },
            St::One => {
                if c.is_ascii_digit() {
                    return self.cont(St::One);
                }
                self.number_end(c)
            }
            St::Zero => self.number_end(c),
            St::Dot => {
                if c.is_ascii_digit() {
                    return self.cont(St::Dot0);
                }
                self.error()
            }
            St::Dot0 => {
                if c.is_ascii_digit() {
                    return Op::Continue;
                }
                if c == b'e' || c == b'E' {
                    return self.cont(St::E);
                }
                self.end_value(c)
            }
            St::E => {
                if c == b'+' || c == b'-' {
                    return self.cont(St::ESign);
                }
                self.e_sign(c)
            }
            St::ESign => self.e_sign(c),
            St::E0 => {
                if c.is_ascii_digit() {
                    return Op::Continue;
                }
                self.end_value(c)
            }
            St::T => self.expect(c, b'r', St::Tr),
            St::Tr => self.expect(c, b'u', St::Tru),
            St::Tru => self.expect(c, b'e', St::EndValue),
            St::F => self.expect(c, b'a', St::Fa),
            St::Fa => self.expect(c, b'l', St::Fal),
            St::Fal => self.expect(c, b's', St::Fals),
            St::Fals => self.expect(c, b'e', St::EndValue),
            St::N => self.expect(c, b'u', St::Nu),
            St::Nu => self.expect(c, b'l', St::Nul),
            St::Nul => self.expect(c, b'l', St::EndValue),
            St::Error => Op::Error,
        }
    }

    fn begin_string(&mut self, c: u8) -> Op {
        if c <= b' ' && is_space(c) {
            return Op::SkipSpace;
        }
        if c == b'"' {
            return self.lit(St::InString);
        }
        self.error()
    }

    fn e_sign(&mut self, c: u8) -> Op {
        if c.is_ascii_digit() {
            return self.cont(St::E0);
        }
        self.error()
    }

    fn expect(&mut self, c: u8, want: u8, next: St) -> Op {
        if c == want {
            return self.cont(next);
        }
        self.error()
    }
}

/// Go's `strconv.Unquote` for what can appear in a JSON string literal: `None` when Go would
/// fail (`\/`, escaped surrogates, missing quotes).
fn go_unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\n') {
        return None;
    }
    if !inner.contains('\\') {
        return if inner.contains('"') {
            None
        } else {
            Some(inner.to_owned())
        };
    }
    let mut out = String::with_capacity(inner.len());
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        match c {
            '"' => return None,
            '\\' => match it.next()? {
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\u{b}'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'u' => {
                    let mut v = 0u32;
                    for _ in 0..4 {
                        v = v * 16 + it.next()?.to_digit(16)?;
                    }
                    out.push(char::from_u32(v)?); // surrogates are rejected, as in Go
                }
                _ => return None,
            },
            _ => out.push(c),
        }
    }
    Some(out)
}

impl JsonObfuscator {
    /// An obfuscator keeping the values of `cfg.keep_values` and sending the values of
    /// `cfg.obfuscate_sql_values` to the transformer given to [`JsonObfuscator::obfuscate`].
    pub fn new(cfg: &JsonConfig) -> Self {
        JsonObfuscator {
            keep: cfg.keep_values.iter().map(|k| k.as_str().into()).collect(),
            transform: cfg
                .obfuscate_sql_values
                .iter()
                .map(|k| k.as_str().into())
                .collect(),
        }
    }

    /// True when some keys are configured for SQL obfuscation.
    pub fn has_transform_keys(&self) -> bool {
        !self.transform.is_empty()
    }

    /// Obfuscates `input`. `transform` (usually SQL obfuscation) receives the unquoted value
    /// under an `obfuscate_sql_values` key and returns its replacement; without it those keys are
    /// obfuscated like any other. On invalid JSON the result is the part obfuscated before the
    /// error followed by `...`; the second value is false in that case.
    pub fn obfuscate<'a>(
        &self,
        input: &'a str,
        transform: Option<&dyn Fn(&str) -> String>,
    ) -> (Cow<'a, str>, bool) {
        if input.is_empty() {
            return (Cow::Borrowed(input), true);
        }
        let transform = if self.transform.is_empty() {
            None
        } else {
            transform
        };
        let data = input.as_bytes();
        let mut out: Vec<u8> = Vec::with_capacity(data.len());
        let mut buf: Vec<u8> = Vec::new(); // current key or transformed value literal
        let mut sc = Scanner::new();
        let mut closures: Vec<bool> = Vec::new(); // true = object
        let mut keep_depth = 0usize;
        let mut key = false;
        let mut wiped = false;
        let mut keeping = false;
        let mut transforming = false;

        fn set_key(closures: &[bool], key: &mut bool, wiped: &mut bool) {
            *key = closures.last().copied().unwrap_or(true);
            *wiped = false;
        }

        for &c in data {
            let op = sc.step(c);
            let depth = closures.len();
            match op {
                Op::BeginObject | Op::BeginArray => {
                    closures.push(op == Op::BeginObject);
                    set_key(&closures, &mut key, &mut wiped);
                    transforming = false;
                }
                Op::EndArray | Op::EndObject | Op::ObjectValue | Op::ArrayValue => {
                    if matches!(op, Op::EndArray | Op::EndObject) && closures.len() > 1 {
                        closures.pop();
                    }
                    set_key(&closures, &mut key, &mut wiped);
                    if transforming && transform.is_some() {
                        let raw = String::from_utf8_lossy(&buf);
                        let value = go_unquote(&raw).unwrap_or_else(|| raw.clone().into_owned());
                        let result = transform.map(|t| t(&value)).unwrap_or_default();
                        out.push(b'"');
                        out.extend_from_slice(result.as_bytes());
                        out.push(b'"');
                        transforming = false;
                        buf.clear();
                    } else if keeping && depth < keep_depth {
                        keeping = false;
                    }
                }
                Op::BeginLiteral | Op::Continue => {
                    if transforming {
                        buf.push(c);
                        continue;
                    } else if key {
                        buf.push(c);
                    } else if !keeping {
                        if !wiped {
                            out.extend_from_slice(b"\"?\"");
                            wiped = true;
                        }
                        continue;
                    }
                }
                Op::ObjectKey => {
                    let k = trim_quotes(&buf);
                    let k = std::str::from_utf8(k).unwrap_or_default();
                    if !keeping && self.keep.contains(k) {
                        keeping = true;
                        keep_depth = depth + 1;
                    } else if !transforming && transform.is_some() && self.transform.contains(k) {
                        transforming = true;
                    }
                    buf.clear();
                    key = false;
                }
                Op::SkipSpace => continue,
                Op::Error => {
                    out.extend_from_slice(b"...");
                    return (finish(input, out), false);
                }
                Op::End => {}
            }
            out.push(c);
        }
        if sc.eof() == Op::Error {
            out.extend_from_slice(b"...");
            return (finish(input, out), false);
        }
        (finish(input, out), true)
    }
}

fn trim_quotes(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b'"').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b'"').map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn finish(input: &str, out: Vec<u8>) -> Cow<'_, str> {
    if out == input.as_bytes() {
        return Cow::Borrowed(input);
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obf(keep: &[&str], input: &str) -> String {
        let o = JsonObfuscator::new(&JsonConfig {
            enabled: true,
            keep_values: keep.iter().map(|s| s.to_string()).collect(),
            obfuscate_sql_values: vec![],
        });
        o.obfuscate(input, None).0.into_owned()
    }

    #[test]
    fn basic() {
        assert_eq!(obf(&[], r#"{"role": "database"}"#), r#"{"role":"?"}"#);
        assert_eq!(
            obf(&["a"], r#"{"a": [1, {"b": 2}], "c": 3}"#),
            r#"{"a":[1,{"b":2}],"c":"?"}"#
        );
        assert_eq!(obf(&[], r#"{"a": 1} {"b": 2}"#), r#"{"a":"?"} {"b":"?"}"#);
        assert_eq!(obf(&[], r#"{"a": "unterminated"#), r#"{"a":"?"..."#);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 10);
        let (out, ok) = JsonObfuscator::default().obfuscate(&deep, None);
        assert!(!ok);
        assert!(out.ends_with("..."));
        assert_eq!(out.len(), MAX_DEPTH + 3);
    }

    #[test]
    fn transform() {
        let o = JsonObfuscator::new(&JsonConfig {
            enabled: true,
            keep_values: vec![],
            obfuscate_sql_values: vec!["q".into()],
        });
        let t = |s: &str| s.to_uppercase();
        let (out, ok) = o.obfuscate(r#"{"q": "select \"x\"", "o": {"q": 1}}"#, Some(&t));
        assert!(ok);
        assert_eq!(out, r#"{"q":"SELECT "X"","o":{"q":"1"}}"#);
        assert_eq!(go_unquote(r#""a\/b""#), None);
        assert_eq!(go_unquote(r#""\ud83d""#), None);
        assert_eq!(go_unquote(r#""\u00e9""#).as_deref(), Some("é"));
    }
}
