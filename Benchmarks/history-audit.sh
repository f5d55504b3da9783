#!/usr/bin/env bash
# net.history's cost in a full audit: `mijian audit --root` (release) of a machine whose homes hold
# PROFILES browser profiles of VISITS visits each (half Chromium, half Firefox, built on the
# schemas of the fixture databases the real browsers wrote), against the same machine without
# them. Goal: within 2x. Both roots are the wired-desktop fixture plus /etc/passwd and homes.
# Usage: [MIJIAN="path ..."] [ROUNDS=N] Benchmarks/history-audit.sh [PROFILES] [VISITS]     (defaults: 10 100000; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."
profiles=${1:-10}
visits=${2:-100000}
# MIJIAN=path measures a binary built elsewhere (a release build in a scratch path of its own
# keeps .build free for others meanwhile); several paths, separated by spaces, are measured side by
# side (the code before and after a change).
if [ -n "${MIJIAN:-}" ]; then
  bins=$MIJIAN
else
  swift build -c release --product mijian >/dev/null
  bins=$PWD/.build/release/mijian
fi
work=$(mktemp -d /tmp/mijian-history-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
for root in bare browsers; do
  cp -a Tests/Fixtures/hosts/wired-desktop "$work/$root"
  cp Tests/Fixtures/hosts/browser-chromium-public/etc/passwd "$work/$root/etc/passwd"
  mkdir -p "$work/$root/root"
done
python3 - "$work/browsers" "$profiles" "$visits" <<'PY'
import os, random, shutil, sqlite3, sys
root, profiles, visits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fixtures = "Tests/Fixtures/hosts"
chromium = f"{fixtures}/browser-chromium-public/home/li/.config/chromium/Default"
firefox = f"{fixtures}/browser-firefox-public/home/zhang/.mozilla/firefox/k3x9q2lm.default-esr"
rng = random.Random(53)
hosts = [f"www.site{i}.example.com" for i in range(1800)] + [f"app{i}.unit.internal" for i in range(200)]
urls = [f"https://{rng.choice(hosts)}/page/{i}?q={i * 7}" for i in range(visits // 5)]
now_us = 1_796_000_000 * 1_000_000
for n in range(profiles):
    user = f"user{n}"
    home = f"{root}/home/{user}"
    if n % 2 == 0:
        dest = f"{home}/.config/chromium/Default"
        os.makedirs(dest)
        shutil.copy(f"{chromium}/History", dest)
        shutil.copy(f"{chromium}/TransportSecurity", dest)
        db = sqlite3.connect(f"{dest}/History")
        db.execute("DELETE FROM urls"); db.execute("DELETE FROM visits")
        epoch = 11_644_473_600 * 1_000_000
        db.executemany("INSERT INTO urls (id, url, title, visit_count, typed_count, last_visit_time, hidden) VALUES (?, ?, '', 5, 0, ?, 0)",
                       [(i + 1, u, now_us + epoch) for i, u in enumerate(urls)])
        db.executemany("INSERT INTO visits (url, visit_time, transition) VALUES (?, ?, 805306368)",
                       [(rng.randrange(len(urls)) + 1, now_us + epoch - rng.randrange(80 * 86400 * 1_000_000)) for _ in range(visits)])
    else:
        dest = f"{home}/.mozilla/firefox/p{n}.default-esr"
        os.makedirs(dest)
        shutil.copy(f"{firefox}/places.sqlite", dest)
        shutil.copy(f"{firefox}/SiteSecurityServiceState.bin", dest)
        db = sqlite3.connect(f"{dest}/places.sqlite")
        db.execute("DELETE FROM moz_historyvisits"); db.execute("DELETE FROM moz_places")
        db.executemany("INSERT INTO moz_places (id, url, rev_host, visit_count, last_visit_date, guid, url_hash) VALUES (?, ?, ?, 5, ?, ?, 0)",
                       [(i + 1, u, u.split('/')[2][::-1] + ".", now_us, f"g{i:010d}") for i, u in enumerate(urls)])
        db.executemany("INSERT INTO moz_historyvisits (place_id, visit_date, visit_type, from_visit, session, source) VALUES (?, ?, 1, 0, 0, 0)",
                       [(rng.randrange(len(urls)) + 1, now_us - rng.randrange(300 * 86400 * 1_000_000)) for _ in range(visits)])
    db.commit()
    db.close()
    os.makedirs(f"{home}/Documents", exist_ok=True)
PY
for n in $(seq 0 $((profiles - 1))); do mkdir -p "$work/bare/home/user$n/Documents"; done
du -sh "$work/browsers/home" | sed 's/^/profiles on disk: /'
# The two audits of each binary, run in turn in a shuffled order round after round (as
# audit-ratio.py does), so that the machine's drift falls on every command alike; a rule's fail
# (exit status 1) is the expected outcome on these roots. Medians of ROUNDS rounds (default 30).
python3 - "$work" "${ROUNDS:-30}" $bins <<'PY'
import os, random, resource, statistics, sys, time
work, rounds, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
commands = [(b, root, [b, "audit", "--root", f"{work}/{root}", "--format", "json", "--output", f"{work}/out-{i}-{root}.json"])
            for i, b in enumerate(binaries) for root in ("bare", "browsers")]
elapsed = {(b, root): [] for b, root, _ in commands}
cpu = {(b, root): [] for b, root, _ in commands}
null = os.open(os.devnull, os.O_WRONLY)
for round in range(rounds + 2):
    random.shuffle(commands)
    for b, root, argv in commands:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
        _, status = os.waitpid(pid, 0)
        end = time.perf_counter()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            sys.exit(f"history-audit: {' '.join(argv)} exited with {os.waitstatus_to_exitcode(status)}")
        if round >= 2:  # two rounds of warm-up
            elapsed[(b, root)].append(end - start)
            cpu[(b, root)].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
for b in binaries:
    w, n = statistics.median(elapsed[(b, "browsers")]), statistics.median(elapsed[(b, "bare")])
    cw, cn = statistics.median(cpu[(b, "browsers")]), statistics.median(cpu[(b, "bare")])
    print(f"{b}: with / without = {w * 1000:.1f} / {n * 1000:.1f} ms = {w / n:.2f}x (goal: within 2x); "
          f"CPU {cw * 1000:.1f} / {cn * 1000:.1f} ms = {cw / cn:.2f}x (medians of {rounds})")
PY
