#!/usr/bin/env bash
# Checks that include/data-pipeline.h is what the pinned cbindgen generates from the current sources.
#
# How: data-pipeline-ffi/build.rs runs cbindgen (an exact-version build-dependency, so every machine
# uses the same generator and nothing needs installing) when DP_HEADER_OUT is set; we point it at a
# temp file and diff. Fix a failure with:  DP_WRITE_HEADER=1 cargo build -p data-pipeline-ffi
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A fresh path each run changes the env var, which makes cargo rerun the build script.
DP_HEADER_OUT="$tmp/data-pipeline.h" cargo check --quiet -p data-pipeline-ffi
if ! diff -u include/data-pipeline.h "$tmp/data-pipeline.h"; then
  echo "include/data-pipeline.h is stale: run DP_WRITE_HEADER=1 cargo build -p data-pipeline-ffi and commit it" >&2
  exit 1
fi
echo "include/data-pipeline.h is up to date"
