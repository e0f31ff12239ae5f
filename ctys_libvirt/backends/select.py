"""Backend choice: ``--backend auto|libvirt|direct``.

``auto`` uses libvirt when a connection opens and its emulator can run the conf
(not KQEMU, no installed STARTERCALL binary libvirt cannot drive); otherwise the direct
QEMU exec backend.  A STARTERCALL that is not installed here does not force the direct
backend (it could not run it either): libvirt runs its own emulator, with a warning.  ``explain_choice`` returns the same decision with its reasons,
for ``ctys-libvirt doctor``.  Nothing here opens a backend: ``ctys_libvirt.lifecycle``
does, by these rules (so the libvirt backend never imports this module: no cycle)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ctys_libvirt.util.uri import default_uri
from ctys_libvirt.errors import UsageError
from ctys_libvirt.model import VmConfig

KINDS = ("auto", "libvirt", "direct")


@dataclass
class BackendChoice:
    """Which backend ``auto`` (or the explicit kind) resolves to, and why."""

    kind: str                       # libvirt | direct
    requested: str                  # auto | libvirt | direct
    uri: Optional[str] = None
    reasons: List[str] = field(default_factory=list)
    libvirt_reachable: Optional[bool] = None
    libvirt_version: Optional[str] = None
    libvirt_error: Optional[str] = None
    emulator: Optional[str] = None  # libvirt's emulator for the conf (when it matters)




def fallback_refusal(uri: Optional[str]) -> Optional[str]:
    """For the CLIs: why ``auto`` must not fall back to the local direct backend when
    libvirt at ``uri`` (the user's explicit --connect, or None) cannot be opened, or None
    when it may.  An explicit URI (or a remote LIBVIRT_DEFAULT_URI) names where the VM must
    run: starting it here instead would put it on the wrong host, so that is an error."""
    if uri:
        return f"--connect {uri} was given"
    from urllib.parse import urlsplit

    eff = default_uri(None)
    try:
        host = urlsplit(eff).hostname
    except ValueError:
        host = None
    if host and host not in ("localhost", "127.0.0.1", "::1"):
        return f"LIBVIRT_DEFAULT_URI {eff} names the host {host}"
    return None


def conf_needs_direct(vm: Optional[VmConfig]) -> Optional[str]:
    """Why this conf cannot run under libvirt, or None when it can.  A STARTERCALL that is
    not installed here is no reason: libvirt runs its own emulator (see startercall_missing);
    one that is installed but too old for libvirt is (that QEMU runs directly)."""
    if vm is None:
        return None
    if (vm.accelerator or "").upper() == "KQEMU":
        return f"{vm.label}: ACCELERATOR=KQEMU needs a legacy QEMU run directly (libvirt has no KQEMU)"
    if vm.startercall and not startercall_missing(vm):
        from ctys_libvirt.qemu.discovery import libvirt_can_drive

        ok, why = libvirt_can_drive(vm.startercall, vm_dir=str(vm.conf_dir))
        if not ok:
            return f"{vm.label}: STARTERCALL {vm.startercall} {why}"
    return None


def startercall_missing(vm: Optional[VmConfig]) -> bool:
    """The conf names a STARTERCALL binary this host does not have (e.g. RHEL's
    /usr/libexec/qemu-kvm on Debian)."""
    if vm is None or not vm.startercall:
        return False
    from ctys_libvirt.qemu.discovery import resolve_binary

    return not resolve_binary(vm.startercall)


def libvirt_emulator(conn, vm: VmConfig) -> Optional[str]:
    """The emulator libvirt runs for this conf's architecture on ``conn``."""
    from ctys_libvirt.host.caps import libvirt_host_caps
    from ctys_libvirt.translate.plan import _arch_cpu

    return libvirt_host_caps(conn, _arch_cpu(vm)[0]).emulator


def startercall_note(vm: VmConfig, emulator: Optional[str]) -> str:
    """The warning `auto` gives when it runs a conf with a missing STARTERCALL on libvirt."""
    return (f"{vm.label}: STARTERCALL {vm.startercall} is not installed on this host; "
            f"libvirt runs its emulator {emulator or '(the default for the architecture)'} instead")


def _version_str(v: int) -> str:
    return f"{v // 1000000}.{(v // 1000) % 1000}.{v % 1000}"


def _probe_libvirt(uri: str, choice: BackendChoice, vm: Optional[VmConfig] = None) -> bool:
    try:
        import libvirt
    except ImportError as exc:  # pragma: no cover - dependency is fixed
        choice.libvirt_reachable = False
        choice.libvirt_error = f"libvirt-python not importable: {exc}"
        return False
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        choice.libvirt_reachable = False
        choice.libvirt_error = str(exc).strip().splitlines()[0] if str(exc).strip() else "open failed"
        return False
    try:
        choice.libvirt_reachable = True
        try:
            choice.libvirt_version = _version_str(conn.getLibVersion())
        except libvirt.libvirtError:
            pass
        if vm is not None:
            choice.emulator = libvirt_emulator(conn, vm)
    finally:
        conn.close()
    return True


def explain_choice(kind: str = "auto", *, uri: Optional[str] = None,
                   vm: Optional[VmConfig] = None) -> BackendChoice:
    """Resolve ``kind`` to a concrete backend without constructing it."""
    kind = (kind or "auto").lower()
    if kind not in KINDS:
        raise UsageError(f"unknown backend {kind!r}", hint="use auto, libvirt or direct")
    target_uri = default_uri(uri)
    choice = BackendChoice(kind=kind if kind != "auto" else "libvirt", requested=kind, uri=target_uri)
    if kind == "direct":
        choice.reasons.append("direct requested explicitly")
        return choice
    if kind == "libvirt":
        choice.reasons.append("libvirt requested explicitly")
        return choice
    need = conf_needs_direct(vm)
    if need:
        choice.kind = "direct"
        choice.reasons.append(need)
        return choice
    if _probe_libvirt(target_uri, choice, vm if startercall_missing(vm) else None):
        choice.kind = "libvirt"
        choice.reasons.append(f"libvirt reachable at {target_uri}"
                              + (f" (libvirt {choice.libvirt_version})" if choice.libvirt_version else ""))
        if startercall_missing(vm):
            choice.reasons.append(startercall_note(vm, choice.emulator))
    else:
        choice.kind = "direct"
        choice.reasons.append(f"libvirt not reachable at {target_uri}: {choice.libvirt_error}")
        if startercall_missing(vm):
            choice.reasons.append(f"{vm.label}: STARTERCALL {vm.startercall} is not installed on this "
                                  "host either, so the direct backend cannot run it")
    return choice
