//! Tag replacement rules (the agent's `apm_config.replace_tags` / `DD_APM_REPLACE_TAGS`;
//! `pkg/trace/filters/replacer.go` is the reference).
//!
//! A rule has a `name` (a tag key, `resource.name` for the resource, or `*` for the resource and
//! every tag that does not start with `_`), a regular expression `pattern` and a replacement
//! `repl` where `$1`/`${1}`/`${name}` refer to capture groups. Every match is replaced. Numeric
//! tags (metrics) are formatted as Go does (`'f'`, shortest), replaced, and moved to meta when
//! the result is no longer a number. Span event attributes are covered too.

use crate::error::{Error, Result};
use crate::span::Str;
use crate::span::{AttributeScalar, AttributeValue, Span};
use regex::Regex;
use std::borrow::Cow;

/// One replacement rule.
#[derive(Debug, Clone)]
pub struct ReplaceRule {
    name: String,
    re: Regex,
    repl: String,
}

impl ReplaceRule {
    /// A rule replacing `pattern` (Go RE2 syntax, which the `regex` crate shares) with `repl` in
    /// the tag `name`. Errors: empty name or pattern, invalid pattern.
    pub fn new(name: &str, pattern: &str, repl: &str) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid_argument(
                "replace rule: all rules must have a \"name\" property (use \"*\" to target all)",
            ));
        }
        if pattern.is_empty() {
            return Err(Error::invalid_argument(
                "replace rule: all rules must have a \"pattern\"",
            ));
        }
        let re = Regex::new(pattern)
            .map_err(|e| Error::invalid_argument(format!("replace rule key {name:?}: {e}")))?;
        Ok(ReplaceRule {
            name: name.to_owned(),
            re,
            repl: repl.to_owned(),
        })
    }

    /// The tag the rule applies to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        self.re.as_str()
    }

    /// The replacement.
    pub fn repl(&self) -> &str {
        &self.repl
    }

    fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        self.re.replace_all(s, self.repl.as_str())
    }
}

/// Builds rules from `(name, pattern, repl)` triples, the fields of the agent's JSON form
/// `[{"name": "...", "pattern": "...", "repl": "..."}, ...]` (`DD_APM_REPLACE_TAGS`).
pub fn rules_from_triples<'a>(
    triples: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Result<Vec<ReplaceRule>> {
    triples
        .into_iter()
        .map(|(n, p, r)| ReplaceRule::new(n, p, r))
        .collect()
}

/// Parses rules in the agent's JSON form (`DD_APM_REPLACE_TAGS`):
/// `[{"name": "...", "pattern": "...", "repl": "..."}, ...]`. An absent `repl` is "" and unknown
/// keys are ignored, as the agent's decoding does. Errors (`InvalidArgument`): not a JSON array
/// of objects, a field that is not a string, or a rule [`ReplaceRule::new`] rejects.
pub fn rules_from_json(text: &str) -> Result<Vec<ReplaceRule>> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid_argument(format!("replace rules are not JSON: {e}")))?;
    let items = v.as_array().ok_or_else(|| {
        Error::invalid_argument("replace rules: expected a JSON array of {name, pattern, repl}")
    })?;
    items
        .iter()
        .map(|item| {
            let obj = item.as_object().ok_or_else(|| {
                Error::invalid_argument("replace rules: every rule must be a JSON object")
            })?;
            let field = |k: &str| match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(""),
                Some(serde_json::Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(Error::invalid_argument(format!(
                    "replace rules: {k:?} must be a string"
                ))),
            };
            ReplaceRule::new(field("name")?, field("pattern")?, field("repl")?)
        })
        .collect()
}

/// Replaces `field` when `rule` changes it (a `Str` of a span or a stats key's `Cow`).
fn set<S: std::ops::Deref<Target = str> + From<String>>(field: &mut S, rule: &ReplaceRule) {
    if let Cow::Owned(s) = rule.apply(field) {
        *field = S::from(s);
    }
}

/// Formats a float like Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(crate) fn go_format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's Display is the shortest round-trip representation without exponent, like 'f'/-1.
    format!("{v}")
}

/// Parses a float like Go's `strconv.ParseFloat(s, 64)` (decimal forms; out-of-range is an
/// error as in Go).
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" || lower == "nan" {
        return s.parse::<f64>().ok();
    }
    let plain = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if t.is_empty() || !plain {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() {
        return None; // out of range, an error in Go
    }
    Some(v)
}

fn go_parse_int(s: &str) -> Option<i64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The typed value the agent gives a replaced event attribute: int, then float, then bool
/// (`true`/`false` only), else string.
fn scalar_from_string<'a>(s: String) -> AttributeScalar<'a> {
    if let Some(i) = go_parse_int(&s) {
        AttributeScalar::Int(i)
    } else if let Some(f) = go_parse_float(&s) {
        AttributeScalar::Double(f)
    } else if s == "true" || s == "false" {
        AttributeScalar::Bool(s == "true")
    } else {
        AttributeScalar::String(Str::owned(s))
    }
}

fn replace_scalar<'a>(v: &mut AttributeScalar<'a>, rule: &ReplaceRule) {
    let text = match v {
        AttributeScalar::String(s) => {
            set(s, rule);
            return;
        }
        AttributeScalar::Int(i) => i.to_string(),
        AttributeScalar::Double(d) => go_format_float(*d),
        AttributeScalar::Bool(b) => b.to_string(),
    };
    let replaced = rule.apply(&text).into_owned();
    *v = scalar_from_string(replaced);
}

fn replace_attribute(v: &mut AttributeValue<'_>, rule: &ReplaceRule) {
    match v {
        AttributeValue::Scalar(s) => replace_scalar(s, rule),
        AttributeValue::Array(a) => a.iter_mut().for_each(|s| replace_scalar(s, rule)),
    }
}

/// Replaces a numeric tag: the agent formats it, applies the rule and keeps it as a metric when
/// the result parses as a number, else moves it to meta.
fn replace_metric(span: &mut Span<'_>, idx: usize, rule: &ReplaceRule) {
    let (key, value) = {
        let (k, v) = &span.metrics.as_slice()[idx];
        (k.clone(), *v)
    };
    let text = go_format_float(value);
    let replaced = rule.apply(&text);
    match go_parse_float(&replaced) {
        Some(f) => span.metrics.entries_mut()[idx].1 = f,
        None => {
            let replaced = replaced.into_owned();
            span.metrics.entries_mut().remove(idx);
            span.meta.insert(key, Str::owned(replaced));
        }
    }
}

/// Inserts (key, value) pairs into meta, replacing existing keys, in linear time.
fn move_to_meta<'a>(span: &mut Span<'a>, moved: Vec<(Str<'a>, String)>) {
    if moved.len() <= 8 {
        for (k, v) in moved {
            span.meta.insert(k, Str::owned(v));
        }
        return;
    }
    let mut index: std::collections::HashMap<String, usize> = span
        .meta
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.to_string(), i))
        .collect();
    for (k, v) in moved {
        match index.get(k.as_ref()) {
            Some(&i) => span.meta.entries_mut()[i].1 = Str::owned(v),
            None => {
                index.insert(k.to_string(), span.meta.len());
                span.meta.push(k, Str::owned(v));
            }
        }
    }
}

/// Applies `rules` (in order) to every span of a chunk.
pub fn replace_tags(spans: &mut [Span<'_>], rules: &[ReplaceRule]) {
    for rule in rules {
        for span in spans.iter_mut() {
            replace_span(span, rule);
        }
    }
}

/// Applies `rules` (in order) to a client stats group's resource and HTTP status code, as the
/// agent does to the stats a tracer computed (`ReplaceStatsGroup`): `resource.name` rules change
/// the resource, `http.status_code` rules the status code (formatted, replaced, and kept only
/// when the result still parses as a code), `*` rules both. Other rules do not apply.
pub fn replace_stats_group(
    resource: &mut Cow<'_, str>,
    http_status_code: &mut u32,
    rules: &[ReplaceRule],
) {
    for rule in rules {
        let (on_resource, on_status) = match rule.name.as_str() {
            "resource.name" => (true, false),
            "*" => (true, true),
            "http.status_code" => (false, true),
            _ => (false, false),
        };
        if on_resource {
            set(resource, rule);
        }
        if on_status {
            let text = http_status_code.to_string();
            if let Ok(code) = rule.apply(&text).parse::<u32>() {
                *http_status_code = code;
            }
        }
    }
}

fn replace_span(span: &mut Span<'_>, rule: &ReplaceRule) {
    match rule.name.as_str() {
        "*" => {
            for (k, v) in span.meta.entries_mut().iter_mut() {
                if !k.starts_with('_') {
                    set(v, rule);
                }
            }
            // Numeric tags: replaced in place, or moved to meta when no longer numbers (one
            // pass, then one `retain`, so the cost stays linear).
            let mut moved: Vec<(Str<'_>, String)> = Vec::new();
            for (k, v) in span.metrics.entries_mut().iter_mut() {
                if k.starts_with('_') {
                    continue;
                }
                let text = go_format_float(*v);
                let replaced = rule.apply(&text);
                match go_parse_float(&replaced) {
                    Some(f) => *v = f,
                    None => moved.push((k.clone(), replaced.into_owned())),
                }
            }
            if !moved.is_empty() {
                let gone: std::collections::HashSet<String> =
                    moved.iter().map(|(k, _)| k.to_string()).collect();
                span.metrics.retain(|k, _| !gone.contains(k.as_ref()));
                move_to_meta(span, moved);
            }
            set(&mut span.resource, rule);
            for ev in span.span_events.iter_mut() {
                for (k, v) in ev.attributes.iter_mut() {
                    if !k.starts_with('_') {
                        replace_attribute(v, rule);
                    }
                }
            }
        }
        "resource.name" => set(&mut span.resource, rule),
        key => {
            if let Some(v) = span.meta.get_mut(key) {
                set(v, rule);
            }
            if let Some(i) = span.metrics.as_slice().iter().rposition(|(k, _)| k == key) {
                replace_metric(span, i, rule);
            }
            for ev in span.span_events.iter_mut() {
                if let Some(v) = ev.attributes.get_mut(key) {
                    replace_attribute(v, rule);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's own cases for stats groups (`TestReplacer`, "stats").
    #[test]
    fn stats_groups() {
        let rules = rules_from_triples([
            ("http.status_code", "400", "200"),
            ("resource.name", "prod", "stage"),
            ("*", "123abc", "[REDACTED]"),
        ])
        .unwrap();
        let mut res: Cow<'_, str> = "this is 123abc on prod".into();
        let mut code = 400;
        replace_stats_group(&mut res, &mut code, &rules);
        assert_eq!((res.as_ref(), code), ("this is [REDACTED] on stage", 200));

        let rules = rules_from_triples([("*", "200", "202")]).unwrap();
        let mut res: Cow<'_, str> = "/code/200/profile".into();
        let mut code = 200;
        replace_stats_group(&mut res, &mut code, &rules);
        assert_eq!((res.as_ref(), code), ("/code/202/profile", 202));

        // A status code that no longer parses is kept; rules on other tags do not apply.
        let rules =
            rules_from_triples([("http.status_code", "\\d+", "x"), ("env", ".*", "y")]).unwrap();
        let mut res: Cow<'_, str> = "GET /".into();
        let mut code = 500;
        replace_stats_group(&mut res, &mut code, &rules);
        assert_eq!((res.as_ref(), code), ("GET /", 500));
        assert!(matches!(res, Cow::Borrowed(_)));
    }

    #[test]
    fn rules_from_agent_json() {
        let r = rules_from_json(
            r#"[{"name": "http.url", "pattern": "token=[^&]+", "repl": "token=?"},
                {"name": "*", "pattern": "secret", "other": 1}]"#,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].apply("a?token=abc&b=1"), "a?token=?&b=1");
        assert_eq!(r[1].repl(), "");
        for bad in [
            "{}",
            "[1]",
            r#"[{"name": "a", "pattern": 3}]"#,
            r#"[{"name": "", "pattern": "x"}]"#,
            r#"[{"name": "a", "pattern": "("}]"#,
            "nope",
        ] {
            let e = rules_from_json(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_format_float(100000.0), "100000");
        assert_eq!(go_format_float(0.1), "0.1");
        assert_eq!(go_format_float(1e21), "1000000000000000000000");
        assert_eq!(go_parse_float("1e400"), None);
        assert_eq!(go_parse_float("abc"), None);
        assert_eq!(go_parse_float("2.5"), Some(2.5));
    }

    #[test]
    fn metric_moves_to_meta() {
        let mut s = Span::default();
        s.metrics.push("http.status_code", 400.0);
        s.metrics.push("_hidden", 400.0);
        let rules = [ReplaceRule::new("*", "400", "bad").unwrap()];
        replace_tags(std::slice::from_mut(&mut s), &rules);
        assert_eq!(
            s.meta.get("http.status_code").map(|v| v.as_ref()),
            Some("bad")
        );
        assert!(!s.metrics.contains_key("http.status_code"));
        assert_eq!(s.metrics.get("_hidden"), Some(&400.0));
    }
}
