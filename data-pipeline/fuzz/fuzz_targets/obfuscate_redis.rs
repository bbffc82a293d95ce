//! Redis quantization, obfuscation and remove-all-args on arbitrary input: never panic, and the
//! tokenizer-based obfuscation is idempotent (obfuscating its own output changes nothing).
#![no_main]

use data_pipeline::obfuscate::{obfuscate_redis, quantize_redis, remove_all_redis_args};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let q = quantize_redis(s);
    assert!(q.len() <= s.len() + 4, "quantized resource grew: {q:?}");
    let once = obfuscate_redis(s);
    let twice = obfuscate_redis(&once);
    assert_eq!(once, twice, "obfuscation is not idempotent for {s:?}");
    let removed = remove_all_redis_args(s);
    assert!(!removed.contains('\n'), "remove-all-args kept a newline: {removed:?}");
});
