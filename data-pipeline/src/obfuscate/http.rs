//! HTTP URLs (`pkg/obfuscate/http.go` is the reference): user info is always removed; optionally
//! the query string is emptied and path segments containing a digit become `?`.
//!
//! The agent parses the URL with Go's `net/url` and prints it back, which also normalizes it
//! (lower-case scheme, percent-encoding of characters Go escapes, ...). To give byte-identical
//! results this module implements the same parse and print rules (RFC 3986 with Go's escaping
//! choices), written from their documented behavior. A URL Go would reject is returned unchanged
//! when no option is on, and replaced with `?` otherwise (nothing sensitive can leak).

use std::borrow::Cow;

/// URL obfuscation settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpConfig {
    /// Replace the query string with an empty one (the `?` is kept).
    pub remove_query_string: bool,
    /// Replace every path segment containing a digit with `?`.
    pub remove_paths_with_digits: bool,
}

const PLACEHOLDER: &str = "/REDACTED/";

/// Obfuscates a URL (see the module docs). Borrowed when the result equals the input.
pub fn obfuscate_url<'a>(url: &'a str, cfg: &HttpConfig) -> Cow<'a, str> {
    if !cfg.remove_query_string && !cfg.remove_paths_with_digits {
        // Hand-written fast path (the benchmark `http_url_default` shows parse + print costing
        // most of the time for ordinary URLs): a plain `scheme://host[:port]/path?query#frag`
        // without user info, percent escapes or characters Go re-escapes prints back unchanged.
        if is_plain_url(url) {
            return Cow::Borrowed(url);
        }
        return match Url::parse(url) {
            Ok(u) => same_or_owned(url, u.to_string_without_user()),
            Err(()) => Cow::Borrowed(url),
        };
    }
    // Hand-written fast path for the options too (the side-by-side bench `obfuscate_http` showed
    // parse + print at ~1x libdatadog): a plain URL prints back unchanged, so its parts can be
    // edited in place of the parsed ones, with the same placeholder rule.
    if is_plain_url(url) {
        return obfuscate_plain_url(url, cfg);
    }
    let Ok(mut u) = Url::parse(url) else {
        return Cow::Borrowed("?");
    };
    if cfg.remove_query_string && !u.raw_query.is_empty() {
        u.force_query = true;
        u.raw_query = "";
    }
    if cfg.remove_paths_with_digits {
        let path: &[u8] = &u.path;
        if path.iter().any(u8::is_ascii_digit) {
            let mut out = Vec::with_capacity(path.len() + 16);
            for (i, seg) in path.split(|&b| b == b'/').enumerate() {
                if i > 0 {
                    out.push(b'/');
                }
                if seg.iter().any(u8::is_ascii_digit) {
                    out.extend_from_slice(PLACEHOLDER.as_bytes());
                } else {
                    out.extend_from_slice(seg);
                }
            }
            u.path = Cow::Owned(out);
        }
    }
    let s = u.to_string_without_user();
    if s.contains(PLACEHOLDER) {
        return Cow::Owned(s.replace(PLACEHOLDER, "?"));
    }
    same_or_owned(url, s)
}

/// [`obfuscate_url`] with an option on, for a URL [`is_plain_url`] accepts: Go's parse + print
/// gives it back unchanged, so editing its path and query in place gives what editing the parsed
/// URL and printing it gives.
fn obfuscate_plain_url<'a>(url: &'a str, cfg: &HttpConfig) -> Cow<'a, str> {
    let b = url.as_bytes();
    // is_plain_url checked the "scheme://authority" prefix and that the authority has no '/?#'.
    let after_scheme = b.iter().position(|&c| c == b':').map_or(0, |i| i + 3);
    let path_start = b[after_scheme..]
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .map_or(b.len(), |i| after_scheme + i);
    let frag_start = b[path_start..]
        .iter()
        .position(|&c| c == b'#')
        .map_or(b.len(), |i| path_start + i);
    let query_start = b[path_start..frag_start]
        .iter()
        .position(|&c| c == b'?')
        .map_or(frag_start, |i| path_start + i);
    let path = &url[path_start..query_start];
    let query = &url[query_start..frag_start]; // "" or "?..."
    let edit_path = cfg.remove_paths_with_digits && path.bytes().any(|c| c.is_ascii_digit());
    let edit_query = cfg.remove_query_string && query.len() > 1;
    if !edit_path && !edit_query {
        // The agent replaces the placeholder in the whole printed URL, edited or not.
        if url.contains(PLACEHOLDER) {
            return Cow::Owned(url.replace(PLACEHOLDER, "?"));
        }
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..path_start]);
    if edit_path {
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            if seg.bytes().any(|c| c.is_ascii_digit()) {
                out.push_str(PLACEHOLDER);
            } else {
                out.push_str(seg);
            }
        }
    } else {
        out.push_str(path);
    }
    out.push_str(if edit_query { "?" } else { query });
    out.push_str(&url[frag_start..]);
    if out.contains(PLACEHOLDER) {
        return Cow::Owned(out.replace(PLACEHOLDER, "?"));
    }
    Cow::Owned(out)
}

/// A byte class as a table: ASCII letters and digits, plus `extra`.
const fn byte_class(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

/// Path bytes that Go's parse + print leaves as they are (no `%`: escapes may be re-encoded).
/// Tables rather than `contains` on the list of punctuation, and `memchr` for the delimiters:
/// the per-byte searches were most of [`is_plain_url`]'s cost (callgrind, bench
/// `send_processed_v04.realistic`: 7.0M -> 2.7M instructions per payload for its ~2,900 URLs).
const PLAIN_PATH_BYTES: [bool; 256] = byte_class(b"-._~$&+,/:;=@!'()*[]");
/// Host bytes [`is_plain_url`] accepts.
const PLAIN_HOST_BYTES: [bool; 256] = byte_class(b"-._~!$&'()*+,;=");

#[inline(always)]
fn plain_path_byte(b: u8) -> bool {
    PLAIN_PATH_BYTES[b as usize]
}

/// True when Go's `url.Parse` + `String` (user info removed) gives `url` back unchanged; false
/// means "not sure", not "changed".
fn is_plain_url(url: &str) -> bool {
    let b = url.as_bytes();
    // scheme: lower-case letter, then [a-z0-9+.-], then "://"
    let Some(colon) = b.iter().position(|&c| c == b':') else {
        return false;
    };
    if colon == 0
        || !b[0].is_ascii_lowercase()
        || !b[..colon].iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
        || !b[colon..].starts_with(b"://")
    {
        return false;
    }
    let rest = &b[colon + 3..];
    // The scans below use `memchr` and branch-free folds rather than a byte loop per question
    // (see `PLAIN_PATH_BYTES`).
    let auth_end = memchr::memchr3(b'/', b'?', b'#', rest).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    if authority.is_empty() {
        return false;
    }
    let (host, port) = match authority.iter().position(|&c| c == b':') {
        Some(i) => (&authority[..i], &authority[i + 1..]),
        None => (authority, &b""[..]),
    };
    if host.is_empty()
        || !host.iter().all(|&c| PLAIN_HOST_BYTES[c as usize])
        || !port.iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let rest = &rest[auth_end..];
    let (before_frag, frag) = match memchr::memchr(b'#', rest) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (path, query) = match memchr::memchr(b'?', before_frag) {
        Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..])),
        None => (before_frag, None),
    };
    if !path.iter().fold(true, |ok, &c| ok & plain_path_byte(c)) {
        return false;
    }
    if let Some(q) = query {
        // Kept verbatim; control characters make Go reject the URL. A query ending in a second
        // "?" is handled by the full parser.
        let control = q
            .iter()
            .fold(false, |seen, &c| seen | (c < 0x20) | (c == 0x7f));
        if control || (q.ends_with(b"?") && q.len() > 1) {
            return false;
        }
    }
    match frag {
        None => true,
        Some(f) => !f.is_empty() && f.iter().all(|&c| plain_path_byte(c) || c == b'?'),
    }
}

fn same_or_owned(input: &str, out: String) -> Cow<'_, str> {
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

/// Which part of a URL a string is escaped for (Go's `encoding` modes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    UserPassword,
    Host,
    Zone,
    Fragment,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn unhex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

/// Go's `unescape`: percent-decodes `s`, rejecting malformed escapes (and, in hosts, escapes of
/// ASCII bytes and characters that must not appear).
fn unescape(s: &[u8], mode: Mode) -> Result<Cow<'_, [u8]>, ()> {
    let mut n = 0;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                n += 1;
                if i + 2 >= s.len() || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) {
                    return Err(());
                }
                let esc = &s[i..i + 3];
                if mode == Mode::Host && unhex(s[i + 1]) < 8 && esc != b"%25" {
                    return Err(());
                }
                if mode == Mode::Zone {
                    let v = (unhex(s[i + 1]) << 4) | unhex(s[i + 2]);
                    if esc != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(());
                    }
                }
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(());
                }
                i += 1;
            }
        }
    }
    if n == 0 {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len() - 2 * n);
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            out.push((unhex(s[i + 1]) << 4) | unhex(s[i + 2]));
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(Cow::Owned(out))
}

/// Go's `escape`: percent-encodes (upper-case hex) every byte that must be escaped in `mode`.
fn escape(s: &[u8], mode: Mode, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s {
        if should_escape(c, mode) {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        } else {
            out.push(c as char); // never escaped => ASCII
        }
    }
}

fn escape_eq(s: &[u8], mode: Mode, expected: &[u8]) -> bool {
    let mut buf = String::with_capacity(s.len());
    escape(s, mode, &mut buf);
    buf.as_bytes() == expected
}

/// Go's `validEncoded`.
fn valid_encoded(s: &[u8], mode: Mode) -> bool {
    s.iter().all(|&c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(c, mode)
    })
}

/// The parts of a parsed URL that printing needs (user info is only validated, never printed).
struct Url<'a> {
    scheme: String,
    opaque: &'a str,
    has_user: bool,
    host: Cow<'a, [u8]>,
    path: Cow<'a, [u8]>,
    raw_path: &'a str,
    omit_host: bool,
    force_query: bool,
    raw_query: &'a str,
    fragment: Cow<'a, [u8]>,
    raw_fragment: &'a str,
}

impl<'a> Url<'a> {
    /// Go's `url.Parse`.
    fn parse(raw: &'a str) -> Result<Self, ()> {
        let (u, frag) = match raw.find('#') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, ""),
        };
        let mut url = Self::parse_no_fragment(u)?;
        if !frag.is_empty() {
            let f = unescape(frag.as_bytes(), Mode::Fragment)?;
            if !escape_eq(&f, Mode::Fragment, frag.as_bytes()) {
                url.raw_fragment = frag;
            }
            url.fragment = f;
        }
        Ok(url)
    }

    fn parse_no_fragment(raw: &'a str) -> Result<Self, ()> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(());
        }
        let mut url = Url {
            scheme: String::new(),
            opaque: "",
            has_user: false,
            host: Cow::Borrowed(b""),
            path: Cow::Borrowed(b""),
            raw_path: "",
            omit_host: false,
            force_query: false,
            raw_query: "",
            fragment: Cow::Borrowed(b""),
            raw_fragment: "",
        };
        if raw == "*" {
            url.path = Cow::Borrowed(b"*");
            return Ok(url);
        }
        let (scheme, mut rest) = get_scheme(raw)?;
        url.scheme = scheme.to_ascii_lowercase();
        if rest.ends_with('?') && rest.bytes().filter(|&b| b == b'?').count() == 1 {
            url.force_query = true;
            rest = &rest[..rest.len() - 1];
        } else if let Some(i) = rest.find('?') {
            url.raw_query = &rest[i + 1..];
            rest = &rest[..i];
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest;
                return Ok(url);
            }
            let segment = rest.split('/').next().unwrap_or_default();
            if segment.contains(':') {
                return Err(()); // first path segment cannot contain a colon
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, r) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            rest = r;
            let (has_user, host) = parse_authority(authority)?;
            url.has_user = has_user;
            url.host = host;
        } else if !url.scheme.is_empty() && rest.starts_with('/') {
            url.omit_host = true;
        }
        let path = unescape(rest.as_bytes(), Mode::Path)?;
        if !escape_eq(&path, Mode::Path, rest.as_bytes()) {
            url.raw_path = rest;
        }
        url.path = path;
        Ok(url)
    }

    /// Go's `EscapedPath`.
    fn escaped_path(&self, out: &mut String) {
        if !self.raw_path.is_empty() && valid_encoded(self.raw_path.as_bytes(), Mode::Path) {
            if let Ok(p) = unescape(self.raw_path.as_bytes(), Mode::Path) {
                if p.as_ref() == self.path.as_ref() {
                    out.push_str(self.raw_path);
                    return;
                }
            }
        }
        if self.path.as_ref() == b"*" {
            out.push('*');
            return;
        }
        escape(&self.path, Mode::Path, out);
    }

    /// Go's `EscapedFragment`.
    fn escaped_fragment(&self, out: &mut String) {
        if !self.raw_fragment.is_empty()
            && valid_encoded(self.raw_fragment.as_bytes(), Mode::Fragment)
        {
            if let Ok(f) = unescape(self.raw_fragment.as_bytes(), Mode::Fragment) {
                if f.as_ref() == self.fragment.as_ref() {
                    out.push_str(self.raw_fragment);
                    return;
                }
            }
        }
        escape(&self.fragment, Mode::Fragment, out);
    }

    /// Go's `URL.String` with the user info removed.
    fn to_string_without_user(&self) -> String {
        let mut buf = String::with_capacity(
            self.scheme.len() + self.opaque.len() + self.host.len() + self.path.len() + 16,
        );
        if !self.scheme.is_empty() {
            buf.push_str(&self.scheme);
            buf.push(':');
        }
        if !self.opaque.is_empty() {
            buf.push_str(self.opaque);
        } else {
            let has_authority = !self.scheme.is_empty() || !self.host.is_empty();
            let omit = self.omit_host && self.host.is_empty();
            if has_authority && !omit {
                if !self.host.is_empty() || !self.path.is_empty() {
                    buf.push_str("//");
                }
                escape(&self.host, Mode::Host, &mut buf);
            }
            let mut path = String::new();
            self.escaped_path(&mut path);
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                buf.push('/');
            }
            if buf.is_empty() {
                let segment = path.split('/').next().unwrap_or_default();
                if segment.contains(':') {
                    buf.push_str("./");
                }
            }
            buf.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            buf.push('?');
            buf.push_str(self.raw_query);
        }
        if !self.fragment.is_empty() {
            buf.push('#');
            self.escaped_fragment(&mut buf);
        }
        let _ = self.has_user;
        buf
    }
}

/// Go's `getScheme`.
fn get_scheme(raw: &str) -> Result<(&str, &str), ()> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err(()); // missing protocol scheme
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn valid_userinfo(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    })
}

/// Go's `parseAuthority`: (has user info, decoded host).
fn parse_authority(authority: &str) -> Result<(bool, Cow<'_, [u8]>), ()> {
    let at = authority.rfind('@');
    let host = parse_host(match at {
        Some(i) => &authority[i + 1..],
        None => authority,
    })?;
    let Some(i) = at else {
        return Ok((false, host));
    };
    let userinfo = &authority[..i];
    if !valid_userinfo(userinfo) {
        return Err(());
    }
    match userinfo.split_once(':') {
        None => {
            unescape(userinfo.as_bytes(), Mode::UserPassword)?;
        }
        Some((user, pass)) => {
            unescape(user.as_bytes(), Mode::UserPassword)?;
            unescape(pass.as_bytes(), Mode::UserPassword)?;
        }
    }
    Ok((true, host))
}

fn valid_optional_port(port: &str) -> bool {
    if port.is_empty() {
        return true;
    }
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Go's `parseHost`.
fn parse_host(host: &str) -> Result<Cow<'_, [u8]>, ()> {
    if host.starts_with('[') {
        let i = host.rfind(']').ok_or(())?;
        if !valid_optional_port(&host[i + 1..]) {
            return Err(());
        }
        if let Some(zone) = host[..i].find("%25") {
            let mut out = unescape(&host.as_bytes()[..zone], Mode::Host)?.into_owned();
            out.extend_from_slice(&unescape(&host.as_bytes()[zone..i], Mode::Zone)?);
            out.extend_from_slice(&unescape(&host.as_bytes()[i..], Mode::Host)?);
            return Ok(Cow::Owned(out));
        }
    } else if let Some(i) = host.rfind(':') {
        if !valid_optional_port(&host[i..]) {
            return Err(());
        }
    }
    unescape(host.as_bytes(), Mode::Host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slow path of `obfuscate_url` (parse + edit + print), for comparing with the fast one.
    fn slow(url: &str, cfg: &HttpConfig) -> String {
        let Ok(mut u) = Url::parse(url) else {
            return "?".into();
        };
        if cfg.remove_query_string && !u.raw_query.is_empty() {
            u.force_query = true;
            u.raw_query = "";
        }
        if cfg.remove_paths_with_digits && u.path.iter().any(u8::is_ascii_digit) {
            let segs: Vec<Vec<u8>> = u
                .path
                .split(|&b| b == b'/')
                .map(|s| {
                    if s.iter().any(u8::is_ascii_digit) {
                        PLACEHOLDER.as_bytes().to_vec()
                    } else {
                        s.to_vec()
                    }
                })
                .collect();
            u.path = Cow::Owned(segs.join(&b'/'));
        }
        u.to_string_without_user().replace(PLACEHOLDER, "?")
    }

    #[test]
    fn byte_tables_are_the_listed_classes() {
        for b in 0..=255u8 {
            let alnum = b.is_ascii_alphanumeric();
            assert_eq!(
                plain_path_byte(b),
                alnum || b"-._~$&+,/:;=@!'()*[]".contains(&b),
                "{b}"
            );
            assert_eq!(
                PLAIN_HOST_BYTES[b as usize],
                alnum || b"-._~!$&'()*+,;=".contains(&b),
                "{b}"
            );
        }
    }

    #[test]
    fn plain_fast_path_matches_parse_and_print() {
        let urls = [
            "http://foo.com/1/2?q=1#frag",
            "https://example.com:8080/users/123/orders/abc9?page=2&x=y",
            "http://h/",
            "http://h",
            "http://h?",
            "http://h/a?",
            "http://h/a/b1c/d#x1",
            "http://h/REDACTED/1",
            "http://h/a//1//b",
            "ftp://x.y/1?q=%20",
            "http://h/a?b=1/REDACTED/",
            "http://h/1?",
            "http://h/p;x=1/2",
        ];
        for url in urls {
            for (q, d) in [(true, false), (false, true), (true, true)] {
                let cfg = HttpConfig {
                    remove_query_string: q,
                    remove_paths_with_digits: d,
                };
                assert_eq!(obfuscate_url(url, &cfg), slow(url, &cfg), "{url} {q} {d}");
            }
        }
    }

    fn both() -> HttpConfig {
        HttpConfig {
            remove_query_string: true,
            remove_paths_with_digits: true,
        }
    }

    #[test]
    fn plain_fast_path_agrees_with_the_parser() {
        let none = HttpConfig::default();
        for u in [
            "https://example.com/users/list?page=2",
            "http://foo.com",
            "http://foo.com:8080/a/b;c=d/(x)*[y]?q=1&r=%zz#frag!",
            "http://foo.com/?",
            "http://foo.com/a?b?",
            "http://foo.com/a#",
            "http://FOO.com/a b",
            "HTTP://foo.com/",
            "http://u@foo.com/",
            "http://foo.com/%41",
            "http://foo.com/a?\u{1}",
            "mailto:x@y",
        ] {
            let slow = match Url::parse(u) {
                Ok(p) => p.to_string_without_user(),
                Err(()) => u.to_string(),
            };
            if is_plain_url(u) {
                assert_eq!(slow, u, "fast path wrong for {u}");
            }
            assert_eq!(obfuscate_url(u, &none), slow, "{u}");
        }
        assert!(is_plain_url("https://example.com/users/list?page=2"));
    }

    #[test]
    fn go_parity() {
        let none = HttpConfig::default();
        assert_eq!(
            obfuscate_url("http://u:p@foo.com/1?q=a", &none),
            "http://foo.com/1?q=a"
        );
        assert_eq!(
            obfuscate_url("http://foo.com/1/2?q=a#f", &both()),
            "http://foo.com/?/??#f"
        );
        assert_eq!(
            obfuscate_url("this is not a valid url", &none),
            "this%20is%20not%20a%20valid%20url"
        );
        assert_eq!(obfuscate_url(":", &both()), "?");
        assert_eq!(obfuscate_url(":", &none), ":");
        assert_eq!(obfuscate_url("##", &both()), "#%23");
        assert_eq!(obfuscate_url("C:#", &both()), "c:");
        assert_eq!(
            obfuscate_url(
                "%30ჸ",
                &HttpConfig {
                    remove_query_string: true,
                    ..none
                }
            ),
            "0%E1%83%B8"
        );
        assert!(matches!(
            obfuscate_url("http://foo.com/a?b=c", &none),
            Cow::Borrowed(_)
        ));
    }
}
