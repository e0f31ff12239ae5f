"""ARGSADD linting against the probed binary: options it does not list, options
removed or deprecated in that release, and sub-option churn (``vlan=``, short
booleans).  Returns one message per finding; the caller warns or (strict) fails."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from ctys_libvirt.qemu import optsets
from ctys_libvirt.qemu.probe import QemuProbe


def _is_option(word: str) -> bool:
    if not word.startswith("-") or word in ("-", "--"):
        return False
    return not word[1:].replace(".", "", 1).isdigit()  # -1, -0.5 are values


def lint_args(words: Sequence[str], probe: QemuProbe) -> List[str]:
    """Messages (each naming the QEMU version and the option) for ARGSADD ``words``."""
    return [msg for _sev, msg in lint_findings(words, probe)]


def lint_findings(words: Sequence[str], probe: QemuProbe) -> List[Tuple[str, str]]:
    """(severity, message): 'error' = the binary rejects it (unknown, removed, vlan=);
    'deprecated' = still accepted.  ``--strict`` turns only errors into failures."""
    who = f"QEMU {probe.version_text} ({probe.path})"
    out: List[Tuple[str, str]] = []
    skip_next = False
    prev = None
    for w in words:
        if skip_next:
            skip_next = False
            _lint_value(prev, w, probe, who, out)
            continue
        if not _is_option(w):
            continue
        opt = "-" + w.lstrip("-") if w.startswith("--") else w
        listed = opt in probe.options
        if listed or probe.accepts(opt):    # accepts: taken though -h hides it (-M on 0.15+)
            dep = optsets.DEPRECATED.get(opt)
            if dep and probe.version >= dep[0]:
                out.append(("deprecated", f"ARGSADD {w}: deprecated since QEMU {optsets.vstr(dep[0])} "
                           f"(use {dep[1]}); {who} still accepts it"))
            skip_next = opt in probe.options_with_arg if listed else _looks_like_value_follows(opt)
            prev = opt
            continue
        removed = optsets.removed_in(opt)
        repl = optsets.REPLACEMENT.get(opt)
        if removed and probe.version >= removed:
            msg = f"ARGSADD {w}: removed in QEMU {optsets.vstr(removed)}; {who} does not list it"
        else:
            msg = f"ARGSADD {w}: {who} does not list this option"
        if repl:
            msg += f" (use {repl})"
        out.append(("error", msg))
        prev = opt
        skip_next = _looks_like_value_follows(opt)
    return out


def _looks_like_value_follows(opt: str) -> bool:
    rng = optsets.HISTORY.get(opt)
    return opt in ("-soundhw", "-redir", "-balloon", "-tftp", "-smb", "-bootp", "-chroot", "-runas")\
        or (rng is not None and opt not in ("-localtime", "-sdl", "-curses", "-no-acpi", "-no-hpet",
                                            "-no-quit", "-std-vga", "-no-kqemu", "-kernel-kqemu",
                                            "-enable-kqemu", "-no-frame", "-win2k-hack", "-audio-help"))


def _lint_value(opt: str, value: str, probe: QemuProbe, who: str, out: List[Tuple[str, str]]) -> None:
    if opt == "-net" and "vlan=" in value and probe.version >= (3, 0, 0):
        out.append(("error", f"ARGSADD -net {value}: 'vlan=' was removed in QEMU 3.0; {who} rejects it "
                   "(use -netdev/-nic, or -net without vlan=)"))
    if opt in ("-serial", "-monitor", "-qmp", "-chardev", "-parallel") and probe.version >= (6, 0, 0):
        parts = value.split(",")
        if "nowait" in parts or "server" in parts:
            out.append(("deprecated", f"ARGSADD {opt} {value}: short-form booleans (server,nowait) are "
                       f"deprecated since QEMU 6.0 (use server=on,wait=off); {who} warns"))


def lint_passthrough(plan, *, emulator=None, version=None, strict: bool = False) -> List[str]:
    """Lint the words a MachinePlan passes through to QEMU (TIMEOPT leftovers, ARGSADD) in
    the libvirt path, against the emulator libvirt will run: the real binary when it is on
    this host, else the QEMU version libvirt reports (remote hosts).  Returns warnings;
    with ``strict`` an 'error' finding raises UsageError naming version and option."""
    words = list(plan.timeopt_args) + list(plan.argsadd)
    if not words:
        return []
    probe_ = None
    if emulator:
        import os

        from ctys_libvirt.errors import QemuProbeError
        from ctys_libvirt.qemu.probe import probe as _probe

        if os.path.exists(emulator):
            try:
                probe_ = _probe(emulator)
            except QemuProbeError:
                probe_ = None
    if probe_ is None and version:
        from ctys_libvirt.qemu.probe import synthetic_probe

        probe_ = synthetic_probe(version, path=emulator or "qemu")
    if probe_ is None:
        return []
    findings = lint_findings(words, probe_)
    if strict:
        errors = [msg for sev, msg in findings if sev == "error"]
        if errors:
            from ctys_libvirt.errors import UsageError

            raise UsageError(errors[0], hint="fix ARGSADD, or drop --strict to only warn")
    return [msg for _sev, msg in findings]
