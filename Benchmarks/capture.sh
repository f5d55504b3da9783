#!/usr/bin/env bash
# Live capture without loss: `mijian run` (release) watching a veth in a network namespace of its
# own while tcpreplay sends a recorded stream into the peer at rising packet rates, with
# `tcpdump -w /dev/null` capturing on the same veth in the same run. For each rate it prints what
# tcpreplay sent, what the service's reports say its capture received and dropped (the
# traffic.egress evidence, summed over every report of the run), and what tcpdump says.
# Every packet goes to a TEST-NET-2 address (198.51.100.0/24), outside the policy's networks, so
# the policy's kernel filter passes all of them to the service and each is judged in user space.
#
# Usage: Benchmarks/capture.sh [PACKETS] [RATE...]   (as root; needs tcpreplay, tcpdump, iproute2)
#        defaults: 200000 packets; rates 50000 100000 200000 400000 and topspeed
# MIJIAN=path overrides the binary (default: a release build of this tree); BUFFER=8M sets the
# service's traffic.buffer (its kernel ring per link; default 2M).
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-200000}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50000 100000 200000 400000 topspeed)
for tool in tcpreplay tcpdump ip python3; do
  command -v "$tool" >/dev/null || { echo "capture.sh: $tool is missing (apt-get install -y tcpreplay tcpdump iproute2 python3)" >&2; exit 2; }
done
if [ -z "${MIJIAN:-}" ]; then
  swift build -c release --product mijian >/dev/null
  MIJIAN=$PWD/.build/release/mijian
fi
ns=mijian-capbench-$$
work=$(mktemp -d /tmp/mijian-capture-bench.XXXXXX)
cleanup() {
  [ -n "${agent:-}" ] && kill -KILL "$agent" 2>/dev/null || true
  [ -n "${dump:-}" ] && kill -KILL "$dump" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip link add v0 type veth peer name v1
in_ns ip link set v0 up
in_ns ip link set v1 up

# The stream: Ethernet / IPv4 / UDP, 64 bytes of payload, from 256 addresses of 10.1.0.0/24 to
# 256 of 198.51.100.0/24 (256 flows, each flagged once).
python3 - "$work/stream.pcap" "$packets" <<'PY'
import struct, sys
path, count = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(count):
        payload = bytes(64)
        udp = struct.pack("!HHHH", 40000 + i % 1000, 9, 8 + len(payload), 0) + payload
        src = bytes([10, 1, 0, i % 256])
        dst = bytes([198, 51, 100, i % 256])
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, dst)
        frame = bytes.fromhex("020000000001") + bytes.fromhex("020000000002") + b"\x08\x00" + ip + udp
        f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(frame), len(frame)) + frame)
PY

"$MIJIAN" keys init --key-dir "$work/state" >/dev/null
cat >"$work/agent.yaml" <<YAML
delivery: {mode: none}
report_interval: 1h
audit_interval: 1h
traffic: {enabled: true, links: [v0]${BUFFER:+, buffer: $BUFFER}}
usb: {enabled: false}
YAML

summarise() {  # the spool of one run: packets received and dropped by the service's capture on v0
  python3 - "$1" <<'PY'
import base64, glob, json, os, sys
received = dropped = ifdropped = read = 0
reports = 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.dsse.json"))):
    payload = json.loads(base64.b64decode(json.load(open(path))["payload"]))
    reports += 1
    for f in payload.get("findings", []):
        if f.get("rule", {}).get("id") != "traffic.egress" or f.get("subject") != "interface v0":
            continue
        for e in f.get("evidence", []):
            d = e.get("data", {})
            if "pcap_stats" in d:
                s = d["pcap_stats"] or {}
                received += s.get("received", 0); dropped += s.get("dropped", 0); ifdropped += s.get("interface_dropped", 0)
                read += d.get("packets_read", 0)
print(received, dropped, ifdropped, read, reports)
PY
}

printf '%-9s %-10s %-9s | %-30s | %s\n' rate sent "sent pps" "mijian run: received/dropped" "tcpdump -w /dev/null: received/dropped"
for rate in "${rates[@]}"; do
  rm -rf "$work/state/spool"
  ip netns exec "$ns" "$MIJIAN" run --config "$work/agent.yaml" --key-dir "$work/state" 2>"$work/agent.log" &
  agent=$!
  for _ in $(seq 1 300); do grep -q "capturing on v0" "$work/agent.log" && break; sleep 0.1; done
  grep -q "capturing on v0" "$work/agent.log" || { echo "capture.sh: the service did not start capturing:" >&2; cat "$work/agent.log" >&2; exit 1; }
  ip netns exec "$ns" tcpdump -i v0 -n -w /dev/null 2>"$work/tcpdump.log" &
  dump=$!
  for _ in $(seq 1 100); do grep -q "listening on v0" "$work/tcpdump.log" && break; sleep 0.1; done
  if [ "$rate" = topspeed ]; then speed=(--topspeed); else speed=(--pps="$rate"); fi
  speed+=(--preload-pcap)
  out=$(in_ns tcpreplay -i v1 "${speed[@]}" "$work/stream.pcap" 2>&1)
  sent=$(echo "$out" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p')
  pps=$(echo "$out" | sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p')
  sleep 2
  kill -TERM "$dump"; wait "$dump" 2>/dev/null || true; dump=
  kill -TERM "$agent"
  rc=0; wait "$agent" || rc=$?
  [ "$rc" = 0 ] || { echo "capture.sh: mijian run exited $rc after SIGTERM:" >&2; tail -n 20 "$work/agent.log" >&2; exit 1; }
  agent=
  read -r received dropped ifdropped judged reports < <(summarise "$work/state/spool")
  td_received=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$work/tcpdump.log")
  td_dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$work/tcpdump.log")
  printf '%-9s %-10s %-9s | %9s / %-8s (%s reports) | %9s / %s\n' "$rate" "$sent" "${pps%.*}" \
    "$received" "$((dropped + ifdropped))" "$reports" "$td_received" "$td_dropped"
done
