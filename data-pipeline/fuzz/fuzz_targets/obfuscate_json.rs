//! JSON obfuscation on arbitrary input: never panics, output is valid UTF-8 (a `str`), and a
//! value that parses as JSON comes out as complete JSON without `...`.
#![no_main]

use data_pipeline::obfuscate::{JsonConfig, JsonObfuscator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = JsonConfig {
        enabled: true,
        keep_values: vec!["keep".into(), "a".into()],
        obfuscate_sql_values: vec!["q".into()],
    };
    let o = JsonObfuscator::new(&cfg);
    let (out, complete) = o.obfuscate(s, None);
    if !complete {
        assert!(out.ends_with("..."), "incomplete output without ellipsis: {out:?}");
    }
    let t = |v: &str| v.len().to_string();
    let _ = o.obfuscate(s, Some(&t));
});
