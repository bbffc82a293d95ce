//! Putting a pathway context into, and getting it out of, what travels with a message: Kafka
//! headers, HTTP headers, or anything else through get/set closures.
//!
//! Only [`PROPAGATION_KEY_BASE64`] is written (the base64 text). On read it is preferred; when
//! it is absent or does not decode, the legacy [`PROPAGATION_KEY_LEGACY`] holding the raw
//! binary context is tried. Anything that does not decode means "no context".

use super::context::PathwayContext;

/// The carrier key of the base64 text context (the only one written).
pub const PROPAGATION_KEY_BASE64: &str = "dd-pathway-ctx-base64";
/// The legacy carrier key of the raw binary context (read only).
pub const PROPAGATION_KEY_LEGACY: &str = "dd-pathway-ctx";

/// Extracts a context through `get(key)`, which returns the carrier's value for `key` (text
/// or bytes) if any.
pub fn extract_with<F, B>(mut get: F) -> Option<PathwayContext>
where
    F: FnMut(&str) -> Option<B>,
    B: AsRef<[u8]>,
{
    if let Some(ctx) = get(PROPAGATION_KEY_BASE64).and_then(PathwayContext::decode_base64) {
        return Some(ctx);
    }
    get(PROPAGATION_KEY_LEGACY).and_then(|v| PathwayContext::decode(v.as_ref()))
}

/// Injects `ctx` through `set(key, value)`: one call, with [`PROPAGATION_KEY_BASE64`] and the
/// base64 text.
pub fn inject_with<F: FnMut(&str, &str)>(ctx: &PathwayContext, mut set: F) {
    set(PROPAGATION_KEY_BASE64, &ctx.encode_base64_buf());
}

/// Extracts a context from Kafka headers (keys are case-sensitive; of repeated keys the last
/// wins).
pub fn extract_kafka(headers: &[(String, Vec<u8>)]) -> Option<PathwayContext> {
    extract_with(|key| {
        headers
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    })
}

/// Injects `ctx` into Kafka headers, replacing any [`PROPAGATION_KEY_BASE64`] header already
/// there. Returns the change in the headers' size in bytes (keys + values), which may be
/// negative or zero when a context header was replaced.
pub fn inject_kafka(ctx: &PathwayContext, headers: &mut Vec<(String, Vec<u8>)>) -> i64 {
    let mut delta = 0i64;
    headers.retain(|(k, v)| {
        let keep = k != PROPAGATION_KEY_BASE64;
        if !keep {
            delta -= (k.len() + v.len()) as i64;
        }
        keep
    });
    let value = ctx.encode_base64().into_bytes();
    delta += (PROPAGATION_KEY_BASE64.len() + value.len()) as i64;
    headers.push((PROPAGATION_KEY_BASE64.to_owned(), value));
    delta
}

/// Extracts a context from HTTP headers (names compared case-insensitively; of repeated names
/// the last wins). Values may be text or bytes.
pub fn extract_http<K: AsRef<str>, V: AsRef<[u8]>>(headers: &[(K, V)]) -> Option<PathwayContext> {
    extract_with(|key| {
        headers
            .iter()
            .rev()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_ref())
    })
}

/// Injects `ctx` into HTTP headers, replacing any header with the same name in any case.
pub fn inject_http(ctx: &PathwayContext, headers: &mut Vec<(String, String)>) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(PROPAGATION_KEY_BASE64));
    headers.push((PROPAGATION_KEY_BASE64.to_owned(), ctx.encode_base64()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ctx() -> PathwayContext {
        PathwayContext::from_millis(81985529216486895, 1700000000000, 1700000000500)
    }

    #[test]
    fn kafka_round_trip_replaces_existing() {
        let mut headers = vec![
            ("app".to_owned(), b"x".to_vec()),
            (
                PROPAGATION_KEY_BASE64.to_owned(),
                b"stale-value-of-28-bytes-xxxx".to_vec(),
            ),
        ];
        let delta = inject_kafka(&ctx(), &mut headers);
        assert_eq!(delta, 0, "same size replaced");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].1, b"782riWdFIwGAoKv++WLop6v++WI=");
        assert_eq!(extract_kafka(&headers), Some(ctx()));
        let mut fresh = Vec::new();
        assert_eq!(inject_kafka(&ctx(), &mut fresh), 21 + 28);
    }

    #[test]
    fn kafka_prefers_base64_then_legacy() {
        let legacy = (PROPAGATION_KEY_LEGACY.to_owned(), ctx().encode_to_vec());
        assert_eq!(extract_kafka(std::slice::from_ref(&legacy)), Some(ctx()));
        let other = PathwayContext::from_millis(5, 1, 2);
        let both = vec![
            legacy.clone(),
            (
                PROPAGATION_KEY_BASE64.to_owned(),
                other.encode_base64().into_bytes(),
            ),
        ];
        assert_eq!(extract_kafka(&both), Some(other));
        // A broken base64 value falls back to the legacy key.
        let broken = vec![(PROPAGATION_KEY_BASE64.to_owned(), b"%%%".to_vec()), legacy];
        assert_eq!(extract_kafka(&broken), Some(ctx()));
        assert_eq!(extract_kafka(&[]), None);
        let bad = vec![(PROPAGATION_KEY_BASE64.to_owned(), Vec::new())];
        assert_eq!(extract_kafka(&bad), None);
        // Kafka keys are case-sensitive.
        let upper = vec![(
            PROPAGATION_KEY_BASE64.to_uppercase(),
            ctx().encode_base64().into_bytes(),
        )];
        assert_eq!(extract_kafka(&upper), None);
    }

    #[test]
    fn http_is_case_insensitive() {
        let mut headers = vec![("DD-Pathway-Ctx-Base64".to_owned(), "junk".to_owned())];
        assert_eq!(extract_http(&headers), None);
        inject_http(&ctx(), &mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0, PROPAGATION_KEY_BASE64);
        let upper = vec![("DD-PATHWAY-CTX-BASE64", ctx().encode_base64())];
        assert_eq!(extract_http(&upper), Some(ctx()));
    }

    #[test]
    fn closures_work_with_any_carrier() {
        let mut map: HashMap<String, String> = HashMap::new();
        inject_with(&ctx(), |k, v| {
            map.insert(k.to_owned(), v.to_owned());
        });
        assert_eq!(map.len(), 1);
        assert_eq!(extract_with(|k| map.get(k)), Some(ctx()));
        assert_eq!(extract_with(|_| None::<&[u8]>), None);
    }
}
