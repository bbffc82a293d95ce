#!/usr/bin/env bash
# The main job, end to end on this machine:
#   1. builds the library and installs the CMake/pkg-config package to build/demo/prefix;
#   2. builds the C example against the installed package, and installs the Python binding;
#   3. starts the real Datadog test agent on free loopback ports;
#   4. sends traces through the C ABI from C and from Python, and data-streams stats from Python
#      (a produce -> consume -> produce -> consume pathway over an in-process queue);
#   5. prints what the agent received: traces, spans, services, and the data-streams payloads.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
work="$root/build/demo"
mkdir -p "$work"
say() { printf '[demo] %s\n' "$*" >&2; }

scripts/setup-test-env.sh
py="$root/.cache/venv/bin/python"

say "building and installing the library (cmake, release) to $work/prefix"
cmake -S . -B "$work/build" -DCMAKE_BUILD_TYPE=Release > "$work.configure.log" 2>&1 ||
  { cat "$work.configure.log" >&2; exit 1; }
cmake --build "$work/build" > "$work.build.log" 2>&1 || { tail -50 "$work.build.log" >&2; exit 1; }
rm -rf "$work/prefix"
cmake --install "$work/build" --prefix "$work/prefix" > /dev/null

say "building examples-c against the installed package (find_package(DataPipeline))"
cmake -S examples-c -B "$work/examples-c" -DCMAKE_PREFIX_PATH="$work/prefix" > "$work.examples.log" 2>&1 ||
  { cat "$work.examples.log" >&2; exit 1; }
cmake --build "$work/examples-c" > /dev/null

say "installing the Python binding into .cache/venv"
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./examples-python

export DATA_PIPELINE_LIB="$work/prefix/lib/libdata_pipeline.so"
exec "$py" scripts/demo.py --c-example "$work/examples-c/send_traces" --log-dir "$work"
