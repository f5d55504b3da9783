#!/usr/bin/env bash
# Builds the guest of the VM rig from Debian packages only: the kernel of linux-image-amd64, its
# USB modules (dependencies from modules.dep), busybox-static, the scenario agent, and — when
# given — a mijian binary with every shared library ldd names.
#
#   Tests/VM/build-guest.sh [--mijian PATH] [--out DIR]
#   (or MIJIAN=PATH, VM_OUT=DIR)
#
# Writes DIR/vmlinuz, DIR/initrd.gz and DIR/guest.env (kernel version, mijian present or not).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${VM_OUT:-$here/out}"
mijian="${MIJIAN:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --mijian) mijian="${2:?--mijian needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build-guest: unknown argument: $1" >&2; exit 2 ;;
  esac
done

die() { echo "build-guest: $*" >&2; exit 1; }

busybox=/bin/busybox
[ -x "$busybox" ] && file_is_static=$(ldd "$busybox" 2>&1 | grep -c 'not a dynamic' || true)
[ "${file_is_static:-0}" -ge 1 ] || die "$busybox is missing or not static: apt-get install busybox-static"
command -v cpio >/dev/null || die "cpio is missing: apt-get install cpio"

# The kernel: the newest /boot/vmlinuz-* whose modules are installed (the running kernel of the
# host may be another one, and is not used).
kver=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
  if [ -f "/lib/modules/$k/modules.dep" ]; then kver="$k"; break; fi
done
[ -n "$kver" ] || die "no /boot/vmlinuz-* with /lib/modules/<version>/modules.dep: apt-get install linux-image-amd64"
[ -r "/boot/vmlinuz-$kver" ] || die "/boot/vmlinuz-$kver is not readable"
moddir="/lib/modules/$kver"

if [ -n "$mijian" ]; then
  [ -x "$mijian" ] || die "mijian binary '$mijian' does not exist or is not executable"
  mijian="$(realpath "$mijian")"
fi

mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/mijian-vm-guest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,mnt,var/log,lib/modules/"$kver"}

# busybox and its applets
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
ln -sf ../bin/busybox "$root/sbin/modprobe"

# Modules: every wanted module after its dependencies, in load order.
wanted=(
  usb-common usbcore xhci-hcd xhci-pci               # the xHCI controller QEMU emulates
  crct10dif_generic scsi_common scsi_mod sd_mod       # disks
  usb-storage uas                                     # USB sticks (BOT and UAS)
  hid usbhid hid-generic evdev                        # the keyboard and its input events
  bluetooth btusb hci_vhci                            # Bluetooth (USB dongles; a virtual HCI)
  mii usbnet cdc_ether rndis_host cdc_subset cdc_ncm  # USB network adapters, tethering
  udc-core dummy_hcd configfs libcomposite            # devices made inside the guest (gadgets)
  usb_f_hid usb_f_mass_storage usb_f_fs usb_f_rndis usb_f_ecm
)
python3 - "$moddir" "$work/load-order" "${wanted[@]}" <<'PY'
import sys, os
moddir, outfile, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
norm = lambda n: n.replace('-', '_')
deps, path = {}, {}
with open(os.path.join(moddir, 'modules.dep')) as f:
    for line in f:
        key, _, rest = line.partition(':')
        name = norm(os.path.basename(key).split('.ko')[0])
        path[name] = key
        deps[name] = [norm(os.path.basename(d).split('.ko')[0]) for d in rest.split()]
order, seen = [], set()
def visit(name, chain):
    if name in seen:
        return
    if name not in path:
        sys.exit(f"build-guest: module {name} (wanted by {' <- '.join(chain) or 'the rig'}) is not in {moddir}/modules.dep")
    # modules.dep lists the dependency closure, the last one to be loaded first
    for d in reversed(deps[name]):
        visit(d, chain + [name])
    seen.add(name)
    order.append(path[name])
for w in wanted:
    visit(norm(w), [])
with open(outfile, 'w') as f:
    f.write('\n'.join(order) + '\n')
PY
while read -r rel; do
  mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
  case "$rel" in
    *.ko.xz) xz -dc "$moddir/$rel" > "$root/lib/modules/$kver/${rel%.xz}"; rel="${rel%.xz}" ;;
    *.ko.zst) zstd -qdc "$moddir/$rel" > "$root/lib/modules/$kver/${rel%.zst}"; rel="${rel%.zst}" ;;
    *.ko.gz) gzip -dc "$moddir/$rel" > "$root/lib/modules/$kver/${rel%.gz}"; rel="${rel%.gz}" ;;
    *) cp "$moddir/$rel" "$root/lib/modules/$kver/$rel" ;;
  esac
  echo "$rel" >> "$root/etc/modules.load"
done < "$work/load-order"
# The metadata the audit reads (modules.alias tells which driver a device would get).
for f in modules.alias modules.builtin modules.builtin.modinfo modules.dep modules.softdep modules.order; do
  [ -f "$moddir/$f" ] && cp "$moddir/$f" "$root/lib/modules/$kver/"
done

# mijian and every library it needs, at the same paths, with the dynamic loader.
if [ -n "$mijian" ]; then
  mkdir -p "$root/usr/local/bin"
  # without its debug information (a debug build carries hundreds of MB of it, which the guest
  # would have to unpack under emulation); symbols stay, so backtraces still name functions
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$root/usr/local/bin/mijian" "$mijian" || die "strip --strip-debug $mijian failed"
  else
    cp "$mijian" "$root/usr/local/bin/mijian"
  fi
  libs="$(ldd "$mijian")" || die "ldd $mijian failed"
  if echo "$libs" | grep -q 'not found'; then
    die "ldd $mijian: libraries not found: $(echo "$libs" | grep 'not found' | tr '\n' ' ')"
  fi
  for lib in $(echo "$libs" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi

# udevd (Debian's udev package: /bin/udevadm is also systemd-udevd) for the scenarios that need
# udev rules, the USB control's HID rule; the guest starts it only when a scenario asks.
if [ -x /bin/udevadm ]; then
  mkdir -p "$root/lib/systemd" "$root/etc/udev/rules.d" "$root/lib/udev/rules.d"
  cp -L /bin/udevadm "$root/bin/udevadm"
  ln -sf /bin/udevadm "$root/lib/systemd/systemd-udevd"
  for lib in $(ldd /bin/udevadm | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
  done
fi

cp "$here/guest/init" "$root/init"
cp "$here/guest/agent.sh" "$root/bin/agent.sh"
cp "$here/guest/uevent-log" "$root/bin/uevent-log"
cp "$here/guest/riglib.sh" "$root/bin/riglib.sh"
# The USB control's udev rules (the fail-closed scenario starts udevd with them): from the tree
# the mijian binary was built in (…/.build/<config>/mijian), else from this tree.
rules_dir="$here/../../Packaging/udev"
case "$mijian" in */.build/*) [ -d "${mijian%%/.build/*}/Packaging/udev" ] && rules_dir="${mijian%%/.build/*}/Packaging/udev" ;; esac
if ls "$rules_dir"/*.rules >/dev/null 2>&1; then
  mkdir -p "$root/etc/rig/udev"
  cp "$rules_dir"/*.rules "$root/etc/rig/udev/"
fi
chmod 0755 "$root/init" "$root/bin/agent.sh" "$root/bin/uevent-log"
echo "$kver" > "$root/etc/kernel-version"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -1 > "$out/initrd.gz.tmp"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
cp "/boot/vmlinuz-$kver" "$out/vmlinuz"
{
  echo "KERNEL_VERSION=$kver"
  echo "MIJIAN=${mijian:-}"
  echo "MODULES=$(wc -l < "$root/etc/modules.load")"
} > "$out/guest.env"
echo "build-guest: $out/initrd.gz ($(du -h "$out/initrd.gz" | cut -f1)), kernel $kver, $(wc -l < "$root/etc/modules.load") modules${mijian:+, mijian $mijian}"
