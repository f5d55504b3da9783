#!/usr/bin/env bash
# The service at rest and at work: `mijian run` (release) with every part on (audit, rtnetlink
# watch, live capture on every up link, sealer, spool, drop_dir delivery) for SECONDS, sampling
# its resident memory and CPU time from /proc; then seal + sign + spool latency of the reports
# it sealed (the service logs each one's duration).
# Usage: [MIJIAN=path] Benchmarks/agent.sh [SECONDS] [REPORT_INTERVAL]     (as root; defaults: 600 15m)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
interval=${2:-15m}
# MIJIAN=path measures another binary (the packaged one: static Swift runtime, Packaging/build-deb.sh).
if [ -n "${MIJIAN:-}" ]; then
  bin=$MIJIAN
else
  swift build -c release --product mijian >/dev/null
  bin=$PWD/.build/release/mijian
fi
work=$(mktemp -d /tmp/mijian-agent-bench.XXXXXX)
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/drop"
"$bin" keys init --key-dir "$work/state" >/dev/null
cat >"$work/agent.yaml" <<YAML
delivery: {mode: drop_dir, drop_dir: $work/drop}
report_interval: $interval
audit_interval: 1h
traffic: {enabled: true}
YAML
"$bin" run --config "$work/agent.yaml" --key-dir "$work/state" 2>"$work/log" &
pid=$!
ticks=$(getconf CLK_TCK)
sleep 5
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
start_cpu=$(cpu)
start=$(date +%s.%N)
max_rss=0
while (( $(date +%s) - ${start%.*} < seconds )); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  (( rss > max_rss )) && max_rss=$rss
  sleep 5
done
end_cpu=$(cpu)
end=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
# Anonymous (the heap, stacks) against file-backed (the binary's and libraries' pages, shared with
# every other process that maps them).
awk '/RssAnon|RssFile|RssShmem/ {printf "%s %.1f MiB  ", $1, $2 / 1024} END {print ""}' "/proc/$pid/status"
# Where the resident pages are: the binary's code and data, the capture rings (the kernel's
# TPACKET buffers, mapped shared), the C libraries and other files, anonymous memory.
exe=$(readlink -f "/proc/$pid/exe")
awk -v exe="$exe" '
  /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : ""; perm = $2
    what = (name == exe) ? (perm ~ /x/ ? "binary code" : "binary data") : (name ~ /^socket:/ ? "capture rings" : (name ~ /^\// ? "libraries and files" : "anonymous")) }
  /^Rss:/ { kb[what] += $2 }
  END { for (w in kb) printf "  %-20s %6.1f MiB\n", w, kb[w] / 1024 }' "/proc/$pid/smaps" | sort
grep -o 'code pages given back[^"]*' "$work/log" | head -n 1 | sed 's/^/  the service: /' || true
kill -TERM "$pid"; wait "$pid" || true
awk -v c0="$start_cpu" -v c1="$end_cpu" -v t0="$start" -v t1="$end" -v hz="$ticks" -v rss="$rss" -v max="$max_rss" 'BEGIN {
  printf "idle over %.0f s: CPU %.3f %% of a core, RSS %.1f MiB at the end, %.1f MiB at most\n", t1 - t0, 100 * (c1 - c0) / hz / (t1 - t0), rss / 1024, max / 1024 }'
grep -o 'agent.seal_duration=[0-9.e-]* seconds' "$work/log" | awk -F'[= ]' '{ printf "%.3f\n", $2 * 1000 }' | sort -n | awk '
  { ms[NR] = $1 } END { if (NR == 0) { print "no report sealed"; exit }
  printf "seal + sign + spool: %d reports, median %.2f ms, p90 %.2f ms, max %.2f ms\n", NR, ms[int((NR + 1) / 2)], ms[int(NR * 0.9 + 0.5)], ms[NR] }'
