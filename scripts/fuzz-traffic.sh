#!/usr/bin/env bash
# Fuzzes the packet decoder, the DNS reader and the egress analyzer with libFuzzer.
# Usage: scripts/fuzz-traffic.sh [SECONDS]   (default 300 seconds)
# Builds the Fuzz package with the fuzzer and address sanitizers (its own .build; the first build takes
# a while, later ones only rebuild what changed), then runs it.
# The corpus is seeded with frames of every link type and kept in Fuzz/corpus; crashes land in Fuzz/artifacts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/Fuzz"
seconds="${1:-300}"
flags=(-c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
swift build "${flags[@]}" --product fuzz-traffic
binary="$(swift build "${flags[@]}" --show-bin-path)/fuzz-traffic"
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
