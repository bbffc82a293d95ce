#![no_main]

mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data_pipeline::decode::Format::V05, data);
});
