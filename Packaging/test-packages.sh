#!/usr/bin/env bash
# Packaging/test-packages.sh [--debs DIR]: the packages, end to end.
#
#  1. builds both packages with build-deb.sh into .build-release/debs (or takes mijian_*.deb and mijian-collector_*.deb
#     from DIR);
#  2. inspects them (dpkg-deb --info/--contents): the files each must carry, conffiles, Depends;
#  3. lintian: no error, no warning (overrides in Packaging/debian/*.lintian-overrides say why);
#  4. makes a Debian 12 root with debootstrap --variant=minbase from the mirror apt uses here,
#     installs the declared Depends with apt and the packages with dpkg -i (so a dependency
#     missing from Depends shows as a binary that does not start), and runs mijian --version,
#     mijian audit, mijian-collector --help from the installed files; checks the conffiles, the
#     key postinst created (0600), a second dpkg -i that keeps both, the collector's user;
#  5. systemd-analyze verify on both units, and systemd-analyze security --offline=true: fails
#     when mijian.service is above 2.4 or mijian-collector.service above 1.5 (the agent's
#     unit says line by line what each point of its exposure buys);
#  6. dpkg --remove keeps the key and the conffiles, dpkg --purge leaves no file behind.
#
# Needs root (chroot, mount), debootstrap, lintian, dpkg-dev, systemd (systemd-analyze). When
# debootstrap cannot reach the mirror, step 4 runs on this machine itself and says so loudly.
# MIJIAN_DEBOOTSTRAP_CACHE=DIR keeps the downloaded .debs of the root between runs.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
goal_agent=2.4
goal_collector=1.5

die() { echo "test-packages.sh: FAIL: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*"; }

debs=
while [ $# -gt 0 ]; do
    case $1 in
        --debs) [ $# -ge 2 ] || die "--debs needs a directory"; debs=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) die "unknown argument $1 (usage: test-packages.sh [--debs DIR])" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (chroot, mount, dpkg)"
for tool in dpkg-deb lintian debootstrap systemd-analyze chroot mount; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install lintian debootstrap dpkg-dev systemd)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mijian-pkgtest.XXXXXX")
root=$work/root
mounted=()
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m=${mounted[i]}
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

start=$(date +%s)
phase_start=$start
phase() {
    local now
    now=$(date +%s)
    printf '   (%s: %d s)\n' "$1" $((now - phase_start))
    phase_start=$now
}

# --- 1. the packages -------------------------------------------------------------------------
say "packages"
if [ -z "$debs" ]; then
    debs=$repo/.build-release/debs
    "$here/build-deb.sh" "$debs" >/dev/null
    phase "build-deb.sh"
fi
version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' "$repo/Sources/MijianCore/Model/Report.swift")
agent_deb=$debs/mijian_${version}_amd64.deb
collector_deb=$debs/mijian-collector_${version}_amd64.deb
[ -f "$agent_deb" ] || die "no $agent_deb"
[ -f "$collector_deb" ] || die "no $collector_deb"
ls -l "$agent_deb" "$collector_deb"

# --- 2. inspection -----------------------------------------------------------------------------
say "dpkg-deb --info / --contents"
must_contain() { # DEB PATH…: the package holds each path
    local deb=$1 contents path
    shift
    contents=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|')
    for path in "$@"; do
        grep -qx "$path" <<<"$contents" || die "$(basename "$deb") lacks $path"
    done
}
for deb in "$agent_deb" "$collector_deb"; do
    dpkg-deb --info "$deb"
    dpkg-deb --contents "$deb"
    [ "$(dpkg-deb --field "$deb" Version)" = "$version" ] || die "$(basename "$deb"): version is not $version"
    depends=$(dpkg-deb --field "$deb" Depends)
    grep -q libc6 <<<"$depends" || die "$(basename "$deb"): Depends ($depends) lacks libc6"
    # Every file belongs to root: --root-owner-group.
    if dpkg-deb --contents "$deb" | awk '$2 != "root/root"' | grep -q .; then
        die "$(basename "$deb") has files not owned by root/root"
    fi
done
# What the code links (CPcap, CUdev, CZlib; GRDB's SQLite; the collector's CZstd) must have reached Depends.
for lib in libpcap0.8 libudev1 zlib1g; do
    grep -q "$lib" <<<"$(dpkg-deb --field "$agent_deb" Depends)" || die "mijian does not depend on $lib"
done
for lib in libsqlite3-0 libzstd1; do
    grep -q "$lib" <<<"$(dpkg-deb --field "$collector_deb" Depends)" || die "mijian-collector does not depend on $lib"
done
must_contain "$agent_deb" /usr/bin/mijian /lib/systemd/system/mijian.service \
    /lib/udev/rules.d/70-mijian-usb-input.rules /usr/lib/tmpfiles.d/mijian.conf \
    /etc/mijian/policy.yaml /etc/mijian/agent.yaml /usr/share/man/man1/mijian.1.gz \
    /usr/share/man/man5/mijian-agent.yaml.5.gz /usr/share/man/man5/mijian-policy.5.gz \
    /usr/share/bash-completion/completions/mijian \
    /usr/share/zsh/vendor-completions/_mijian /usr/share/doc/mijian/copyright
must_contain "$collector_deb" /usr/bin/mijian-collector /lib/systemd/system/mijian-collector.service \
    /usr/lib/tmpfiles.d/mijian-collector.conf /etc/default/mijian-collector \
    /usr/share/man/man1/mijian-collector.1.gz \
    /usr/share/bash-completion/completions/mijian-collector \
    /usr/share/zsh/vendor-completions/_mijian-collector /usr/share/doc/mijian-collector/copyright
[ "$(dpkg-deb --ctrl-tarfile "$agent_deb" | tar -xO ./conffiles)" = "$(printf '/etc/mijian/policy.yaml\n/etc/mijian/agent.yaml')" ] ||
    die "mijian's conffiles are not policy.yaml and agent.yaml"
[ "$(dpkg-deb --ctrl-tarfile "$collector_deb" | tar -xO ./conffiles)" = /etc/default/mijian-collector ] ||
    die "mijian-collector's conffiles are not /etc/default/mijian-collector"
phase "inspection"

# --- 3. lintian --------------------------------------------------------------------------------
say "lintian"
# Errors and warnings fail; the one error that cannot be fixed (libyaml inside Yams) is
# overridden in Packaging/debian/*/lintian-overrides with its reason. Left at info level
# (lintian --display-info shows them): hardening-no-fortify-functions (the C code inside the
# Swift packages, BoringSSL and libyaml, is compiled by SwiftPM without _FORTIFY_SOURCE),
# package-supports-alternative-init-but-no-init.d-script (the services are systemd units
# only: sd_notify, the watchdog and the sandbox have no sysvinit counterpart), and
# spelling-error-in-binary (strings of BoringSSL and Foundation, not ours).
lintian --fail-on error,warning "$agent_deb" "$collector_deb" ||
    die "lintian reported errors or warnings (above)"
echo "lintian: no error, no warning"
phase "lintian"

# --- 4. install into a Debian 12 root -----------------------------------------------------------
say "Debian 12 root"
# The mirror apt uses here (deb822 or one-line sources), for bookworm's main archive.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ {print $2} /^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' |
    grep -v -e security -e '^$' | grep -m 1 debian || true)
mirror=${mirror:-http://deb.debian.org/debian}
cache_opt=()
if [ -n "${MIJIAN_DEBOOTSTRAP_CACHE:-}" ]; then
    mkdir -p "$MIJIAN_DEBOOTSTRAP_CACHE"
    cache_opt=(--cache-dir="$(cd "$MIJIAN_DEBOOTSTRAP_CACHE" && pwd)")
fi
on_host=no
if debootstrap --variant=minbase "${cache_opt[@]}" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    echo "debootstrap --variant=minbase bookworm from $mirror: $(du -sh "$root" | cut -f1)"
    for fs in proc sys; do
        mount --bind "/$fs" "$root/$fs"
        mounted+=("$root/$fs")
    done
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    inroot() { chroot "$root" "$@"; }
else
    tail -n 5 "$work/debootstrap.log" >&2
    echo "test-packages.sh: WARNING: debootstrap could not make a root from $mirror;" >&2
    echo "test-packages.sh: WARNING: the packages are installed, run and purged on THIS machine." >&2
    on_host=yes
    root=
    inroot() { "$@"; }
fi
phase "debootstrap"

say "dependencies (apt-get satisfy the packages' Depends and Recommends), then dpkg -i"
if [ "$on_host" = no ]; then
    debdir=/tmp
    cp "$agent_deb" "$collector_deb" "$root/tmp/"
else
    debdir=$(cd "$debs" && pwd)
fi
inroot apt-get update -qq
# Recommends (systemd, udev, procps) too: a workstation has them, the postinst uses
# systemd-tmpfiles and deb-systemd-helper when they are there, and `systemd-analyze verify
# --root` needs systemd's own units and ExecReload's /bin/kill in the root.
relations=
for deb in "$agent_deb" "$collector_deb"; do
    for field in Depends Recommends; do
        value=$(dpkg-deb --field "$deb" "$field")
        [ -z "$value" ] || relations="${relations:+$relations, }$value"
    done
done
echo "apt-get satisfy \"$relations\""
DEBIAN_FRONTEND=noninteractive inroot apt-get satisfy -y -qq --no-install-recommends "$relations" >"$work/apt.log" 2>&1 ||
    die "apt-get could not install the packages' dependencies: $(tail -n 5 "$work/apt.log")"
inroot dpkg -i "$debdir/$(basename "$agent_deb")" "$debdir/$(basename "$collector_deb")" | tee "$work/install.log"
keyid=$(sed -n 's/^keyid: \(sha256:[0-9a-f]\{64\}\)$/\1/p' "$work/install.log" | head -n 1)
[ -n "$keyid" ] || die "postinst did not print the new key's keyid"
grep -q "mijian enroll" "$work/install.log" || die "postinst did not print the next step (enrolment)"
phase "install"

say "the installed files"
got=$(inroot mijian --version)
[ "$got" = "$version" ] || die "mijian --version printed \"$got\", not $version"
echo "mijian --version: $got"
got=$(inroot mijian-collector --version)
[ "$got" = "$version" ] || die "mijian-collector --version printed \"$got\", not $version"
inroot mijian-collector --help >"$work/collector-help.txt" || die "mijian-collector --help failed"
grep -q "USAGE: mijian-collector" "$work/collector-help.txt" || die "mijian-collector --help printed no usage"
echo "mijian-collector --help: $(grep -c . "$work/collector-help.txt") lines"

status=0
inroot mijian audit --policy /etc/mijian/policy.yaml >"$work/audit.txt" 2>&1 || status=$?
tail -n 3 "$work/audit.txt"
# 0: every rule judged, none failed; 1: a rule failed (a build machine routes to the internet);
# 3: none failed but a rule could not look (error), named in the summary. Each is a run with a
# report; 2 (usage or runtime error, no report) and anything else is not.
case "$status" in
    0 | 1) ;;
    3) grep -q '^Summary: .*could not look (error): ' "$work/audit.txt" || die "mijian audit exited 3 without naming the rules that could not look" ;;
    *) die "mijian audit exited $status: $(tail -n 5 "$work/audit.txt")" ;;
esac
echo "mijian audit (installed policy): exit $status, $(grep -c . "$work/audit.txt") lines"

# mijian scan finds the installed PDF worker (not pdftotext) and reads a marked PDF's first page with it.
cp "$repo/Tests/Fixtures/markings/corpus/office/notice-mimi-1y.pdf" "${root}/tmp/marked.pdf"
status=0
inroot mijian scan /tmp/marked.pdf --no-index --format json \
    --policy /usr/share/doc/mijian/examples/unclassified-workstation.yaml >"$work/scan.json" 2>&1 || status=$?
[ "$status" = 1 ] || die "mijian scan of a marked PDF exited $status, not 1: $(tail -n 5 "$work/scan.json")"
grep -q '"PDF first pages read by /usr/lib/mijian/mijian-pdftext"' "$work/scan.json" ||
    die "mijian scan did not read the PDF with /usr/lib/mijian/mijian-pdftext: $(grep -A3 '"notes"' "$work/scan.json")"
grep -q '"marked": 1,' "$work/scan.json" || die "mijian scan did not find the PDF's marking"
rm -f "${root}/tmp/marked.pdf"
echo "mijian scan: the marked PDF read by /usr/lib/mijian/mijian-pdftext, exit 1"

cmp -s "${root}/etc/mijian/policy.yaml" "$repo/Policies/classified-workstation.yaml" ||
    die "/etc/mijian/policy.yaml is not Policies/classified-workstation.yaml"
conffiles=$(inroot dpkg-query -W -f='${Conffiles}\n' mijian mijian-collector | awk 'NF {print $1}' | sort | tr '\n' ' ')
[ "$conffiles" = "/etc/default/mijian-collector /etc/mijian/agent.yaml /etc/mijian/policy.yaml " ] ||
    die "dpkg knows these conffiles: $conffiles"
echo "conffiles: $conffiles"

key=${root}/var/lib/mijian/agent.key
[ -f "$key" ] || die "postinst created no /var/lib/mijian/agent.key"
got=$(inroot stat -c '%a %U' /var/lib/mijian/agent.key)
[ "$got" = "600 root" ] || die "agent.key is $got, not 600 root"
[ "$(stat -c '%a' "${root}/var/lib/mijian")" = 700 ] || die "/var/lib/mijian is not 0700"
shown=$(inroot mijian keys show --key-dir /var/lib/mijian | sed -n 's/^keyid: //p')
[ "$shown" = "$keyid" ] || die "mijian keys show says $shown, postinst printed $keyid"
echo "key: /var/lib/mijian/agent.key 0600 root, $keyid"

inroot getent passwd mijian-collector >/dev/null || die "postinst created no mijian-collector user"
# stat inside the root: the uid is the root's mijian-collector, not whoever has it here.
got=$(inroot stat -c '%a %U' /var/lib/mijian-collector)
[ "$got" = "700 mijian-collector" ] || die "/var/lib/mijian-collector is $got, not 700 mijian-collector"
inroot runuser -u mijian-collector -- mijian-collector hosts >/dev/null ||
    die "mijian-collector hosts failed as its own user on /var/lib/mijian-collector"
echo "collector: user mijian-collector, /var/lib/mijian-collector 0700, database opened as that user"

# An upgrade (the same package again) keeps the key and an edited conffile.
echo "# edited by the administrator" >>"${root}/etc/mijian/agent.yaml"
inroot dpkg -i "$debdir/$(basename "$agent_deb")" >"$work/reinstall.log"
grep -q "keeping the existing key" "$work/reinstall.log" || die "a second dpkg -i did not keep the key"
tail -n 1 "${root}/etc/mijian/agent.yaml" | grep -q "edited by the administrator" || die "a second dpkg -i lost the edited agent.yaml"
[ "$(inroot mijian keys show --key-dir /var/lib/mijian | sed -n 's/^keyid: //p')" = "$keyid" ] || die "the key changed on reinstall"
echo "reinstall: key and edited conffile kept"
phase "installed files"

# --- 5. the units ----------------------------------------------------------------------------------
say "systemd-analyze verify and security"
units=("${root}/lib/systemd/system/mijian.service" "${root}/lib/systemd/system/mijian-collector.service")
if [ -n "$root" ]; then
    # --root: ExecStart= binaries and the units are looked up in the installed root.
    SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$root" mijian.service mijian-collector.service ||
        die "systemd-analyze verify failed"
else
    SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "${units[@]}" || die "systemd-analyze verify failed"
fi
echo "systemd-analyze verify: both units pass"
for man in man1/mijian.1 man1/mijian-collector.1 man5/mijian-agent.yaml.5 man5/mijian-policy.5; do
    [ -f "${root}/usr/share/man/$man.gz" ] || die "Documentation=man:$(basename "$man") names a page that is not installed"
done
exposure() { # UNIT-FILE → the overall exposure figure
    systemd-analyze security --offline=true "$1" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
agent_exposure=$(exposure "${units[0]}")
collector_exposure=$(exposure "${units[1]}")
[ -n "$agent_exposure" ] && [ -n "$collector_exposure" ] || die "systemd-analyze security printed no exposure figure"
printf 'exposure: mijian.service %s (goal <= %s), mijian-collector.service %s (goal <= %s)\n' \
    "$agent_exposure" "$goal_agent" "$collector_exposure" "$goal_collector"
awk -v a="$agent_exposure" -v g="$goal_agent" 'BEGIN {exit !(a <= g)}' ||
    die "mijian.service exposure $agent_exposure is above $goal_agent"
awk -v a="$collector_exposure" -v g="$goal_collector" 'BEGIN {exit !(a <= g)}' ||
    die "mijian-collector.service exposure $collector_exposure is above $goal_collector"
phase "units"

# --- 6. remove, purge -------------------------------------------------------------------------------
say "dpkg --remove, dpkg --purge"
files=$(inroot dpkg-query -L mijian mijian-collector | sort -u)
inroot dpkg --remove mijian mijian-collector
[ -f "$key" ] || die "dpkg --remove deleted the key (only --purge may)"
[ -f "${root}/etc/mijian/policy.yaml" ] || die "dpkg --remove deleted the conffile policy.yaml"
[ ! -e "${root}/usr/bin/mijian" ] || die "dpkg --remove left /usr/bin/mijian"
echo "remove: binaries gone, key and conffiles kept"
inroot dpkg --purge mijian mijian-collector
left=()
while IFS= read -r path; do
    case $path in "" | /.) continue ;; esac
    [ -e "${root}$path" ] || [ -L "${root}$path" ] || continue
    # A directory may stay when another package owns it too (/usr/share/man/man1 …), and the
    # merged-/usr links (/lib → usr/lib) are the system's, whoever listed them.
    if [ -d "${root}$path" ] && { [ -L "${root}$path" ] || inroot dpkg-query -S "$path" >/dev/null 2>&1; }; then
        continue
    fi
    left+=("$path")
done <<<"$files"
for path in /var/lib/mijian /var/lib/mijian-collector /etc/mijian /etc/default/mijian-collector \
    /etc/systemd/system/mijian.service /etc/systemd/system/mijian-collector.service \
    /etc/systemd/system/multi-user.target.wants/mijian.service \
    /etc/systemd/system/multi-user.target.wants/mijian-collector.service \
    /var/lib/systemd/deb-systemd-helper-enabled/mijian.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/mijian-collector.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/mijian.service \
    /var/lib/systemd/deb-systemd-helper-masked/mijian-collector.service; do
    { [ -e "${root}$path" ] || [ -L "${root}$path" ]; } && left+=("$path")
done
[ ${#left[@]} -eq 0 ] || die "dpkg --purge left: ${left[*]}"
if inroot dpkg-query -W -f='${db:Status-Abbrev}\n' mijian mijian-collector 2>/dev/null | grep -q '^[a-z]i'; then
    die "dpkg still lists the packages as installed"
fi
echo "purge: no file left (state, conffiles, binaries, units, enablement links)"
phase "remove and purge"

[ "$on_host" = no ] || echo "NOTE: installed on this machine itself, not in a debootstrap root"
printf '\ntest-packages.sh: PASS in %d s (mijian %s: %s, mijian-collector: %s; exposure %s and %s)\n' \
    $(($(date +%s) - start)) "$version" "$(du -h "$agent_deb" | cut -f1)" "$(du -h "$collector_deb" | cut -f1)" \
    "$agent_exposure" "$collector_exposure"
