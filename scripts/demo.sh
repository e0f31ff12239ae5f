#!/bin/sh
# The README's main job: set the host up, boot the bundled example VM (examples/hello,
# a ctys conf + a 512-byte ACPI-aware guest) through libvirt, show it in LIST, power it
# off with an ACPI POWEROFF and show it off.  Boots a copy under /var/tmp/ctys-demo,
# never the committed image (libvirt chowns what it boots).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${CTYS_DEMO_DIR:-/var/tmp/ctys-demo}
VM="$DEMO/hello"
CTYS="$here/.venv/bin/ctys-libvirt"

step() { printf '\n==> %s\n' "$*"; }

sh "$here/scripts/setup.sh"

step "copy examples/hello to $VM"
# A running demo VM from an earlier run is stopped first (its image is about to be replaced).
"$CTYS" cancel hello --mode FORCE >/dev/null 2>&1 || true
rm -rf "$VM"
mkdir -p "$DEMO"
chmod 755 "$DEMO"
cp -r "$here/examples/hello" "$VM"
chmod 755 "$VM"
chmod 644 "$VM/hda.img" "$VM/hello.ctys"
LOG="$VM/serial.log"

step "ctys-libvirt create $VM/hello.ctys --console CLI"
"$CTYS" create "$VM/hello.ctys" --console CLI --serial-log "$LOG"

step "waiting for the guest's marker on its serial port"
i=0
until grep -q "CTYS-GUEST-OK" "$LOG" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "demo: no guest marker in $LOG after 30 s" >&2; exit 1; fi
    sleep 0.1
done
tr -d '\r' < "$LOG"

step "ctys-libvirt list"
"$CTYS" list
step "ctys-libvirt list --format records   (the ctys LIST record, 22 fields)"
"$CTYS" list --format records | grep ";hello;" || true

step "ctys-libvirt cancel hello   (POWEROFF: ACPI shutdown, destroy only after --timeout)"
"$CTYS" cancel hello --mode POWEROFF --timeout 20
tr -d '\r' < "$LOG" | grep -q "CTYS-ACPI-POWEROFF" && echo "guest said: CTYS-ACPI-POWEROFF"

step "ctys-libvirt list --all"
"$CTYS" list --all
