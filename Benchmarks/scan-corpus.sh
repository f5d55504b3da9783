#!/usr/bin/env bash
# Precision and recall of `mijian scan` on the labelled corpus (Tests/Fixtures/markings, written by
# scripts/fixtures/make-markings-corpus.py): runs `mijian scan --format json` over the corpus and
# compares every file and archive member it lists with labels.json.
#
# Scored per labelled document (archives themselves are left out: their label is the strongest of
# their members, which are scored one by one). A document counts as a marking found when the scan
# gives it status `marked`.
#   precision = marked and labelled marking / marked
#   recall    = marked and labelled marking / labelled marking
#   false-positive rate = marked but labelled mention or none / labelled mention or none
# Also printed: the whole table of label against status, each miss and false positive with the
# scan's reason, unread files, and paths the scan listed that no label names (or the reverse).
#
# Usage: Benchmarks/scan-corpus.sh [MIJIAN_BINARY]   (default: a release build, made here)
# The scan's JSON is kept in Benchmarks/out/scan-corpus.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [[ -z $bin ]]; then
  swift build -c release --product mijian >/dev/null
  bin=.build/release/mijian
fi
corpus=$PWD/Tests/Fixtures/markings/corpus
labels=$PWD/Tests/Fixtures/markings/labels.json
mkdir -p Benchmarks/out
out=Benchmarks/out/scan-corpus.json
status=0
"$bin" scan --format json --no-index --output "$out" "$corpus" || status=$?
# 0, 1 (a marking where the policy forbids one) and 3 (a file could not be read) are answers;
# 2 is a failure of the scan itself.
if [[ $status -eq 2 || ! -s $out ]]; then
  echo "mijian scan exited $status without a report" >&2
  exit 2
fi
echo "mijian scan exit status $status ($bin)"
python3 - "$corpus" "$labels" "$out" <<'EOF'
import json
import os
import sys

corpus, labels_path, report_path = sys.argv[1:]
labels = {e["path"]: e for e in json.load(open(labels_path, encoding="utf-8"))}
report = json.load(open(report_path, encoding="utf-8"))
STATUS = {"marked": "marking", "mentioned": "mention", "clean": "none", "unread": "unread"}
# An mbox is scored by its messages; a message is scored itself (its Subject and body) with
# what its attachments hold, as the message carries them.
CONTAINERS = ("zip", "tar", "gz", "mbox")
prefixes = sorted({corpus.rstrip("/") + "/", os.path.realpath(corpus) + "/"}, key=len, reverse=True)


def relative(path):
    for p in prefixes:
        if path.startswith(p):
            path = path[len(p):]
            break
    # A tar.gz may be listed as its tar inside the gz (pack.tar.gz!pack.tar!notes/memo.txt): the
    # labels name the tar's members straight after the .tar.gz.
    parts = path.split("!")
    out = [parts[0]]
    for i in range(1, len(parts)):
        prev = out[-1].rsplit("/", 1)[-1]
        inner = prev[:-3] if prev.endswith(".gz") else (prev[:-4] + ".tar" if prev.endswith(".tgz") else None)
        if inner and inner.endswith(".tar") and parts[i] == inner and i + 1 < len(parts):
            continue
        out.append(parts[i])
    return "!".join(out)


results = {}
for f in report.get("files", []):
    results[relative(f["path"])] = f
for e in report.get("errors", []):
    results.setdefault(relative(e["path"]), {"status": "unread", "reason": e.get("reason"), "hits": []})

docs = [e for e in labels.values() if e["format"] not in CONTAINERS]
tp = fp = fn = 0
negatives = sum(1 for e in docs if e["expect"] in ("mention", "none"))
misses, false_pos, wrong_level = [], [], []
table = {}
for e in docs:
    r = results.get(e["path"])
    got = STATUS.get(r["status"], r["status"]) if r else "absent"
    table[(e["expect"], got)] = table.get((e["expect"], got), 0) + 1
    if got == "marking" and e["expect"] == "marking":
        tp += 1
        levels = {h["level"] for h in r.get("hits", []) if h["kind"] == "marking"}
        if not levels:  # a message marked by an attachment: the attachment's level
            levels = {h["level"] for p, m in results.items() if p.startswith(e["path"] + "!")
                      for h in m.get("hits", []) if h["kind"] == "marking"}
        if e["level"] not in levels:
            wrong_level.append((e["path"], e["level"], sorted(levels)))
    elif got == "marking":
        fp += 1
        hit = next((h for h in r.get("hits", []) if h["kind"] == "marking"), {})
        false_pos.append((e["path"], e["expect"], hit.get("text"), hit.get("where"), hit.get("reason")))
    elif e["expect"] == "marking":
        fn += 1
        misses.append((e["path"], got, (r or {}).get("reason"), [(h["kind"], h["text"], h.get("reason")) for h in (r or {}).get("hits", [])]))

positives = tp + fn
precision = tp / (tp + fp) if tp + fp else float("nan")
recall = tp / positives if positives else float("nan")
fpr = fp / negatives if negatives else float("nan")
print(f"documents scored: {len(docs)} (labelled marking {positives}, mention or none {negatives}, "
      f"unread {sum(1 for e in docs if e['expect'] == 'unread')}); files listed by the scan: {len(report.get('files', []))}")
print(f"precision {precision:.3f} ({tp}/{tp + fp})   recall {recall:.3f} ({tp}/{positives})   "
      f"false-positive rate {fpr:.3f} ({fp}/{negatives})")
kinds = ["marking", "mention", "none", "unread", "absent"]
print("\nlabel \\ scan   " + "".join(f"{k:>9}" for k in kinds))
for want in ["marking", "mention", "none", "unread"]:
    print(f"{want:<14} " + "".join(f"{table.get((want, k), 0):>9}" for k in kinds))
if misses:
    print("\nmissed markings:")
    for path, got, reason, hits in misses:
        print(f"  {path}: {got}" + (f" ({reason})" if reason else "") + (f" hits {hits}" if hits else ""))
if false_pos:
    print("\nfalse positives:")
    for path, want, text, where, reason in false_pos:
        print(f"  {path} (labelled {want}): {text} at {where}: {reason}")
quiet = [(e["path"], STATUS.get(results[e["path"]]["status"]) if e["path"] in results else "absent")
         for e in docs if e["expect"] == "mention"
         and (e["path"] not in results or results[e["path"]]["status"] != "mentioned")]
if quiet:
    print("\nmentions the scan did not report as mentions:")
    for path, got in quiet:
        print(f"  {path}: {got}")
if wrong_level:
    print("\nmarkings found with another level:")
    for path, want, got in wrong_level:
        print(f"  {path}: labelled {want}, scan {got}")
unread_wanted = [e for e in docs if e["expect"] == "unread"]
print("\nlabelled unread:")
for e in unread_wanted:
    r = results.get(e["path"])
    print(f"  {e['path']}: {r['status'] if r else 'absent'}" + (f" ({r.get('reason')})" if r and r.get("reason") else ""))
# Archives and spools: the scan's status of the container itself, beside its label.
print("\narchives and spools:")
for e in labels.values():
    if e["format"] in CONTAINERS:
        r = results.get(e["path"])
        print(f"  {e['path']}: labelled {e['expect']}, scan {r['status'] if r else 'absent'}")
extra = sorted(set(results) - set(labels))
if extra:
    print("\nlisted by the scan, not labelled:")
    for p in extra:
        print(f"  {p}: {results[p]['status']}")
EOF
