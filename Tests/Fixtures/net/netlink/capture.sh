#!/bin/sh
# Re-captures the rtnetlink dumps in this directory from a throw-away network namespace.
# Each .hex file holds the datagrams the kernel sent for one dump (sequence 1), one per line.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ns=mijian-capture-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip netns exec "$ns" sh -e -c '
ip link set lo up
ip link add veth0 type veth peer name veth1
ip addr add 192.0.2.2/24 dev veth0
ip link set veth0 up; ip link set veth1 up
ip tuntap add dev tun7 mode tun
ip -6 addr add 2001:db8::2/64 dev veth0 nodad
ip route add 198.51.100.0/24 via 192.0.2.1
ip route add default via 192.0.2.1 table 100
ip route add blackhole 203.0.113.0/24 table 300
ip rule add from 192.0.2.0/24 lookup 100 priority 1000
ip rule add fwmark 0x1 lookup 300 priority 1001
ip -6 route add default via 2001:db8::1 dev veth0
ip route add unreachable 0.0.0.0/1 table 7
ip route add 10.9.0.0/16 table 1000 dev veth0
'
ip netns exec "$ns" python3 - "$here" <<'PY'
import os, socket, struct, sys
out = sys.argv[1]
def dump(msgtype, body, name):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    s.send(struct.pack("=IHHII", 16 + len(body), msgtype, 0x301, 1, 0) + body)
    grams, done = [], False
    while not done:
        d = s.recv(65536)
        grams.append(d)
        off = 0
        while off < len(d):
            length, kind = struct.unpack_from("=IH", d, off)
            done = done or kind in (2, 3)
            off += (length + 3) & ~3
    with open(os.path.join(out, name), "w") as f:
        f.writelines(g.hex() + "\n" for g in grams)
dump(18, bytes(16), "links.hex")
dump(22, bytes(8), "addresses.hex")
dump(26, bytes(12), "routes.hex")
dump(34, bytes(12), "rules.hex")
PY
