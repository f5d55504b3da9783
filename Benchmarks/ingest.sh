#!/usr/bin/env bash
# Ingest at a large unit's scale on the default backend (SQLite), with the machine's own limit
# beside it, and the year's self-assessment at 100,000 machines.
#
#   Benchmarks/ingest.sh [ENROLLED] [POSTING-MACHINES] [REPORTS-EACH] [CONNECTIONS] [YEAR-MACHINES] [YEAR-REPORTS]
#   SCRATCH=/tmp/bench-build Benchmarks/ingest.sh      # build in a scratch path of its own
#
# bench-collector (release) enrols ENROLLED machines (default 300,000; each its own Ed25519 key),
# then POSTING-MACHINES of them (default 20,000) post REPORTS-EACH signed reports (default 5) from
# a second process over CONNECTIONS keep-alive HTTPS connections (default 256, 32 from each of
# 127.0.1.1, 127.0.1.2, …, as many machines' addresses) to the collector's own TLS listener (as
# `serve --tls-cert --tls-key` runs it, on a throwaway CA made with openssl) in the first:
# verification, the chain decision and group-committed storage. It prints the CPU the server and
# the client each spent per report and how busy the one writer was. In the same run it measures
# what one core verifies alone (Ed25519, and whole envelopes), so the rate reads against the
# machine's own limit; then the bytes stored per report. Last, YEAR-MACHINES (default 100,000)
# machines × YEAR-REPORTS reports (default 4) are written straight to the store and the year's
# self-assessment is built three times (goal < 5 s). EXTRA="--http" serves plain HTTP instead;
# EXTRA="--ledger" measures verification and storage alone, without HTTP.
set -euo pipefail
cd "$(dirname "$0")"
enrolled=${1:-300000}
posting=${2:-20000}
reports=${3:-5}
connections=${4:-256}
year_machines=${5:-100000}
year_reports=${6:-4}
scratch=()
[[ -n ${SCRATCH:-} ]] && scratch=(--scratch-path "$SCRATCH")
swift build -c release --product bench-collector "${scratch[@]}" 2>&1 | grep -E "error|Compiling bench|Build complete" || true
bin=$(swift build -c release --product bench-collector "${scratch[@]}" --show-bin-path)/bench-collector
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# shellcheck disable=SC2086 # EXTRA is words on purpose
"$bin" "$posting" "$reports" "$year_machines" "$year_reports" "$connections" --enrolled "$enrolled" ${EXTRA:-}
