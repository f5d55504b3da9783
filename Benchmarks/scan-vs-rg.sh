#!/usr/bin/env bash
# `mijian scan` beside ripgrep on a tree of more than 1 GB: bytes per second with a cold page
# cache (dropped before every run) and a warm one, and the second scan that the index lets skip
# unchanged files.
#
# The tree stands in for a home directory: the labelled corpus copied into many user folders
# (office files, PDFs, OFD, archives, GBK and UTF-8 text), large media-like files (random bytes
# behind real MP4, JPEG and ISO headers) and many small text files, one in a hundred marked.
# ripgrep searches the same tree for the three level words, twice: as a user runs it (`-uu`:
# hidden and ignored files too, a file stops being searched at its first NUL byte) and with
# `-uuu` (binary files searched whole: every byte read). It sees only UTF-8 text: the markings in
# GBK text, office files, PDFs, OFD and archives are invisible to it (counts printed below).
#
# Bounded by the disk, or by the CPU? Before the timings, each cold run (caches dropped) is
# measured alone: wall time, CPU seconds of the process and every child it reaped (the PDF
# workers), and the bytes it made the kernel read from the disk (read_bytes of /proc/PID/io,
# which a reaped child adds to its parent's). Beside the scan, a replay reads what the scan
# reads, as plainly as it can be read, with as many threads as the scan's readers: every file
# opened in walk order, a file up to 64 KiB whole, a larger one its first and last 64 KiB. Its
# cold wall time is the disk floor D: the time the disk needs for those bytes, with nothing to
# parse. The first scan is bounded by the disk when its CPU seconds spread over the cores fit
# inside D (CPU / cores <= D: the parsing can hide behind the reads) and its cold wall time is
# within 1.25 D. Printed: the ratios and the verdict.
#
# Needs root for the cold runs (echo 3 > /proc/sys/vm/drop_caches), hyperfine and ripgrep
# (apt-get install -y hyperfine ripgrep), python3.
# Usage: Benchmarks/scan-vs-rg.sh [TREE_DIR]   (default: /var/tmp/mijian-scan-bench; reused
#        when it is already built, remove it to build again). MIJIAN=path picks the binary
#        (default: a release build, made here); RUNS=n the runs per measurement (default 3),
#        WARMUP=n the warm-up runs before the warm ones (default 1); DISK_ONLY=1 measures whether the
#        first scan is bounded by the disk and stops there (no hyperfine runs).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tree=${1:-/var/tmp/mijian-scan-bench}
runs=${RUNS:-3}
for tool in hyperfine rg python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install -y hyperfine ripgrep python3" >&2; exit 2; }
done
bin=${MIJIAN:-}
if [[ -z $bin ]]; then
  swift build -c release --product mijian >/dev/null
  swift build -c release --product mijian-pdftext >/dev/null
  bin=$repo/.build/release/mijian
fi
bin=$(realpath "$bin")
# The scan reads PDFs through mijian-pdftext beside its binary; a copy of the binary alone
# falls back to one pdftotext a PDF (the way before the worker), measured beside it.
[[ -x $(dirname "$bin")/mijian-pdftext ]] || echo "warning: no mijian-pdftext beside $bin: PDFs go through pdftotext" >&2
solo=$(mktemp -d /var/tmp/mijian-solo.XXXXXX)
cp "$bin" "$solo/mijian"
[[ ! -e /usr/lib/mijian/mijian-pdftext && ! -e /usr/libexec/mijian/mijian-pdftext ]] || echo "warning: an installed mijian-pdftext serves the pdftotext run too" >&2
out=$repo/Benchmarks/out
mkdir -p "$out"

# ---- the tree -------------------------------------------------------------------------------
if [[ ! -f $tree/.complete ]]; then
  rm -rf "$tree"
  mkdir -p "$tree"
  python3 - "$repo/Tests/Fixtures/markings/corpus" "$tree" <<'EOF'
import os
import random
import shutil
import sys

corpus, tree = sys.argv[1:]
rng = random.Random(26)
# Office files, PDFs, OFD, archives, GBK and UTF-8 text: the corpus in 150 user folders.
for u in range(150):
    shutil.copytree(corpus, os.path.join(tree, "home", f"user{u:03d}", "Documents"))
# Media: a few large files and many photo-sized ones, random bytes behind real magic numbers.
MAGIC = {".mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
         ".iso": b"\x00" * 32768 + b"\x01CD001\x01\x00",
         ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"}


def media(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ext = os.path.splitext(path)[1]
    with open(path, "wb") as f:
        f.write(MAGIC[ext])
        left = size - len(MAGIC[ext])
        while left > 0:
            n = min(left, 8 << 20)
            f.write(rng.randbytes(n))
            left -= n


for i in range(4):
    media(os.path.join(tree, "home", f"user{i:03d}", "Videos", f"meeting-{i}.mp4"), 120 << 20)
media(os.path.join(tree, "home", "user000", "Downloads", "debian-12-netinst.iso"), 150 << 20)
for i in range(1500):
    media(os.path.join(tree, "home", f"user{i % 150:03d}", "Pictures", f"IMG_{i:05d}.jpg"), rng.randint(60, 180) << 10)
# Text: notes in UTF-8 and GBK, one in a hundred with a marking on its second line.
LINE = "一季度办公室完成了会议组织、文件收发和后勤保障等工作，下一步将继续完善制度，提高办事效率。\n"
for i in range(12000):
    lines = [f"{i:06d}\n"] + ([("秘密★1年\n", "机密★2年\n", "绝密★长期\n")[i % 3]] if i % 100 == 0 else []) \
        + [LINE] * rng.randint(40, 120)
    text = "".join(lines)
    data = text.encode("gbk") if i % 2 else text.encode("utf-8")
    path = os.path.join(tree, "home", f"user{i % 150:03d}", "Notes", f"note-{i:05d}.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
EOF
  touch "$tree/.complete"
fi
bytes=$(du -sb --exclude=.complete "$tree" | cut -f1)
files=$(find "$tree" -type f ! -name .complete | wc -l)
echo "tree: $tree, $files files, $bytes bytes"
(( bytes >= 1000000000 )) || { echo "the tree is under 1 GB" >&2; exit 2; }

# ---- what each finds ------------------------------------------------------------------------
index=$(mktemp -d /var/tmp/mijian-scan-index.XXXXXX)
scan() { "$bin" scan --format json --output "$1" --state-dir "$index" "$tree" || [[ $? -eq 1 || $? -eq 3 ]]; }
rg_words=(-e 绝密 -e 机密 -e 秘密)
echo "rg -uu -l: $(rg -uu -l "${rg_words[@]}" "$tree" | wc -l) files with a level word (UTF-8 text only)"
echo "rg -uuu -l: $(rg -uuu -l "${rg_words[@]}" "$tree" | wc -l) files"

# ---- bounded by the disk? --------------------------------------------------------------------
# One cold run at a time: `measure NAME COMMAND…` drops the caches, runs the command and prints
# its name, wall s, CPU s (user + system of it and the children it reaped) and MB read from disk.
measure() {
  local name=$1
  shift
  sync
  echo 3 > /proc/sys/vm/drop_caches
  python3 - "$name" "$@" <<'EOF'
import os, sys, time
def io():
    with open("/proc/self/io") as f:
        return int(next(l for l in f if l.startswith("read_bytes:")).split()[1])
name, argv = sys.argv[1], sys.argv[2:]
before, start = io(), time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open("/dev/null", os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvp(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
wall, cpu = time.monotonic() - start, usage.ru_utime + usage.ru_stime
print(f"{name}\t{wall:.2f}\t{cpu:.2f}\t{(io() - before) / 1e6:.0f}")
EOF
}
# As many reading threads as the scan (ScanOptions.workers: two a core, at most 8).
readers=$(( 2 * $(nproc) ))
(( readers > 8 )) && readers=8
replay=$(mktemp /var/tmp/mijian-replay.XXXXXX.py)
cat > "$replay" <<'EOF'
# What the scan reads, read plainly: every regular file in walk order (sorted names, no link
# followed), one up to 64 KiB whole, a larger one its first and last 64 KiB; N threads.
import os, sys, threading
tree, threads = sys.argv[1], int(sys.argv[2])
files = []
def walk(path):
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False): walk(entry.path)
        elif entry.is_file(follow_symlinks=False) and entry.name != ".complete": files.append(entry.path)
walk(tree)
def read(part):
    for path in files[part::threads]:
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        os.pread(fd, min(size, 65536), 0)
        if size > 65536: os.pread(fd, 65536, max(65536, size - 65536))
        os.close(fd)
workers = [threading.Thread(target=read, args=(n,)) for n in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
EOF
disk=$out/scan-disk.tsv
: > "$disk"
for _ in $(seq "$runs"); do
  rm -rf "${index:?}"/*
  measure "mijian scan, first (cold)" "$bin" scan --format json --output /dev/null --state-dir "$index" "$tree" >> "$disk"
  measure "replay of its reads ($readers threads)" python3 "$replay" "$tree" "$readers" >> "$disk"
  measure "rg -uu (cold)" rg -uu -c "${rg_words[@]}" "$tree" >> "$disk"
done
measure "mijian scan, second (indexed, cold)" "$bin" scan --format json --output /dev/null --state-dir "$index" "$tree" >> "$disk"
rm -f "$replay"
python3 - "$disk" "$(nproc)" <<'EOF'
import statistics, sys
rows, cores = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])], int(sys.argv[2])
names = list(dict.fromkeys(r[0] for r in rows))
print(f"\ncold runs, one at a time ({cores} cores; min-max of the runs, ratio and MB of the median):")
print(f"{'command':<40} {'wall s':>12} {'CPU s':>12} {'CPU/(cores x wall)':>19} {'read MB':>8}")
median = {}
for name in names:
    own = [r for r in rows if r[0] == name]
    wall, cpu, mb = ([float(r[i]) for r in own] for i in (1, 2, 3))
    median[name] = (statistics.median(wall), statistics.median(cpu), statistics.median(mb))
    span = lambda v: f"{min(v):.2f}" if len(v) == 1 else f"{min(v):.2f}-{max(v):.2f}"
    print(f"{name:<40} {span(wall):>12} {span(cpu):>12} {median[name][1] / (cores * median[name][0]):>19.2f} {median[name][2]:>8.0f}")
scan = median["mijian scan, first (cold)"]
floor = median[next(n for n in names if n.startswith("replay"))]
print(f"\ndisk floor D (the replay's median wall): {floor[0]:.2f} s for {floor[2]:.0f} MB (the scan read {scan[2]:.0f} MB)")
print(f"first scan (median): wall {scan[0]:.2f} s = {scan[0] / floor[0]:.2f} D; "
      f"CPU {scan[1]:.2f} s / {cores} cores = {scan[1] / cores:.2f} s = {scan[1] / cores / floor[0]:.2f} D")
if scan[1] / cores > floor[0]:
    print("verdict: NOT bounded by the disk: its CPU seconds over the cores exceed the disk floor")
elif scan[0] > 1.25 * floor[0]:
    print("verdict: NOT bounded by the disk: its wall time exceeds 1.25 D")
else:
    print("verdict: bounded by the disk")
EOF
[[ -n ${DISK_ONLY:-} ]] && { rm -rf "$index" "$solo"; exit 0; }

# ---- timings --------------------------------------------------------------------------------
# hyperfine pairs --prepare options with commands in order (or applies a single one to all).
drop='sync; echo 3 > /proc/sys/vm/drop_caches'
fresh="rm -rf $index/*"
hyperfine --style basic --runs "$runs" -i --export-json "$out/scan-vs-rg-cold.json" \
  -n "mijian scan, first (empty index, cold cache)" --prepare "$drop; $fresh" \
  "$bin scan --format json --output $out/scan-tree.json --state-dir $index $tree" \
  -n "rg -uu (cold cache)" --prepare "$drop" "rg -uu -c ${rg_words[*]} $tree" \
  -n "rg -uuu (cold cache)" --prepare "$drop" "rg -uuu -c ${rg_words[*]} $tree"
hyperfine --style basic --runs "$runs" --warmup "${WARMUP:-1}" -i --export-json "$out/scan-vs-rg-warm.json" \
  -n "mijian scan, first (empty index, warm cache)" --prepare "$fresh" \
  "$bin scan --format json --output /dev/null --state-dir $index $tree" \
  -n "mijian scan --no-index (warm cache)" \
  "$bin scan --format json --output /dev/null --no-index $tree" \
  -n "mijian scan --no-index, pdftotext a PDF (warm)" \
  "$solo/mijian scan --format json --output /dev/null --no-index $tree" \
  -n "rg -uu (warm cache)" "rg -uu -c ${rg_words[*]} $tree" \
  -n "rg -uuu (warm cache)" "rg -uuu -c ${rg_words[*]} $tree"
# The second scan: the index written by a first one, nothing changed since.
scan /dev/null
hyperfine --style basic --runs "$runs" -i --export-json "$out/scan-vs-rg-indexed.json" \
  -n "mijian scan, second (indexed, cold cache)" --prepare "$drop" \
  "$bin scan --format json --output /dev/null --state-dir $index $tree" \
  -n "mijian scan, second (indexed, warm cache)" --prepare true \
  "$bin scan --format json --output /dev/null --state-dir $index $tree"
scan "$out/scan-tree-indexed.json"
rm -rf "$index" "$solo"

python3 - "$bytes" "$out" <<'EOF'
import json, sys
size, out = int(sys.argv[1]), sys.argv[2]
t = json.load(open(f"{out}/scan-tree.json"))["totals"]
print(f"\nmijian scan: {t['files']} documents listed, marked {t['marked']}, mentioned {t['mentioned']}, "
      f"clean {t['clean']}, unread {t['unread']}, not documents {t['not_documents']}, excluded {t['excluded']}, "
      f"bytes read {t['bytes_read']} of {t['bytes_examined']} examined")
# user + system against wall time says whether a run waited for the disk or for the CPU.
print(f"\n{'command':<46} {'mean s':>8} {'± s':>7} {'MB/s':>8} {'user s':>7} {'sys s':>6}")
for name in ("cold", "warm", "indexed"):
    for r in json.load(open(f"{out}/scan-vs-rg-{name}.json"))["results"]:
        print(f"{r['command']:<46} {r['mean']:>8.2f} {r['stddev'] or 0:>7.2f} {size / r['mean'] / 1e6:>8.0f} "
              f"{r['user']:>7.2f} {r['system']:>6.2f}")
t = json.load(open(f"{out}/scan-tree-indexed.json"))["totals"]
print(f"\nsecond scan: {t['from_index']} of {t['files']} results from the index, {t['bytes_read']} bytes read")
EOF
