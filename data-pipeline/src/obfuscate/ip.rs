//! IP address quantization for peer tags (`pkg/obfuscate/ip_address.go` is the reference): IP
//! addresses in a comma-separated host list become `blocked-ip-address` (keeping the port and
//! any scheme or `ip-` prefix and trailing text), so that peer tags do not explode the
//! cardinality of stats. Loopback and cloud metadata addresses are kept.

use std::borrow::Cow;
use std::net::Ipv6Addr;

const BLOCKED: &str = "blocked-ip-address";

/// Addresses that are kept as they are (loopback, cloud metadata servers).
const ALLOWED: [&str; 5] = [
    "127.0.0.1",
    "::1",
    "169.254.169.254",
    "fd00:ec2::254",
    "169.254.170.2",
];

/// Quantizes every IP address in a comma-separated list of hosts; entries equal after
/// quantization are collapsed into one (first occurrence kept). Borrowed when nothing changed.
pub fn quantize_peer_ip_addresses(raw: &str) -> Cow<'_, str> {
    if !raw.contains(',') {
        return quantize_ip(raw);
    }
    let mut parts: Vec<Cow<'_, str>> = Vec::new();
    // Long lists de-duplicate through a set (linear time whatever the input).
    let mut seen: std::collections::HashSet<Cow<'_, str>> = std::collections::HashSet::new();
    let mut changed = false;
    for v in raw.split(',') {
        let q = quantize_ip(v);
        if matches!(q, Cow::Owned(_)) {
            changed = true;
        }
        if !seen.insert(q.clone()) {
            changed = true;
            continue;
        }
        parts.push(q);
    }
    if !changed {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(parts.join(","))
}

/// Splits a scheme (`dnspoll|ftp|file|http|https` followed by 2 or 3 slashes) or `ip-` prefix.
fn split_prefix(raw: &str) -> (&str, &str) {
    if let Some(after) = raw.strip_prefix("ip-") {
        return ("ip-", after);
    }
    // The reference takes the first match of `(dnspoll|ftp|file|http|https):/{2,3}` anywhere
    // in the string, and cuts the *start* of the string at the match's length.
    for start in 0..raw.len() {
        if !raw.is_char_boundary(start) {
            continue;
        }
        let rest = &raw[start..];
        for scheme in ["dnspoll", "https", "http", "file", "ftp"] {
            if let Some(after) = rest
                .strip_prefix(scheme)
                .and_then(|a| a.strip_prefix("://"))
            {
                let len = scheme.len() + if after.starts_with('/') { 4 } else { 3 };
                let prefix = &rest[..len];
                return match raw.get(len..) {
                    Some(r) => (prefix, r),
                    None => ("", raw),
                };
            }
        }
    }
    ("", raw)
}

fn quantize_ip(raw: &str) -> Cow<'_, str> {
    let (prefix, rest) = split_prefix(raw);
    let Some((host, port, suffix)) = parse_ip_and_port(rest) else {
        return Cow::Borrowed(raw);
    };
    if ALLOWED.contains(&host) {
        return Cow::Borrowed(raw);
    }
    let mut out =
        String::with_capacity(prefix.len() + BLOCKED.len() + port.len() + suffix.len() + 1);
    out.push_str(prefix);
    out.push_str(BLOCKED);
    if !port.is_empty() {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(suffix);
    Cow::Owned(out)
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k);
    if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 == hostport.len() || end + 1 != i {
            return None;
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

/// (ip, port, trailing text) when `input` starts with an IP address, optionally with a port.
fn parse_ip_and_port(input: &str) -> Option<(&str, &str, &str)> {
    let (host, port) = split_host_port(input).unwrap_or((input, ""));
    let end = parseable_ip(host)?;
    Some((&host[..end], port, &host[end..]))
}

/// Where the IP address at the start of `s` ends, if it starts with one.
fn parseable_ip(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let first = *b.first()?;
    if !(first.is_ascii_hexdigit() || first == b':') {
        return None;
    }
    for &c in b {
        match c {
            b'.' | b'_' | b'-' => return parse_ipv4(b, c),
            b':' => return parse_ipv6(s).then_some(s.len()),
            b'%' => return None,
            _ => {}
        }
    }
    None
}

/// Go's `netip.ParseAddr` for a string containing ':' (IPv6, optional non-empty zone).
fn parse_ipv6(s: &str) -> bool {
    let addr = match s.split_once('%') {
        Some((a, zone)) => {
            if zone.is_empty() {
                return false;
            }
            a
        }
        None => s,
    };
    addr.parse::<Ipv6Addr>().is_ok()
}

/// An IPv4 address with `sep` as separator at the start of `s`: the end of the address.
fn parse_ipv4(s: &[u8], sep: u8) -> Option<usize> {
    let mut val = 0u32;
    let mut pos = 0;
    let mut dig_len = 0;
    for i in 0..s.len() {
        let c = s[i];
        if c.is_ascii_digit() {
            if dig_len == 1 && val == 0 {
                return None; // leading zero
            }
            val = val * 10 + u32::from(c - b'0');
            dig_len += 1;
            if val > 255 {
                return None;
            }
        } else if c == sep {
            if i == 0 || i == s.len() - 1 || s[i - 1] == sep {
                return None;
            }
            if pos == 3 {
                return Some(i);
            }
            pos += 1;
            val = 0;
            dig_len = 0;
        } else {
            if pos == 3 {
                return Some(i);
            }
            return None;
        }
    }
    if pos < 3 {
        return None;
    }
    Some(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes() {
        assert_eq!(
            quantize_peer_ip_addresses("192.168.1.1:1234"),
            "blocked-ip-address:1234"
        );
        assert_eq!(quantize_peer_ip_addresses("foo.dog"), "foo.dog");
        assert!(matches!(
            quantize_peer_ip_addresses("127.0.0.1"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            quantize_peer_ip_addresses("[fe80::1ff:fe23:4567:890a]:8080"),
            "blocked-ip-address:8080"
        );
        assert_eq!(
            quantize_peer_ip_addresses("dnspoll:///10.21.120.145:6400"),
            "dnspoll:///blocked-ip-address:6400"
        );
    }
}
