#!/usr/bin/env bash
# The collector's front door under a flood: the real `mijian-collector serve` (default limits,
# started with systemd's default soft open-file limit of 1,024) takes 1,200 idle connections and
# 100 bodies that are never finished from 127.0.0.1, while an enrolled machine at 127.0.0.2 posts
# one signed report a second; then the same at the caps (1,024 connections from 16 addresses,
# every one holding a body) to measure the memory bound; then 16 addresses each holding one body
# of the largest size, which fill what clients that never delivered a report may hold. Prints each phase's report latencies,
# answers, the server's open descriptors and its resident memory (VmRSS, VmHWM from /proc).
# Usage: [MIJIAN=path COLLECTOR=path] Benchmarks/collector-flood.sh [SECONDS]      (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
if [ -z "${MIJIAN:-}" ] || [ -z "${COLLECTOR:-}" ]; then
  swift build -c release --product mijian >/dev/null
  swift build -c release --product mijian-collector >/dev/null
fi
mijian=${MIJIAN:-$PWD/.build/release/mijian}
collector=${COLLECTOR:-$PWD/.build/release/mijian-collector}
work=$(mktemp -d /tmp/mijian-collector-flood.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; cat "$work/log" >&2; rm -rf "$work"' EXIT
host=Tests/Fixtures/hosts/wired-desktop
"$mijian" keys init --key-dir "$work/key" >/dev/null
"$mijian" enroll --key-dir "$work/key" --root "$host" --output "$work/request.json" >/dev/null
"$collector" enroll approve --data "$work/data" "$work/request.json" >/dev/null
# One signed report per second of both phases, each the next link of the machine's chain.
mkdir -p "$work/reports"
for n in $(seq -w 1 $((3 * seconds + 4))); do
  "$mijian" audit --root "$host" --sign --key-dir "$work/key" --output "$work/reports/$n.json" >/dev/null || [ $? -eq 1 ]
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prlimit --nofile=1024: "$collector" serve --data "$work/data" --listen "127.0.0.1:$port" 2>"$work/log" &
pid=$!
python3 Benchmarks/collector-flood.py --port "$port" --pid "$pid" --reports "$work/reports" --seconds "$seconds"
echo "server log: $(wc -l <"$work/log") lines; connection notices: $(grep -c 'connection closed' "$work/log" || true)"
