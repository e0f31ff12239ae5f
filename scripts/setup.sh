#!/bin/sh
# FOR TEST AND DEMO MACHINES ONLY (a fresh Debian 12 VM or container, as root).  It starts
# libvirtd under tini outside any service manager, opens /dev/kvm to the kvm group and
# installs compilers and test tools; on a host that already runs libvirt, install the
# package with `pip install .` or `pipx install .` instead (README.md, "Install").
#
# Idempotent host set-up for ctys_libvirt on Debian 12 as root (no systemd needed):
# apt packages, virtlogd + libvirtd (under tini as a child subreaper so destroyed
# QEMUs are reaped at once), /dev/kvm access for libvirt-qemu, the venv with the
# package and its test extra.  Safe to run again; does only what is missing.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
VENV=${CTYS_VENV:-$here/.venv}
LOG=${CTYS_LOGDIR:-/var/log/ctys-libvirt}
PKGS="libvirt-daemon-system libvirt-dev libvirt-clients qemu-system-x86 qemu-utils
 libxml2-utils pkg-config gcc python3-dev python3-venv tini nasm xorriso
 openssh-server openssh-client virtinst procps"
# Console clients under Xvfb and real Debian guests (installer kernel, grub CD, mmdebstrap image)
PKGS="$PKGS xvfb xterm tigervnc-viewer xdotool x11-utils x11-apps tmux emacs-nox qemu-system-gui
 debian-installer-12-netboot-amd64 grub-pc-bin grub-common mtools mmdebstrap e2fsprogs"

say() { echo "setup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "must run as root (installs packages, starts libvirtd)"; exit 1
fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $missing >/dev/null
fi

# VM-stack tests: the "hypervisor inside a VM" is a session libvirtd of this unprivileged
# account, reached over a test-only sshd (password '*': no password, but not locked for sshd)
if ! id ctys-stack >/dev/null 2>&1; then
    say "creating user ctys-stack (VM-stack tests)"
    useradd -r -m -d /var/lib/ctys-stack -s /bin/sh -p '*' ctys-stack
fi

# /dev/kvm: without group access libvirt offers no kvm type and re-probes QEMU on
# every call (a create then takes ~100 s).
if [ -e /dev/kvm ]; then
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm || say "could not fix /dev/kvm permissions"
fi

mkdir -p "$LOG" /run/libvirt
if ! pgrep -x virtlogd >/dev/null 2>&1; then
    say "starting virtlogd"
    virtlogd -d
fi
if ! virsh -q -c qemu:///system version >/dev/null 2>&1; then
    if ! pgrep -x libvirtd >/dev/null 2>&1; then
        say "starting libvirtd under tini -s"
        setsid tini -s -- libvirtd >"$LOG/libvirtd.log" 2>&1 < /dev/null &
    fi
    i=0
    until virsh -q -c qemu:///system version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 150 ]; then say "libvirtd did not come up; see $LOG/libvirtd.log"; exit 1; fi
        sleep 0.2
    done
fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV"
    python3 -m venv "$VENV"
fi
stamp="$VENV/.ctys-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
    say "installing ctys-libvirt[test] into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$here[test]"
    touch "$stamp"
fi
# An editable install carries no data files: link the man pages where `man` finds them
# for this venv (a `pip install .` installs them under share/man/man1 itself).
mkdir -p "$VENV/share/man/man1"
for page in "$here"/man/*.1; do
    [ -f "$page" ] && ln -sf "$page" "$VENV/share/man/man1/"
done
# Byte-compile the sources: where PYTHONDONTWRITEBYTECODE is set, every CLI call would
# otherwise recompile them (tens of ms per call).  compileall skips up-to-date files.
"$VENV/bin/python" -m compileall -q "$here/ctys_libvirt" "$here/cli" >/dev/null || true
say "ready: $VENV/bin/ctys-libvirt"
