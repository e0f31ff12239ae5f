"""The explicit evaluation context of a conf (conf-format.md §3.1): host facts plus the
defaults that ctys' qemu.conf-Linux.sh provided.  The process environment is consulted
only when asked (use_env)."""
from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Dict, Mapping, Optional

from ctys_libvirt.model import HostContext
from ctys_libvirt.util.memo import once

# /etc/os-release ID -> ctys MYDIST spelling (systools.conf-<MYDIST>.sh names)
_DIST_NAMES = {
    "debian": "debian", "ubuntu": "Ubuntu", "centos": "CentOS", "fedora": "Fedora",
    "rhel": "RHEL", "redhat": "RHEL", "scientific": "Scientific", "sles": "SuSE",
    "opensuse": "openSUSE", "opensuse-leap": "openSUSE", "opensuse-tumbleweed": "openSUSE",
    "suse": "SuSE", "mandriva": "Mandriva", "gentoo": "Gentoo", "arch": "Arch",
    "freebsd": "FreeBSD", "openbsd": "OpenBSD", "almalinux": "AlmaLinux",
    "rocky": "Rocky", "linuxmint": "Mint",
}

_QEMU_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/libexec/bin", "/opt/qemu/bin")


def mydist_from_os_release(text: str) -> str:
    """ID=... of an os-release file -> MYDIST (unknown IDs verbatim, empty -> 'Linux')."""
    ident = ""
    for line in text.splitlines():
        if line.startswith("ID="):
            ident = line[3:].strip().strip('"').strip("'")
            break
    if not ident:
        return "Linux"
    return _DIST_NAMES.get(ident.lower(), ident)


@once
def _installed() -> Dict[str, str]:
    """The QEMU programs qemu.conf looks for -> the first executable one in _QEMU_DIRS
    (a fact of this host: probed once per process, not once per conf)."""
    found: Dict[str, str] = {}
    for name in ("qemu-system-x86_64", "qemu", "qemu-img"):
        for d in _QEMU_DIRS:
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                found[name] = p
                break
    return found


def _find(names) -> Optional[str]:
    installed = _installed()
    for n in names:
        if n in installed:
            return installed[n]
    return None


@once
def default_host_context() -> HostContext:
    """This host: MYDIST from /etc/os-release, `uname -m`, the current user (by uid)."""
    try:
        text = Path("/etc/os-release").read_text(errors="replace")
    except OSError:
        text = ""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    # os.uname().machine is platform.machine() without loading platform (regexes at import)
    return HostContext(mydist=mydist_from_os_release(text), arch=os.uname().machine or "x86_64",
                       user=user)


def _qemu_defaults(mydist: str, user: str, arch: str) -> Dict[str, str]:
    """What qemu.conf-Linux.sh set when unset (§3.1 step 2), probed on this host."""
    if arch in ("x86_64", "amd64"):
        base = _find(("qemu-system-x86_64", "qemu")) or "qemu"
    else:
        base = _find(("qemu", "qemu-system-x86_64")) or "qemu"
    debian_like = mydist in ("debian", "Ubuntu")
    kvm = "kvm" if debian_like else "qemu-kvm"
    img = _find(("qemu-img",)) or ("kvm-img" if debian_like else "qemu-img")
    sockbase = "/var/tmp"
    return {
        "QEMUBASE": base,
        "QEMUKVM": kvm,
        "QEMUIMG": img,
        # qemu.conf sets VDE_VDEQ; the conf reads VDE_DEQ (legacy name mismatch, §3.2), so
        # WRAPPERCALL falls through to the conf's own default as in the fixtures.
        "VDE_VDEQ": "vdeq",
        "CTYS_SOCKBASE": sockbase,
        "QEMUSOCK": f"{sockbase}/vde_switch0.{user}",
        "QEMUMGMT": f"{sockbase}/vde_mgmt0.{user}",
        "QEMUMONSOCK": f"{sockbase}/qemumon.ACTUALLABEL.ACTUALPID.{user}",
        "QEMU_DEFAULT_CONSOLE": "VNC",
        "QEMU_DEFAULT_BOOTMODE": "VHDD",
        "QEMU": kvm,
    }


def _build_base(context: HostContext) -> Dict[str, str]:
    """The variables before CTYSWRAPPERPATH when the environment is not used."""
    v = _qemu_defaults(context.mydist, context.user, context.arch)     # a new dict each call
    v.update(context.variables())
    return v


def context_variables(context: HostContext, conf_dir: Path, *, use_env: bool = False,
                      overrides: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Initial variables a conf is evaluated with.

    Order: [environment, only with use_env] < qemu.conf defaults (only where unset) <
    host facts (MYDIST, USER, ...) and HostContext.extra < CTYSWRAPPERPATH < overrides.
    Overrides act like the environment of the legacy wrapper: `X=${X:-d}` lines honour
    them, plain assignments in the conf still win."""
    if use_env:
        v: Dict[str, str] = dict(os.environ)
        for k, val in _qemu_defaults(context.mydist, context.user, context.arch).items():
            if not v.get(k):
                v[k] = val
        v.update(context.variables())
    else:
        v = _build_base(context)
    v["CTYSWRAPPERPATH"] = str(conf_dir)
    if overrides:
        v.update({str(k): str(val) for k, val in overrides.items()})
    return v
