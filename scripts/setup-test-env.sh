#!/usr/bin/env bash
# Installs what the demo and the tests need, idempotently, into .cache/ (ignored by git):
#   .cache/venv          Python venv: the real Datadog test agent, pytest, msgpack, confluent-kafka
#   .cache/kafka/libs    a real Apache Kafka broker's jars (Maven Central)
# and the system tools the C tests use (cmake, pkg-config, valgrind) when they are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { printf '[setup] %s\n' "$*" >&2; }

# System tools (Debian packages). Only when missing, so a prepared machine pays nothing.
missing=()
for tool in cmake pkg-config valgrind make cc c++ java mvn; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages for: ${missing[*]}"
  pkgs=()
  for tool in "${missing[@]}"; do
    case "$tool" in
      cc|c++|make) pkgs+=(build-essential) ;;
      java) pkgs+=(openjdk-17-jdk-headless) ;;
      mvn) pkgs+=(maven) ;;
      *) pkgs+=("$tool") ;;
    esac
  done
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
fi

# Python venv with the test agent and the Python-side test dependencies.
venv=.cache/venv
stamp="$venv/.deps-v1"
if [ ! -f "$stamp" ]; then
  say "creating $venv (ddapm-test-agent, pytest, msgpack, confluent-kafka)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
      ddapm-test-agent==1.69.1 pytest msgpack confluent-kafka
  touch "$stamp"
fi

# Kafka broker jars.
if [ ! -f .cache/kafka/libs/.complete ]; then
  say "resolving Apache Kafka from Maven Central"
  scripts/kafka.sh install
fi
say "ready"
