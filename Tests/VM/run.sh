#!/usr/bin/env bash
# The VM rig: builds the guest (Tests/VM/build-guest.sh) and runs the scenarios (Tests/VM/rig.py).
#
#   Tests/VM/run.sh [--mijian PATH] [--no-build] [rig.py options: --scenario NAME ... --list --keep]
#
# Without --mijian, .build/debug/mijian is used when it exists. Exit status: 0 every scenario
# passed, 1 one failed (the guest's console is printed), 2 usage or setup error.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mijian="${MIJIAN:-}"
build=1
rig_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mijian) mijian="${2:?--mijian needs a path}"; shift 2 ;;
    --no-build) build=0; shift ;;
    --list) exec python3 "$here/rig.py" --list ;;
    -h|--help) sed -n '2,8p' "$0"; python3 "$here/rig.py" --help; exit 0 ;;
    *) rig_args+=("$1"); shift ;;
  esac
done
if [ -z "$mijian" ] && [ -x "$repo/.build/debug/mijian" ]; then mijian="$repo/.build/debug/mijian"; fi
[ -z "$mijian" ] || mijian="$(realpath "$mijian")"
for tool in qemu-system-x86_64 python3 cpio; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install qemu-system-x86 python3 cpio)" >&2; exit 2; }
done
out="${VM_OUT:-$here/out}"
if [ "$build" = 1 ]; then
  MIJIAN="$mijian" "$here/build-guest.sh" --out "$out"
fi
exec python3 "$here/rig.py" --out "$out" ${mijian:+--mijian "$mijian"} "${rig_args[@]}"
