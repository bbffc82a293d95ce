//! Redis quantization, obfuscation and remove-all-args on arbitrary input: never panic, and
//! outputs stay bounded by the input. (Obfuscation is not idempotent in general: the reference
//! tokenizer re-reads its own output differently for odd inputs like "G\n \n  x".)
#![no_main]

use data_pipeline::obfuscate::{obfuscate_redis, quantize_redis, remove_all_redis_args};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let q = quantize_redis(s);
    // Upper-casing may widen a character (U+0266 -> U+A7AA: 2 -> 3 bytes), as in Go.
    assert!(q.len() <= 2 * s.len() + 4, "quantized resource grew: {q:?}");
    let once = obfuscate_redis(s);
    assert!(once.len() <= 2 * s.len() + 1, "obfuscated command grew: {once:?}");
    let _ = obfuscate_redis(&once);
    let removed = remove_all_redis_args(s);
    assert!(!removed.contains('\n'), "remove-all-args kept a newline: {removed:?}");
});
