#!/usr/bin/env bash
# Differential check of our SQL obfuscator against the Datadog agent's own Go package.
#
# Runs every query of data-pipeline/tests/data/obfuscate/sql_corpus.txt under several configs
# (legacy default, legacy with the dialect and all metadata flags, and the three go-sqllexer
# modes) through
#   - the agent: data-pipeline/tests/go-differential (Go; pkg/obfuscate from the Go module proxy)
#   - us: the conformance driver (op obfuscate.sql)
# and reports the agreement per config and overall. Disagreements go to $OUT
# (default target/sql-differential.txt). Exit status 0 whatever the agreement (it is a report),
# 2 when a tool is missing or fails to build.
#
# MUTATIONS=N adds N queries made by mutating corpus queries (seeded, reproducible: SEED=n): random
# insertions, deletions and swaps of SQL-significant characters, to reach beyond the corpus.
#
# Usage: [MUTATIONS=N] scripts/sql-differential.sh [corpus-file]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/data-pipeline/tests/data/obfuscate/sql_corpus.txt}
out=${OUT:-$root/target/sql-differential.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v go >/dev/null || { echo "go not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 2; }
(cd "$root/data-pipeline/tests/go-differential" && go build -o "$work/agent-sql" .) || {
    echo "building the Go differential driver failed (module download or build)" >&2
    exit 2
}
(cd "$root" && cargo build -q -p data-pipeline --example conformance) || exit 2
ours=$root/target/debug/examples/conformance
mkdir -p "$(dirname "$out")"

python3 - "$corpus" "$work/agent-sql" "$ours" "$out" <<'PY'
import json, subprocess, sys
from collections import OrderedDict

corpus, agent_bin, ours_bin, out_path = sys.argv[1:5]

queries = []  # (dbms, query)
dbms = ""
block = []
def flush():
    global dbms
    if not block:
        return
    text = "\n".join(block)
    block.clear()
    if text.startswith("//! "):
        for line in text.splitlines():
            if line.startswith("//! dbms:"):
                d = line.split(":", 1)[1].strip()
                dbms = "" if d == "(none)" else d
        return
    queries.append((dbms, text))
with open(corpus, encoding="utf-8") as f:
    for line in f.read().split("\n"):
        if line == "":
            flush()
        else:
            block.append(line)
flush()

import os, random
mutations = int(os.environ.get("MUTATIONS", "0"))
rng = random.Random(int(os.environ.get("SEED", "1")))
alphabet = list("'\"`$:;,.()[]{}-+*/#@!?%<>=~|&^\\\n 0123456789aeSELCT_é日") + ["--", "/*", "*/", "$$", "::", "->", "#>", "AS ", "IN (", "$func$", "\\'", "''", "0x", "E'", "N'"]
base = list(queries)
for _ in range(mutations):
    d, q = rng.choice(base)
    q = list(q)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, len(q))
        if op < 0.5:
            q[pos:pos] = [rng.choice(alphabet)]
        elif op < 0.8 and q:
            del q[min(pos, len(q) - 1)]
        elif q:
            j = rng.randint(0, len(q) - 1)
            q[min(pos, len(q) - 1)], q[j] = q[j], q[min(pos, len(q) - 1)]
    queries.append((d, "".join(q)))

meta = {"table_names": True, "collect_commands": True, "collect_comments": True}
all_keep = {"keep_null": True, "keep_boolean": True, "keep_positional_parameter": True,
            "keep_trailing_semicolon": True, "keep_identifier_quotation": True,
            "remove_space_between_parentheses": True, "keep_json_path": True,
            "replace_bind_parameter": True, "keep_sql_alias": True, "replace_digits": True,
            "dollar_quoted_func": True, "collect_procedures": True}
configs = OrderedDict([
    ("legacy default", lambda d: {}),
    ("legacy dbms", lambda d: {"dbms": d}),
    ("legacy dbms+metadata+flags", lambda d: dict(dbms=d, replace_digits=True, keep_sql_alias=True,
                                                   dollar_quoted_func=True, **meta)),
    ("obfuscate_only", lambda d: {"obfuscation_mode": "obfuscate_only", "dbms": d}),
    ("obfuscate_only all flags", lambda d: dict(obfuscation_mode="obfuscate_only", dbms=d, **all_keep)),
    ("normalize_only", lambda d: dict(obfuscation_mode="normalize_only", dbms=d, collect_procedures=True, **meta)),
    ("obfuscate_and_normalize", lambda d: dict(obfuscation_mode="obfuscate_and_normalize", dbms=d, **meta)),
    ("obfuscate_and_normalize all flags", lambda d: dict(obfuscation_mode="obfuscate_and_normalize", dbms=d,
                                                         table_names=True, collect_commands=True,
                                                         collect_comments=True, **all_keep)),
])

reqs = []
for name, mk in configs.items():
    for d, q in queries:
        reqs.append((name, q, mk(d)))

def run(binary, lines):
    p = subprocess.run([binary], input="".join(lines), capture_output=True, text=True, encoding="utf-8")
    if p.returncode != 0:
        sys.exit(f"{binary} failed: {p.stderr[:500]}")
    return [json.loads(l) for l in p.stdout.splitlines()]

agent = run(agent_bin, [json.dumps({"query": q, "config": c}) + "\n" for _, q, c in reqs])
ours = run(ours_bin, [json.dumps({"op": "obfuscate.sql", "query": q, "config": c}) + "\n" for _, q, c in reqs])
assert len(agent) == len(ours) == len(reqs), (len(agent), len(ours), len(reqs))

def lst(v):
    return v or []

def compare(a, o, cfg):
    if "error" in a or "error" in o:
        return a.get("error") == o.get("error"), f"agent error={a.get('error')!r} result={a.get('result')!r}\n  ours  error={o.get('error')!r} result={o.get('result')!r}"
    if a["result"] != o["result"]:
        return False, f"agent {a['result']!r}\n  ours  {o['result']!r}"
    if any(cfg.get(k) for k in ("table_names", "collect_commands", "collect_comments", "collect_procedures")):
        m = o.get("metadata", {})
        for k in ("tables_csv", "size"):
            if a.get(k) != m.get(k):
                return False, f"metadata {k}: agent {a.get(k)!r} ours {m.get(k)!r}"
        for k in ("commands", "comments", "procedures"):
            if lst(a.get(k)) != lst(m.get(k)):
                return False, f"metadata {k}: agent {a.get(k)!r} ours {m.get(k)!r}"
    return True, ""

stats = OrderedDict((n, [0, 0]) for n in configs)
with open(out_path, "w", encoding="utf-8") as f:
    for (name, q, cfg), a, o in zip(reqs, agent, ours):
        ok, why = compare(a, o, cfg)
        stats[name][1] += 1
        if ok:
            stats[name][0] += 1
        else:
            f.write(f"[{name}] config={json.dumps(cfg)}\n  query {q!r}\n  {why}\n\n")
tot = [sum(v[0] for v in stats.values()), sum(v[1] for v in stats.values())]
print(f"{len(queries)} queries x {len(configs)} configs")
for n, (ok, n_all) in stats.items():
    print(f"  {n:36s} {ok:5d}/{n_all:<5d} {100.0 * ok / n_all:6.2f}%")
print(f"  {'overall':36s} {tot[0]:5d}/{tot[1]:<5d} {100.0 * tot[0] / tot[1]:6.2f}%")
print(f"disagreements: {out_path}")
PY
