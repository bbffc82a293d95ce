#!/usr/bin/env bash
# Checks that the shared library exports exactly the functions include/data-pipeline.h declares:
# nothing undeclared leaks out (every export is ABI), nothing declared is missing.
#
#   scripts/check-symbols.sh [path/to/libdata_pipeline.so]
# Default: target/release/libdata_pipeline.so (build it with cargo build --release -p data-pipeline-ffi).
set -euo pipefail
cd "$(dirname "$0")/.."
so=${1:-${CARGO_TARGET_DIR:-target}/release/libdata_pipeline.so}
header=include/data-pipeline.h
[ -f "$so" ] || { echo "no shared library at $so" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every defined dynamic symbol (code or data), whatever its name.
nm -D --defined-only "$so" | awk '{print $NF}' | sed 's/@.*//' | sort -u > "$tmp/exported"
# Function declarations in the header: cbindgen writes each as `<type> dp_name(` at the start of a
# line; `static inline` helpers are defined in the header and not exported.
grep -E '^[A-Za-z].*[ *]dp_[a-z0-9_]+\(' "$header" | grep -vE '^(static|typedef) ' |
  grep -oE 'dp_[a-z0-9_]+\(' | tr -d '(' | sort -u > "$tmp/declared"

if ! diff -u "$tmp/declared" "$tmp/exported" > "$tmp/diff"; then
  echo "exports of $so differ from the functions $header declares (- declared only, + exported only):" >&2
  grep -E '^[-+][^-+]' "$tmp/diff" >&2
  exit 1
fi
echo "$(wc -l < "$tmp/declared") functions: the header and the exports of $so agree"
