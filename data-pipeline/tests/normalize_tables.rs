//! The agent's normalization test tables (ported as data, `tests/data/normalize/`), run through
//! the conformance driver's handlers. Prints pass counts per file and asserts every case passes
//! except the (exact) list of known failures.

mod common;

/// Cases that cannot pass yet, with the reason (none).
const KNOWN_FAILURES: &[(&str, &str, &str)] = &[];

#[test]
fn normalization_tables() {
    common::run_tables(
        &[
            "normalize/tag.json",
            "normalize/name.json",
            "normalize/truncate.json",
            "normalize/span.json",
            "normalize/chunk.json",
            "normalize/truncator.json",
        ],
        KNOWN_FAILURES,
    );
}
