#!/usr/bin/env bash
# The console in a real headless browser (Debian's chromium and chromium-driver, Selenium from
# PyPI): fills a store by ingesting the signed reports of a three-department unit (the test
# binary's ConsoleStoreFixture), starts `mijian-collector serve` on HTTPS, and runs
# console_test.py against it. Builds nothing: it takes the debug binaries `swift build
# --build-tests` made. Screenshots and the printed self-assessment go to Tests/Browser/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/debug
out=Tests/Browser/out
for file in "$bin/mijian-collector" "$bin/MijianPackageTests.xctest"; do
  [[ -x $file ]] || { echo "run.sh: $file is missing: run swift build --build-tests first" >&2; exit 2; }
done
work=$(mktemp -d /tmp/mijian-browser.XXXXXX)
server=""
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
rm -rf "$out" && mkdir -p "$out"

# The unit's store: enrolment, signed reports, chain checks, exactly as serve ingests them.
MIJIAN_CONSOLE_STORE="$work/data" "$bin/MijianPackageTests.xctest" --testing-library swift-testing --filter ConsoleStoreFixture > "$work/fill.log" 2>&1 \
  || { cat "$work/fill.log"; echo "run.sh: filling the store failed" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=mijian-collector \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
port=$((20000 + RANDOM % 20000))
"$bin/mijian-collector" serve --data "$work/data" --listen "127.0.0.1:$port" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
  > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -sfk "https://127.0.0.1:$port/healthz" > /dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; echo "run.sh: serve stopped" >&2; exit 1; }
  sleep 0.1
done
status=0
python3 Tests/Browser/console_test.py --base "https://127.0.0.1:$port" --out "$out" || status=$?
if [[ $status -ne 0 ]]; then echo "--- serve's log"; cat "$work/serve.log"; fi
exit $status
