#!/usr/bin/env bash
# The console at 100,000 machines: server time of the overview and of filtered machine lists,
# beside `mijian-collector hosts` on the same store.
#
#   Benchmarks/console.sh [MACHINES] [COLLECTOR-BINARY]
#
# The store is filled with SQL straight into the collector's tables (the schema comes from the
# binary's own migrations): three reports per machine over the last days, ten departments, 2 %
# failing, 1 % could not check, 3 % silent, 0.5 % revoked, 500 enrolled that never reported, and
# findings, host_years and host_rules rows as ingest writes them. Ingest speed is bench-collector's
# business; this measures reading. First: how long `serve` takes to answer /healthz, the first
# overview right after start and login (one request, no warm-up), and how long after start the
# overview first carries the year's projected verdict (computed in the background). Then each page:
# curl's time to the first byte on loopback (the server's time plus a loopback round trip), best
# and median of 7 after one warm-up request, and the server process's CPU time per request over
# the same 7. Last, 100 reports written behind the server's back (as ingest writes them) and the
# overview's first request after them, which reads those machines again before answering.
set -euo pipefail
cd "$(dirname "$0")/.."
machines=${1:-100000}
bin=${2:-.build/release/mijian-collector}
[[ -x $bin ]] || { echo "console.sh: $bin is missing (swift build -c release --product mijian-collector)" >&2; exit 2; }
work=$(mktemp -d /tmp/mijian-console-bench.XXXXXX)
server=""
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; if [[ -n ${KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
data=$work/data
"$bin" hosts --data "$data" > /dev/null   # creates the database and runs every migration
now=$(date -u +%s)
start=$(date +%s.%N)
sqlite3 "$data/collector.sqlite" <<SQL
PRAGMA journal_mode = WAL; -- prints "wal"
PRAGMA synchronous = OFF;
BEGIN;
CREATE TEMP TABLE rule_ids(rule_id TEXT);
INSERT INTO rule_ids VALUES ('net.internet-route'),('net.public-dns'),('net.interfaces'),('net.sockets'),('wireless.hardware'),('wireless.modules'),
  ('wireless.history'),('usb.storage'),('usb.history'),('usb.phone'),('hardware.channels'),('log.retention'),('malware.scanner'),('print.devices');
CREATE TEMP TABLE m AS WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $machines)
  SELECT i, printf('h%08d', i) AS host_id, printf('ws-%06d', i) AS hostname, printf('JSJ-%06d', i) AS asset,
    CASE WHEN i % 10 = 9 THEN '非密' ELSE '秘密' END AS class, '责任人' || (i % 977) AS person, '部门' || (i % 10) AS unit,
    CASE WHEN i % 33 = 5 THEN 20 ELSE 1 END AS age, (i % 50 = 0) AS failing, (i % 97 = 3) AS erring FROM n;
INSERT INTO keys (keyid, pem, host_id, hostname, asset_id, classification, responsible, agent_version, requested_at, approved_at, request_sha256, revoked_at, revoke_reason)
  SELECT 'sha256:k' || host_id, 'bench', host_id, hostname, asset, class, person, 'bench', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '',
    CASE WHEN i % 200 = 7 THEN '2026-06-01T00:00:00Z' END, CASE WHEN i % 200 = 7 THEN 'bench' END FROM m;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 500)
INSERT INTO keys (keyid, pem, host_id, hostname, asset_id, classification, responsible, agent_version, requested_at, approved_at, request_sha256)
  SELECT 'sha256:new' || i, 'bench', printf('new%06d', i), printf('ws-new-%04d', i), printf('NEW-%04d', i), '秘密', '新人', 'bench',
    '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '' FROM n;
CREATE TEMP TABLE r AS SELECT m.*, s.seq, strftime('%Y-%m-%dT%H:%M:%SZ', $now - (m.age + 2 - s.seq) * 86400 - (m.i % 3600), 'unixepoch') AS at,
    'd' || m.host_id || '-' || s.seq AS sha, CASE WHEN m.failing AND s.seq > 0 THEN 1 ELSE 0 END AS fails
  FROM m, (SELECT 0 AS seq UNION ALL SELECT 1 UNION ALL SELECT 2) s;
INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope)
  SELECT sha, host_id, 'sha256:k' || host_id, 0, seq, CASE WHEN seq = 0 THEN '' ELSE 'd' || host_id || '-' || (seq - 1) END, at, at,
    CAST(substr(at, 1, 4) AS INTEGER), CASE WHEN seq = 0 THEN 'first' ELSE 'accepted' END, 'bench', 'p', fails, x'00' FROM r;
INSERT INTO hosts (host_id, hostname, asset_id, classification, responsible, unit, os, kernel, keyid, epoch, seq, digest, last_issued_at, last_received_at,
    first_received_at, policy_id, policy_version, policy_sha256, agent_version, last_fail_count)
  SELECT host_id, hostname, asset, class, person, unit, 'Debian GNU/Linux 12', '6.1.0', 'sha256:k' || host_id, 0, 2, sha, at, at, at,
    'classified-workstation', '2026.1', 'p', 'bench', fails * 2 FROM r WHERE seq = 2;
INSERT INTO host_years (host_id, year, hostname, asset_id, classification, responsible, reports, last_issued_at, last_report_sha256, policy_id, policy_sha256)
  SELECT host_id, CAST(substr(at, 1, 4) AS INTEGER), hostname, asset, class, person, 3, at, sha, 'classified-workstation', 'p' FROM r WHERE seq = 2;
INSERT INTO host_rules (host_id, year, rule_id, pass, fail, error, other)
  SELECT m.host_id, CAST(strftime('%Y', $now, 'unixepoch') AS INTEGER), rule_ids.rule_id,
    3 - CASE WHEN m.failing AND rule_ids.rule_id IN ('net.internet-route', 'usb.storage') THEN 2 WHEN m.erring AND rule_ids.rule_id = 'usb.history' THEN 1 ELSE 0 END,
    CASE WHEN m.failing AND rule_ids.rule_id IN ('net.internet-route', 'usb.storage') THEN 2 ELSE 0 END,
    CASE WHEN m.erring AND rule_ids.rule_id = 'usb.history' THEN 1 ELSE 0 END, 0
  FROM m, rule_ids;
INSERT INTO findings (host_id, year, rule_id, subject, status, detail, count, first_observed_at, last_observed_at, first_report_sha256, last_report_sha256)
  SELECT r1.host_id, CAST(substr(r2.at, 1, 4) AS INTEGER), rule_ids.rule_id, 'host', 'fail', 'bench failure', 2, r1.at, r2.at, r1.sha, r2.sha
  FROM r r1 JOIN r r2 ON r2.host_id = r1.host_id AND r2.seq = 2, rule_ids
  WHERE r1.seq = 1 AND r1.failing AND rule_ids.rule_id IN ('net.internet-route', 'usb.storage');
INSERT INTO findings (host_id, year, rule_id, subject, status, detail, count, first_observed_at, last_observed_at, first_report_sha256, last_report_sha256)
  SELECT host_id, CAST(substr(at, 1, 4) AS INTEGER), 'usb.history', 'kernel log', 'error', 'cannot read', 1, at, at, sha, sha FROM r WHERE seq = 2 AND erring;
COMMIT;
ANALYZE;
SQL
echo "filled $machines machines (3 reports each, 500 never reported) in $(echo "$(date +%s.%N) - $start" | bc) s: $(du -h "$data/collector.sqlite" | cut -f1)"
printf 'bench password\n' | "$bin" users add bench --role viewer --data "$data" > /dev/null
port=$((20000 + RANDOM % 20000))
started=$(date +%s.%N)
"$bin" serve --data "$data" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
server=$!
up=""
for _ in $(seq 60000); do
  curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && { up=1; break; }
  kill -0 "$server" 2>/dev/null || break
  sleep 0.01
done
[[ -n $up ]] || { echo "console.sh: serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
since() { echo "$(date +%s.%N) - $1" | bc; }
printf '%-44s %6.0f ms (it seeds the known clients from the stored reports first)\n' "serve: start to /healthz" "$(echo "$(since "$started") * 1000" | bc)"
base="http://127.0.0.1:$port"
jar=$work/cookies
curl -s -c "$jar" -b "$jar" "$base/login" > "$work/login.html"
token=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$work/login.html" | head -1)
curl -s -c "$jar" -b "$jar" -o /dev/null --data "csrf=$token&name=bench&password=bench+password&next=%2F" "$base/login"
grep -q mj_session "$jar" || { echo "console.sh: login failed" >&2; cat "$work/serve.log"; exit 1; }
# The server's CPU time (user + system, clock ticks) from /proc: on a loaded machine the wall
# time also counts waiting for a core; the CPU time per request does not.
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
measure() {
  local label=$1 path=$2 times=() before after
  curl -s -b "$jar" -o /dev/null "$base$path"   # warm-up (and the assessment cache, for the overview)
  before=$(ticks)
  for _ in 1 2 3 4 5 6 7; do times+=("$(curl -s -b "$jar" -o "$work/page.html" -w '%{time_starttransfer}' "$base$path")"); done
  after=$(ticks)
  local sorted; sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-44s best %6.1f ms  median %6.1f ms  server CPU %6.1f ms/request  (%s bytes)\n' "$label" "$(echo "$sorted" | head -1 | awk '{print $1 * 1000}')" \
    "$(echo "$sorted" | sed -n 4p | awk '{print $1 * 1000}')" "$(echo "$before $after $hz" | awk '{print ($2 - $1) * 1000 / $3 / 7}')" "$(wc -c < "$work/page.html")"
}
cold=$(curl -s -b "$jar" -o "$work/first.html" -w '%{time_starttransfer}' "$base/")
verdict() { grep -q '预估结论：' "$1" && echo "with the projected verdict" || echo "without the verdict: still being computed"; }
printf '%-44s %6.1f ms, %.1f s after start (%s)\n' "overview, first request after start" "$(echo "$cold" | awk '{print $1 * 1000}')" "$(since "$started")" "$(verdict "$work/first.html")"
for _ in $(seq 1200); do
  curl -s -b "$jar" -o "$work/poll.html" "$base/"
  grep -q '预估结论：' "$work/poll.html" && break
  sleep 0.25
done
computed=$(sed -n 's/.*用时 \([0-9.]*\) 秒.*/\1/p' "$work/poll.html" | head -1)
printf '%-44s %6.1f s after start (the build took %s s, off the request path)\n' "overview carries the year's projected verdict" "$(since "$started")" "$computed"
measure "overview" "/"
measure "machines, first page by name" "/machines"
measure "machines state=failing" "/machines?state=failing"
measure "machines department=部门3 state=silent" "/machines?department=%E9%83%A8%E9%97%A83&state=silent"
measure "machines rule=net.internet-route" "/machines?rule=net.internet-route"
measure "machines q=JSJ-0999 (substring search)" "/machines?q=JSJ-0999"
measure "machines sort=last page=1000" "/machines?sort=last&page=1000"
measure "machines state=never" "/machines?state=never"
measure "rules" "/rules"
# 100 machines report (seq 3), as ingest writes a report: its row, the host's head, its year.
sqlite3 "$data/collector.sqlite" <<SQL > /dev/null
PRAGMA busy_timeout = 10000;
BEGIN;
CREATE TEMP TABLE moved AS SELECT host_id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now') AS at FROM hosts WHERE last_fail_count = 0 ORDER BY host_id LIMIT 100;
INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope)
  SELECT 'd' || host_id || '-3', host_id, 'sha256:k' || host_id, 0, 3, 'd' || host_id || '-2', at, at, CAST(substr(at, 1, 4) AS INTEGER), 'accepted', 'bench', 'p', 0, x'00' FROM moved;
UPDATE hosts SET seq = 3, digest = 'd' || host_id || '-3', last_issued_at = (SELECT at FROM moved WHERE moved.host_id = hosts.host_id),
  last_received_at = (SELECT at FROM moved WHERE moved.host_id = hosts.host_id) WHERE host_id IN (SELECT host_id FROM moved);
COMMIT;
SQL
after=$(curl -s -b "$jar" -o "$work/after.html" -w '%{time_starttransfer}' "$base/")
printf '%-44s %6.1f ms (reads the 100 machines again; %s)\n' "overview, first request after 100 reports" "$(echo "$after" | awk '{print $1 * 1000}')" \
  "$(grep -q '正在重新计算' "$work/after.html" && echo "shows the earlier projection, saying it is being computed again" || echo "$(verdict "$work/after.html")")"
kill "$server"; wait "$server" 2>/dev/null || true; server=""
hyperfine --warmup 1 --runs 3 -N "$bin hosts --data $data" 2>&1 | grep -E "Time|Range"
