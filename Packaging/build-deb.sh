#!/usr/bin/env bash
# Packaging/build-deb.sh [OUTDIR]: builds mijian_<version>_amd64.deb and
# mijian-collector_<version>_amd64.deb with dpkg-deb, no debhelper.
#
# * The binaries: `swift build -c release --static-swift-stdlib` (a workstation has no Swift
#   runtime) in the scratch directory .build-release (MIJIAN_SCRATCH overrides it); stripped.
# * The version: MijianVersion.current (Sources/MijianCore/Model/Report.swift).
# * Depends: from what the binaries really link (dpkg-shlibdeps), not written by hand.
# * Man pages: swift-argument-parser's generate-manual (the tool behind its generate-manual
#   plugin), run on the very binaries that are packaged; completions from
#   `--generate-completion-script`. Nothing of either is written by hand.
# * Dates (changelog, man pages, file times) come from the last commit (SOURCE_DATE_EPOCH), so
#   two builds of one commit give the same packages.
#
# OUTDIR defaults to .build-release/debs. The paths of the two packages are printed last.
# MIJIAN_BIN_DIR=DIR takes mijian, mijian-collector and generate-manual from DIR instead of
# building them.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
outdir=${1:-$repo/.build-release/debs}
scratch=${MIJIAN_SCRATCH:-$repo/.build-release}
maintainer=${MIJIAN_MAINTAINER:-Mijian maintainers <maintainers@mijian.invalid>}
homepage=${MIJIAN_HOMEPAGE:-https://mijian.invalid/}

die() { echo "build-deb.sh: $*" >&2; exit 1; }

for tool in swift dpkg-deb dpkg-shlibdeps readelf strip gzip md5sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install dpkg-dev binutils; Swift 6.3 for swift)"
done
[ "$(dpkg --print-architecture)" = amd64 ] || die "the packages are amd64; this machine is $(dpkg --print-architecture)"

version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' "$repo/Sources/MijianCore/Model/Report.swift")
[[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "cannot read MijianVersion.current from Sources/MijianCore/Model/Report.swift (got \"$version\")"
# Outside a git checkout (a source tarball) the version file's time stands in for the commit's.
built_from="a source tree"
if head=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null); then built_from="commit $head"; fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null ||
    stat -c %Y "$repo/Sources/MijianCore/Model/Report.swift")}
day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)
rfc2822=$(date -u -R -d "@$SOURCE_DATE_EPOCH")

work=$(mktemp -d "${TMPDIR:-/tmp}/mijian-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- binaries -------------------------------------------------------------------------------
cd "$repo"
if [ -n "${MIJIAN_BIN_DIR:-}" ]; then
    # Binaries built already (mijian, mijian-collector, mijian-pdftext, generate-manual), e.g. by CI's own step.
    bin=$(cd "$MIJIAN_BIN_DIR" && pwd)
else
    echo "build-deb.sh: building mijian $version (release, static Swift runtime) in $scratch" >&2
    # No $ORIGIN run path (nothing is loaded from beside the binary); relocations read-only after
    # start-up (-z relro is the default, -z now makes it whole). Linked by lld so that the 120,000
    # relative relocations of a position-independent Swift binary are packed (DT_RELR, glibc 2.36:
    # 42 KiB instead of 2.9 MiB read at every start), and without exporting the program's own
    # symbols (the Swift runtime's link arguments ask for it; nothing loads symbols from the
    # program, and the table costs 3 MiB).
    link=(--disable-local-rpath -Xlinker -z -Xlinker now -Xswiftc -use-ld=lld
        -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic)
    # mijian-pdftext: the poppler worker `mijian scan` reads PDFs' first pages with (C++).
    for product in mijian mijian-collector mijian-pdftext; do
        swift build -c release --static-swift-stdlib "${link[@]}" --scratch-path "$scratch" --product "$product" >&2 ||
            die "swift build of $product failed"
    done
    # The generator of the man pages is a build tool only; it is never packaged.
    # The same flags as above, so that nothing shared is compiled twice.
    swift build -c release --static-swift-stdlib "${link[@]}" --scratch-path "$scratch" --product generate-manual >&2 ||
        die "swift build of swift-argument-parser's generate-manual failed"
    bin=$(swift build -c release --static-swift-stdlib "${link[@]}" --scratch-path "$scratch" --show-bin-path)
fi
for exe in mijian mijian-collector mijian-pdftext generate-manual; do
    [ -x "$bin/$exe" ] || die "$bin/$exe was not built"
done

# --- one package -----------------------------------------------------------------------------
# stage PACKAGE: fills $work/PACKAGE with the files both packages have (binary, man pages,
# completions, documentation) and DEBIAN/ with the maintainer scripts.
stage() {
    local pkg=$1 root=$work/$1
    install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
        "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
        "$root/usr/share/doc/$pkg"
    install -m 0755 "$bin/$pkg" "$root/usr/bin/$pkg"
    # As dh_strip does: no debugging symbols, no .comment/.note sections.
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$pkg"

    # One man page per program, every subcommand and option in it (man mijian). Not
    # --multi-page: its pages are named mijian.audit.1 but say "mijian audit" in NAME, which
    # whatis (and lintian's bad-whatis-entry) cannot match.
    local man=$work/man-$pkg
    mkdir -p "$man"
    "$bin/generate-manual" "$root/usr/bin/$pkg" --date "$day" --section 1 \
        --output-directory "$man" >&2 || die "generate-manual failed on $pkg"
    ls "$man"/*.1 >/dev/null 2>&1 || die "generate-manual wrote no page for $pkg"
    for page in "$man"/*.1; do
        gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
    done

    # bash-completion sources the file; the generator's "#!/bin/bash" first line is dropped
    # (lintian: bash-completion-with-hashbang).
    "$root/usr/bin/$pkg" --generate-completion-script bash >"$work/$pkg.bash" ||
        die "$pkg --generate-completion-script bash failed"
    sed '1{/^#!/d}' "$work/$pkg.bash" >"$root/usr/share/bash-completion/completions/$pkg"
    "$root/usr/bin/$pkg" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_$pkg" ||
        die "$pkg --generate-completion-script zsh failed"

    copyright >"$root/usr/share/doc/$pkg/copyright"
    printf '%s (%s) unstable; urgency=medium\n\n  * Release %s, built from %s.\n\n -- %s  %s\n' \
        "$pkg" "$version" "$version" "$built_from" "$maintainer" "$rfc2822" |
        gzip -9n >"$root/usr/share/doc/$pkg/changelog.gz"

    # Lintian tags that are right for most packages and wrong for this one, each with its reason.
    if [ -f "$here/debian/$pkg/lintian-overrides" ]; then
        install -D -m 0644 "$here/debian/$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/$pkg"
    fi

    local script
    for script in postinst prerm postrm; do
        install -m 0755 "$here/debian/$pkg/$script" "$root/DEBIAN/$script"
    done
    install -m 0644 "$here/debian/$pkg/conffiles" "$root/DEBIAN/conffiles"
}

# copyright: the file every package carries in /usr/share/doc/PACKAGE/. The binaries contain
# the Swift runtime and every Swift package they use (statically linked): each is named with its
# version and licence.
copyright() {
    cat <<EOF
Mijian: security posture of classified Linux workstations.

Copyright: the Mijian authors.

The binaries in this package are linked statically with the Swift runtime (the standard
library, Foundation and Dispatch of Swift $(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9.]*\).*/\1/p' | head -n 1),
Copyright Apple Inc. and the Swift project authors, Apache License 2.0 with Runtime Library
Exception) and with these Swift packages, at the versions shown:

EOF
    local dir name license pinned
    for dir in "$scratch"/checkouts/*/; do
        name=$(basename "$dir")
        pinned=$(sed -n "/\"location\" : \".*\/$name\(\.git\)\{0,1\}\"/,/\"version\"/s/.*\"version\" : \"\(.*\)\".*/\1/p" "$repo/Package.resolved" 2>/dev/null | head -n 1)
        license=$(ls "$dir" | grep -i -m 1 '^licen[cs]e' || true)
        [ -n "$license" ] || continue
        if grep -q 'Apache License' "$dir/$license" && grep -q 'Version 2.0' "$dir/$license"; then
            printf ' * %s %s: Apache License 2.0, in /usr/share/common-licenses/Apache-2.0.\n' "$name" "${pinned:-}"
        else
            printf ' * %s %s:\n\n' "$name" "${pinned:-}"
            sed -e 's/^[[:space:]]*$/./' -e 's/^/   /' "$dir/$license"
            printf '\n'
        fi
    done
    cat <<EOF

swift-crypto and swift-nio-ssl contain BoringSSL (OpenSSL and ISC licences, in their source
trees as Sources/CCryptoBoringSSL and Sources/CNIOBoringSSL).
EOF
}

# control PACKAGE: DEBIAN/control from the template, with Depends from dpkg-shlibdeps and the
# installed size; then DEBIAN/md5sums.
# Further executables of the package (paths inside it) follow the package's name.
control() {
    local pkg=$1 root=$work/$1 depends size extra=()
    shift
    for file in "$@"; do extra+=(-e"$root/$file"); done
    mkdir -p "$work/shlibs/debian"
    printf 'Source: mijian\n\nPackage: %s\nArchitecture: amd64\n' "$pkg" >"$work/shlibs/debian/control"
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$root/usr/bin/$pkg" "${extra[@]}" 2>"$work/shlibdeps.err") ||
        die "dpkg-shlibdeps failed on $pkg: $(cat "$work/shlibdeps.err")"
    depends=${depends#shlibs:Depends=}
    [ -n "$depends" ] || die "dpkg-shlibdeps found no dependency of $pkg"
    # Packed relocations need the loader of glibc 2.36 (the binary asks for GLIBC_ABI_DT_RELR, a
    # version without symbols, which dpkg-shlibdeps does not count).
    if readelf -V "$root/usr/bin/$pkg" | grep -q 'Name: GLIBC_ABI_DT_RELR'; then
        depends=$(printf '%s' "$depends" | sed -E 's/libc6 \(>= 2\.(2[0-9]|3[0-5])(\.[0-9]+)?\)/libc6 (>= 2.36)/')
        case "$depends" in *"libc6 (>= 2.36)"* | *"libc6 (>= 2.3[7-9]"* | *"libc6 (>= 2.[4-9]"*) ;; *) die "$pkg needs glibc 2.36 for DT_RELR but Depends is: $depends" ;; esac
    fi
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    sed -e "s|@VERSION@|$version|" -e "s|@MAINTAINER@|$maintainer|" -e "s|@HOMEPAGE@|$homepage|" \
        -e "s|@INSTALLED_SIZE@|$size|" -e "s|@DEPENDS@|$depends|" \
        "$here/debian/$pkg/control.in" >"$root/DEBIAN/control"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f ! -path './etc/*' -printf '%P\0' | sort -z |
        xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"
}

build() {
    local pkg=$1 deb=$outdir/${1}_${version}_amd64.deb
    find "$work/$pkg" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$work/$pkg" "$deb" >&2 || die "dpkg-deb --build $pkg failed"
    echo "$deb"
}

# --- mijian ----------------------------------------------------------------------------------
stage mijian
root=$work/mijian
install -D -m 0644 "$here/systemd/mijian.service" "$root/lib/systemd/system/mijian.service"
install -D -m 0644 "$here/udev/70-mijian-usb-input.rules" "$root/lib/udev/rules.d/70-mijian-usb-input.rules"
install -D -m 0644 "$here/tmpfiles.d/mijian.conf" "$root/usr/lib/tmpfiles.d/mijian.conf"
install -D -m 0644 "$repo/Policies/classified-workstation.yaml" "$root/etc/mijian/policy.yaml"
install -D -m 0644 "$here/etc/agent.yaml" "$root/etc/mijian/agent.yaml"
install -D -m 0644 "$here/examples/host.yaml" "$root/usr/share/doc/mijian/examples/host.yaml"
install -D -m 0644 "$repo/Policies/unclassified-workstation.yaml" "$root/usr/share/doc/mijian/examples/unclassified-workstation.yaml"
# Section 5: the service's settings and the policy file, written by hand (Packaging/man/).
install -d "$root/usr/share/man/man5"
for page in "$here"/man/*.5; do
    gzip -9n <"$page" >"$root/usr/share/man/man5/$(basename "$page").gz"
done
# The PDF worker beside the program's private files: it is started by `mijian scan`, never by a person.
install -D -m 0755 "$bin/mijian-pdftext" "$root/usr/lib/mijian/mijian-pdftext"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/lib/mijian/mijian-pdftext"
control mijian usr/lib/mijian/mijian-pdftext

# --- mijian-collector ------------------------------------------------------------------------
stage mijian-collector
root=$work/mijian-collector
install -D -m 0644 "$here/systemd/mijian-collector.service" "$root/lib/systemd/system/mijian-collector.service"
install -D -m 0644 "$here/tmpfiles.d/mijian-collector.conf" "$root/usr/lib/tmpfiles.d/mijian-collector.conf"
install -D -m 0644 "$here/etc/mijian-collector.default" "$root/etc/default/mijian-collector"
install -D -m 0644 "$here/examples/tls.conf" "$root/usr/share/doc/mijian-collector/examples/tls.conf"
control mijian-collector

mkdir -p "$outdir"
build mijian
build mijian-collector
