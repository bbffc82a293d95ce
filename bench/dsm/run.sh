#!/usr/bin/env bash
# Data streams checkpoint benchmarks (see README.md here):
#   1. the C ABI (bench/dsm/checkpoint.c) against the library installed with CMake;
#   2. the same checkpoints from Python: our ctypes binding, and ddtrace's own processor (ddtrace
#      4.16.0 in its own venv, .cache/venv-ddtrace), on the same sequence; prints the ratio.
#
#   bench/dsm/run.sh                      default sizes
#   C_ARGS="1000 300" PY_ARGS="200 100" bench/dsm/run.sh
#
# Work and results go to build/bench-dsm/ (results.json). Release build; run it on a quiet machine
# (on a loaded one, compare the CPU-time medians: they exclude the time spent waiting for a CPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work="$root/build/bench-dsm"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
read -r -a c_args <<< "${C_ARGS:-1000 300}"
read -r -a py_args <<< "${PY_ARGS:-200 100}"
mkdir -p "$work"

say() { printf '[bench-dsm] %s\n' "$*" >&2; }

say "building and installing the library (release) to $work/prefix"
prefix="$work/prefix"
cmake -S "$root" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DDP_BUILD_TESTS=OFF \
  -DDP_CARGO_TARGET_DIR="$target_dir" -DCMAKE_INSTALL_PREFIX="$prefix" > "$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake" >> "$work/cmake.log" 2>&1 || { tail -50 "$work/cmake.log"; exit 1; }
cmake --install "$work/cmake" > /dev/null

say "C ABI: bench/dsm/checkpoint.c ${c_args[*]}"
cc -O2 -std=c11 -Wall -Wextra -Werror -pedantic -I"$prefix/include" -o "$work/checkpoint" \
  bench/dsm/checkpoint.c -L"$prefix/lib" -ldata_pipeline -Wl,-rpath,"$prefix/lib"
"$work/checkpoint" "${c_args[@]}" | tee "$work/c.jsonl"

[ -x .cache/venv/bin/python ] || scripts/setup-test-env.sh
if [ ! -x .cache/venv-ddtrace/bin/python ] || ! .cache/venv-ddtrace/bin/python -c 'import ddtrace' 2>/dev/null; then
  say "creating .cache/venv-ddtrace (ddtrace==4.16.0)"
  python3 -m venv .cache/venv-ddtrace
  .cache/venv-ddtrace/bin/pip install -q --disable-pip-version-check ddtrace==4.16.0
fi

say "Python: ours (ctypes binding) ${py_args[*]}"
DATA_PIPELINE_LIB="$prefix/lib/libdata_pipeline.so" PYTHONPATH="$root/examples-python" \
  .cache/venv/bin/python bench/dsm/python_checkpoint.py ours "${py_args[@]}" | tee "$work/ours.jsonl"
say "Python: ddtrace $(.cache/venv-ddtrace/bin/python -c 'import ddtrace; print(ddtrace.__version__)') ${py_args[*]}"
.cache/venv-ddtrace/bin/python bench/dsm/python_checkpoint.py ddtrace "${py_args[@]}" | tee "$work/ddtrace.jsonl"

python3 - "$work" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
load = lambda name: [json.loads(l) for l in (work / name).read_text().splitlines() if l.strip()]
c, ours, theirs = load("c.jsonl"), load("ours.jsonl"), load("ddtrace.jsonl")
print("\n== data streams checkpoint ==")
print(f"{'C ABI case':<18}{'wall median':>14}{'cpu median':>14}")
for r in c:
    print(f"{r['case']:<18}{r['wall_ns']['median']:>11.0f} ns{r['cpu_ns']['median']:>11.0f} ns")
print(f"\n{'Python case':<12}{'ours wall':>12}{'ours cpu':>12}{'ddtrace wall':>14}{'ddtrace cpu':>13}{'ratio (cpu)':>13}")
by = {r["case"]: r for r in theirs}
summary = {"c": c, "python": []}
for r in ours:
    t = by[r["case"]]
    assert r["hashes"] == t["hashes"], f"{r['case']}: different pathways: {r['hashes']} vs {t['hashes']}"
    ratio = t["cpu_median_ns"] / r["cpu_median_ns"]
    summary["python"].append({"case": r["case"], "ours": r, "ddtrace": t, "ratio_cpu": round(ratio, 2),
                              "ratio_wall": round(t["median_ns"] / r["median_ns"], 2)})
    print(f"{r['case']:<12}{r['median_ns'] / 1000:>9.2f} us{r['cpu_median_ns'] / 1000:>9.2f} us"
          f"{t['median_ns'] / 1000:>11.2f} us{t['cpu_median_ns'] / 1000:>10.2f} us{ratio:>12.1f}x")
(work / "results.json").write_text(json.dumps(summary, indent=2))
print(f"\nsame pathway hashes on both sides; results in {work / 'results.json'}")
PY
