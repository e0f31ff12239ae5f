"""ARGSADD policy: which raw QEMU words a conf (or ``--argsadd``) may pass through.

Every word is walked the way QEMU parses its command line: an option, its value when it
takes one, or a bare word (QEMU opens a bare word as the first hard disk).  Options are
*guest-only* when they only shape the virtual hardware (``GUEST_FLAGS``/``GUEST_VALUED``,
with their values checked: ``-device usb-host`` or ``-smbios file=`` reach the host);
everything else reaches the host -- runs programs, opens host files/devices/sockets, or
changes how QEMU runs -- and is refused unless allowed.  The probed binary's option table
(qemu/probe.py) says which options exist and which take a value; an option it does not list
and we do not know as guest-only is refused as unknown (deny by default).  Knowledge of a
guest-only option the binary no longer lists (``-soundhw``) is kept: QEMU rejects it itself
and the lint explains it.

Who may allow what (design.md §10):
* ``--allow-argsadd OPT`` (CLI) or ``[argsadd] allow`` (site policy): for a trusted conf's
  ARGSADD/TIMEOPT and for ``--argsadd`` words;
* ``[argsadd] allow_untrusted`` (site policy) only: for an untrusted conf -- a flag typed by
  root never widens what another user's conf may do;
* programs named in a value (``exec:``, ``script=``, ``downscript=``, ``helper=``, slirp
  ``guestfwd=...cmd:``) need the extra token ``exec:``, whatever option carries them;
* a host path named by an allowed option must lie, after resolving symlinks, inside the VM
  directory or a storage root (policy ``[paths] storage_roots``, default libvirt's pool dir).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import ConfError, UsageError
# the words to judge (their own module: callers look there first and load this one only
# when a conf or the command line has any)
from ctys_libvirt.security.argwords import Source, sources  # noqa: F401 (API)

RUNS = "runs host programs"
FILES = "opens host files, devices or sockets"
RUNCTL = "changes how QEMU itself runs"
UNKNOWN = "is not known to be guest-only"

# Options without a value that only shape the guest (or are no-ops today).
GUEST_FLAGS = frozenset({
    "-usb", "-localtime", "-no-hpet", "-no-acpi", "-no-reboot", "-no-shutdown", "-no-fd-bootchk",
    "-win2k-hack", "-rtc-td-hack", "-enable-kvm", "-no-kvm", "-no-kvm-irqchip", "-no-kvm-pit",
    "-no-kvm-pit-reinjection", "-tdf", "-no-kqemu", "-kernel-kqemu", "-enable-kqemu", "-std-vga",
    "-nodefaults", "-no-user-config", "-nodefconfig", "-snapshot", "-mem-prealloc",
    "-full-screen", "-alt-grab", "-ctrl-grab", "-no-frame", "-portrait", "-no-quit",
    "-singlestep", "-only-migratable", "-nographic",
})
# Options with a value that only shape the guest; the value is still checked (_check_value).
GUEST_VALUED = frozenset({
    "-m", "-smp", "-cpu", "-k", "-vga", "-uuid", "-name", "-rtc", "-soundhw", "-watchdog",
    "-watchdog-action", "-balloon", "-hdachs", "-numa", "-accel", "-machine", "-M", "-boot",
    "-smbios", "-global", "-device", "-usbdevice", "-net", "-nic", "-icount", "-rotate", "-g",
    "-echr", "-overcommit", "-action", "-msg", "-tb-size", "-kvm-shadow-memory", "-realtime",
    "-compat", "-prom-env", "-object", "-display", "-d", "-fw_cfg", "-append", "-serial",
    "-parallel", "-netdev",
})
# Guest-only options whose value QEMU never reads as a host thing (free text, names, numbers):
# not scanned for keys or programs (a kernel command line may say anything).
FREE_TEXT = frozenset({"-append", "-name", "-uuid", "-m", "-smp", "-cpu", "-vga", "-soundhw",
                       "-watchdog", "-watchdog-action", "-d", "-echr", "-g", "-rotate",
                       "-prom-env", "-tb-size", "-kvm-shadow-memory", "-balloon", "-hdachs"})
# Options that take JSON values (QEMU 6.2+); elsewhere a '{' is just text.
_JSON_OPTIONS = frozenset({"-device", "-object", "-machine", "-M", "-accel", "-display",
                           "-compat", "-numa", "-audiodev", "-netdev", "-blockdev"})
# Host-reaching options we know, with the reason shown.  Anything else not guest-only is
# refused as UNKNOWN; these only make the message precise.
HOST_REASON = {
    "-plugin": RUNS,
    "-daemonize": RUNCTL, "-runas": RUNCTL, "-chroot": RUNCTL, "-run-with": RUNCTL,
    "-sandbox": RUNCTL, "-S": RUNCTL, "-preconfig": RUNCTL, "-async-teardown": RUNCTL,
    "-incoming": RUNCTL, "-loadvm": RUNCTL, "-h": RUNCTL, "-help": RUNCTL, "-version": RUNCTL,
    "-qtest": RUNCTL, "-set": RUNCTL,
}
for _o in ("-chardev", "-monitor", "-qmp", "-qmp-pretty", "-mon", "-debugcon", "-gdb", "-s",
           "-D", "-trace", "-pidfile", "-drive", "-blockdev", "-hda", "-hdb", "-hdc", "-hdd",
           "-fda", "-fdb", "-cdrom", "-sd", "-mtdblock", "-pflash", "-readconfig", "-writeconfig",
           "-kernel", "-initrd", "-dtb", "-bios", "-L", "-option-rom", "-acpitable", "-mem-path",
           "-audiodev", "-audio", "-fsdev", "-virtfs", "-virtfs_synth", "-tpmdev",
           "-vnc", "-spice", "-sdl", "-curses", "-add-fd", "-iscsi", "-semihosting",
           "-semihosting-config", "-pcidevice", "-bt", "-tftp", "-smb", "-bootp", "-redir",
           "-qtest-log", "-xen-domid", "-xen-attach", "-xen-domid-restrict"):
    HOST_REASON[_o] = FILES
# Host options taking a value, for binaries/versions whose -h we cannot read (no probe).
_HOST_NOARG = frozenset({"-daemonize", "-S", "-preconfig", "-async-teardown", "-h", "-help",
                         "-version", "-s", "-semihosting", "-sdl", "-curses",
                         "-xen-attach", "-xen-domid-restrict"})

# Keys of QEMU "a=b,c=d" values that name host things.  Exact key names.
HOST_KEYS = frozenset({
    "file", "filename", "path", "dir", "rootdir", "romfile", "dumpdtb", "splash", "rrfile",
    "firmware", "kernel", "initrd", "dtb", "host", "hostbus", "hostaddr", "hostport",
    "hostdevice", "sysfsdev", "fd", "fds", "vhostfd", "vhostfds", "logfile", "mem-path",
    "smb", "tftp", "bootfile", "hostfwd", "guestfwd", "sock", "socket", "evdev",
    "script", "downscript", "helper", "ifname", "br", "vhostdev", "x-igd-opregion", "db",
    "hidraw", "ibdev",
})
PROGRAM_KEYS = frozenset({"script", "downscript", "helper"})
# Path-valued keys checked against the VM dir/storage roots when their option is allowed.
PATH_KEYS = frozenset({"file", "filename", "path", "dir", "rootdir", "romfile", "dumpdtb",
                       "splash", "rrfile", "firmware", "kernel", "initrd", "dtb", "logfile",
                       "mem-path", "smb", "tftp", "evdev", "sock", "socket"})
# Options whose value is itself a host path.
PATH_VALUED = frozenset({"-pidfile", "-D", "-readconfig", "-writeconfig", "-kernel", "-initrd",
                         "-dtb", "-bios", "-L", "-option-rom", "-mem-path", "-hda", "-hdb",
                         "-hdc", "-hdd", "-fda", "-fdb", "-cdrom", "-sd", "-mtdblock", "-pflash",
                         "-plugin"})
# Endpoint prefixes of chardev-like values ("file:/x", "unix:/x", "pipe:/x").
_ENDPOINT = re.compile(r"^(?:file|pipe|unix|serial|tty|parport|pty):(.*)$")

# -device drivers that pass host devices or host backends through.
_HOST_DEVICE_PREFIXES = ("usb-host", "vfio", "pci-assign", "kvm-pci-assign", "vhost-", "xen-",
                         "u2f-passthru", "usb-mtp", "x-", "remote-", "spapr-vio-vty", "pvrdma",
                         "ccid-card-emulated")
_GUEST_OBJECTS = frozenset({"memory-backend-ram", "memory-backend-memfd", "iothread",
                            "rng-builtin", "throttle-group", "cryptodev-backend-builtin",
                            "main-loop", "thread-context"})
_GUEST_USBDEVICES = frozenset({"tablet", "mouse", "keyboard", "wacom-tablet"})


@dataclass(frozen=True)
class Finding:
    """One host-reaching word (or option + value) of an ARGSADD."""

    option: str          # the option as QEMU reads it (-chardev), or 'exec:' / '(image)'
    text: str            # the words as written, for the message
    reason: str
    allow_as: str        # what --allow-argsadd / the policy must name
    path: Optional[str] = None   # a host path named by the value (checked when allowed)


def split_qemu_opts(value: str) -> List[Tuple[Optional[str], str]]:
    """'a,b=c,,d' -> [(None,'a'), ('b','c,d')]: QEMU's option syntax (',,' is a comma)."""
    from ctys_libvirt.qemu.opts import split_commas

    out: List[Tuple[Optional[str], str]] = []
    for p in split_commas(value):
        k, sep, v = p.partition("=")
        out.append((k.strip().lower(), v) if sep else (None, p))
    return out


def _is_option(word: str) -> bool:
    if not word.startswith("-") or word in ("-", "--"):
        return False
    return not word[1:].replace(".", "", 1).isdigit()


def _norm(word: str) -> str:
    return "-" + word.lstrip("-")


def normalize_allow(token: str) -> str:
    """'chardev', '--chardev', '-chardev' -> '-chardev'; 'exec', 'exec:' -> 'exec:'."""
    t = token.strip()
    if t.rstrip(":").lower() == "exec":
        return "exec:"
    return _norm(t) if t else t


def classify(words: Sequence[str], probe=None) -> List[Finding]:
    """The host-reaching findings of ``words`` (empty: guest-only throughout)."""
    out: List[Finding] = []
    i, n = 0, len(words)
    while i < n:
        w = words[i]
        if not _is_option(w):
            out.append(Finding("(image)", w, "is a bare word, which QEMU opens as a hard disk image",
                               "(image)", path=w))
            out += _programs(w, "(image)")
            i += 1
            continue
        opt = _norm(w)
        if opt in GUEST_FLAGS:
            i += 1
            continue
        if opt in GUEST_VALUED:
            value = words[i + 1] if i + 1 < n else ""
            out += _check_value(opt, w, value)
            i += 2
            continue
        reason = HOST_REASON.get(opt)
        listed = probe is not None and (opt in probe.options or probe.accepts(opt))
        if reason is None:
            reason = UNKNOWN if listed or probe is None else \
                f"is not listed by QEMU {probe.version_text} ({probe.path}), so its effect is unknown"
        if probe is not None and listed:
            takes = opt in probe.options_with_arg or (opt in HOST_REASON and opt not in _HOST_NOARG
                                                      and opt not in probe.options)
        else:
            takes = opt in HOST_REASON and opt not in _HOST_NOARG
        value = words[i + 1] if takes and i + 1 < n else None
        text = w if value is None else f"{w} {value}"
        out.append(Finding(opt, text, reason, opt, path=_path_of(opt, value) if value else None))
        if value is not None:
            out += _programs(value, opt)
            out += [Finding(opt, text, reason, opt, path=p) for p in _value_paths(value)]
        i += 2 if takes else 1
    return out


def _programs(value: str, opt: str) -> List[Finding]:
    """Programs a value names: exec: anywhere, script=/downscript=/helper=, guestfwd cmd:."""
    found: List[Finding] = []
    low = value.lower()
    if "exec:" in low or re.search(r"guestfwd=[^,]*-cmd:", low):
        found.append(Finding("exec:", f"{opt} {value}", RUNS + " through /bin/sh", "exec:"))
    for key, v in split_qemu_opts(value):
        if key in PROGRAM_KEYS and v.strip().lower() not in ("", "no"):
            found.append(Finding("exec:", f"{opt} {value}", f"{RUNS} ({key}={v})", "exec:", path=v))
    return found


def _path_of(opt: str, value: str) -> Optional[str]:
    if opt in PATH_VALUED:
        return value
    m = _ENDPOINT.match(value)
    return m.group(1).split(",")[0] if m and m.group(1) else None


def _value_paths(value: str) -> List[str]:
    return [v for k, v in split_qemu_opts(value) if k in PATH_KEYS and v]


def _check_value(opt: str, word: str, value: str) -> List[Finding]:
    """Findings for a guest-only option whose value reaches the host anyway."""
    text = f"{word} {value}"
    if opt in FREE_TEXT:
        return []
    found: List[Finding] = []     # the option's own finding first, the programs it names after

    def host(reason: str, path: Optional[str] = None) -> None:
        found.append(Finding(opt, text, reason, opt, path=path))

    if opt in _JSON_OPTIONS and value.lstrip().startswith("{"):   # QEMU 6.2+: JSON values
        opts = _json_opts(value)
        if opts is None:
            host(f"{FILES} (a JSON value we cannot judge)")
            return found + _programs(value, opt)
    else:
        opts = split_qemu_opts(value)
    head = opts[0][1].strip().lower() if opts and opts[0][0] is None else ""
    if opt == "-k" and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        host(f"{FILES} (a keymap name that is a path)")

    for key, v in opts:
        if key in HOST_KEYS and key not in PROGRAM_KEYS:
            host(f"{FILES} ({key}=)", v if key in PATH_KEYS else None)
        if opt == "-global" and key and "." in key:      # -global driver.prop=value
            prop = key.split(".", 1)[1].strip()
            if prop in HOST_KEYS or prop.endswith("file"):
                host(f"{FILES} (property {prop})")
        if opt == "-global" and key == "property" and (v.strip().lower() in HOST_KEYS
                                                       or v.strip().lower().endswith("file")):
            host(f"{FILES} (property {v})")
    if opt == "-device":
        driver = head or dict((k, v) for k, v in opts if k).get("driver", "").lower()
        if driver.startswith(_HOST_DEVICE_PREFIXES):
            host(f"{FILES} (device {driver} passes a host device or backend through)")
    elif opt == "-object":
        qtype = head or dict((k, v) for k, v in opts if k).get("qom-type", "").lower()
        if qtype not in _GUEST_OBJECTS:
            host(f"{FILES} (object {qtype or '?'} is a host backend)")
    # user-mode networking (slirp) is what the conf's own NIC gets by default: it opens no
    # host file or device; its host-reaching keys (hostfwd=, guestfwd=, smb=, tftp=, ...) are
    # HOST_KEYS and judged above.  Every other backend (tap, bridge, socket, vde, ...) reaches
    # the host.
    elif opt == "-net":
        if head not in ("nic", "none", "user"):
            host(f"{FILES} (network backend {head or '?'})")
    elif opt == "-nic":
        if head not in ("none", "user"):
            host(f"{FILES} (network backend {head or '?'})")
    elif opt == "-netdev":
        kind = head or dict((k, v) for k, v in opts if k).get("type", "").lower()
        if kind != "user":
            host(f"{FILES} (network backend {kind or '?'})")
    elif opt == "-usbdevice":
        if value.strip().lower() not in _GUEST_USBDEVICES:
            host(f"{FILES} (usb device {value})", path=value.split(":", 1)[1] if ":" in value else None)
    elif opt == "-display":
        if head != "none":
            host(f"{FILES} (display {head or '?'} opens a host display)")
    elif opt in ("-serial", "-parallel"):
        if not re.fullmatch(r"none|null|pty|vc(:\d+c?x\d+c?)?", value.strip().lower()):
            host(f"{FILES} (character device {value})", path=_path_of(opt, value))
    return found + _programs(value, opt)


def _json_opts(value: str) -> Optional[List[Tuple[Optional[str], str]]]:
    """Flat key/values of a JSON option value (nested ones: None, not judged)."""
    import json

    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or any(isinstance(v, (dict, list)) for v in data.values()):
        return None
    out: List[Tuple[Optional[str], str]] = [(str(k).lower(), str(v)) for k, v in data.items()]
    for k in ("driver", "qom-type", "type"):
        if k in data:
            out.insert(0, (None, str(data[k])))
            break
    return out


def judge(vm, request, probe=None, *, allow: Iterable[str] = (), policy=None,
          other_disks: Optional[Dict[str, str]] = None, srcs: Optional[List[Source]] = None):
    """[(source, finding, error or None)] for every host-reaching word of the conf's ARGSADD
    and TIMEOPT and of ``--argsadd``; error is the ConfError/UsageError to raise.
    ``other_disks``: real path -> domain, the disks of the backend's other domains."""
    from ctys_libvirt.security.policy import load_policy
    from ctys_libvirt.security.trust import assess

    if srcs is None:
        srcs = sources(vm, request)
    if not srcs:
        return []
    policy = policy if policy is not None else load_policy()
    trust = getattr(vm, "trust", None)
    if trust is None and os.path.isfile(str(vm.source_path)):
        trust = assess(Path(vm.source_path), policy)
    trusted = trust is None or trust.trusted
    flag_allow = {normalize_allow(a) for a in allow}
    pol_allow = {normalize_allow(a) for a in policy.allow_argsadd}
    pol_untrusted = {normalize_allow(a) for a in policy.allow_argsadd_untrusted}
    roots = [str(vm.conf_dir)] + list(policy.storage_roots)
    out = []
    seen = set()
    for src in srcs:
        from_conf = src.conf_path is not None
        # a flag typed by the invoker never widens what an untrusted conf may do
        allowed = pol_untrusted if from_conf and not trusted else flag_allow | pol_allow | pol_untrusted
        for f in classify(src.words, probe):
            if (src.what, f) in seen:
                continue
            seen.add((src.what, f))
            if f.allow_as not in allowed:
                err = _refusal(src, f, from_conf, trust)
            elif f.path and f.allow_as != "exec:":
                err = _path_error(src, f, roots, from_conf, other_disks or {})
            elif f.path:
                err = _program_error(src, f, from_conf, policy)
            else:
                err = None
            out.append((src, f, err))
    return out


def enforce(vm, request, probe=None, *, allow: Iterable[str] = (), policy=None,
            other_disks: Optional[Dict[str, str]] = None,
            srcs: Optional[List[Source]] = None) -> None:
    """Raise ConfError (conf words, exit 3) or UsageError (--argsadd words, exit 1) for the
    first refused host-reaching word; return quietly when all is guest-only or allowed.
    ``srcs``: the words as ``sources(vm, request)`` gave them to a caller that looked first."""
    for _src, _f, err in judge(vm, request, probe, allow=allow, policy=policy,
                               other_disks=other_disks, srcs=srcs):
        if err is not None:
            raise err


def describe(vm, request, probe=None, *, allow: Iterable[str] = (), policy=None) -> List[dict]:
    """What `check` shows: each host-reaching word, why, and whether it is allowed."""
    return [{"source": src.what, "line": src.line, "option": f.option, "text": f.text,
             "reason": f.reason, "path": f.path, "allowed": err is None,
             "error": err.one_line() if err is not None else None}
            for src, f, err in judge(vm, request, probe, allow=allow, policy=policy)]


def _where(src: Source) -> str:
    return "--argsadd" if src.conf_path is None else src.what


def _error(src: Source, f: Finding, msg: str, hint: str, from_conf: bool):
    if from_conf:
        return ConfError(msg, path=src.conf_path, line=src.line, construct=f.option, hint=hint)
    return UsageError(msg, hint=hint)


def _refusal(src: Source, f: Finding, from_conf: bool, trust):
    msg = f"{_where(src)} {f.text}: {f.option} {f.reason}; refused"
    if f.option == "(image)":
        msg = f"{_where(src)} {f.text!r}: {f.reason}; refused"
        hint = "name disks in the conf (HDDBOOTIMAGE, HDB...), not as bare ARGSADD words"
    elif from_conf and trust is not None and not trust.trusted:
        hint = (f"the conf is not trusted ({trust.reason}); only the site policy can allow it: "
                f"[argsadd] allow_untrusted = [\"{f.allow_as}\"]")
    else:
        hint = (f"if this is intended, allow it with --allow-argsadd {f.allow_as} "
                f"or in the site policy ([argsadd] allow)")
    return _error(src, f, msg, hint, from_conf)


def _inside(path: str, roots: Sequence[str]) -> bool:
    for r in roots:
        r = os.path.realpath(r)
        if path == r or path.startswith(r.rstrip("/") + "/"):
            return True
    return False


def _path_error(src: Source, f: Finding, roots: Sequence[str], from_conf: bool,
                other_disks: Dict[str, str]):
    """An allowed option's host path must stay inside the VM dir or a storage root, and
    never be another domain's disk or a file a running process has open (a running VM's)."""
    raw = f.path
    base = os.path.dirname(src.conf_path) if src.conf_path else os.getcwd()
    real = os.path.realpath(os.path.join(base, raw))
    if not _inside(real, roots):
        msg = (f"{_where(src)} {f.text}: {f.option} names {raw} (resolves to {real}), outside the VM "
               f"directory and the storage roots; refused")
        hint = "keep such files in the VM directory, or add a storage root to the site policy ([paths] storage_roots)"
        return _error(src, f, msg, hint, from_conf)
    owner = other_disks.get(real)
    pid = None if owner else _open_by(real)
    if owner or pid:
        who = f"a disk of domain {owner}" if owner else f"open in running process {pid}"
        return _error(src, f, f"{_where(src)} {f.text}: {real} is {who}; refused",
                      "name a file of this VM's own", from_conf)
    return None


def _open_by(real: str) -> Optional[int]:
    """The pid of a process holding ``real`` open (another VM's disk), else None."""
    if not os.path.exists(real) or os.path.isdir(real):
        return None
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == real:
                    return int(pid)
            except OSError:
                continue
    return None


def _program_error(src: Source, f: Finding, from_conf: bool, policy):
    """script=/downscript=/helper= programs obey the binary rule (security/binaries.py)."""
    from ctys_libvirt.security.binaries import binary_problem

    why = binary_problem(f.path, policy=policy,
                         vm_dir=os.path.dirname(src.conf_path) if src.conf_path else None)
    if why is None:
        return None
    return _error(src, f, f"{_where(src)} {f.text}: program {f.path} {why}; refused",
                  "name a root-owned program outside every VM directory", from_conf)
