#!/usr/bin/env bash
# Traffic benchmark: one hyperfine run comparing, on the same generated capture,
#   mijian traffic --read FILE                       (release build, built-in policy)
#   tcpdump -r FILE -w /dev/null 'FILTER'            (the same BPF filter mijian compiles from the policy)
#   tshark -r FILE -q -z conv,ip
# and prints packets/s for each. Goal: mijian within 1.25x of tcpdump's time, at least 10x faster than tshark.
# This machine's speed drifts between runs; compare figures from one run, and prefer several runs.
# Usage: Benchmarks/traffic.sh   (PACKETS=N to change the capture size, RUNS=N the hyperfine runs)
set -euo pipefail
cd "$(dirname "$0")/.."
packets="${PACKETS:-1000000}"
runs="${RUNS:-5}"
out=Benchmarks/out
mkdir -p "$out"
capture="$out/traffic-$packets.pcap"

swift build -c release --product mijian
if [ ! -s "$capture" ]; then
  # The same mix as `bench-traffic generate` (see Benchmarks/Sources/bench-traffic/main.swift), written
  # here so the benchmark needs no second release build: 90% TCP between unit hosts (every 50th frame
  # VLAN-tagged), 5% DNS queries for unit names, 1% for outside names, 4% TCP/UDP to TEST-NET-3.
  python3 - "$capture" "$packets" <<'PY'
import random, struct, sys
path, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
def ip(src, dst, proto, transport):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(transport), 0x1234, 0x4000, 64, proto, 0, bytes(src), bytes(dst)) + transport
def tcp(sport, dport, payload):
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x18, 0xFFFF, 0, 0) + b"a" * payload
def udp(sport, dport, payload):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
def dns(name):
    out = struct.pack(">HHHHHH", 0xABCD, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0\0\1\0\1"
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    seconds, micros = 1795000000, 0
    for index in range(count):
        roll = rng.randrange(100)
        a = [10, rng.randrange(4), rng.randrange(256), rng.randrange(1, 255)]
        b = [10, rng.randrange(4), rng.randrange(256), rng.randrange(1, 255)]
        if roll < 90:
            packet = ip(a, b, 6, tcp(40000 + rng.randrange(20000), rng.choice([22, 80, 443, 445]), rng.randrange(40)))
        elif roll < 95:
            packet = ip(a, [10, 0, 0, 53], 17, udp(50000, 53, dns(f"host{rng.randrange(500)}.unit.internal")))
        elif roll < 96:
            packet = ip(a, [10, 0, 0, 53], 17, udp(50001, 53, dns(f"leak{rng.randrange(50)}.example.com")))
        else:
            outside = [203, 0, 113, rng.randrange(1, 201)]
            port = rng.choice([443, 8080, 9999, 123])
            packet = ip(a, outside, 6, tcp(40000, port, 0)) if rng.randrange(2) == 0 else ip(a, outside, 17, udp(40000, port, b"\1\2\3\4"))
        vlan = b"\x81\x00\x00\x0a" if index % 50 == 0 else b""
        frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + vlan + b"\x08\x00" + packet
        micros += 7
        if micros >= 1000000:
            micros -= 1000000
            seconds += 1
        f.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
PY
fi
mijian=.build/release/mijian

# The filter mijian installs for the built-in policy, read from its own report.
filter="$("$mijian" traffic --read "$capture" --format json | python3 -c '
import json, sys
report = json.load(sys.stdin)
print(report["findings"][0]["evidence"][1]["data"]["filter"])
' || true)"
if [ -z "$filter" ]; then echo "traffic.sh: could not read the filter from mijian's report" >&2; exit 2; fi
echo "filter: $filter"
echo "capture: $capture ($(stat -c %s "$capture") bytes, $packets packets)"

hyperfine --warmup 1 --runs "$runs" --ignore-failure --export-json "$out/traffic.json" \
  -n "mijian traffic --read" "$mijian traffic --read $capture" \
  -n "tcpdump -r -w /dev/null (filter)" "tcpdump -r $capture -w /dev/null '$filter'" \
  -n "tshark -q -z conv,ip" "tshark -r $capture -q -z conv,ip"

python3 - "$out/traffic.json" "$packets" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
packets = int(sys.argv[2])
for name, r in results.items():
    print(f"{name:34s} mean {r['mean']:.3f} s ± {r['stddev'] or 0:.3f}  median {r['median']:.3f} s  "
          f"{packets / r['mean']:,.0f} packets/s  (CPU: user {r['user']:.3f} s, system {r['system']:.3f} s)")
m = results["mijian traffic --read"]
t = results["tcpdump -r -w /dev/null (filter)"]
s = results["tshark -q -z conv,ip"]
print(f"mijian / tcpdump time: {m['mean'] / t['mean']:.2f}x by mean, {m['median'] / t['median']:.2f}x by median (goal <= 1.25x)")
print(f"mijian / tcpdump CPU:  {(m['user'] + m['system']) / (t['user'] + t['system']):.2f}x (mijian reads on one thread and judges on another)")
print(f"tshark / mijian time:  {s['mean'] / m['mean']:.1f}x (goal >= 10x)")
PY
