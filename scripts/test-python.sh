#!/usr/bin/env bash
# The Python binding's tests (examples-python/), run three ways so that what users install is what
# is tested:
#   built      pytest against the library cargo just built ($DATA_PIPELINE_LIB)
#   installed  cmake --install to a temporary prefix; the library found the way an installed copy is
#              (ctypes.util.find_library via LD_LIBRARY_PATH), the header of the prefix checked
#              (skipped, with a note, when cmake or the CMake package is missing)
#   wheel      the library copied beside the module and installed with pip into a temporary site
#              (what a wheel carrying the .so gives)
# Each run asserts (tests/test_loader.py::test_expected_copies) which package and library it used.
#
#   scripts/test-python.sh                  every run
#   scripts/test-python.sh built wheel      only the named runs
#   PYTEST_ARGS="-k send -x" scripts/test-python.sh built
#
# Needs scripts/setup-test-env.sh (run first: .cache/venv with the Datadog test agent, pytest,
# msgpack). The test agent is started by the tests themselves on free ports (tests/conftest.py).
# Work goes to build/test-python/ (ignored by git). Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/build/test-python"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export DP_TEST_AGENT="${DP_TEST_AGENT:-$root/.cache/venv/bin/ddapm-test-agent}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
read -r -a pytest_args <<< "${PYTEST_ARGS:-}"

step() { printf '\n==== test-python: %s ====\n' "$*"; }

if [ ! -x scripts/setup-test-env.sh ]; then
  echo "scripts/setup-test-env.sh is missing: rebase on main" >&2
  exit 1
fi
scripts/setup-test-env.sh
py="$root/.cache/venv/bin/python"

step "build the library (cargo build --release -p data-pipeline-ffi)"
cargo build --release --locked -p data-pipeline-ffi
lib="$target_dir/release/libdata_pipeline.so"
[ -f "$lib" ] || { echo "no $lib after the build" >&2; exit 1; }

step "pip install ./examples-python into .cache/venv"
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./examples-python
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

rm -rf "$work"
mkdir -p "$work"

# pytest from a neutral directory, so `import data_pipeline` is the installed package, not the
# source tree; no cache directory in the source tree.
run_pytest() { # label, then env assignments for `env`
  local label=$1; shift
  step "pytest ($label)"
  (cd "$work" && env "$@" "$py" -m pytest -p no:cacheprovider -q "$root/examples-python/tests" \
    ${pytest_args[@]+"${pytest_args[@]}"})
}

built() {
  run_pytest "built library, \$DATA_PIPELINE_LIB" \
    DATA_PIPELINE_LIB="$lib" DP_EXPECT_PACKAGE_DIR="$site" DP_EXPECT_LIB_DIR="$(dirname "$lib")"
}

installed() {
  if ! command -v cmake > /dev/null || [ ! -f CMakeLists.txt ]; then
    echo "cmake or the CMake package is not there: the installed run is skipped (the wheel run covers an installed copy)"
    return 0
  fi
  step "cmake --install to a temporary prefix"
  local prefix="$work/prefix"
  cmake -S "$root" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DDP_BUILD_TESTS=OFF \
    -DDP_CARGO_TARGET_DIR="$target_dir" -DCMAKE_INSTALL_PREFIX="$prefix" > "$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; return 1; }
  cmake --build "$work/cmake" >> "$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; return 1; }
  cmake --install "$work/cmake" > /dev/null
  ls "$prefix/lib" "$prefix/include"
  run_pytest "installed by cmake, found by find_library" \
    -u DATA_PIPELINE_LIB LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    DP_HEADER="$prefix/include/data-pipeline.h" DP_EXPECT_PACKAGE_DIR="$site" DP_EXPECT_LIB_DIR="$prefix/lib"
}

wheel() {
  step "pip install --target a temporary site, the library beside the module"
  local src="$work/wheel-src" target="$work/site"
  mkdir -p "$src"
  cp -r examples-python/pyproject.toml examples-python/README.md examples-python/data_pipeline "$src/"
  rm -rf "$src/data_pipeline/__pycache__"
  cp "$lib" "$src/data_pipeline/libdata_pipeline.so"
  "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$target" "$src"
  [ -f "$target/data_pipeline/libdata_pipeline.so" ] ||
    { echo "the package did not carry the library" >&2; return 1; }
  run_pytest "library beside the module" \
    -u DATA_PIPELINE_LIB PYTHONPATH="$target" DP_EXPECT_PACKAGE_DIR="$target" \
    DP_EXPECT_LIB_DIR="$target/data_pipeline"
}

runs=(built installed wheel)
[ $# -gt 0 ] && runs=("$@")
for r in "${runs[@]}"; do "$r"; done
step "passed: ${runs[*]}"
