#!/usr/bin/env bash
# Full-audit benchmark: the release `mijian audit` as a user runs it (hyperfine, whole process),
# live on this machine and on a fixture tree, plus the in-process median from bench-audit.
# Usage: Benchmarks/audit.sh [FIXTURE_ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
fixture=${1:-Tests/Fixtures/hosts/laptop-wifi-bt}
swift build -c release --product mijian >/dev/null
bin=.build/release/mijian
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install -y hyperfine" >&2; exit 2; }
hyperfine --warmup 5 --runs 100 -N -i \
  "$bin audit --format json" \
  "$bin audit --format json --root $fixture"
(cd Benchmarks && swift run -c release bench-audit / 300 && swift run -c release bench-audit "../$fixture" 300)
