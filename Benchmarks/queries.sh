#!/usr/bin/env bash
# The collector's reads at a large unit's scale, on SQLite and on PostgreSQL: the machine list,
# a machine's timeline, and the year's self-assessment, with several years in the store.
#
#   Benchmarks/queries.sh [LIST-MACHINES] [YEAR-MACHINES] [YEARS]      (default 300000 100000 3)
#   KEEP=DIR Benchmarks/queries.sh …    # fill the stores in DIR once and keep them (a later run reuses them)
#   PG=0 …                              # SQLite only (PostgreSQL needs root to start its cluster)
#   SQLITE=0 …                          # skip bench-queries on the SQLite stores (the binary and PostgreSQL only)
#   LEDGER=N …                          # only N machines through the ledger, the rest copied from them with SQL
#
# Two stores, filled through the real ingest ledger (chain decision, group commit; signatures not
# made) by bench-queries: LIST-MACHINES machines × 2 reports a year × YEARS years with three
# findings a report (the list and the timelines), and YEAR-MACHINES machines × 4 reports a year ×
# one year carrying every audit rule's finding (the year's assessment). bench-queries times the
# store's queries and what the API, the CLI and the assessment make of them; then the real
# `mijian-collector` binary: `hosts` whole and one page, and over HTTP from a `serve` on the list
# store `/v1/hosts/{id}` and the console's machine list (curl's time to the first
# byte, best and median of 7 after one warm-up; the console's machine page parses the stored
# envelopes, and bench-queries stores bare payloads, so it is not timed here). Last, a throwaway PostgreSQL cluster (Debian's,
# socket only, as the postgres user; removed at the end) gets the list store's shape written with
# SQL, and bench-queries times the same queries there.
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
# copy_machines DIR TARGET: adds copies of machines that reported every report (new host id,
# name, asset number and key, the same reports, gaps and yearly rows) until the store holds
# TARGET machines; written with SQL in one transaction, the schema's triggers counting as ingest does.
copy_machines() {
  local have; have=$(sqlite3 "$1/collector.sqlite" "SELECT count(*) FROM hosts")
  (( have < $2 )) || return 0
  sqlite3 "$1/collector.sqlite" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
CREATE TEMP TABLE pair AS SELECT host_id AS old, host_id || '-copy' AS new, hostname || '-c' AS hostname, asset_id || '-c' AS asset, keyid || '-copy' AS keyid
  FROM hosts WHERE seq >= (SELECT max(seq) FROM hosts) - 1 ORDER BY host_id LIMIT $(( $2 - have ));
INSERT INTO keys (keyid, pem, host_id, hostname, asset_id, classification, responsible, agent_version, previous_keyid, note, requested_at, approved_at, request_sha256)
  SELECT p.keyid, k.pem, p.new, p.hostname, p.asset, k.classification, k.responsible, k.agent_version, NULL, 'copy', k.requested_at, k.approved_at, k.request_sha256
  FROM pair p JOIN keys k ON k.host_id = p.old AND k.revoked_at IS NULL;
INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope, envelope_encoding, skew_seconds, skew)
  SELECT r.payload_sha256, p.new, p.keyid, r.epoch, r.seq, r.prev_sha256, r.issued_at, r.received_at, r.year, r.outcome, 'copy', r.policy_sha256, r.fail_count, r.envelope,
    r.envelope_encoding, r.skew_seconds, r.skew FROM pair p JOIN reports r ON r.host_id = p.old ORDER BY p.new, r.id;
INSERT INTO gaps (host_id, epoch, from_seq, to_seq, year, report_sha256, detected_at)
  SELECT p.new, g.epoch, g.from_seq, g.to_seq, g.year, g.report_sha256, g.detected_at FROM pair p JOIN gaps g ON g.host_id = p.old;
INSERT INTO host_years SELECT p.new, y.year, p.hostname, p.asset, y.classification, y.responsible, y.reports, y.last_issued_at, y.last_report_sha256, y.policy_id, y.policy_sha256
  FROM pair p JOIN host_years y ON y.host_id = p.old;
INSERT INTO host_rules SELECT p.new, r.year, r.rule_id, r.pass, r.fail, r.error, r.other FROM pair p JOIN host_rules r ON r.host_id = p.old;
INSERT INTO findings SELECT p.new, f.year, f.rule_id, f.subject, f.status, f.detail, f.count, f.first_observed_at, f.last_observed_at, f.first_report_sha256, f.last_report_sha256
  FROM pair p JOIN findings f ON f.host_id = p.old;
INSERT INTO media SELECT p.new, m.year, m.vendor, m.product, m.serial, m.source, m.first_seen, m.last_seen, m.report_sha256 FROM pair p JOIN media m ON m.host_id = p.old;
INSERT INTO hosts (host_id, hostname, asset_id, classification, responsible, unit, os, kernel, keyid, epoch, seq, digest, last_issued_at, last_received_at,
    first_received_at, policy_id, policy_version, policy_sha256, agent_version, last_fail_count, last_skew_seconds, last_skew, skewed_reports)
  SELECT p.new, p.hostname, p.asset, h.classification, h.responsible, h.unit, h.os, h.kernel, p.keyid, h.epoch, h.seq, h.digest, h.last_issued_at, h.last_received_at,
    h.first_received_at, h.policy_id, h.policy_version, h.policy_sha256, h.agent_version, h.last_fail_count, h.last_skew_seconds, h.last_skew, h.skewed_reports
  FROM pair p JOIN hosts h ON h.host_id = p.old;
COMMIT;
SQL
  echo "copied $(( $2 - have )) machines with SQL (from the $have written through the ledger): $(sqlite3 "$1/collector.sqlite" "SELECT count(*) || ' machines, ' || (SELECT count(*) FROM reports) || ' reports' FROM hosts")"
}
[[ -f $work/list/collector.sqlite ]] || "$bench" fill "$work/list" "${LEDGER:-$list}" 2 "$years"
copy_machines "$work/list" "$list"
[[ -f $work/year/collector.sqlite ]] || "$bench" fill "$work/year" "$year" 4 1 --catalogue
if [[ ${SQLITE:-1} != 0 ]]; then
  "$bench" sqlite "$work/list" 3
  "$bench" sqlite "$work/year" 3
fi

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
page "console: machines, first page by name" "/machines"
page "console: machines, page 3000 by name" "/machines?page=3000"
page "console: machines sort=last page=1000" "/machines?sort=last&page=1000"
kill "$server"; wait "$server" 2>/dev/null || true; server=""
[[ -n $first ]] || echo "queries.sh: no machine listed" >&2

# PostgreSQL: a throwaway cluster, the schema made by `mijian-collector`, the list store's shape
# written with SQL (LIST-MACHINES machines × 2 reports a year × YEARS years, one-byte envelopes,
# three rules' counts a machine and year), then the same queries.
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
psql_su() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$work/pg/socket" -p "$port" -U postgres -At "$@"; }
psql_su -d postgres -c "CREATE ROLE mijian LOGIN" -c "CREATE DATABASE bench OWNER mijian"
url="postgres://mijian@localhost:$port/bench?host=$work/pg/socket"
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), socket, shared_buffers 1GB"
"$collector" hosts --database "$url" > /dev/null   # the schema, by the collector's own migrations
begin=$(date +%s)
psql_su -d bench <<SQL
ALTER TABLE reports DISABLE TRIGGER reports_count;
CREATE TEMP TABLE m AS SELECT i, 'h' || lpad(i::text, 8, '0') AS host_id, 'ws-' || lpad(i::text, 6, '0') AS hostname, 'JSJ-' || lpad(i::text, 6, '0') AS asset,
  CASE WHEN i % 10 = 9 THEN '非密' ELSE '秘密' END AS class FROM generate_series(0, $list - 1) i;
INSERT INTO keys (keyid, pem, host_id, hostname, asset_id, classification, responsible, agent_version, requested_at, approved_at, request_sha256)
  SELECT 'sha256:k' || host_id, 'bench', host_id, hostname, asset, class, '张三', 'bench', '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z', '' FROM m;
CREATE TEMP TABLE r AS SELECT m.*, s, 2026 - $years + 1 + s / 2 AS year,
  to_char(make_date(2026 - $years + 1 + s / 2, 1 + (s % 2) * 6, 1) + (m.i % 86400) * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at,
  md5(m.host_id || '-' || s) AS sha FROM m, generate_series(0, 2 * $years - 1) s;
INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope)
  SELECT sha, host_id, 'sha256:k' || host_id, 0, s, CASE WHEN s = 0 THEN '' ELSE md5(host_id || '-' || (s - 1)) END, at, at, year,
    CASE WHEN s = 0 THEN 'first' ELSE 'accepted' END, 'bench', 'p', 0, '\x00'::bytea FROM r ORDER BY host_id, s;
INSERT INTO hosts (host_id, hostname, asset_id, classification, responsible, unit, os, kernel, keyid, epoch, seq, digest, last_issued_at, last_received_at,
    first_received_at, policy_id, policy_version, policy_sha256, agent_version, last_fail_count)
  SELECT host_id, hostname, asset, class, '张三', '某局' || (i % 12), 'Debian GNU/Linux 12', '6.1.0', 'sha256:k' || host_id, 0, s, sha, at, at, at,
    'classified-workstation', '2026.1', 'p', 'bench', 0 FROM r WHERE s = 2 * $years - 1;
INSERT INTO host_years (host_id, year, hostname, asset_id, classification, responsible, reports, last_issued_at, last_report_sha256, policy_id, policy_sha256)
  SELECT host_id, year, hostname, asset, class, '张三', 2, at, sha, 'classified-workstation', 'p' FROM r WHERE s % 2 = 1;
INSERT INTO host_rules (host_id, year, rule_id, pass, fail, error, other)
  SELECT host_id, year, rule, 2, 0, 0, 0 FROM r, unnest(ARRAY['net.internet-route', 'net.public-dns', 'usb.storage']) rule WHERE s % 2 = 1;
ALTER TABLE reports ENABLE TRIGGER reports_count;
UPDATE hosts SET report_count = 2 * $years;
SQL
psql_su -d bench -c "VACUUM ANALYZE"
echo "PostgreSQL: $list machines × $(( 2 * years )) reports written with SQL in $(( $(date +%s) - begin )) s"
"$bench" postgres "$url" 5
