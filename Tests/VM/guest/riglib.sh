# Helpers for scenario scripts run in the guest (`. /bin/riglib.sh`).

# The evdev node of the input device under a USB interface, e.g. event2.
event_node_of() { # INTERFACE (1-1:1.0)
  for e in /sys/bus/usb/devices/"$1"/*/input/input*/event*; do
    [ -e "$e" ] && { basename "$e"; return 0; }
  done
  return 1
}

# Gadgets: USB devices made inside the guest with configfs on dummy_hcd, for shapes QEMU does
# not emulate (a Bluetooth controller, a true keyboard + storage composite).
G=/sys/kernel/config/usb_gadget

gadget_new() { # NAME VENDOR PRODUCT SERIAL PRODUCT_STRING [DEVCLASS SUB PROTO]
  mkdir "$G/$1" || return 1
  echo "0x$2" > "$G/$1/idVendor"; echo "0x$3" > "$G/$1/idProduct"
  echo 0x0200 > "$G/$1/bcdUSB"
  if [ -n "${6:-}" ]; then
    echo "0x$6" > "$G/$1/bDeviceClass"; echo "0x$7" > "$G/$1/bDeviceSubClass"; echo "0x$8" > "$G/$1/bDeviceProtocol"
  fi
  mkdir "$G/$1/strings/0x409"
  echo "$4" > "$G/$1/strings/0x409/serialnumber"
  echo "Mijian rig" > "$G/$1/strings/0x409/manufacturer"
  echo "$5" > "$G/$1/strings/0x409/product"
  mkdir "$G/$1/configs/c.1"
}

gadget_bind() { ls /sys/class/udc | head -n1 > "$G/$1/UDC"; }

gadget_remove() { # NAME: disconnect, then take it apart
  [ -d "$G/$1" ] || return 0
  echo "" > "$G/$1/UDC" 2>/dev/null
  for f in "$G/$1"/configs/c.1/*.*; do [ -L "$f" ] && rm "$f"; done
  rmdir "$G/$1"/configs/c.1/strings/* 2>/dev/null
  rmdir "$G/$1/configs/c.1"
  for f in "$G/$1"/functions/*; do [ -d "$f" ] && rmdir "$f"; done
  rmdir "$G/$1/strings/0x409"
  rmdir "$G/$1"
}

# A keyboard (boot protocol) + mass storage composite: one device, interfaces 03/01/01 and 08/06/50.
gadget_composite_up() { # SERIAL IMAGE
  gadget_new composite 1d6b 0104 "$1" "Keyboard with storage" || return 1
  f="$G/composite/functions/hid.kbd"; mkdir "$f"
  echo 1 > "$f/protocol"; echo 1 > "$f/subclass"; echo 8 > "$f/report_length"
  printf '\005\001\011\006\241\001\005\007\031\340\051\347\025\000\045\001\165\001\225\010\201\002\225\001\165\010\201\003\225\005\165\001\005\010\031\001\051\005\221\002\225\001\165\003\221\003\225\006\165\010\025\000\045\145\005\007\031\000\051\145\201\000\300' > "$f/report_desc"
  f="$G/composite/functions/mass_storage.disk"; mkdir "$f"
  echo 1 > "$f/lun.0/removable"; echo "$2" > "$f/lun.0/file"
  ln -s "$G/composite/functions/hid.kbd" "$G/composite/configs/c.1/"
  ln -s "$G/composite/functions/mass_storage.disk" "$G/composite/configs/c.1/"
  gadget_bind composite
}

# A Bluetooth controller's shape (device and interface E0/01/01, interrupt + bulk endpoints)
# through FunctionFS; /run/ffs-bt-desc.bin and /run/ffs-bt-strings.bin hold the descriptors.
gadget_bt_up() { # SERIAL
  gadget_new bt 1d6b 0105 "$1" "Bluetooth controller" e0 01 01 || return 1
  mkdir "$G/bt/functions/ffs.bt"
  ln -s "$G/bt/functions/ffs.bt" "$G/bt/configs/c.1/"
  mkdir -p /run/ffs-bt
  mount -t functionfs bt /run/ffs-bt || return 1
  # ep0 stays open in the background as long as the device lives
  ( exec 5<>/run/ffs-bt/ep0; cat /run/ffs-bt-desc.bin >&5; cat /run/ffs-bt-strings.bin >&5; exec sleep 100000 ) &
  echo $! > /run/ffs-bt.pid
  n=0; while [ ! -e /run/ffs-bt/ep1 ] && [ $n -lt 100 ]; do usleep 50000; n=$((n + 1)); done
  [ -e /run/ffs-bt/ep1 ] || { echo "functionfs did not take the descriptors"; return 1; }
  gadget_bind bt
}

gadget_bt_down() {
  [ -d "$G/bt" ] || return 0
  echo "" > "$G/bt/UDC" 2>/dev/null
  [ -s /run/ffs-bt.pid ] && kill "$(cat /run/ffs-bt.pid)" 2>/dev/null
  sleep 1
  umount /run/ffs-bt 2>/dev/null
  gadget_remove bt
}
