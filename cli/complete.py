"""Shell completion values for both front ends: VM labels and UUIDs (from libvirt and the
inventory), conf paths, and the closed sets of option values.  Every source that fails
(libvirtd down, no inventory) just contributes nothing: completion never prints errors."""
from __future__ import annotations

import os
from typing import Iterable, List, Optional

FORMATS = ("table", "records", "json")
BACKENDS = ("auto", "libvirt", "direct")
CANCEL_MODES = ("POWEROFF", "FORCE", "RESET", "REBOOT", "PAUSE", "SUSPEND", "RESUME")
BOOTMODES = ("HDD", "CD", "DVD", "FDD", "USB", "PXE", "KERNEL", "VHDD")
CONSOLES = ("VNC", "SDL", "CLI", "CLI0", "XTERM", "GTERM", "EMACS", "NONE")
URIS = ("qemu:///system", "qemu:///session", "qemu+ssh://")


def choose(values: Iterable[str], incomplete: str) -> List[str]:
    low = incomplete.lower()
    return [v for v in values if v.lower().startswith(low)]


def domain_names(uri: Optional[str] = None) -> List[str]:
    """Names and UUIDs of the domains of ``uri`` (default as the commands use)."""
    try:
        import libvirt

        from ctys_libvirt.util.uri import default_uri

        libvirt.registerErrorHandler(lambda *_: None, None)
        conn = libvirt.openReadOnly(default_uri(uri))
    except Exception:
        return []
    try:
        out = []
        for d in conn.listAllDomains(0):
            out += [d.name(), d.UUIDString()]
        return out
    except Exception:
        return []
    finally:
        conn.close()


def inventory_names() -> List[str]:
    from ctys_libvirt.inventory.store import read_names

    out = []
    for label, uuid in read_names():
        out += [label, uuid] if uuid else [label]
    return out


def conf_paths(incomplete: str) -> List[str]:
    """Directories and *.ctys files, when the word looks like a path."""
    if not incomplete.startswith(("/", ".", "~")) and "/" not in incomplete:
        return []
    import glob

    pattern = os.path.expanduser(incomplete) + "*"
    out = []
    for p in sorted(glob.glob(pattern))[:200]:
        if os.path.isdir(p):
            out.append(p + "/")
        elif p.endswith(".ctys"):
            out.append(p)
    return out


def _connect_of(ctx) -> Optional[str]:
    """The -c given so far to the command or globally."""
    while ctx is not None:
        v = ctx.params.get("connect") if ctx.params else None
        if isinstance(v, str) and v:
            return v
        ctx = ctx.parent
    return None


def addresses(ctx, incomplete: str) -> List[str]:
    """A VM: domain names/UUIDs of the connection, inventory labels/UUIDs, conf paths."""
    if conf_paths(incomplete):
        return conf_paths(incomplete)
    names = dict.fromkeys(domain_names(_connect_of(ctx)) + inventory_names())
    return [n for n in names if n.startswith(incomplete) or n.lower().startswith(incomplete.lower())]


def uris(incomplete: str) -> List[str]:
    return choose(URIS, incomplete)


# -- click `shell_complete` callbacks (ctx, param, incomplete); typer passes them to click
# as they are (its `autocompletion=` wrapper inspects every callback on every run) --

def values(*vals: str):
    """Completion of a closed set of option values."""
    def complete(ctx, param, incomplete):
        return choose(vals, incomplete)
    return complete


def address(ctx, param, incomplete):
    return addresses(ctx, incomplete)


def uri(ctx, param, incomplete):
    return uris(incomplete)


bootmode = values(*BOOTMODES)
console = values(*CONSOLES)
backend = values(*BACKENDS)
cancel_mode = values(*CANCEL_MODES)
