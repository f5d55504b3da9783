#!/usr/bin/env python3
"""Floods a running `mijian-collector serve` on loopback and measures what an enrolled machine sees.

Started by Benchmarks/collector-flood.sh, which prepares the data directory, the machine's
signed reports and the server. Phase 1: 1,200 idle connections and 100 bodies that announce
1 MiB, send 256 KiB and stop, all from 127.0.0.1 (and 100 idle, 10 held more every second),
while the machine at 127.0.0.2 posts one report a second. Phase 2, the caps: 16 addresses open
64 connections each (1,024, the default total), every one holding a body (4 MiB announced,
1 MiB sent), while the machine keeps posting. Phase 3, the budget: 16 addresses each hold one
body of the largest size (4 MiB announced, all but one byte sent), renewed every 25 s, as an
attacker keeping the body budget full would. Every answer, its time, the server's descriptors
and resident memory are printed.
"""
import argparse
import os
import socket
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--pid", type=int, required=True)
parser.add_argument("--reports", required=True)
parser.add_argument("--seconds", type=int, default=20)
args = parser.parse_args()
reports = sorted(os.path.join(args.reports, name) for name in os.listdir(args.reports))


def memory():
    """VmRSS and VmHWM of the server, in MiB."""
    fields = {}
    with open(f"/proc/{args.pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) // 1024
    return fields["VmRSS"], fields["VmHWM"]


def descriptors():
    return len(os.listdir(f"/proc/{args.pid}/fd"))


def connect(source, timeout=2.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", args.port))
    return sock


def held(source, announced, sent):
    """A POST that announces `announced` bytes and sends `sent` of them."""
    sock = connect(source, timeout=1.0)
    sock.sendall(f"POST /v1/reports HTTP/1.1\r\nHost: c\r\nContent-Length: {announced}\r\n\r\n".encode())
    sock.sendall(b" " * sent)
    return sock


def request(source, head, body=b"", timeout=5.0):
    """One request with Connection: close; (status, seconds) — status 0 when the connection was cut."""
    started = time.monotonic()
    try:
        sock = connect(source, timeout)
        sock.sendall(head + body)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        sock.close()
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    except OSError:
        status = 0
    return status, time.monotonic() - started


def post(path):
    with open(path, "rb") as file:
        body = file.read()
    head = f"POST /v1/reports HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return request("127.0.0.2", head.encode(), body)


def healthz():
    return request("127.0.0.2", b"GET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")


class Flood:
    """Connections from some addresses, opened on a thread of its own and kept open."""

    def __init__(self):
        self.sockets = []
        self.opened = 0
        self.cut = 0
        self.stop = False

    def open(self, make):
        try:
            self.sockets.append(make())
            self.opened += 1
        except OSError:
            self.cut += 1

    def wave(self, source, idle, bodies, announced=1 << 20, sent=256 << 10):
        every = max(1, (idle + bodies) // max(1, bodies))
        for index in range(idle + bodies):
            if index % every == 0 and index // every < bodies:
                self.open(lambda: held(source, announced, sent))
            else:
                self.open(lambda: connect(source))

    def keep_going(self, source, idle, bodies, keep):
        def loop():
            while not self.stop:
                self.wave(source, idle, bodies)
                while len(self.sockets) > keep:
                    self.sockets.pop(0).close()
                time.sleep(1)
        threading.Thread(target=loop, daemon=True).start()

    def close(self):
        self.stop = True
        time.sleep(1.2)
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def machine(seconds, label, flood):
    answers = {}
    times = []
    health = {}
    peak = 0
    for second in range(seconds):
        started = time.monotonic()
        status, took = post(reports.pop(0))
        answers[status] = answers.get(status, 0) + 1
        if status == 202:
            times.append(took)
        hstatus, _ = healthz()
        health[hstatus] = health.get(hstatus, 0) + 1
        peak = max(peak, memory()[0])
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    rss, hwm = memory()
    times.sort()
    print(f"{label}: flood opened {flood.opened} connections ({flood.cut} cut while opening)")
    print(f"  reports: answers {answers}; 202 in median {1000 * times[len(times) // 2]:.1f} ms, slowest {1000 * times[-1]:.1f} ms" if times else f"  reports: answers {answers}")
    print(f"  /healthz: {health}")
    print(f"  server: {descriptors()} descriptors, VmRSS {rss} MiB (highest sample {peak} MiB), VmHWM {hwm} MiB")


time.sleep(0.5)
status, took = post(reports.pop(0))
rss, hwm = memory()
print(f"idle server after one report ({status}, {1000 * took:.1f} ms): {descriptors()} descriptors, VmRSS {rss} MiB")

flood = Flood()
flood.wave("127.0.0.1", 1200, 100)
flood.keep_going("127.0.0.1", 100, 10, 1300)
machine(args.seconds, "phase 1, one address: 1,200 idle + 100 held bodies (+100 idle, +10 held a second)", flood)
flood.close()
time.sleep(2)

caps = Flood()
for address in range(16):
    caps.wave(f"127.0.1.{address + 1}", 0, 64, announced=4 << 20, sent=1 << 20)
machine(args.seconds, "phase 2, the caps: 16 addresses x 64 held bodies (4 MiB announced, 1 MiB sent)", caps)
caps.close()
time.sleep(2)


def fill_budget(flood):
    for address in range(16):
        flood.open(lambda: held(f"127.0.2.{address + 1}", 4 << 20, (4 << 20) - 1))


budget = Flood()
fill_budget(budget)


def renew():
    # Before the 30 s body time ends, the holds are made again.
    while not budget.stop:
        time.sleep(25)
        old, budget.sockets = budget.sockets, []
        fill_budget(budget)
        for sock in old:
            sock.close()


threading.Thread(target=renew, daemon=True).start()
machine(args.seconds, "phase 3, the budget: 16 addresses x one 4 MiB body, all but one byte sent", budget)
budget.close()
time.sleep(2)
rss, hwm = memory()
print(f"after both floods: {descriptors()} descriptors, VmRSS {rss} MiB, VmHWM {hwm} MiB")
