#!/usr/bin/env bash
# Audit benchmark: the release `mijian audit` as a user runs it (hyperfine, whole process, next
# to `mijian --version`), full and `--rule net.sockets` live, and full on a fixture tree; plus the
# in-process medians from bench-audit.
# Usage: Benchmarks/audit.sh [FIXTURE_ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
fixture=${1:-Tests/Fixtures/hosts/laptop-wifi-bt}
swift build -c release --product mijian >/dev/null
bin=.build/release/mijian
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install -y hyperfine" >&2; exit 2; }
# --version in the same run: the goal is an audit within twice its start-up.
hyperfine --warmup 5 --runs 100 -N -i \
  "$bin --version" \
  "$bin audit --format json" \
  "$bin audit --format json --rule net.sockets" \
  "$bin audit --format json --root $fixture"
(cd Benchmarks && swift run -c release bench-audit / 300 && swift run -c release bench-audit / 300 net.sockets \
  && swift run -c release bench-audit "../$fixture" 300)
