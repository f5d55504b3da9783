#!/usr/bin/env bash
# Ingest into PostgreSQL: reports per second over HTTPS through 1, 2 and 4 real `mijian-collector
# serve --database … --tls-cert … --tls-key …` processes on one database, beside the machine's
# Ed25519 limit (bench-postgres), the CPU per report of the instances, of PostgreSQL and of the
# load client, and the bytes the database holds per stored report. The cluster is Debian's PostgreSQL in a
# temporary directory, run as the postgres user, durable (fsync and synchronous_commit on, as a
# unit would run it), over TCP on 127.0.0.1 with TLS verified and a password from a file; a
# fresh database for each instance count. Stopped and removed at the end.
# Usage (root): Benchmarks/ingest-postgres.sh [MACHINES] [REPORTS-EACH] [CONNECTIONS] [INSTANCES…]
#               (default 400 20 32 1 2 4; COLLECTOR=path and BENCH=path skip the release builds;
#               COLLECTOR=--ledger measures the ledger alone: that many stores in one process, no HTTP;
#               EXTRA=--http: plain HTTP; PG_SETTINGS='default_toast_compression = lz4' adds lines to
#               postgresql.conf)
set -euo pipefail
cd "$(dirname "$0")/.."
machines=${1:-400}
reports=${2:-20}
connections=${3:-32}
shift $(( $# < 3 ? $# : 3 ))
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 2 4); fi
if [ -z "${COLLECTOR:-}" ]; then swift build -c release --product mijian-collector >/dev/null; fi
if [ -z "${BENCH:-}" ]; then (cd Benchmarks && swift build -c release --product bench-postgres >/dev/null); fi
collector=${COLLECTOR:-$PWD/.build/release/mijian-collector}
bench=${BENCH:-$PWD/Benchmarks/.build/release/bench-postgres}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/mijian-pg-bench.XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { runuser -u postgres -- "$@"; }
trap 'as_pg "$bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/pg/socket"
(
  cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=bench CA' -keyout ca.key -out ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=localhost' -keyout pg/server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out pg/server.pem 2>/dev/null
  chmod 600 pg/server.key
)
password=$(openssl rand -hex 24)
printf '%s\n' "$password" >"$work/password"
chmod 600 "$work/password"
printf '%s-super\n' "$password" >"$work/pg/superuser-password"
chown -R postgres:postgres "$work/pg"
as_pg "$bin/initdb" -D "$work/pg/data" -U postgres --pwfile "$work/pg/superuser-password" -E UTF8 --locale C.UTF-8 -A scram-sha-256 >/dev/null
cat >"$work/pg/data/pg_hba.conf" <<EOF
local all postgres peer
hostssl all all 127.0.0.1/32 scram-sha-256
hostnossl all all 0.0.0.0/0 reject
EOF
cat >>"$work/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work/pg/socket'
ssl = on
ssl_cert_file = '$work/pg/server.pem'
ssl_key_file = '$work/pg/server.key'
max_connections = 200
shared_buffers = 256MB
${PG_SETTINGS:-}
EOF
chown -R postgres:postgres "$work/pg"
as_pg "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w start >/dev/null
psql_su() { as_pg psql -X -q -h "$work/pg/socket" -p "$port" -U postgres -At "$@"; }
psql_su -d postgres -c "CREATE ROLE mijian LOGIN PASSWORD '$password'"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}'), fsync on, synchronous_commit on; $(nproc) cores${PG_SETTINGS:+; $PG_SETTINGS}"
for n in "${counts[@]}"; do
  db="bench_$n"
  psql_su -d postgres -c "CREATE DATABASE $db OWNER mijian"
  url="postgres://mijian@127.0.0.1:$port/$db?sslmode=verify-full&sslrootcert=$work/ca.pem&password_file=$work/password"
  # shellcheck disable=SC2086 # EXTRA is words on purpose
  "$bench" "$url" "$collector" "$n" "$machines" "$reports" "$connections" ${EXTRA:-}
  psql_su -d "$db" -c "CHECKPOINT" >/dev/null
  psql_su -d "$db" -c "
    SELECT format('  bytes per stored report: %s in the database (%s MB for %s reports), %s in reports and its indexes; envelope %s bytes on average',
      round((pg_database_size(current_database()) - (SELECT pg_database_size('template1')))::numeric / count(*)),
      round(pg_database_size(current_database()) / 1e6, 1), count(*),
      round(pg_total_relation_size('reports')::numeric / count(*)), round(avg(length(envelope))))
    FROM reports"
done
