#!/usr/bin/env bash
# Runs every test of the project on this machine (what CI runs). Installs what it needs first.
#   scripts/test.sh            everything
#   scripts/test.sh rust       only the named steps (lint, rust, c_abi, python_binding, dsm, bench_checks); see `steps` below
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DP_TEST_AGENT="${DP_TEST_AGENT:-$root/.cache/venv/bin/ddapm-test-agent}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==== %s ====\n' "$*"; }

lint() {
  step "format and lints"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -- -D warnings
}

rust() {
  step "Rust tests (unit + integration against the real test agent)"
  cargo test --workspace --locked
}

c_abi() {
  step "C ABI: header fresh, CTest (plain, ASan+UBSan, valgrind), exported symbols, installed package"
  scripts/test-c.sh
}

python_binding() {
  step "Python binding: pytest against the built, the installed and the wheel-style library"
  scripts/test-python.sh
}

dsm() {
  step "Data streams end to end: a real Kafka broker and the test agent, Python and C examples"
  scripts/test-dsm.sh
}

bench_checks() {
  step "Bench harness: self-tests, then a quick run of every case (fails on a fairness check: what each side delivered to the sink)"
  cargo fmt --manifest-path bench/Cargo.toml -- --check
  cargo test --manifest-path bench/Cargo.toml --locked
  cargo run --release --locked --manifest-path bench/Cargo.toml -- --quick --out "$root/build/bench-quick.json"
}

steps=(lint rust c_abi python_binding dsm bench_checks)
[ $# -gt 0 ] && steps=("$@")

scripts/setup-test-env.sh
for s in "${steps[@]}"; do "$s"; done
step "all test steps passed: ${steps[*]}"
