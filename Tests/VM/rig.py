#!/usr/bin/env python3
"""The VM rig: boots the guest built by build-guest.sh under QEMU (TCG), hot-plugs USB devices
through QMP and asserts on what the guest's agent reports over its control port.

    Tests/VM/run.sh [--scenario NAME]... [--list] [--keep]

Every scenario is a function registered with @scenario below. Scenarios that share a boot run one
after another in one guest; each one unplugs what it plugged. A failure prints the guest's
console (the kernel log) and the control-port transcript.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

QEMU_VENDOR_STORAGE = ("46f4", "0001")  # what QEMU's usb-storage reports (checked in the guest)


class RigError(Exception):
    pass


class Failure(Exception):
    """An assertion on what the guest reported did not hold."""


def log(msg):
    print(f"[vm] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# the guest


class Record(dict):
    """One `@@ ID KIND key=value ...` line; `text` is the raw rest for `out`/`b64`/`uevent` lines."""

    def __init__(self, kind, text):
        super().__init__()
        self.kind = kind
        self.text = text
        try:
            for tok in shlex.split(text):
                k, sep, v = tok.partition("=")
                if sep:
                    self[k] = v
        except ValueError:
            pass


class Guest:
    def __init__(self, outdir, workdir, timeout_boot=180):
        self.outdir = outdir
        self.work = workdir
        self.timeout_boot = timeout_boot
        self.console_path = os.path.join(workdir, "console.log")
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.ctl_path = os.path.join(workdir, "ctl.sock")
        self.transcript = []
        self.proc = None
        self.qmp = None
        self.ctl = None
        self.ctl_buf = b""
        self.qmp_buf = b""
        self.events = []
        self.next_id = 1
        self.boot_seconds = None
        self.plugged = {}   # QMP device id -> what to undo (drive node, netdev) after a failure
        self.guest_uptime_at_ready = None

    # -- lifecycle --

    def start(self):
        args = [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "1",
            "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
            "-kernel", os.path.join(self.outdir, "vmlinuz"),
            "-initrd", os.path.join(self.outdir, "initrd.gz"),
            "-append", "console=ttyS0 panic=-1 loglevel=6 usbcore.autosuspend=-1 printk.time=1 cryptomgr.notests",
            "-chardev", f"file,id=con,path={self.console_path}",
            "-serial", "chardev:con",
            "-chardev", f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
            "-serial", "chardev:ctl",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-device", "qemu-xhci,id=xhci",
        ]
        self.t0 = time.monotonic()
        self.stderr = open(os.path.join(self.work, "qemu.stderr"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.qmp = self._connect(self.qmp_path)
        greeting = self._qmp_read()
        if "QMP" not in greeting:
            raise RigError(f"QMP greeting expected, got {greeting}")
        self.qmp_cmd("qmp_capabilities")
        self.ctl = self._connect(self.ctl_path)
        # the agent answers once init has loaded the modules
        deadline = time.monotonic() + self.timeout_boot
        while True:
            try:
                rec = self.cmd("ping", timeout=1.5)
                pong = [r for r in rec if r.kind == "pong"]
                if pong:
                    self.boot_seconds = time.monotonic() - self.t0
                    self.guest_uptime_at_ready = float(pong[0]["uptime"])
                    self.kernel = pong[0].get("kernel")
                    return
            except TimeoutError:
                pass
            if self.proc.poll() is not None:
                raise RigError(f"qemu exited with status {self.proc.returncode} before the agent answered")
            if time.monotonic() > deadline:
                raise RigError(f"the guest's agent did not answer within {self.timeout_boot} s")

    def _connect(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                return s
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if self.proc.poll() is not None:
                    raise RigError(f"qemu exited with status {self.proc.returncode}: "
                                   + open(os.path.join(self.work, "qemu.stderr"), errors="replace").read())
                if time.monotonic() > deadline:
                    raise RigError(f"cannot connect to {path}")
                time.sleep(0.05)

    def stop(self):
        for s in (self.ctl, self.qmp):
            if s:
                try:
                    s.close()
                except OSError:
                    pass
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()

    def console(self):
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()
        except OSError as e:
            return f"(console unreadable: {e})"

    # -- QMP --

    def _qmp_read(self, timeout=30):
        self.qmp.settimeout(timeout)
        while b"\n" not in self.qmp_buf:
            chunk = self.qmp.recv(65536)
            if not chunk:
                raise RigError("QMP connection closed (qemu exited?)")
            self.qmp_buf += chunk
        line, self.qmp_buf = self.qmp_buf.split(b"\n", 1)
        return json.loads(line)

    def qmp_cmd(self, execute, **arguments):
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.qmp.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._qmp_read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RigError(f"QMP {execute} {arguments}: {reply['error'].get('desc')}")
            return reply.get("return")

    def hmp(self, command):
        return self.qmp_cmd("human-monitor-command", **{"command-line": command})

    def wait_event(self, name, match=lambda e: True, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == name and match(e):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"QMP event {name} did not come within {timeout} s")
            try:
                e = self._qmp_read(timeout=left)
            except socket.timeout:
                continue
            if "event" in e:
                self.events.append(e)

    # -- devices --

    def plug_stick(self, dev_id, image, serial, port=None):
        self.qmp_cmd("blockdev-add", **{"node-name": f"n-{dev_id}", "driver": "raw",
                                         "file": {"driver": "file", "filename": image}})
        props = {"driver": "usb-storage", "bus": "xhci.0", "drive": f"n-{dev_id}",
                 "serial": serial, "id": dev_id, "removable": True}
        if port:
            props["port"] = port
        self.plugged[dev_id] = ("drive", f"n-{dev_id}")
        self.qmp_cmd("device_add", **props)

    def plug(self, driver, dev_id, **props):
        props.setdefault("bus", "xhci.0")
        self.plugged[dev_id] = ("netdev", props["netdev"]) if "netdev" in props else (None, None)
        self.qmp_cmd("device_add", driver=driver, id=dev_id, **props)

    def unplug(self, dev_id, drive=False):
        self.qmp_cmd("device_del", id=dev_id)
        self.wait_event("DEVICE_DELETED", lambda e: e.get("data", {}).get("device") == dev_id)
        self.plugged.pop(dev_id, None)
        if drive:
            self.qmp_cmd("blockdev-del", **{"node-name": f"n-{dev_id}"})

    def unplug_all(self):
        """After a failed scenario: remove what it left plugged (devices behind a hub first) and the
        gadgets made in the guest, so the next scenario starts from an empty bus."""
        for dev_id in reversed(list(self.plugged)):   # a hub after what sits behind it
            kind, name = self.plugged[dev_id]
            try:
                self.qmp_cmd("device_del", id=dev_id)
                self.wait_event("DEVICE_DELETED", lambda e: e.get("data", {}).get("device") == dev_id, timeout=15)
            except (RigError, Failure, OSError):
                pass
            try:
                if kind == "drive":
                    self.qmp_cmd("blockdev-del", **{"node-name": name})
                elif kind == "netdev":
                    self.qmp_cmd("netdev_del", id=name)
            except (RigError, OSError):
                pass
        self.plugged.clear()
        try:
            self.sh(". /bin/riglib.sh; gadget_bt_down; gadget_remove composite; true", check=False, timeout=30)
        except (RigError, Failure, TimeoutError, OSError):
            pass

    # -- the agent --

    def cmd(self, verb, *args, timeout=60):
        cid = f"c{self.next_id}"
        self.next_id += 1
        line = " ".join([cid, verb, *args])
        self.transcript.append(f"> {line[:200]}")
        self.ctl.sendall(line.encode() + b"\n")
        records = []
        deadline = time.monotonic() + timeout
        prefix = f"@@ {cid} ".encode()
        while True:
            while b"\n" in self.ctl_buf:
                raw, self.ctl_buf = self.ctl_buf.split(b"\n", 1)
                text = raw.decode("utf-8", "replace").rstrip("\r")
                self.transcript.append(f"< {text}")
                if not raw.startswith(prefix):
                    continue
                kind, _, rest = text[len(prefix):].partition(" ")
                rec = Record(kind, rest)
                if kind == "end":
                    rc = int(rec.get("rc", "1"))
                    for r in records:
                        r.rc = rc
                    self.last_rc = rc
                    return records
                records.append(rec)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the agent did not finish `{verb}` within {timeout} s")
            self.ctl.settimeout(left)
            try:
                chunk = self.ctl.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise RigError("the control port closed (the guest stopped?)")
            self.ctl_buf += chunk

    def sh(self, script, timeout=60, check=True):
        recs = self.cmd("sh", base64.b64encode(script.encode()).decode(), timeout=timeout)
        out = [r.text for r in recs if r.kind == "out"]
        if check and self.last_rc != 0:
            raise Failure(f"guest script failed (rc {self.last_rc}):\n{script}\n--- output:\n" + "\n".join(out))
        return out

    def bg(self, name, script):
        self.cmd("bg", name, base64.b64encode(script.encode()).decode())

    def read_file(self, path, timeout=60, offset=0):
        recs = self.cmd("file", base64.b64encode(path.encode()).decode(), str(offset), timeout=timeout)
        if self.last_rc != 0:
            raise Failure(f"cannot read {path} in the guest")
        return base64.b64decode("".join(r.text for r in recs if r.kind == "b64"))

    def usb(self):
        recs = self.cmd("usb")
        return ([r for r in recs if r.kind == "usbdev"], [r for r in recs if r.kind == "usbif"])

    def mark(self):
        r = self.cmd("mark")[0]
        return int(r["uevents"]), int(r["watch"])

    def uevents(self, since):
        return [r for r in self.cmd("uevents", str(since)) if r.kind == "uevent"]

    def watched(self, since):
        return [r for r in self.cmd("watched", str(since)) if r.kind == "watched"]

    def wait_for(self, what, probe, timeout=60, interval=0.5):
        """Polls probe() until it returns something true; fails with `what` after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = probe()
            if got:
                return got
            if time.monotonic() > deadline:
                raise Failure(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)


# --------------------------------------------------------------------------------------------
# scenarios

SCENARIOS = {}


def scenario(name, *, needs=(), boot="shared", issue=None, doc=""):
    """Registers a scenario. needs: capabilities ('mijian', 'mijian-devices'); boot: 'shared'
    scenarios run in one guest, in registration order; 'own' gets a guest of its own."""

    def register(fn):
        SCENARIOS[name] = dict(name=name, fn=fn, needs=tuple(needs), boot=boot, issue=issue,
                               doc=doc or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return register


class Ctx:
    """What a scenario gets: the guest, a scratch directory, and helpers."""

    def __init__(self, guest, work, caps, mijian_host, shared=None, latencies=None):
        self.g = guest
        self.work = work
        self.caps = caps
        self.mijian_host = mijian_host
        self.metrics = {}
        self.notes = []
        self.shared = shared if shared is not None else {}
        self.latencies = latencies if latencies is not None else []

    def disk(self, name, serial, size_mib=16):
        """A raw disk image whose first sector holds a known pattern; returns (path, sha256)."""
        path = os.path.join(self.work, f"{name}.img")
        sector = (f"MIJIAN-VM-RIG {name} {serial} ".encode() * 64)[:510] + b"\x55\xaa"
        with open(path, "wb") as f:
            f.write(sector)
            f.truncate(size_mib * 1024 * 1024)
        return path, hashlib.sha256(sector).hexdigest()

    def expect(self, cond, msg):
        if not cond:
            raise Failure(msg)


def usb_by_serial(devs, serial):
    return [d for d in devs if d.get("serial") == serial]


def interfaces_of(ifs, devpath):
    return [i for i in ifs if i["path"].startswith(devpath + ":")]


def storage_blocks(g):
    return [r for r in g.cmd("blocks") if r.kind == "block" and r["name"].startswith("sd")]


@scenario("stick-plain", doc="no USB control: a hot-plugged stick gets usb-storage and a readable sd* disk; unplugged, it goes away")
def stick_plain(c):
    g = c.g
    serial = "RIGPLAIN0001"
    image, want = c.disk("plain", serial)
    ue0, w0 = g.mark()
    g.cmd("watch-start")
    t = time.monotonic()
    g.plug_stick("plain", image, serial)
    blocks = g.wait_for("an sd* block device", lambda: storage_blocks(g), timeout=60)
    c.metrics["plug_to_block_s"] = round(time.monotonic() - t, 2)
    devs, ifs = g.usb()
    mine = usb_by_serial(devs, serial)
    c.expect(len(mine) == 1, f"expected one USB device with serial {serial}, the guest lists {devs}")
    d = mine[0]
    c.expect((d["vendor"], d["product"]) == QEMU_VENDOR_STORAGE,
             f"QEMU's usb-storage should be {QEMU_VENDOR_STORAGE}, the guest reports {d['vendor']}:{d['product']}")
    its = interfaces_of(ifs, d["path"])
    c.expect(its and all(i["class"] == "08" for i in its), f"expected mass-storage interfaces, got {its}")
    c.expect(any(i["driver"] in ("usb-storage", "uas") for i in its), f"no storage driver bound: {its}")
    c.expect(all(i["authorized"] == "1" for i in its), f"interfaces not authorised: {its}")
    name = blocks[0]["name"]
    c.expect(blocks[0]["size"] == str(16 * 2048), f"{name} has {blocks[0]['size']} sectors, the image 32768")
    sec = [r for r in g.cmd("sector", name) if r.kind == "sector"]
    c.expect(sec and sec[0]["sha256"] == want, f"sector 0 of /dev/{name} is not the pattern the host wrote: {sec}")
    t = time.monotonic()
    g.unplug("plain", drive=True)
    g.wait_for(f"/sys/class/block/{name} to go away", lambda: not storage_blocks(g), timeout=60)
    c.metrics["unplug_to_gone_s"] = round(time.monotonic() - t, 2)
    g.cmd("watch-stop")
    ev = g.uevents(ue0)
    adds = [e for e in ev if e["action"] == "add" and e["subsystem"] == "block" and e["devname"].startswith("sd")]
    rems = [e for e in ev if e["action"] == "remove" and e["subsystem"] == "block" and e["devname"].startswith("sd")]
    c.expect(adds and rems, f"expected block add and remove uevents, got {[e.text for e in ev]}")
    seen = [w.text for w in g.watched(w0)]
    c.expect(any("appeared=/sys/class/block/sd" in s for s in seen), f"the watch loop never saw the disk: {seen}")
    c.expect(any("vanished=/sys/class/block/sd" in s for s in seen), f"the watch loop never saw the disk go: {seen}")
    c.notes.append(f"{d['path']} {d['vendor']}:{d['product']} serial {serial} -> /dev/{name}, "
                   f"{len(ev)} uevents from plug to removal")


def ffs_bt_blobs():
    """FunctionFS descriptors (v2) and strings for a Bluetooth controller's interface E0/01/01 with
    an interrupt-in, a bulk-in and a bulk-out endpoint: what btusb asks for."""
    import struct

    def iface():
        return bytes([9, 4, 0, 0, 3, 0xE0, 0x01, 0x01, 1])

    def eps(bulk):
        return (bytes([7, 5, 0x81, 3, 16, 0, 1]) + bytes([7, 5, 0x82, 2]) + struct.pack("<H", bulk) + b"\0"
                + bytes([7, 5, 0x03, 2]) + struct.pack("<H", bulk) + b"\0")

    body = iface() + eps(64) + iface() + eps(512)
    desc = struct.pack("<IIIII", 3, 20 + len(body), 1 | 2, 4, 4) + body
    strs = struct.pack("<H", 0x0409) + b"Bluetooth HCI\0"
    strings = struct.pack("<IIII", 2, 16 + len(strs), 1, 1) + strs
    return desc, strings


def put_file(g, path, data):
    g.sh(f"echo {base64.b64encode(data).decode()} | base64 -d > {path}")


def input_events(raw):
    """(type, code, value) of each struct input_event (x86_64: 24 bytes)."""
    import struct
    return [struct.unpack_from("<HHi", raw, o + 16) for o in range(0, len(raw) - 23, 24)]


KEY_A = 30


def keyboard_works(c, interface, send):
    """Reads the keyboard's evdev node in the guest while `send()` presses A; true when the key
    press arrived."""
    g = c.g
    node = g.sh(f". /bin/riglib.sh; event_node_of {interface}", check=False)
    if g.last_rc != 0 or not node:
        return False, f"no input device under {interface}"
    node = node[0].strip()
    g.sh("rm -f /run/keys.bin")
    g.bg("keys", f"exec timeout 20 dd if=/dev/input/{node} of=/run/keys.bin bs=24 count=2 2>/dev/null")
    time.sleep(1.0)
    send()
    def got():
        out = g.sh("[ -f /run/keys.bin ] && wc -c < /run/keys.bin || echo 0")
        return int(out[0]) >= 48
    try:
        g.wait_for("key events", got, timeout=20)
    except Failure:
        return False, f"no key event on /dev/input/{node}"
    evs = input_events(g.read_file("/run/keys.bin"))
    return any(t == 1 and code == KEY_A and v == 1 for t, code, v in evs), f"/dev/input/{node}: {evs}"


def qemu_press_a(g, dev_id):
    def send():
        for down in (True, False):
            # no `device`: with -display none no console is bound; QEMU hands the event to the
            # keyboard added last, which is this one
            g.qmp_cmd("input-send-event", events=[
                {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": "a"}}}])
            time.sleep(0.1)
    return send


def gadget_press_a(g):
    # a boot-protocol report with KEY_A (usage 0x04) down, then all keys up, written by the gadget
    return lambda: g.sh("dev=$(ls /dev/hidg* | head -n1); printf '\\000\\000\\004\\000\\000\\000\\000\\000' > $dev; "
                        "usleep 100000; printf '\\000\\000\\000\\000\\000\\000\\000\\000' > $dev")


@scenario("keyboard-plain", doc="no USB control: a hot-plugged usb-kbd gets usbhid and its key presses reach evdev")
def keyboard_plain(c):
    g = c.g
    g.plug("usb-kbd", "kbd0")
    dev = g.wait_for("the keyboard's interface with usbhid",
                     lambda: [i for i in g.usb()[1] if i["class"] == "03" and i["driver"] == "usbhid"], timeout=60)
    ok, why = keyboard_works(c, dev[0]["path"], qemu_press_a(g, "kbd0"))
    c.expect(ok, f"the key press did not arrive: {why}")
    g.unplug("kbd0")
    g.wait_for("the keyboard to go", lambda: not [i for i in g.usb()[1] if i["class"] == "03"], timeout=60)
    c.notes.append(f"{dev[0]['path']} usbhid, key A seen on evdev")


def usb_net_plug(g, dev_id, serial="RIGNET0001"):
    # user networking with restrict=on: nothing in the guest reaches outside
    g.qmp_cmd("netdev_add", type="user", id=f"nd-{dev_id}", restrict=True)
    g.plug("usb-net", dev_id, netdev=f"nd-{dev_id}", serial=serial)


def usb_net_unplug(g, dev_id):
    g.unplug(dev_id)
    g.qmp_cmd("netdev_del", id=f"nd-{dev_id}")


def net_links(g):
    return [l for l in g.sh("ls /sys/class/net") if l != "lo"]


def rule_id(finding):
    rule = finding.get("rule")
    return rule.get("id") if isinstance(rule, dict) else rule


def audit(c, rules):
    """Runs `mijian audit --format json` in the guest for the given rules; {rule: [statuses]}."""
    args = " ".join(f"--rule {r}" for r in rules)
    out = c.g.sh(f"mijian audit {args} --format json > /run/audit.json; echo rc=$?", timeout=120, check=False)
    raw = c.g.read_file("/run/audit.json")
    try:
        report = json.loads(raw)
    except ValueError:
        raise Failure(f"mijian audit did not print JSON ({out}): {raw[:500]!r}")
    statuses = {}
    for f in report.get("findings", []):
        statuses.setdefault(rule_id(f), []).append(f.get("status"))
    return statuses, report


@scenario("net-plain", doc="no USB control: a usb-net adapter (CDC/RNDIS, the tethering shape) gets a driver and a network link")
def net_plain(c):
    g = c.g
    before = net_links(g)
    usb_net_plug(g, "net0")
    links = g.wait_for("a network link from usb-net", lambda: [l for l in net_links(g) if l not in before], timeout=60)
    devs, ifs = g.usb()
    c.expect(usb_by_serial(devs, "RIGNET0001"), f"no USB device with the serial given to usb-net: {devs}")
    drivers = sorted({i["driver"] for i in ifs if i["class"] in ("02", "0a", "e0", "ef") and i["driver"] != "-"})
    c.expect(drivers, f"no CDC/RNDIS driver bound: {ifs}")
    c.notes.append(f"link {links[0]} with {', '.join(drivers)}")
    if "mijian" in c.caps:
        st, _ = audit(c, ["net.interfaces", "usb.phone"])
        c.notes.append(f"audit while attached: {st}")
        c.expect("fail" in st.get("net.interfaces", []) or "fail" in st.get("usb.phone", []),
                 f"the audit passes net.interfaces and usb.phone with a USB network adapter attached: {st}")
    usb_net_unplug(g, "net0")
    g.wait_for("the link to go", lambda: not [l for l in net_links(g) if l not in before], timeout=60)


def bt_up(c, serial):
    desc, strings = ffs_bt_blobs()
    put_file(c.g, "/run/ffs-bt-desc.bin", desc)
    put_file(c.g, "/run/ffs-bt-strings.bin", strings)
    c.g.sh(f". /bin/riglib.sh; gadget_bt_up {serial}")


def bt_down(c):
    c.g.sh(". /bin/riglib.sh; gadget_bt_down")


@scenario("bt-plain", doc="no USB control: a Bluetooth controller (E0/01/01, made in the guest: QEMU has no usb-bt-dongle) gets btusb and an hci device")
def bt_plain(c):
    g = c.g
    serial = "RIGBT0001"
    bt_up(c, serial)
    dev = g.wait_for("the Bluetooth device", lambda: usb_by_serial(g.usb()[0], serial), timeout=60)[0]
    ifs = g.wait_for("btusb bound", lambda: [i for i in interfaces_of(g.usb()[1], dev["path"]) if i["driver"] == "btusb"], timeout=60)
    hci = g.wait_for("/sys/class/bluetooth/hci*", lambda: g.sh("ls /sys/class/bluetooth 2>/dev/null || true"), timeout=30)
    c.notes.append(f"{dev['path']} {ifs[0]['class']}/{ifs[0]['subclass']}/{ifs[0]['protocol']} btusb, {' '.join(hci)}")
    if "mijian" in c.caps:
        st, _ = audit(c, ["wireless.hardware"])
        c.notes.append(f"audit while attached: {st}")
        c.expect("fail" in st.get("wireless.hardware", []), f"wireless.hardware does not fail with a Bluetooth controller attached: {st}")
    bt_down(c)
    g.wait_for("the Bluetooth device to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)


@scenario("composite-plain", doc="no USB control: a keyboard + storage composite (made in the guest) gets usbhid and a disk")
def composite_plain(c):
    g = c.g
    serial = "RIGCOMP0001"
    g.sh("dd if=/dev/zero of=/run/composite.img bs=1M count=8 2>/dev/null")
    g.sh(f". /bin/riglib.sh; gadget_composite_up {serial} /run/composite.img")
    dev = g.wait_for("the composite device", lambda: usb_by_serial(g.usb()[0], serial), timeout=60)[0]
    its = g.wait_for("both interfaces bound", lambda: (lambda l: l if len([i for i in l if i["driver"] != "-"]) >= 2 else None)(
        interfaces_of(g.usb()[1], dev["path"])), timeout=60)
    kinds = {i["class"]: i["driver"] for i in its}
    c.expect(kinds.get("03") == "usbhid" and kinds.get("08") in ("usb-storage", "uas"), f"interfaces: {its}")
    g.wait_for("its disk", lambda: storage_blocks(g), timeout=60)
    kbd = [i for i in its if i["class"] == "03"][0]
    ok, why = keyboard_works(c, kbd["path"], gadget_press_a(g))
    c.expect(ok, f"the composite's key press did not arrive: {why}")
    c.notes.append(f"{dev['path']}: {kinds}, key A seen")
    g.sh(". /bin/riglib.sh; gadget_remove composite")
    g.wait_for("the composite to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)


# --------------------------------------------------------------------------------------------
# mijian in the guest

LEDGER_STICK = "RIGREG0001"       # the registered stick's serial (QEMU's vendor and product)


def policy_yaml(mode, ledger_serials=(LEDGER_STICK,)):
    """The shipped classified-workstation policy with usb.mode and the media ledger replaced."""
    path = os.path.join(REPO, "Policies", "classified-workstation.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    ledger = "  ledger:\n" + "".join(
        f'    - vendor: "{QEMU_VENDOR_STORAGE[0]}"\n      product: "{QEMU_VENDOR_STORAGE[1]}"\n'
        f'      serial: "{s}"\n      label: "秘-U-{i:04d}"\n      classification: 秘密\n      responsible: 张三\n'
        for i, s in enumerate(ledger_serials, 1)) if ledger_serials else "  ledger: []\n"
    lines, seen = [], set()
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("ledger:") and line.startswith("  "):
            lines.append(ledger)
            seen.add("ledger")
        elif line.lstrip().startswith("mode:") and line.startswith("  "):
            lines.append(f"  mode: {mode}\n")
            seen.add("mode")
        else:
            lines.append(line)
    if seen != {"ledger", "mode"}:
        raise RigError(f"{path}: no `media.ledger` or `usb.mode` line to replace")
    return "".join(lines)


class Watcher:
    """`mijian devices watch --format json` running in the guest as background job NAME."""

    def __init__(self, c, name, mode, enforce, source="auto"):
        self.c, self.g, self.name = c, c.g, name
        self.mode, self.enforce, self.source = mode, enforce, source
        self.policy = f"/etc/mijian/{name}.yaml"
        self.raw = b""   # what it printed so far; read on from its length

    def start(self, timeout=120):
        self.c.shared.setdefault("watchers", []).append(self)
        put_file(self.g, self.policy, policy_yaml(self.mode).encode())
        flags = " --enforce" if self.enforce else ""
        self.g.bg(self.name, f"exec mijian devices watch --policy {self.policy}{flags} --format json --source {self.source}")
        t = time.monotonic()
        # ready once it has said what it watches (stderr) and printed the coldplug
        self.g.wait_for(f"mijian devices watch ({self.name}) to start",
                        lambda: self.alive_or_fail() and self.g.sh(f"grep -h 'watching USB' /run/bg/{self.name}.err || true"),
                        timeout=timeout)
        self.c.metrics.setdefault("mijian_start_s", round(time.monotonic() - t, 1))
        return self

    def alive(self):
        return self.g.sh(f"kill -0 $(cat /run/bg/{self.name}.pid) 2>/dev/null && echo yes || echo no")[0] == "yes"

    def alive_or_fail(self):
        if not self.alive():
            err = self.g.sh(f"cat /run/bg/{self.name}.err /run/bg/{self.name}.out 2>/dev/null | tail -n 40")
            raise Failure(f"mijian devices watch ({self.name}) is not running:\n" + "\n".join(err))
        return True

    def stderr(self):
        return self.g.sh(f"cat /run/bg/{self.name}.err 2>/dev/null || true")

    def events(self):
        self.raw += self.g.read_file(f"/run/bg/{self.name}.out", offset=len(self.raw))
        complete = self.raw[:self.raw.rfind(b"\n") + 1].decode("utf-8", "replace")
        evs = []
        for line in complete.splitlines():
            try:
                evs.append(json.loads(line))
            except ValueError:
                pass  # a line still being written
        return evs

    def decisions(self, serial=None, scope=None):
        out = []
        for e in self.events():
            if e.get("type") != "usb.decision":
                continue
            d = e.get("data", {})
            if serial is not None and (d.get("device") or {}).get("serial") != serial:
                continue
            if scope is not None and d.get("scope") != scope:
                continue
            out.append(d)
        return out

    def wait_decision(self, serial, scope="device", timeout=60):
        return self.g.wait_for(f"mijian's {scope} decision on {serial}",
                               lambda: self.alive_or_fail() and self.decisions(serial, scope), timeout=timeout)[-1]

    def stop(self, signal_name="TERM"):
        self.g.cmd("kill", self.name, signal_name)
        self.g.wait_for(f"mijian ({self.name}) to exit", lambda: not self.alive(), timeout=30)


# Every decision on a real uevent, as (latency_us, timing_us, writes): mijian's own monotonic
# measure of where each decision's time went (DecisionTiming in MijianDevices).
TIMINGS = []


def latencies(c, decisions):
    real = [d for d in decisions if isinstance(d.get("latency_us"), int) and d.get("source") != "coldplug"]
    c.latencies.extend(d["latency_us"] for d in real)
    TIMINGS.extend((d["latency_us"], d.get("timing_us") or {}, d.get("writes") or []) for d in real)
    return [d["latency_us"] for d in real]


def timing_table(timings):
    """Where the decisions' time went: per phase p50/p99/max (us) and its share of all latency,
    then each kind of sysfs write on its own, then the slowest decisions phase by phase."""
    if not timings:
        return []
    out = []
    total = sum(t[0] for t in timings) or 1
    phases = []
    for _, timing, _ in timings:
        phases += [k for k in timing if k not in phases]
    if not phases:
        return ["  (this mijian's decisions carry no timing_us)"]
    out.append(f"  where the time goes, {len(timings)} decisions (us; share = the phase's part of all latency):")
    out.append(f"    {'phase':<28} {'p50':>8} {'p99':>8} {'max':>8} {'share':>6}")
    rows = [("latency (uevent -> decision)", [t[0] for t in timings])]
    rows += [(ph, [t[1].get(ph, 0) for t in timings]) for ph in phases]
    for name, vals in rows:
        share = "" if name.startswith("latency") else f"{100 * sum(vals) / total:5.1f}%"
        out.append(f"    {name:<28} {pct(vals, 50):>8} {pct(vals, 99):>8} {max(vals):>8} {share:>6}")
    writes = {}
    for _, _, ws in timings:
        for w in ws:
            if isinstance(w.get("us"), int):
                kind = ("drivers_probe" if w.get("path", "").endswith("drivers_probe")
                        else ("interface" if ":" in w.get("path", "").rsplit("/", 2)[-2] else "device") + f" authorized={w.get('value')}")
                writes.setdefault(kind, []).append(w["us"])
    for kind, vals in sorted(writes.items()):
        out.append(f"    {'write ' + kind:<28} {pct(vals, 50):>8} {pct(vals, 99):>8} {max(vals):>8}   n={len(vals)}")
    slow = sorted(timings, key=lambda t: -t[0])[:3]
    for lat, timing, _ in slow:
        top = sorted(timing.items(), key=lambda kv: -kv[1])[:3]
        out.append(f"    slowest: {lat} us = " + ", ".join(f"{k} {v}" for k, v in top) + (" ..." if len(timing) > 3 else ""))
    return out


def enforcer(c):
    """The enforcing watcher shared by the enforce scenarios of a boot (started on first use)."""
    w = c.shared.get("enforcer")
    if w is None or not w.alive():
        w = Watcher(c, "enforce", "enforce", True).start()
        c.shared["enforcer"] = w
        locked = c.g.wait_for("root hubs locked (interface_authorized_default = 0)",
                              lambda: (lambda hubs: hubs if hubs and all(h["interface_authorized_default"] == "0" for h in hubs) else None)(
                                  [d for d in c.g.usb()[0] if d["path"].startswith("usb")]), timeout=30)
        c.notes.append(f"enforcing: {len(locked)} root hubs locked")
    return w


def observe_plug(c, plug, settle=3.0, done=None):
    """Plugs with the block watch running; returns (uevents, watch lines) from the plug on."""
    g = c.g
    ue0, w0 = g.mark()
    g.cmd("watch-start")
    plug()
    if done:
        done()
    time.sleep(settle)
    g.cmd("watch-stop")
    return g.uevents(ue0), [w.text for w in g.watched(w0)]


def assert_no_storage(c, uevents, watched, what):
    """No block device ever appeared (uevents and the watch loop), no storage driver bound (bind
    uevents), no SCSI host was made (what usb-storage and uas do first when their probe succeeds)."""
    blocks = [e.text for e in uevents if e["subsystem"] == "block" and e["action"] == "add"]
    binds = [e.text for e in uevents if e["action"] == "bind" and e["driver"] in ("usb-storage", "uas")]
    hosts = [e.text for e in uevents if e["subsystem"] in ("scsi", "scsi_host") and e["action"] == "add"]
    seen = [w for w in watched if "appeared=" in w]
    c.expect(not blocks, f"{what}: a block device appeared: {blocks}")
    c.expect(not binds, f"{what}: a storage driver bound: {binds}")
    c.expect(not hosts, f"{what}: a SCSI host was made: {hosts}")
    c.expect(not seen, f"{what}: the watch loop saw: {seen}")
    probed = [w.split("probed=")[1] for w in watched if "probed=" in w]
    if probed:
        c.notes.append(f"{what}: the kernel tried and refused {', '.join(sorted(set(p.split('/')[-2] for p in probed)))} (not authorised)")


def assert_denied_stick(c, w, serial, image):
    g = c.g
    uevents, watched = observe_plug(c, lambda: g.plug_stick(serial.lower(), image, serial),
                                    done=lambda: w.wait_decision(serial, "device"))
    assert_no_storage(c, uevents, watched, f"stick {serial}")
    ds = w.decisions(serial)
    c.expect(ds and all(d["decision"] == "deny" for d in ds), f"mijian's decisions on {serial}: {[d['decision'] for d in ds]}")
    devs, ifs = g.usb()
    dev = usb_by_serial(devs, serial)
    c.expect(dev, f"the stick {serial} is not in sysfs at all")
    its = interfaces_of(ifs, dev[0]["path"])
    state = f"device authorized={dev[0]['authorized']}, interfaces " + ", ".join(f"{i['path']} authorized={i['authorized']} driver={i['driver']}" for i in its)
    c.expect(all(i["authorized"] == "0" and i["driver"] == "-" for i in its) and (its or dev[0]["authorized"] == "0"),
             f"stick {serial} not blocked in sysfs: {state}")
    c.expect(not storage_blocks(g), f"an sd* block device exists: {storage_blocks(g)}")
    # the interface as the watch loop first saw it: never authorised
    seen_ifs = [w for w in watched if "iface=" in w and f"iface={dev[0]['path']}:" in w]
    c.expect(seen_ifs and all("authorized=0" in w for w in seen_ifs), f"stick {serial}: its interface as first seen: {seen_ifs}")
    state += "; first seen: " + ", ".join(w.split(" ", 1)[1] for w in seen_ifs)
    lat = latencies(c, ds)
    c.notes.append(f"{serial}: deny ({ds[-1]['interfaces'][0]['reason'] if ds[-1].get('interfaces') else ''}); {state}; "
                   f"latency_us {lat}; {len(uevents)} uevents, no block, no storage bind")
    g.unplug(serial.lower(), drive=True)
    g.wait_for(f"{serial} to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)


@scenario("audit-would-deny", needs=("mijian-devices",), issue=7,
          doc="audit mode: an unregistered stick is allowed (disk present) but reported would-deny")
def audit_would_deny(c):
    g = c.g
    serial = "RIGAUDIT0001"
    image, want = c.disk("audit", serial)
    w = Watcher(c, "audit", "audit", False).start()
    try:
        g.plug_stick("audit", image, serial)
        d = w.wait_decision(serial, "device")
        blocks = g.wait_for("its disk", lambda: storage_blocks(g), timeout=60)
        sec = [r for r in g.cmd("sector", blocks[0]["name"]) if r.kind == "sector"]
        c.expect(sec and sec[0]["sha256"] == want, "the disk is not readable in audit mode")
        ds = w.decisions(serial)
        c.expect(all(x["decision"] == "would-deny" for x in ds) and all(x.get("mode") == "audit" for x in ds),
                 f"expected would-deny in audit mode, mijian said {[(x['decision'], x.get('mode')) for x in ds]}")
        c.expect(all(x.get("failed_writes", 0) == 0 and not x.get("writes") for x in ds), f"audit mode wrote to sysfs: {[x.get('writes') for x in ds]}")
        c.notes.append(f"{serial}: would-deny, /dev/{blocks[0]['name']} readable, latency_us {latencies(c, ds)}")
        g.unplug("audit", drive=True)
        g.wait_for("the disk to go", lambda: not storage_blocks(g), timeout=60)
        removal = g.wait_for("mijian's removal event", lambda: [e for e in w.events() if e.get("type") == "usb.removal"
                                                                and e["data"]["device"].get("serial") == serial], timeout=30)
        c.expect(removal, "no removal event")
    finally:
        w.stop()


@scenario("stick-unregistered", needs=("mijian-devices",), issue=1,
          doc="enforce: an unregistered stick is denied; no sd* ever appears; its interface is not authorised")
def stick_unregistered(c):
    image, _ = c.disk("unreg", "RIGUNREG0001")
    assert_denied_stick(c, enforcer(c), "RIGUNREG0001", image)


@scenario("stick-registered", needs=("mijian-devices",), issue=2,
          doc="enforce: the registered stick (serial in the ledger) is allowed, its disk present and readable")
def stick_registered(c):
    g = c.g
    w = enforcer(c)
    image, want = c.disk("reg", LEDGER_STICK)
    ue0, _ = g.mark()
    g.plug_stick("reg", image, LEDGER_STICK)
    d = w.wait_decision(LEDGER_STICK, "device")
    blocks = g.wait_for("the registered stick's disk", lambda: storage_blocks(g), timeout=60)
    sec = [r for r in g.cmd("sector", blocks[0]["name"]) if r.kind == "sector"]
    c.expect(sec and sec[0]["sha256"] == want, f"/dev/{blocks[0]['name']} is not readable or not the image: {sec}")
    ds = w.decisions(LEDGER_STICK)
    c.expect(all(x["decision"] == "allow" for x in ds), f"mijian's decisions: {[x['decision'] for x in ds]}")
    devs, ifs = g.usb()
    its = interfaces_of(ifs, usb_by_serial(devs, LEDGER_STICK)[0]["path"])
    c.expect(all(i["authorized"] == "1" for i in its) and any(i["driver"] in ("usb-storage", "uas") for i in its), f"interfaces: {its}")
    c.notes.append(f"{LEDGER_STICK}: allow ({d.get('ledger')}), /dev/{blocks[0]['name']} readable, latency_us {latencies(c, ds)}")
    g.unplug("reg", drive=True)
    g.wait_for("the disk to go", lambda: not storage_blocks(g), timeout=60)


@scenario("stick-other-serial", needs=("mijian-devices",), issue=3,
          doc="enforce: the registered stick's vendor and product with another serial is denied")
def stick_other_serial(c):
    image, _ = c.disk("other", "RIGREG0002")
    assert_denied_stick(c, enforcer(c), "RIGREG0002", image)


@scenario("composite-enforce", needs=("mijian-devices",), issue=4,
          doc="enforce: a keyboard + storage composite keeps its keyboard (key presses arrive), its storage never binds")
def composite_enforce(c):
    g = c.g
    w = enforcer(c)
    serial = "RIGCOMP0002"
    g.sh("dd if=/dev/zero of=/run/composite.img bs=1M count=8 2>/dev/null")
    uevents, watched = observe_plug(c, lambda: g.sh(f". /bin/riglib.sh; gadget_composite_up {serial} /run/composite.img"),
                                    done=lambda: w.wait_decision(serial, "device"))
    assert_no_storage(c, uevents, watched, "the composite's storage")
    dev = usb_by_serial(g.usb()[0], serial)[0]
    its = g.wait_for("the keyboard interface bound", lambda: (lambda l: l if any(i["class"] == "03" and i["driver"] == "usbhid" for i in l) else None)(
        interfaces_of(g.usb()[1], dev["path"])), timeout=30)
    by_class = {i["class"]: i for i in its}
    c.expect(by_class["03"]["authorized"] == "1", f"keyboard interface: {by_class['03']}")
    c.expect(by_class["08"]["authorized"] == "0" and by_class["08"]["driver"] == "-", f"storage interface: {by_class['08']}")
    ok, why = keyboard_works(c, by_class["03"]["path"], gadget_press_a(g))
    c.expect(ok, f"the composite's keyboard does not work under enforcement: {why}")
    ds = w.decisions(serial)
    per_if = {i["class"]: i["decision"] for d in ds for i in d.get("interfaces", [])}
    c.notes.append(f"{dev['path']}: interfaces {per_if}, device decision {ds[-1]['decision']}/{ds[-1].get('whole_device')}, "
                   f"key A arrives, no block; latency_us {latencies(c, ds)}")
    g.sh(". /bin/riglib.sh; gadget_remove composite")
    g.wait_for("the composite to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)


@scenario("hub-enforce", needs=("mijian-devices",), issue=4,
          doc="enforce: a keyboard and an unregistered stick on one hub: the keyboard works, the stick never binds")
def hub_enforce(c):
    g = c.g
    w = enforcer(c)
    serial = "RIGHUB0001"
    image, _ = c.disk("hubstick", serial)

    def plug():
        g.plug("usb-hub", "hub0", port="2")
        g.wait_for("the hub", lambda: [i for i in g.usb()[1] if i["class"] == "09" and not i["path"].split(":")[0].endswith("-0")], timeout=60)
        g.plug("usb-kbd", "hubkbd", port="2.1")
        g.plug_stick("hubstick", image, serial, port="2.2")

    uevents, watched = observe_plug(c, plug, done=lambda: w.wait_decision(serial, "device"))
    assert_no_storage(c, uevents, watched, "the stick behind the hub")
    kbd = g.wait_for("the keyboard behind the hub with usbhid",
                     lambda: [i for i in g.usb()[1] if i["class"] == "03" and i["driver"] == "usbhid"], timeout=60)
    ok, why = keyboard_works(c, kbd[0]["path"], qemu_press_a(g, "hubkbd"))
    c.expect(ok, f"the keyboard behind the hub does not work: {why}")
    ds = w.decisions(serial)
    c.expect(ds and all(d["decision"] == "deny" for d in ds), f"decisions on the stick: {[d['decision'] for d in ds]}")
    c.notes.append(f"keyboard {kbd[0]['path']} works, stick {serial} denied; latency_us {latencies(c, ds)}")
    g.unplug("hubstick", drive=True)
    g.unplug("hubkbd")
    g.unplug("hub0")
    g.wait_for("the hub to go", lambda: len(g.usb()[0]) == 3, timeout=60)


@scenario("radio-tether-enforce", needs=("mijian-devices",), issue=5,
          doc="enforce: a Bluetooth controller and a USB network adapter are denied; the audit fails while they are attached")
def radio_tether_enforce(c):
    g = c.g
    w = enforcer(c)
    links0 = net_links(g)
    bt_serial = "RIGBT0002"
    ue0, _ = g.mark()
    bt_up(c, bt_serial)
    d_bt = w.wait_decision(bt_serial, "device")
    net_serial = "RIGNET0002"
    usb_net_plug(g, "net1", net_serial)
    g.wait_for("the usb-net device", lambda: usb_by_serial(g.usb()[0], net_serial), timeout=60)
    d_net = w.wait_decision(net_serial, "device")
    time.sleep(3)
    ev = g.uevents(ue0)
    binds = [e.text for e in ev if e["action"] == "bind" and e["driver"] in ("btusb", "cdc_ether", "rndis_host", "cdc_ncm", "cdc_subset")]
    c.expect(not binds, f"a radio or network driver bound: {binds}")
    c.expect(not g.sh("ls /sys/class/bluetooth 2>/dev/null || true"), "an hci device appeared")
    c.expect(net_links(g) == links0, f"a network link appeared: {net_links(g)}")
    for serial in (bt_serial, net_serial):
        ds = w.decisions(serial)
        c.expect(ds and all(d["decision"] == "deny" for d in ds), f"decisions on {serial}: {[d['decision'] for d in ds]}")
        c.notes.append(f"{serial}: deny ({', '.join(sorted({i['kind'] for d in ds for i in d.get('interfaces', [])}))}); latency_us {latencies(c, ds)}")
    st, _ = audit(c, ["wireless.hardware", "net.interfaces", "usb.phone"])
    c.notes.append(f"audit while attached and denied: {st}")
    c.expect("fail" in st.get("wireless.hardware", []), f"wireless.hardware does not fail with a Bluetooth controller attached: {st}")
    c.expect("fail" in st.get("net.interfaces", []) or "fail" in st.get("usb.phone", []),
             f"neither net.interfaces nor usb.phone fails with a USB network adapter attached: {st}")
    bt_down(c)
    usb_net_unplug(g, "net1")
    g.wait_for("both to go", lambda: not usb_by_serial(g.usb()[0], bt_serial) and not usb_by_serial(g.usb()[0], net_serial), timeout=60)


def mtp_plug(c, dev_id, serial):
    """QEMU's usb-mtp (a phone's MTP shape), read-only, sharing an empty scratch directory."""
    root = os.path.join(c.work, f"mtp-{dev_id}")
    os.makedirs(root, exist_ok=True)
    c.g.plug("usb-mtp", dev_id, rootdir=root, readonly=True, serial=serial)


@scenario("mtp-plain", needs=("mijian",), doc="no USB control: a phone's MTP shape (usb-mtp, interface 06/01/01) is attached; the audit fails usb.phone")
def mtp_plain(c):
    g = c.g
    serial = "RIGMTP0001"
    mtp_plug(c, "mtp0", serial)
    dev = g.wait_for("the MTP device", lambda: usb_by_serial(g.usb()[0], serial), timeout=60)[0]
    its = g.wait_for("its interface", lambda: interfaces_of(g.usb()[1], dev["path"]), timeout=30)
    st, _ = audit(c, ["usb.phone"])
    c.notes.append(f"{dev['path']} {dev['vendor']}:{dev['product']} interfaces {[(i['class'], i['subclass'], i['protocol']) for i in its]}; audit {st}")
    c.expect("fail" in st.get("usb.phone", []), f"usb.phone does not fail with an MTP device attached: {st}")
    g.unplug("mtp0")
    g.wait_for("the MTP device to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)


@scenario("mtp-enforce", needs=("mijian-devices",), doc="enforce: a phone's MTP shape (usb-mtp) is denied and stays unauthorised")
def mtp_enforce(c):
    g = c.g
    w = enforcer(c)
    serial = "RIGMTP0002"
    mtp_plug(c, "mtp1", serial)
    d = w.wait_decision(serial, "device")
    ds = w.decisions(serial)
    c.expect(ds and all(x["decision"] == "deny" for x in ds), f"decisions on {serial}: {[x['decision'] for x in ds]}")
    dev = usb_by_serial(g.usb()[0], serial)[0]
    its = interfaces_of(g.usb()[1], dev["path"])
    c.expect(all(i["authorized"] == "0" and i["driver"] == "-" for i in its) and (its or dev["authorized"] == "0"),
             f"the MTP device is not blocked: device authorized={dev['authorized']} interfaces {its}")
    kinds = sorted({i["kind"] for x in ds for i in x.get("interfaces", [])})
    c.notes.append(f"{serial}: deny ({', '.join(kinds)}), device authorized={dev['authorized']}; latency_us {latencies(c, ds)}")
    g.unplug("mtp1")
    g.wait_for("the MTP device to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)


@scenario("stick-latency", needs=("mijian-devices",),
          doc="enforce: an unregistered stick plugged and unplugged 10 times: never a disk; decision latency on real uevents")
def stick_latency(c):
    g = c.g
    w = enforcer(c)
    serial = "RIGLAT0001"
    image, _ = c.disk("lat", serial)
    ue0, w0 = g.mark()
    g.cmd("watch-start")
    n0 = len(w.decisions(serial))
    for i in range(10):
        g.plug_stick("lat", image, serial)
        g.wait_for(f"decision {i + 1}", lambda: len(w.decisions(serial, "device")) > i, timeout=60)
        g.unplug("lat", drive=True)
        g.wait_for(f"{serial} to go", lambda: not usb_by_serial(g.usb()[0], serial), timeout=60)
    time.sleep(1)
    g.cmd("watch-stop")
    assert_no_storage(c, g.uevents(ue0), [x.text for x in g.watched(w0)], f"{serial} over 10 plugs")
    ds = w.decisions(serial)[n0:]
    c.expect(all(d["decision"] == "deny" for d in ds), f"decisions: {[d['decision'] for d in ds]}")
    lat = latencies(c, ds)
    c.metrics["cycles"] = 10
    c.notes.append(f"{len(ds)} decisions, latency_us p50 {pct(lat, 50)} max {max(lat) if lat else '-'}")


@scenario("fail-closed", needs=("mijian-devices",), issue=6,
          doc="enforce, then mijian killed: a stick stays blocked; a keyboard still works (the udev HID rule)")
def fail_closed(c):
    g = c.g
    rules = g.sh("ls /etc/rig/udev/*.rules 2>/dev/null || true")
    c.expect(rules, "no udev rule of the USB control in the guest (Packaging/udev/*.rules)")
    old = c.shared.pop("enforcer", None)
    if old and old.alive():
        old.stop()
    # udevd with the shipped rules only, as on a workstation where mijian enforces
    g.sh("mkdir -p /run/udev /etc/udev/rules.d && cp /etc/rig/udev/*.rules /etc/udev/rules.d/ && "
         "/lib/systemd/systemd-udevd --daemon && udevadm control --ping", timeout=60)
    w = Watcher(c, "failclosed", "enforce", True).start()
    src = " ".join(w.stderr())
    c.notes.append("mijian: " + src.strip()[:200])
    g.wait_for("root hubs locked", lambda: all(d["interface_authorized_default"] == "0" for d in g.usb()[0] if d["path"].startswith("usb")), timeout=30)
    w.stop("KILL")
    c.notes.append("mijian killed (SIGKILL)")
    serial = "RIGFAIL0001"
    image, _ = c.disk("fail", serial)
    uevents, watched = observe_plug(c, lambda: g.plug_stick("fail", image, serial), settle=5.0,
                                    done=lambda: g.wait_for("the stick in sysfs", lambda: usb_by_serial(g.usb()[0], serial), timeout=60))
    assert_no_storage(c, uevents, watched, "a stick with mijian dead")
    dev = usb_by_serial(g.usb()[0], serial)[0]
    its = interfaces_of(g.usb()[1], dev["path"])
    c.expect(its and all(i["authorized"] == "0" and i["driver"] == "-" for i in its), f"the stick's interfaces: {its}")
    g.plug("usb-kbd", "failkbd")
    kbd = g.wait_for("the keyboard authorised by the udev rule, with usbhid",
                     lambda: [i for i in g.usb()[1] if i["class"] == "03" and i["driver"] == "usbhid" and i["authorized"] == "1"], timeout=60)
    ok, why = keyboard_works(c, kbd[0]["path"], qemu_press_a(g, "failkbd"))
    c.expect(ok, f"the keyboard does not work with mijian dead: {why}")
    c.notes.append(f"stick {serial}: interfaces authorized=0, no driver, no disk; keyboard {kbd[0]['path']} works")
    g.unplug("fail", drive=True)
    g.unplug("failkbd")


AGENT_YAML = """\
delivery:
  mode: drop_dir
  drop_dir: /run/drop
report_interval: 1h
audit_interval: 1h
usb:
  enabled: true
traffic:
  enabled: true
"""


def envelopes(g, directory):
    """The envelope files in a guest directory, in chain order (their names sort by epoch and seq)."""
    return sorted(x for x in g.sh(f"ls {directory} 2>/dev/null || true") if x.endswith(".dsse.json"))


def decode_envelope(raw):
    env = json.loads(raw)
    return json.loads(base64.b64decode(env["payload"]))


@scenario("service-report", needs=("mijian", "mijian-collector"), issue=8,
          doc="`mijian run` enforcing in the guest (drop_dir delivery): an unregistered stick denied, a registered one "
              "allowed; its signed event reports verified outside with `mijian verify`, ingested by the collector, the "
              "ledger finding names the unregistered serial")
def service_report(c):
    g = c.g
    bad, good = "RIGSIGN0001", LEDGER_STICK
    put_file(g, "/etc/mijian/host.yaml", "asset_id: JSJ-RIG-0001\nclassification: 秘密\nresponsible: 张三\nunit: 测试单位\n".encode())
    put_file(g, "/etc/mijian/service.yaml", policy_yaml("enforce").encode())
    put_file(g, "/etc/mijian/agent.yaml", AGENT_YAML.encode())
    g.sh("set -e; mkdir -p /run/drop; rm -f /run/drop/*; [ -f /var/lib/mijian/agent.key ] || mijian keys init; "
         "mijian enroll --output /run/request.json", timeout=180)
    # the service as its unit runs it; its pid and exit status kept for the SIGTERM check
    g.bg("service", "mijian run --policy /etc/mijian/service.yaml --config /etc/mijian/agent.yaml & "
                    "echo $! > /run/service.pid; wait $!; echo $? > /run/service.rc")
    t = time.monotonic()

    def alive():
        if g.sh("[ -s /run/service.rc ] && cat /run/service.rc || true"):
            err = g.sh("tail -n 40 /run/bg/service.err 2>/dev/null || true")
            raise Failure("mijian run exited:\n" + "\n".join(err))
        return True

    first = g.wait_for("the service's first report in the drop directory", lambda: alive() and envelopes(g, "/run/drop"), timeout=180)
    c.metrics["service_first_report_s"] = round(time.monotonic() - t, 1)
    g.wait_for("root hubs locked by the service",
               lambda: alive() and all(d["interface_authorized_default"] == "0" for d in g.usb()[0] if d["path"].startswith("usb")), timeout=30)
    # an unregistered stick: denied at once, never a disk, and a failing report sealed at once
    image, _ = c.disk("sign", bad)
    n0 = len(envelopes(g, "/run/drop"))
    t = time.monotonic()
    uevents, watched = observe_plug(c, lambda: g.plug_stick("sign", image, bad),
                                    done=lambda: g.wait_for("a report sealed after the deny",
                                                            lambda: alive() and len(envelopes(g, "/run/drop")) > n0, timeout=120))
    assert_no_storage(c, uevents, watched, f"stick {bad} under mijian run")
    c.metrics["plug_to_report_s"] = round(time.monotonic() - t, 1)   # includes the 3 s settle of the block watch
    # a registered stick: allowed, its disk readable
    image2, sector = c.disk("signok", good)
    g.plug_stick("signok", image2, good)
    disk = g.wait_for("the registered stick's disk", lambda: storage_blocks(g), timeout=60)
    got = [r["sha256"] for r in g.cmd("sector", disk[0]["name"]) if r.kind == "sector"]
    c.expect(got == [sector], f"the registered stick's /dev/{disk[0]['name']}: first sector {got}, expected {sector}")
    g.unplug("signok", drive=True)
    g.unplug("sign", drive=True)
    g.wait_for("both sticks to go", lambda: not usb_by_serial(g.usb()[0], bad) and not usb_by_serial(g.usb()[0], good), timeout=60)
    # SIGTERM: a final report, exit 0
    t = time.monotonic()
    g.sh("kill -TERM $(cat /run/service.pid)")
    rc = g.wait_for("mijian run to exit after SIGTERM", lambda: g.sh("cat /run/service.rc 2>/dev/null || true"), timeout=60)
    c.metrics["sigterm_exit_s"] = round(time.monotonic() - t, 1)
    c.expect(rc == ["0"], f"mijian run exited {rc} after SIGTERM:\n" + "\n".join(g.sh("tail -n 40 /run/bg/service.err")))
    names = envelopes(g, "/run/drop")
    spool = envelopes(g, "/var/lib/mijian/spool")
    c.expect(not spool, f"reports left in the spool after the final flush to the drop directory: {spool}")
    d = os.path.join(c.work, "service")
    drop = os.path.join(d, "drop")
    os.makedirs(drop, exist_ok=True)
    for name in names:
        with open(os.path.join(drop, name), "wb") as f:
            f.write(g.read_file(f"/run/drop/{name}"))
    for name, path in (("request.json", "/run/request.json"), ("agent.pub", "/var/lib/mijian/agent.pub")):
        with open(os.path.join(d, name), "wb") as f:
            f.write(g.read_file(path))
    mijian, collector = c.mijian_host, os.path.join(os.path.dirname(c.mijian_host), "mijian-collector")
    files = [os.path.join(drop, n) for n in names]
    r = subprocess.run([mijian, "verify", *files, "--key", os.path.join(d, "agent.pub")], capture_output=True, text=True, timeout=300)
    c.expect(r.returncode == 0, f"mijian verify on the host of {len(files)} reports: exit {r.returncode}\n{r.stdout}{r.stderr}")
    payloads = [decode_envelope(open(f, "rb").read()) for f in files]
    seqs = [p.get("seq") for p in payloads]
    c.expect(seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False, f"the drop directory's chain has gaps: seq {seqs}")
    events = [e for p in payloads for e in p.get("events", [])]
    dec = [e.get("data", {}) for e in events if e.get("type") == "usb.decision"]
    on_bad = [x for x in dec if (x.get("device") or {}).get("serial") == bad]
    on_good = [x for x in dec if (x.get("device") or {}).get("serial") == good]
    c.expect(on_bad and all(x.get("decision") == "deny" for x in on_bad), f"the signed reports' decisions on {bad}: {[x.get('decision') for x in on_bad]}")
    c.expect(on_good and all(x.get("decision") == "allow" for x in on_good), f"the signed reports' decisions on {good}: {[x.get('decision') for x in on_good]}")
    lat = latencies(c, on_bad + on_good)
    c.expect(lat, "no decision in the signed reports carries latency_us")
    failing = [n for n in names if n.endswith("-fail.dsse.json")]
    with_deny = [n for n, p in zip(names, payloads)
                 if any(e.get("type") == "usb.decision" and (e.get("data", {}).get("device") or {}).get("serial") == bad for e in p.get("events", []))]
    c.expect(with_deny and all(n in failing for n in with_deny), f"the reports with the deny of {bad} are not marked failing: {with_deny}; failing: {failing}")
    # the collector: enrol, ingest the carried directory, the ledger finding names the stick
    data = os.path.join(d, "collector")
    policy = os.path.join(d, "policy.yaml")
    with open(policy, "w", encoding="utf-8") as f:
        f.write(policy_yaml("enforce"))
    for argv in (["enroll", "approve", os.path.join(d, "request.json"), "--note", "VM rig"], ["ingest", drop]):
        r = subprocess.run([collector, *argv, "--data", data], capture_output=True, text=True, timeout=300)
        c.expect(r.returncode == 0, f"mijian-collector {' '.join(argv)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    year = (payloads[-1].get("issued_at", "") if payloads else "")[:4] or time.strftime("%Y")
    r = subprocess.run([collector, "assessment", "--data", data, "--policy", policy, "--year", year, "--lang", "en", "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    c.expect(r.returncode in (0, 1), f"mijian-collector assessment: exit {r.returncode}\n{r.stderr[-2000:]}")
    text = r.stdout
    ledger = [ln for ln in text.splitlines() if bad in ln and "not in the ledger" in ln]
    c.expect(ledger,
             f"the collector's assessment has no ledger finding naming {bad}:\n{text[-3000:]}")
    c.expect(not re.search(rf"{good}[^\n]*not in the ledger", text), f"the registered stick {good} is reported as not in the ledger")
    c.notes.append(f"{len(names)} reports (seq {seqs[0]}–{seqs[-1]}, {len(failing)} failing) verified on the host and ingested; "
                   f"{bad} deny, {good} allow; latency_us {lat}; ledger finding names {bad}; "
                   f"first report {c.metrics['service_first_report_s']} s after start, SIGTERM exit in {c.metrics['sigterm_exit_s']} s (TCG)")


# The order scenarios run in within one boot: no control first, then audit mode, then enforcement
# (which leaves the root hubs locked), the killed service last.
RUN_ORDER = ["stick-plain", "keyboard-plain", "net-plain", "bt-plain", "composite-plain", "mtp-plain",
             "audit-would-deny",
             "service-report", "stick-unregistered", "stick-registered", "stick-other-serial", "composite-enforce", "hub-enforce",
             "radio-tether-enforce", "mtp-enforce", "stick-latency", "fail-closed"]


def pct(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


# --------------------------------------------------------------------------------------------
# running


LOOP = "i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done"


def tcg_slowdown(guest):
    """How much slower the guest runs than this host: one busybox shell loop timed in both."""
    t = time.monotonic()
    subprocess.run(["/bin/busybox", "sh", "-c", LOOP], check=True)
    host = time.monotonic() - t
    out = guest.sh(f"read a _ < /proc/uptime; {LOOP}; read b _ < /proc/uptime; echo $a $b", timeout=300)
    a, b = (float(x) for x in out[-1].split())
    return (b - a) / host if host > 0 else None


def capabilities(mijian):
    caps = set()
    if mijian and os.access(mijian, os.X_OK):
        caps.add("mijian")
        try:
            r = subprocess.run([mijian, "devices", "watch", "--help"], capture_output=True, timeout=30)
            if r.returncode == 0:
                caps.add("mijian-devices")
        except (OSError, subprocess.TimeoutExpired):
            pass
        if os.access(os.path.join(os.path.dirname(mijian), "mijian-collector"), os.X_OK):
            caps.add("mijian-collector")
    return caps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", default=[], help="run only this scenario (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--out", default=os.environ.get("VM_OUT", os.path.join(HERE, "out")),
                    help="the guest built by build-guest.sh")
    ap.add_argument("--mijian", default=os.environ.get("MIJIAN"), help="the mijian binary in the guest")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--artifacts", default=os.environ.get("VM_ARTIFACTS"),
                    help="copy each boot's console, control-port transcript and mijian's events into this directory")
    ap.add_argument("--deadline", type=float, default=float(os.environ.get("VM_DEADLINE", 600)),
                    help="seconds for the whole run (default 600); past it the running scenario fails")
    args = ap.parse_args()

    if args.list:
        rank = {n: i for i, n in enumerate(RUN_ORDER)}
        for s in sorted(SCENARIOS.values(), key=lambda s: rank.get(s["name"], len(rank))):
            need = f" (needs {', '.join(s['needs'])})" if s["needs"] else ""
            print(f"{s['name']:<22} {s['doc']}{need}")
        return 0

    names = args.scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"rig: unknown scenario(s): {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    guest_env = {}
    try:
        with open(os.path.join(args.out, "guest.env")) as f:
            guest_env = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
    except OSError:
        print(f"rig: no guest in {args.out}: run Tests/VM/build-guest.sh first", file=sys.stderr)
        return 2
    mijian = args.mijian or guest_env.get("MIJIAN") or None
    if guest_env.get("MIJIAN", "") != (mijian or ""):
        print(f"rig: the guest in {args.out} was built with mijian '{guest_env.get('MIJIAN')}', not '{mijian}'; "
              "rebuild it", file=sys.stderr)
        return 2
    caps = capabilities(mijian)
    rank = {n: i for i, n in enumerate(RUN_ORDER)}
    chosen = [SCENARIOS[n] for n in sorted(dict.fromkeys(names), key=lambda n: rank.get(n, len(rank)))]
    missing = [(s["name"], [n for n in s["needs"] if n not in caps]) for s in chosen]
    missing = [(n, m) for n, m in missing if m]
    if missing:
        for n, m in missing:
            print(f"rig: scenario {n} needs {', '.join(m)}, which this build does not have "
                  f"(mijian: {mijian or 'none'})", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="mijian-vm-")
    all_latencies = []
    results = []
    t_all = time.monotonic()
    boots = [[s for s in chosen if s["boot"] == "shared"]] + [[s] for s in chosen if s["boot"] == "own"]
    boots = [b for b in boots if b]
    guest = None
    failed = False

    def cleanup(*_):
        if guest:
            guest.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(143)))
    expired = []

    def on_deadline(*_):
        expired.append(True)
        raise Failure(f"the rig ran past its deadline of {args.deadline:.0f} s")

    signal.signal(signal.SIGALRM, on_deadline)
    signal.setitimer(signal.ITIMER_REAL, args.deadline)
    try:
        for bi, group in enumerate(boots):
            bdir = os.path.join(work, f"boot{bi}")
            os.makedirs(bdir)
            guest = Guest(args.out, bdir)
            if expired:
                results.extend((s["name"], "FAIL", 0.0, {}, ["not run: past the deadline"]) for s in group)
                continue
            try:
                guest.start()
            except (Failure, RigError, TimeoutError, OSError) as e:
                failed = True
                report_failure(guest, f"boot: {e}")
                for s in group:
                    results.append((s["name"], "FAIL", 0.0, {}, [f"boot failed: {e}"]))
                guest.stop()
                guest = None
                continue
            log(f"boot {bi}: kernel {guest.kernel}, agent ready after {guest.boot_seconds:.1f} s "
                f"(guest uptime {guest.guest_uptime_at_ready:.1f} s)")
            try:
                slow = tcg_slowdown(guest)
                boot_notes = [f"the guest runs a shell loop {slow:.0f}x slower than this host (TCG)"] if slow else []
            except (Failure, RigError, TimeoutError, OSError, subprocess.CalledProcessError, ValueError) as e:
                boot_notes = [f"slowdown not measured: {e}"]
            results.append((f"(boot {bi})", "ok", guest.boot_seconds, {"guest_uptime_s": guest.guest_uptime_at_ready}, boot_notes))
            shared = {}
            for s in group:
                if expired:
                    results.append((s["name"], "FAIL", 0.0, {}, ["not run: past the deadline"]))
                    continue
                c = Ctx(guest, bdir, caps, mijian, shared, all_latencies)
                t = time.monotonic()
                log(f"scenario {s['name']}: {s['doc']}")
                try:
                    s["fn"](c)
                    status = "PASS"
                except Exception as e:  # noqa: BLE001 - any error of a scenario is its failure, with the console
                    status = "FAIL"
                    failed = True
                    if not isinstance(e, (Failure, RigError, TimeoutError, OSError)):
                        import traceback
                        traceback.print_exc()
                        e = f"{type(e).__name__}: {e}"
                    c.notes.append(str(e))
                    report_failure(guest, f"scenario {s['name']}: {e}")
                    if guest.proc.poll() is None:
                        guest.unplug_all()
                dt = time.monotonic() - t
                results.append((s["name"], status, dt, c.metrics, c.notes))
                log(f"scenario {s['name']}: {status} in {dt:.1f} s {json.dumps(c.metrics) if c.metrics else ''}")
                if status == "FAIL" and guest.proc.poll() is not None:
                    break
            if args.artifacts and guest.proc.poll() is None:
                for w in shared.get("watchers", []):
                    try:
                        w.events()   # what it printed since it was last read
                    except Exception:  # noqa: BLE001 - saving artifacts must not fail the run
                        pass
            guest.stop()
            if args.artifacts:
                save_artifacts(args.artifacts, bi, guest, shared)
            guest = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        cleanup()
    total = time.monotonic() - t_all
    print()
    print("VM rig results")
    for name, status, dt, metrics, notes in results:
        print(f"  {status:<5} {name:<24} {dt:6.1f} s  {json.dumps(metrics) if metrics else ''}")
        for n in notes:
            print(f"        {n}")
    if all_latencies:
        print(f"  decision latency on real uevents in the guest (TCG, not hardware speed): n={len(all_latencies)} "
              f"p50={pct(all_latencies, 50)} us p99={pct(all_latencies, 99)} us max={max(all_latencies)} us")
        for line in timing_table(TIMINGS):
            print(line)
    print(f"  total {total:.1f} s")
    return 1 if failed else 0


def save_artifacts(directory, boot, guest, shared):
    d = os.path.join(directory, f"boot{boot}")
    os.makedirs(d, exist_ok=True)
    for name in ("console.log", "qemu.stderr"):
        src = os.path.join(guest.work, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(d, name))
    with open(os.path.join(d, "control.log"), "w") as f:
        f.write("\n".join(guest.transcript) + "\n")
    for w in shared.get("watchers", []):
        with open(os.path.join(d, f"mijian-{w.name}.jsonl"), "wb") as f:
            f.write(w.raw)


def report_failure(guest, what):
    print(f"\n[vm] FAILED: {what}", file=sys.stderr)
    print("[vm] ---- guest console (ttyS0) ----", file=sys.stderr)
    print(guest.console(), file=sys.stderr)
    if guest.proc and guest.proc.poll() is None and guest.ctl:
        try:
            jobs = guest.sh("for f in /run/bg/*.err; do [ -s \"$f\" ] && { echo \"== $f\"; tail -n 20 \"$f\"; }; done; true",
                            check=False, timeout=30)
            if jobs:
                print("[vm] ---- background jobs' stderr in the guest (mijian) ----", file=sys.stderr)
                print("\n".join(jobs), file=sys.stderr)
        except (Failure, RigError, TimeoutError, OSError):
            pass
    print("[vm] ---- control port transcript (last 200 lines) ----", file=sys.stderr)
    print("\n".join(guest.transcript[-200:]), file=sys.stderr)
    print("[vm] ---- end ----", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
