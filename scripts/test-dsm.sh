#!/usr/bin/env bash
# Data Streams Monitoring end to end, against the real Datadog test agent and a real Kafka broker:
#   - the C library is built (release) and installed with CMake to a temporary prefix;
#   - the C examples (examples-c/dsm_http.c, dsm_kafka.c) are built against that install;
#   - pytest runs the Python DSM tests with the installed library: the binding
#     (test_datastreams.py), the HTTP pair (test_dsm_http.py), three services through a real Kafka
#     broker (test_dsm_kafka.py), the C examples (test_dsm_c_examples.py) and the header drift test.
#
#   scripts/test-dsm.sh                   everything
#   PYTEST_ARGS="-k kafka -x" scripts/test-dsm.sh
#
# Needs what scripts/setup-test-env.sh installs (run here first: test agent, pytest, msgpack,
# confluent-kafka, the Kafka jars, cmake) plus librdkafka-dev for the C Kafka example: installed from
# Debian when missing and possible, else that one example is skipped with a note. Every server binds
# 127.0.0.1 on free ports; the tests start and stop the agent and the broker themselves.
# Work goes to build/test-dsm/ (ignored by git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/build/test-dsm"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export DP_TEST_AGENT="${DP_TEST_AGENT:-$root/.cache/venv/bin/ddapm-test-agent}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
read -r -a pytest_args <<< "${PYTEST_ARGS:-}"

step() { printf '\n==== test-dsm: %s ====\n' "$*"; }

scripts/setup-test-env.sh
py="$root/.cache/venv/bin/python"

if ! pkg-config --exists rdkafka 2>/dev/null; then
  step "librdkafka-dev (for the C Kafka example)"
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo -n); fi
  if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librdkafka-dev > /dev/null 2>&1; then
    echo "installed librdkafka-dev"
  else
    echo "NOTE: librdkafka-dev could not be installed: examples-c/dsm_kafka.c is not built or tested"
  fi
fi

rm -rf "$work"
mkdir -p "$work"

step "build and install the library (CMake, release) to $work/prefix"
prefix="$work/prefix"
cmake -S "$root" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DDP_BUILD_TESTS=OFF \
  -DDP_CARGO_TARGET_DIR="$target_dir" -DCMAKE_INSTALL_PREFIX="$prefix" > "$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake" >> "$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
cmake --install "$work/cmake" > /dev/null
lib="$prefix/lib/libdata_pipeline.so"
[ -f "$lib" ] || { echo "no $lib after the install" >&2; exit 1; }

step "build the C examples against the install"
cmake -S examples-c -B "$work/examples" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  > "$work/examples.log" 2>&1 || { cat "$work/examples.log"; exit 1; }
grep -i "librdkafka" "$work/examples.log" || true
cmake --build "$work/examples" --target dsm_http >> "$work/examples.log" 2>&1 || { cat "$work/examples.log"; exit 1; }
if grep -q "dsm_kafka:" "$work/examples/Makefile" 2>/dev/null; then
  cmake --build "$work/examples" --target dsm_kafka >> "$work/examples.log" 2>&1 || { cat "$work/examples.log"; exit 1; }
fi
ls "$work/examples" | grep '^dsm_' || true

step "pytest: data streams (binding, HTTP, real Kafka, C examples) with the installed library"
tests=(test_datastreams.py test_dsm_http.py test_dsm_kafka.py test_dsm_c_examples.py test_drift.py)
# From a neutral directory; the package from the source tree, the library from the install.
(cd "$work" && env DP_DSM_KAFKA=1 PYTHONPATH="$root/examples-python" DATA_PIPELINE_LIB="$lib" \
  DP_HEADER="$prefix/include/data-pipeline.h" DP_DSM_C_EXAMPLES="$work/examples" \
  "$py" -m pytest -p no:cacheprovider -q -rs "${tests[@]/#/$root/examples-python/tests/}" \
  ${pytest_args[@]+"${pytest_args[@]}"})

step "passed"
