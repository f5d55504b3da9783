#!/usr/bin/env bash
# Fuzzes the packet decoder, the DNS reader and the egress analyzer with libFuzzer.
# Usage: scripts/fuzz-traffic.sh [--from-debug-build] [SECONDS]   (default 300 seconds)
#   default             build the Fuzz package: swift build -Xswiftc -sanitize=fuzzer,address (its own .build)
#   --from-debug-build  compile only MijianTraffic and the target with the sanitizers and link them against
#                       the objects of the root's `swift build` (minutes instead of a second full build)
# The corpus is seeded with frames of every link type and kept in Fuzz/corpus; crashes land in Fuzz/artifacts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/Fuzz"
mode=package
if [ "${1:-}" = "--from-debug-build" ]; then mode=debug; shift; fi
seconds="${1:-300}"
if [ "$mode" = package ]; then
  swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --product fuzz-traffic
  binary="$(swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)/fuzz-traffic"
else
  debug="$root/.build/x86_64-unknown-linux-gnu/debug"
  [ -d "$debug/MijianCore.build" ] || { echo "fuzz-traffic: run swift build in $root first" >&2; exit 2; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  maps=()
  while IFS= read -r map; do maps+=(-Xcc "-fmodule-map-file=$map" -Xcc "-I$(dirname "$map")"); done \
    < <(find "$root/.build/checkouts" -name module.modulemap -not -path '*Tests*')
  # One module of the decoder sources and the entry point (whose `import MijianTraffic` is then moot).
  sed 's/^import MijianTraffic$//' Sources/fuzz-traffic/main.swift > "$work/main.swift"
  swiftc -parse-as-library -sanitize=fuzzer,address -wmo -module-name FuzzTraffic -I "$debug/Modules" \
    -I "$root/Sources/CPcap" "${maps[@]}" "$root"/Sources/MijianTraffic/*.swift "$work/main.swift" -c -o "$work/fuzz.o"
  mapfile -t objects < <(find "$debug"/{MijianCore,Yams,CYaml,Crypto,CCryptoBoringSSL,CCryptoBoringSSLShims,CryptoBoringWrapper,SwiftASN1,Logging,CXKCP,CXKCPShims}.build -name '*.o' 2>/dev/null)
  swiftc -sanitize=fuzzer,address "$work/fuzz.o" "${objects[@]}" -lpcap -lstdc++ -o "$work/fuzz-traffic" 2>&1 | grep -v 'warning' || true
  binary="$work/fuzz-traffic"
fi
mkdir -p corpus artifacts
# Seeds: first byte selects the link type (index into the fuzz target's list), then a frame.
seed() { printf "$2" > "corpus/seed-$1"; }
ipv4_udp_dns='\x45\x00\x00\x2f\x12\x34\x00\x00\x40\x11\x00\x00\x0a\x01\x01\x01\x0a\x00\x00\x35\x13\x88\x00\x35\x00\x1b\x00\x00\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x61\x00\x00\x01\x00\x01'
ipv6_hbh_tcp='\x60\x00\x00\x00\x00\x1c\x00\x40\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x06\x00\x00\x00\x00\x00\x00\x00\x9c\x41\x01\xbb\x00\x00\x00\x01\x00\x00\x00\x00\x50\x18\xff\xff\x00\x00\x00\x00'
seed ethernet "\x01\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x81\x00\x00\x0a\x08\x00${ipv4_udp_dns}"
seed sll "\x06\x00\x04\x00\x01\x00\x06\x02\x00\x00\x00\x00\x01\x00\x00\x86\xdd${ipv6_hbh_tcp}"
seed sll2 "\x09\x08\x00\x00\x00\x00\x00\x00\x02\x00\x01\x04\x06\x02\x00\x00\x00\x00\x01\x00\x00${ipv4_udp_dns}"
seed raw "\x02${ipv6_hbh_tcp}"
seed null "\x00\x02\x00\x00\x00${ipv4_udp_dns}"
seed loop "\x05\x00\x00\x00\x18${ipv6_hbh_tcp}"
start=$(date +%s)
set +e
"$binary" corpus -artifact_prefix=artifacts/ -max_total_time="$seconds" -max_len=1024 -print_final_stats=1 2>&1 | tee fuzz-traffic.log | grep -E '^(#[0-9]+.*DONE|stat::|==[0-9]+==|INFO: Running|Done)' 
status=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "fuzz-traffic: exit ${status} after $((end - start)) s; crashes: $(ls artifacts | wc -l) (Fuzz/artifacts); log Fuzz/fuzz-traffic.log"
exit "${status}"
