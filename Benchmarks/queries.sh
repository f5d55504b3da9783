#!/usr/bin/env bash
# The collector's reads at a large unit's scale, on SQLite and on PostgreSQL: the machine list,
# a machine's timeline, and the year's self-assessment, with several years in the store.
#
#   Benchmarks/queries.sh [LIST-MACHINES] [YEAR-MACHINES] [YEARS]      (default 300000 100000 3)
#   KEEP=DIR Benchmarks/queries.sh …    # fill the stores in DIR once and keep them (a later run reuses them)
#   PG=0 …                              # SQLite only (PostgreSQL needs root to start its cluster)
#
# Two stores, filled through the real ingest ledger (chain decision, group commit; signatures not
# made) by bench-queries: LIST-MACHINES machines × 2 reports a year × YEARS years with three
# findings a report (the list and the timelines), and YEAR-MACHINES machines × 4 reports a year ×
# 2 years carrying every audit rule's finding (the year's assessment). bench-queries times the
# store's queries and what the API, the CLI and the assessment make of them; then the real
# `mijian-collector` binary: `hosts` whole and one page, and over HTTP from a `serve` on the list
# store `/v1/hosts/{id}` and the console's machine list and machine page (curl's time to the first
# byte, best and median of 7 after one warm-up). Last, each store is moved into a throwaway
# PostgreSQL cluster (Debian's, socket only, as the postgres user; removed at the end) with
# `migrate` and bench-queries times the same queries there.
set -euo pipefail
cd "$(dirname "$0")/.."
list=${1:-300000}
year=${2:-100000}
years=${3:-3}
if [[ -z ${BENCH:-} ]]; then (cd Benchmarks && swift build -c release --product bench-queries 2>&1 | grep -E "error|Compiling bench" || true); fi
bench=${BENCH:-$(cd Benchmarks && swift build -c release --product bench-queries --show-bin-path)/bench-queries}
collector=${COLLECTOR:-.build/release/mijian-collector}
[[ -x $collector ]] || { echo "queries.sh: $collector is missing (swift build -c release --product mijian-collector, or COLLECTOR=path)" >&2; exit 2; }
work=${KEEP:-$(mktemp -d /tmp/mijian-queries.XXXXXX)}
mkdir -p "$work"
chmod 755 "$work"
server=""
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
as_pg() { runuser -u postgres -- "$@"; }
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null
  [[ -d $work/pg/data ]] && as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$work/pg" "$work/serve.log" "$work/cookies"
  [[ -z ${KEEP:-} ]] && rm -rf "$work"
  true
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -f $work/list/collector.sqlite ]] || "$bench" fill "$work/list" "$list" 2 "$years"
[[ -f $work/year/collector.sqlite ]] || "$bench" fill "$work/year" "$year" 4 2 --catalogue
"$bench" sqlite "$work/list"
"$bench" sqlite "$work/year" 3

# The real binary: the CLI, then the API and the console over HTTP.
best_of() {   # best_of N COMMAND…: best and median wall time of N runs, in ms
  local n=$1 times=() begin
  shift
  for _ in $(seq "$n"); do
    begin=$(date +%s%N)
    "$@" > /dev/null
    times+=("$(( ($(date +%s%N) - begin) / 1000000 ))")
  done
  local sorted; sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  echo "best $(echo "$sorted" | head -1) ms, median $(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p") ms"
}
first=$("$collector" hosts --data "$work/list" --format json --limit 1 | sed -n 's/.*"host_id" *: *"\([^"]*\)".*/\1/p' | head -1)
middle=$("$collector" hosts --data "$work/list" --format json --limit $(( list / 2 )) | sed -n 's/.*"host_id" *: *"\([^"]*\)".*/\1/p' | tail -1)
printf '%-58s %s\n' "mijian-collector hosts ($list machines, whole list)" "$(best_of 3 "$collector" hosts --data "$work/list")"
printf '%-58s %s\n' "mijian-collector hosts --limit 100 (first page)" "$(best_of 7 "$collector" hosts --data "$work/list" --limit 100)"
printf '%-58s %s\n' "mijian-collector hosts --limit 100 --after (middle)" "$(best_of 7 "$collector" hosts --data "$work/list" --limit 100 --after "$middle")"
printf 'bench password\n' | "$collector" users add bench --role viewer --data "$work/list" > /dev/null 2>&1 || true
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$collector" serve --data "$work/list" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 6000); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.05; done
base="http://127.0.0.1:$port"
jar=$work/cookies
token=$(curl -s -c "$jar" -b "$jar" "$base/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -1)
curl -s -c "$jar" -b "$jar" -o /dev/null --data "csrf=$token&name=bench&password=bench+password&next=%2F" "$base/login"
page() {   # page LABEL PATH: curl's time to the first byte, best and median of 7 after a warm-up
  local times=()
  curl -s -b "$jar" -o /dev/null "$base$2"
  for _ in 1 2 3 4 5 6 7; do times+=("$(curl -s -b "$jar" -o "$work/page.out" -w '%{time_starttransfer}' "$base$2")"); done
  local sorted; sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-58s best %6.1f ms, median %6.1f ms (%s bytes)\n' "$1" "$(echo "$sorted" | head -1 | awk '{print $1 * 1000}')" \
    "$(echo "$sorted" | sed -n 4p | awk '{print $1 * 1000}')" "$(wc -c < "$work/page.out")"
}
page "GET /v1/hosts/{id} (row, 100 reports, gaps)" "/v1/hosts/$middle"
page "console: machine page" "/machines/$middle"
page "console: machines, first page by name" "/machines"
page "console: machines, page 3000 by name" "/machines?page=3000"
page "console: machines sort=last page=1000" "/machines?sort=last&page=1000"
kill "$server"; wait "$server" 2>/dev/null || true; server=""
[[ -n $first ]] || echo "queries.sh: no machine listed" >&2

# PostgreSQL: a throwaway cluster, each store moved in with migrate, the same queries.
if [[ ${PG:-1} == 0 || -z $pgbin ]]; then exit 0; fi
mkdir -p "$work/pg/socket"
chown -R postgres:postgres "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres -E UTF8 --locale C.UTF-8 -A trust >/dev/null
cat >>"$work/pg/data/postgresql.conf" <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$work/pg/socket'
shared_buffers = 1GB
EOF
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w start >/dev/null
psql_su() { as_pg psql -X -q -h "$work/pg/socket" -p "$port" -U postgres -At "$@"; }
psql_su -d postgres -c "CREATE ROLE mijian LOGIN"
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), socket, shared_buffers 1GB"
for store in list year; do
  psql_su -d postgres -c "CREATE DATABASE $store OWNER mijian"
  url="postgres://mijian@localhost:$port/$store?host=$work/pg/socket"
  "$bench" postgres "$url" --from "$work/$store"
  psql_su -d "$store" -c "VACUUM ANALYZE" >/dev/null
  "$bench" postgres "$url" 5
done
