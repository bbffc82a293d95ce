#!/usr/bin/env bash
# The C ABI's tests beyond `cargo test`: header, symbols, C tests under CTest (plain, ASan+UBSan,
# valgrind), and packaging (install, then examples-c built against the install with find_package and
# with pkg-config, run against a real Datadog test agent).
#
#   scripts/test-c.sh                 every step
#   scripts/test-c.sh header plain    only the named steps: header symbols plain asan valgrind package
#
# Work goes to build/test-c/ (ignored by git). The Rust library is built once in release into
# $CARGO_TARGET_DIR (default: the workspace's target/) and shared by every variant. The test agent is $DP_TEST_AGENT
# (default .cache/venv/bin/ddapm-test-agent, made by scripts/setup-test-env.sh); it listens on
# 127.0.0.1 on free ports picked at run time and is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/build/test-c"
prefix="$work/prefix"
mkdir -p "$work"
export DP_TEST_AGENT="${DP_TEST_AGENT:-$root/.cache/venv/bin/ddapm-test-agent}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n==== test-c: %s ====\n' "$*"; }

# ---- the test agent ------------------------------------------------------------------------------
agent_pid=""
agent_url=""
stop_agent() {
  if [ -n "$agent_pid" ]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=""
  fi
}
trap stop_agent EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

http_get() { python3 - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}

start_agent() {
  [ -n "$agent_pid" ] && return 0
  if [ ! -x "$DP_TEST_AGENT" ]; then
    echo "test agent not found at $DP_TEST_AGENT (run scripts/setup-test-env.sh)" >&2
    return 1
  fi
  for _ in 1 2 3; do
    local port http grpc
    port=$(free_port); http=$(free_port); grpc=$(free_port)
    "$DP_TEST_AGENT" --host 127.0.0.1 --port "$port" --otlp-http-port "$http" --otlp-grpc-port "$grpc" \
      --log-level WARNING > "$work/agent.log" 2>&1 &
    agent_pid=$!
    for _ in $(seq 1 100); do
      if http_get "http://127.0.0.1:$port/info" > /dev/null 2>&1; then
        agent_url="http://127.0.0.1:$port"
        echo "test agent at $agent_url (pid $agent_pid)"
        return 0
      fi
      kill -0 "$agent_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_agent
  done
  echo "the test agent did not start; its log:" >&2
  cat "$work/agent.log" >&2
  return 1
}

# ---- steps ---------------------------------------------------------------------------------------
header() {
  step "header: fresh, and compiles alone (and included twice) as C11 and C++17 with -Wall -Wextra -Werror -pedantic"
  scripts/check-header.sh
  printf '#include "data-pipeline.h"\n#include "data-pipeline.h"\nint main(void) { dp_str s = dp_str_from_cstr("x"); return (int)s.len - 1; }\n' \
    > "$work/header_alone.c"
  cp "$work/header_alone.c" "$work/header_alone.cpp"
  cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude -c "$work/header_alone.c" -o "$work/header_c.o"
  c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -c "$work/header_alone.cpp" -o "$work/header_cpp.o"
  echo "header compiles as C11 and C++17"
}

configure_build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDP_CARGO_TARGET_DIR="$target_dir" \
    -DCMAKE_INSTALL_PREFIX="$prefix" "$@" > "$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j "$jobs"
}

run_ctest() { # dir
  start_agent
  DP_TEST_AGENT_URL="$agent_url" ctest --test-dir "$1" --output-on-failure -j "$jobs"
}

plain() {
  step "C tests (CTest)"
  configure_build "$work/plain"
  run_ctest "$work/plain"
  # The C benchmarks are not tests, but they must keep compiling against the header.
  cmake --build "$work/plain" -j "$jobs" --target bench_send bench_enqueue
}

symbols() {
  step "exported symbols = functions of the header"
  [ -d "$work/plain/stage" ] || configure_build "$work/plain"
  scripts/check-symbols.sh "$work/plain/stage/lib/libdata_pipeline.so"
}

asan() {
  step "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  configure_build "$work/asan" -DDP_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest "$work/asan"
}

valgrind() {
  step "C tests under valgrind (errors and leaks fail)"
  configure_build "$work/valgrind" -DDP_VALGRIND=ON
  run_ctest "$work/valgrind"
}

check_session() { # token, expected span name
  local traces
  traces=$(http_get "$agent_url/test/session/traces?test_session_token=$1")
  if ! grep -q "\"$2\"" <<< "$traces"; then
    echo "the test agent did not receive span $2 for session $1: $traces" >&2
    return 1
  fi
}

run_example() { # binary, token
  http_get "$agent_url/test/session/start?test_session_token=$2" > /dev/null
  DP_TEST_SESSION_TOKEN="$2" "$1" "$agent_url"
  check_session "$2" "http.request"
  check_session "$2" "db.query"
  check_session "$2" "encoded.by.tracer"
  echo "agent received the traces of $(basename "$1")"
}

package() {
  step "install, then examples-c against the install (find_package and pkg-config)"
  [ -d "$work/plain/stage" ] || configure_build "$work/plain"
  rm -rf "$prefix"
  cmake --install "$work/plain" --prefix "$prefix" > /dev/null
  (cd "$prefix" && find . -type f -o -type l | sort)
  scripts/check-symbols.sh "$prefix/lib/libdata_pipeline.so"

  # The package is relocatable: build the examples against a moved copy.
  local moved="$work/prefix-moved"
  rm -rf "$moved" && cp -a "$prefix" "$moved"

  cmake -S examples-c -B "$work/examples" -DCMAKE_PREFIX_PATH="$moved" > "$work/examples.configure.log" 2>&1 ||
    { cat "$work/examples.configure.log"; return 1; }
  cmake --build "$work/examples" -j "$jobs"
  rm -rf "$work/examples-pc" && cp -r examples-c "$work/examples-pc"
  PKG_CONFIG_PATH="$moved/lib/pkgconfig" make -s -C "$work/examples-pc"

  start_agent
  run_example "$work/examples/send_traces" "c-example-cmake-shared"
  run_example "$work/examples/send_traces_static" "c-example-cmake-static"
  run_example "$work/examples-pc/send_traces-pc" "c-example-pkgconfig-shared"
  run_example "$work/examples-pc/send_traces-pc-static" "c-example-pkgconfig-static"
  # The shared build really uses the installed library.
  # (ldd's output is captured first: `ldd | grep -q` can fail under pipefail when grep exits early.)
  local deps
  deps=$(ldd "$work/examples/send_traces")
  grep -q "$moved/lib/libdata_pipeline.so" <<< "$deps" ||
    { echo "send_traces does not load the installed library: $deps" >&2; return 1; }
}

steps=(header plain symbols asan valgrind package)
[ $# -gt 0 ] && steps=("$@")
for s in "${steps[@]}"; do "$s"; done
step "passed: ${steps[*]}"
