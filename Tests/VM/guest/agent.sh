#!/bin/sh
# The scenario agent of the VM rig. It reads one command a line from the control port and answers
#   @@ ID KIND key=value ...        (values with spaces are double-quoted)
#   @@ ID end rc=N                  (last line of every answer)
# Commands (ID is chosen by the host):
#   ID ping                         uptime
#   ID usb                          every USB device and interface: ids, authorized, driver
#   ID blocks                       every block device
#   ID mark                         current length of the uevent and watch logs
#   ID uevents FROM                 uevent log lines after line FROM
#   ID watch-start | watch-stop     tight loop over /sys/class/block and the storage drivers
#   ID watched FROM                 what the loop saw, after line FROM
#   ID sector DEV                   sha256 of the first sector of /dev/DEV
#   ID sh BASE64                    run a shell script, its output as `out` lines
#   ID bg NAME BASE64               run a shell script in the background (/run/bg/NAME.{out,pid})
#   ID kill NAME SIGNAL             signal a background job
#   ID file PATH_BASE64 [OFFSET]    a file (from byte OFFSET on), base64, as `b64` lines
#   ID poweroff
set -u
port="${1:-/dev/ttyS1}"
stty -F "$port" 115200 raw -echo -echoe -echok -echoctl -echoke 2>/dev/null || true
exec 3<"$port" 4>"$port"
mkdir -p /run/bg
: > /run/watch.log

say() { echo "@@ $*" >&4; }
q() { printf '"%s"' "$(echo "$1" | tr -d '"\n')"; }
attr() { [ -r "$1" ] && cat "$1" 2>/dev/null || echo -; }
drv() { if [ -e "$1/driver" ]; then basename "$(readlink "$1/driver")"; else echo -; fi; }

cmd_usb() {
  id=$1
  for d in /sys/bus/usb/devices/*; do
    [ -e "$d" ] || continue
    n="$(basename "$d")"
    case "$n" in
      *:*)
        say "$id usbif path=$n class=$(attr "$d/bInterfaceClass") subclass=$(attr "$d/bInterfaceSubClass") protocol=$(attr "$d/bInterfaceProtocol") authorized=$(attr "$d/authorized") driver=$(drv "$d")" ;;
      *)
        say "$id usbdev path=$n vendor=$(attr "$d/idVendor") product=$(attr "$d/idProduct") serial=$(q "$(attr "$d/serial")") manufacturer=$(q "$(attr "$d/manufacturer")") name=$(q "$(attr "$d/product")") authorized=$(attr "$d/authorized") authorized_default=$(attr "$d/authorized_default") interface_authorized_default=$(attr "$d/interface_authorized_default") driver=$(drv "$d")" ;;
    esac
  done
}

cmd_blocks() {
  id=$1
  for b in /sys/class/block/*; do
    [ -e "$b" ] || continue
    n="$(basename "$b")"
    say "$id block name=$n size=$(attr "$b/size") removable=$(attr "$b/removable") path=$(q "$(readlink -f "$b")")"
  done
}

# The loop: no fork per round, only shell globs and builtins, so it runs as often as the CPU
# lets it. It logs block devices as they appear (`appeared=`), interfaces in a storage driver's
# directory (`probed=`: the kernel links an interface there while it probes, even when the probe
# is then refused, so this alone is no bind), every USB interface with the `authorized` value it
# had when first seen (`iface=`), and what goes (`vanished=`).
watch_loop() {
  seen=" "
  while :; do
    stop=0; [ -e /run/watch.stop ] && stop=1
    for b in /sys/class/block/sd* /sys/bus/usb/drivers/usb-storage/*:* /sys/bus/usb/drivers/uas/*:* /sys/bus/usb/devices/*:*; do
      case "$b" in *'*'*) continue ;; esac
      case "$seen" in *" $b "*) continue ;; esac
      seen="$seen$b "
      case "$b" in
        /sys/bus/usb/devices/*)
          a=-; read -r a < "$b/authorized" 2>/dev/null
          read -r up _ < /proc/uptime
          echo "t=$up iface=${b##*/} authorized=$a" >> /run/watch.log ;;
        /sys/bus/usb/drivers/*)
          read -r up _ < /proc/uptime
          echo "t=$up probed=$b" >> /run/watch.log ;;
        *)
          read -r up _ < /proc/uptime
          echo "t=$up appeared=$b" >> /run/watch.log ;;
      esac
    done
    # forget what went away, so that a second appearance is seen too
    for s in $seen; do
      [ -e "$s" ] || { seen="$(echo "$seen" | sed "s| $s | |")"; read -r up _ < /proc/uptime; echo "t=$up vanished=$s" >> /run/watch.log; }
    done
    # watch-stop asks for one more full round, then this one ends
    [ "$stop" = 1 ] && exit 0
  done
}

lines_after() { # FILE FROM KIND ID
  tail -n +"$(( $2 + 1 ))" "$1" | while IFS= read -r l; do say "$4 $3 $l"; done
}

while IFS= read -r line <&3; do
  line="$(echo "$line" | tr -d '\r')"
  [ -n "$line" ] || continue
  set -- $line
  id="$1"; verb="${2:-}"; shift 2 2>/dev/null || shift $#
  rc=0
  case "$verb" in
    ping) read -r up _ < /proc/uptime; say "$id pong uptime=$up kernel=$(uname -r)" ;;
    usb) cmd_usb "$id" ;;
    blocks) cmd_blocks "$id" ;;
    mark) say "$id mark uevents=$(wc -l < /run/uevents.log) watch=$(wc -l < /run/watch.log)" ;;
    uevents) lines_after /run/uevents.log "${1:-0}" uevent "$id" ;;
    watched) lines_after /run/watch.log "${1:-0}" watched "$id" ;;
    watch-start)
      if [ -s /run/bg/watch.pid ] && kill -0 "$(cat /run/bg/watch.pid)" 2>/dev/null; then :; else
        watch_loop & echo $! > /run/bg/watch.pid
      fi
      say "$id watching pid=$(cat /run/bg/watch.pid)" ;;
    watch-stop)
      if [ -s /run/bg/watch.pid ]; then
        pid="$(cat /run/bg/watch.pid)"; touch /run/watch.stop; n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 500 ]; do usleep 20000; n=$((n + 1)); done
        kill "$pid" 2>/dev/null; rm -f /run/bg/watch.pid /run/watch.stop
      fi ;;
    sector)
      if sum="$(dd if="/dev/$1" bs=512 count=1 2>/dev/null | sha256sum)"; then
        say "$id sector dev=$1 sha256=${sum%% *}"
      else rc=1; fi ;;
    sh)
      echo "$1" | base64 -d > /run/cmd.sh
      sh /run/cmd.sh > /run/cmd.out 2>&1; rc=$?
      while IFS= read -r l; do say "$id out $l"; done < /run/cmd.out ;;
    bg)
      echo "$2" | base64 -d > "/run/bg/$1.sh"
      sh "/run/bg/$1.sh" > "/run/bg/$1.out" 2> "/run/bg/$1.err" &
      echo $! > "/run/bg/$1.pid"
      say "$id started name=$1 pid=$!" ;;
    kill)
      if [ -s "/run/bg/$1.pid" ]; then kill "-${2:-TERM}" "$(cat "/run/bg/$1.pid")" 2>/dev/null || rc=1; else rc=1; fi ;;
    file)
      f="$(echo "$1" | base64 -d)"
      if [ -r "$f" ]; then
        tail -c +"$(( ${2:-0} + 1 ))" "$f" | base64 | while IFS= read -r l; do say "$id b64 $l"; done
      else rc=1; fi ;;
    poweroff) say "$id end rc=0"; sync; poweroff -f ;;
    *) say "$id error unknown=$(q "$verb")"; rc=2 ;;
  esac
  say "$id end rc=$rc"
done
