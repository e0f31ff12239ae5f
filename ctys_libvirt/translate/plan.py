"""VmConfig + BootRequest -> MachinePlan: the backend-neutral machine description that both
the libvirt XML builder (translate.xml) and the direct QEMU argv builder (translate.argv) use.

Public API (stable; other modules rely on it):

    resolve_plan(vm, req, facts) -> MachinePlan raises UsageError / NotFoundError / ConfError
    MachinePlan, PlanDisk, PlanNic, TargetCreation   frozen dataclasses (fields documented below)
    final_request(vm, req) -> BootRequest       the normal-boot request after an INSTMODE run
    boot_kind(disk) -> 'hd' | 'cdrom' | 'fd'    legacy ``-boot`` letter class of a disk

Pure: host facts come in (model.HostFacts, gathered by the caller with host.facts): image
formats and multiboot kernels are looked up there, never read here.  What the plan itself
touches is only what the conf and request name: it stats those paths (existence, file
type) and passes each medium through security.media (symlinks resolved, trust, devices),
because which paths matter is decided by the boot rules below, while the request is
planned; nothing reads a file's contents.

Decisions (legacy defects fixed as design.md §4 / conf-format.md §8 ask):

* Boot media: HDD/VHDD[%PATH] boot hda; CD/DVD[%PATH] attach a cdrom at hdc and boot it, HDD
  kept (order 2); FDD at fda, HDD kept; USB as a USB disk, HDD kept; PXE boots the NIC first,
  HDD kept; KERNEL boots KERNELIMAGE (or the KERNEL suboption), HDD attached without a boot
  order.  A boot medium that is missing raises NotFoundError naming the mode, the variable and
  the fix.  A kept HDD that is missing is a warning (a fresh VM may have none yet).
* A conf KERNELIMAGE applies to every boot, like the legacy wrapper (kvmkern example); the
  KERNEL suboption overrides its fields; APPEND from the conf is the kernel command line.
* INSTMODE: empty/DEFAULT fields take DEFAULTINSTMODE, DEFAULTINSTSOURCE (when SRC is the
  default install mode; else the per-mode INSTSRC*), DEFAULTBOOTMODE and DEFAULTINSTTARGET
  (also when the target mode differs from DEFAULTBOOTMODE, if it is a disk type HDD/HDDDOS/
  VHDD; HDDBOOTIMAGE is the last fallback).  The source keeps its natural slot (CD/DVD -> hdc,
  FDD -> fda, HDD -> hda, USB -> usb); the target takes the first free slot of its type.
  Source boots first (order 1), target second.  Sources and targets must exist, except a
  file target with STAGE INIT, which the backend creates (``MachinePlan.create_target``).
  With both BOOTMODE and INSTMODE, the install run ignores BOOTMODE (warning).  A KERNEL
  suboption given with INSTMODE applies to the install run only.
* Relative paths (conf values and request paths) resolve against the conf's directory.
* Data disks HDB/HDC/HDD/FDB that do not exist are skipped with a warning (legacy); a data
  disk whose slot is taken by a boot/install medium is skipped with a warning (HDC vs cdrom).
* ARGSADD (conf, then each request ARGSADD) is split with shell-word rules (shlex), never by
  a shell.  TIMEOPT words other than -localtime are kept as ``timeopt_args``.
"""
from __future__ import annotations

import os
import re
import stat
import uuid as uuidlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

from ctys_libvirt.errors import ConfError, NotFoundError, UsageError
from ctys_libvirt.security.media import MediaPolicy, check_dir, check_medium, check_new_target, policy_for
from ctys_libvirt.model import (
    IMAGE_FORMATS,
    IMAGE_SIZE,
    BootMode,
    BootRequest,
    ConsoleType,
    HostFacts,
    InstallSpec,
    KernelFields,
    KernelSpec,
    VmConfig,
)
from ctys_libvirt.translate.request import (
    INST_SOURCE_MODES,
    INST_TARGET_MODES,
    parse_bootmode,
)
from ctys_libvirt.util.words import split_words

if TYPE_CHECKING:       # legacy_args imports this module at run time
    from ctys_libvirt.translate.legacy_args import LegacyArgs

MACHINE = "pc"
# Slot order of the plan's disk list (stable output).
ROLE_ORDER = ("hda", "hdb", "hdc", "hdd", "fda", "fdb", "usb", "usb1")
_ROLE_TARGET = {"hda": "hda", "hdb": "hdb", "hdc": "hdc", "hdd": "hdd",
                "fda": "fda", "fdb": "fdb", "usb": "sda", "usb1": "sdb"}
_ROLE_BUS = {"fda": "fdc", "fdb": "fdc", "usb": "usb", "usb1": "usb"}
DISK_TARGET_MODES = ("HDD", "HDDDOS", "VHDD")
FLOPPY_SIZE = "1440K"
_NIC_MODEL_RE = re.compile(r"[A-Za-z0-9_-]+")
_UUID_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class PlanDisk:
    """One attached medium.

    role: legacy slot hda|hdb|hdc|hdd|fda|fdb|usb|usb1; target: guest device name
    (hda.., fda/fdb, sda/sdb for USB); device: disk|cdrom|floppy; bus: ide|fdc|usb;
    format: from the host facts (the image header), or the format the backend will create;
    boot_order: 1-based, None = not bootable; purpose: boot|hdd|data|install-source|
    install-target; block: the path is a block/char device (libvirt ``type='block'``);
    exists: False only for an install target still to be created."""

    role: str
    path: str
    device: str
    bus: str
    target: str
    format: str
    boot_order: Optional[int]
    readonly: bool
    purpose: str
    block: bool = False
    exists: bool = True


@dataclass(frozen=True)
class PlanNic:
    mac: Optional[str]          # lower-case MAC0; None: let the backend choose (warning)
    model: str                  # NIC model as written (rtl8139, e1000, virtio, ...)
    boot_order: Optional[int] = None   # set for PXE boots


@dataclass(frozen=True)
class TargetCreation:
    """Install target the backend must create before starting (STAGE INIT, file missing).
    mode HDDDOS means a fully preallocated raw image (dd blocksize x blockcount)."""

    path: str
    format: str
    size: str
    mode: str
    blocksize: Optional[str] = None
    blockcount: Optional[str] = None
    owner: Optional[Tuple[int, int]] = None   # (uid, gid) it is given: an untrusted conf's owner


@dataclass(frozen=True)
class MachinePlan:
    name: str
    uuid: str                          # 32 lower-case hex digits, no dashes
    uuid_generated: bool               # True: derived from the conf path (uuid5)
    memory_mib: int
    smp: int
    arch: str                          # libvirt arch: x86_64 | i686 | ...
    cpu: str                           # qemu64 | qemu32 | conf CPU
    accelerator: str                   # KVM | QEMU | KQEMU (upper-cased conf value)
    machine: str                       # 'pc'
    disks: Tuple[PlanDisk, ...]        # in ROLE_ORDER
    boot_order: Tuple[str, ...]        # 'hd'|'cdrom'|'fd'|'network' by ascending boot order
    bootmode: Optional[BootMode]       # effective BOOTMODE (None for an install run)
    kernel: Optional[KernelSpec]
    install: Optional[InstallSpec]     # the resolved INSTMODE (also set for the final plan)
    install_phase: bool                # True: this plan is the install run
    create_target: Optional[TargetCreation]
    console: ConsoleType
    vnc_display: Optional[int]         # None: pick a free one
    keymap: Optional[str]
    nic: Optional[PlanNic]
    localtime: bool
    timeopt_args: Tuple[str, ...]
    vga: Optional[str]                 # a key of model.VGA_MODELS, None: backend default
    qemubios: Optional[str]
    argsadd: Tuple[str, ...]           # conf ARGSADD words, then request ARGSADD words
    warnings: Tuple[str, ...]
    conf_path: str
    conf_sha256: str
    keys: Tuple[Tuple[str, str], ...]  # '#@#' keys in file order
    request: BootRequest
    kernel_multiboot: bool = False     # QEMU loads the kernel as multiboot (host.imageformat.multiboot_kernel)
    # libvirt path only: ARGSADD options converted to elements (translate.legacy_args.apply
    # sets it and leaves only the rest in argsadd); None: ARGSADD passed through as written
    native: Optional["LegacyArgs"] = None

    @property
    def uuid_dashed(self) -> str:
        u = self.uuid
        return f"{u[0:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"

    @property
    def network_boot(self) -> bool:
        return bool(self.nic and self.nic.boot_order is not None)

    def disk(self, role: str) -> Optional[PlanDisk]:
        return next((d for d in self.disks if d.role == role), None)


def boot_kind(disk: PlanDisk) -> str:
    """'hd' | 'cdrom' | 'fd': the legacy ``-boot`` class of a disk (USB disks boot as hd)."""
    return {"cdrom": "cdrom", "floppy": "fd"}.get(disk.device, "hd")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _abs(vm: VmConfig, p) -> str:
    path = str(p)
    if path.startswith("~"):
        path = os.path.expanduser(path)
    if not path.startswith("/"):
        path = os.path.join(str(vm.conf_dir), path)
    return os.path.normpath(path)


def _exists(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def _is_block(st: os.stat_result) -> bool:
    return stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)


def _not_an_image(st: os.stat_result) -> Optional[str]:
    """Why a path that exists still cannot be a disk image (a directory, a FIFO, ...)."""
    if stat.S_ISREG(st.st_mode) or _is_block(st):
        return None
    return "is a directory" if stat.S_ISDIR(st.st_mode) else "is not a regular file or device"


# The generated-UUID warning states a lasting fact about the conf: front ends may show it
# once per definition rather than on every start (is_uuid_note tells it apart).
UUID_GENERATED_NOTE = "no UUID in the conf; using generated"


def is_uuid_note(warning: str) -> bool:
    return UUID_GENERATED_NOTE in warning


def _plan_uuid(vm: VmConfig, warnings: List[str]) -> Tuple[str, bool]:
    if vm.uuid:
        h = vm.uuid.replace("-", "").lower()
        if not _UUID_HEX.fullmatch(h):
            raise ConfError(f"UUID {vm.uuid!r} is not 32 hex digits", path=str(vm.source_path),
                            hint="fix the #@#UUID line (8-4-4-4-12 or 32 hex digits)")
        return h, False
    conf = os.path.abspath(str(vm.source_path))
    h = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "file://" + conf).hex
    warnings.append(
        f"{conf}: {UUID_GENERATED_NOTE} {h} (derived from the conf path; "
        f'add #@#UUID = "{h}" to keep it when the file moves)'
    )
    return h, True


def mac_from_uuid(uuid_hex: str) -> str:
    """52:54:00 (QEMU's locally administered prefix) + three bytes of sha256(UUID)."""
    import hashlib

    h = hashlib.sha256(("ctys-mac:" + uuid_hex.replace("-", "").lower()).encode()).hexdigest()
    return f"52:54:00:{h[0:2]}:{h[2:4]}:{h[4:6]}"
def plan_uuid(vm: VmConfig, warnings: List[str]) -> Tuple[str, bool]:
    """The UUID a plan of ``vm`` gets (32 hex) and whether it is generated; a generated one
    adds its warning to ``warnings`` (`check` shows it without building a plan)."""
    return _plan_uuid(vm, warnings)


def _arch_cpu(vm: VmConfig) -> Tuple[str, str]:
    a = (vm.arch or "").replace(" ", "")
    low = a.lower()
    if low in ("x86_64", "amd64", ""):
        arch, cpu = "x86_64", "qemu64"
    elif low in ("i386", "i486", "i586", "i686", "x86"):
        arch, cpu = "i686", "qemu32"
    else:
        arch, cpu = a, a
    return arch, (vm.cpu or cpu)


def _split_words(text: str, what: str, vm: VmConfig, from_conf: bool) -> List[str]:
    text = text or ""
    try:
        return split_words(text)
    except ValueError as exc:
        msg = f"cannot split {what} {text!r} into words: {exc}"
        hint = "balance the quotes (shell-word rules; nothing is run through a shell)"
        if from_conf:
            raise ConfError(msg, path=str(vm.source_path), hint=hint) from None
        raise UsageError(msg, hint=hint) from None


def _norm_src_mode(mode: str, vm: VmConfig, var: str) -> str:
    m = mode.strip().upper()
    m = {"CDROM": "CD", "DVDROM": "DVD"}.get(m, m)
    if m not in INST_SOURCE_MODES:
        raise ConfError(f"{var}={mode!r} is not an install source mode", path=str(vm.source_path),
                        hint="use one of " + ", ".join(INST_SOURCE_MODES))
    return m


class _Slots:
    """Assigns media to legacy slots and boot orders."""

    def __init__(self, vm: VmConfig, warnings: List[str], media: Optional[MediaPolicy] = None,
                 formats: Optional[Mapping[str, str]] = None):
        self.vm = vm
        self.formats = {} if formats is None else formats
        self.media = media or MediaPolicy(conf=str(vm.source_path))
        self.warnings = warnings
        self.disks: Dict[str, PlanDisk] = {}
        self._files: Dict[Tuple[int, int], PlanDisk] = {}   # (st_dev, st_ino) -> disk
        self.boot: List[object] = []  # roles (str) or 'network', in boot priority

    def attach(self, role: str, path: str, device: str, purpose: str, boot: bool,
               st: Optional[os.stat_result], fmt: Optional[str] = None) -> PlanDisk:
        # every medium passes here: resolved through symlinks and checked (security.media)
        what = f"{purpose} medium {_ROLE_TARGET[role]}"
        if st is not None:
            path, st = check_medium(path, self.media, what=what, write=device != "cdrom")
        else:
            path = check_new_target(path, self.media, what=what)
        if st is not None:
            # the same file (by device+inode, no extra syscalls) as two devices: QEMU's image
            # locking refuses it, and one device would write what the other reads
            other = self._files.get((st.st_dev, st.st_ino))
            if other is not None:
                raise UsageError(f"{path} would be attached twice ({other.target} and {_ROLE_TARGET[role]})",
                                 hint="give the boot medium a different image than the conf's disks")
        disk = PlanDisk(
            role=role, path=path, device=device,
            bus=_ROLE_BUS.get(role, "ide"), target=_ROLE_TARGET[role],
            format=fmt or (self.formats.get(path, "raw") if st is not None else "raw"),
            boot_order=None, readonly=(device == "cdrom"), purpose=purpose,
            block=bool(st is not None and _is_block(st)), exists=st is not None,
        )
        self.disks[role] = disk
        if st is not None:
            self._files[(st.st_dev, st.st_ino)] = disk
        if boot:
            self.boot.append(role)
        return disk

    def free(self, *roles: str) -> Optional[str]:
        return next((r for r in roles if r not in self.disks), None)


def _natural(mode: str) -> Tuple[str, str]:
    """(role, device) a medium of ``mode`` takes when it is the boot/source medium."""
    if mode in ("CD", "DVD"):
        return "hdc", "cdrom"
    if mode == "FDD":
        return "fda", "floppy"
    if mode == "USB":
        return "usb", "disk"
    return "hda", "disk"


def _need_medium(path: Optional[str], vm: VmConfig, what: str, var: str, example: str) -> Tuple[str, os.stat_result]:
    if not path:
        raise NotFoundError(
            f"{what} needs an image: set {var} in {vm.source_path}",
            hint=f"or give {example}",
        )
    st = _exists(path)
    if st is None:
        raise NotFoundError(f"{what}: {path} does not exist ({var})",
                            hint=f"create it, fix {var} in {vm.source_path}, or give {example}")
    why = _not_an_image(st)
    if why:
        raise NotFoundError(f"{what}: {path} {why}, not an image ({var})",
                            hint=f"fix {var} in {vm.source_path}, or give {example}")
    return path, st


def _keep_hdd(slots: _Slots, vm: VmConfig, boot: bool) -> None:
    if vm.hdd_boot_image is None or "hda" in slots.disks:
        return
    path = _abs(vm, vm.hdd_boot_image)
    st = _exists(path)
    if st is None or _not_an_image(st):
        why = "does not exist" if st is None else _not_an_image(st)
        slots.warnings.append(f"HDDBOOTIMAGE {path} {why}; booting without a hard disk")
        return
    slots.attach("hda", path, "disk", "hdd", boot, st)


# ---------------------------------------------------------------------------
# INSTMODE
# ---------------------------------------------------------------------------

def resolve_install(vm: VmConfig, req: BootRequest) -> InstallSpec:
    """Fill the empty/DEFAULT INSTMODE fields from the conf (paths made absolute)."""
    f = req.instmode
    default_src = _norm_src_mode(vm.default_instmode or "CD", vm, "DEFAULTINSTMODE")
    src_mode = f.src_mode or default_src
    if src_mode == "PXE":
        src_path = None
    elif f.src_path:
        src_path = f.src_path
    elif src_mode == default_src and vm.default_instsource:
        src_path = vm.default_instsource
    else:
        # No INSTSRCDVD in the template: a DVD source falls back to INSTSRCCDROM.
        src_path = vm.inst_sources.get(src_mode) or (vm.inst_sources.get("CD") if src_mode == "DVD" else None)
        if not src_path:
            var = {"CD": "INSTSRCCDROM", "DVD": "INSTSRCCDROM", "FDD": "INSTSRCFDD",
                   "USB": "INSTSRCUSB", "HDD": "INSTSRCHDD"}[src_mode]
            raise NotFoundError(
                f"INSTMODE source {src_mode} needs a path: set {var} (or DEFAULTINSTSOURCE) in {vm.source_path}",
                hint=f"or give INSTMODE:{src_mode}%/path/to/medium",
            )
    dbm = (vm.default_bootmode or "HDD").strip().upper()
    tgt_mode = f.tgt_mode or dbm
    if tgt_mode not in INST_TARGET_MODES:
        raise ConfError(f"DEFAULTBOOTMODE={vm.default_bootmode!r} cannot be an install target",
                        path=str(vm.source_path),
                        hint="give the target in INSTMODE (one of " + ", ".join(INST_TARGET_MODES) + ")")
    if f.tgt_path:
        tgt_path = f.tgt_path
    elif tgt_mode in DISK_TARGET_MODES or tgt_mode == dbm:
        tgt_path = vm.default_insttarget or (str(vm.hdd_boot_image) if vm.hdd_boot_image else None)
        if not tgt_path:
            raise NotFoundError(f"INSTMODE target {tgt_mode} needs a path: set DEFAULTINSTTARGET in {vm.source_path}",
                                hint=f"or give INSTMODE:{src_mode}%%{tgt_mode}%/path/to/target")
    else:
        raise UsageError(f"INSTMODE target {tgt_mode} needs a TGTPATH: {f.text!r}",
                         hint=f"use INSTMODE:{src_mode}%SRCPATH%{tgt_mode}%/path/to/target")
    return InstallSpec(
        src_mode=src_mode,
        src_path=_abs(vm, src_path) if src_path else None,
        tgt_mode=tgt_mode,
        tgt_path=_abs(vm, tgt_path),
        stage=f.stage,
    )


def _target_creation(vm: VmConfig, spec: InstallSpec) -> TargetCreation:
    mode = spec.tgt_mode
    if mode == "FDD":
        return TargetCreation(spec.tgt_path, "raw", FLOPPY_SIZE, mode)
    if not vm.inst_size:
        raise ConfError("HDDBOOTIMAGE_INST_SIZE is not set, so the install target cannot be created",
                        path=str(vm.source_path), hint="set HDDBOOTIMAGE_INST_SIZE=8G (for example)")
    # checked here, so `xml` reports a bad conf value as the conf error it is (exit 3)
    if not IMAGE_SIZE.match(str(vm.inst_size).strip()):
        raise ConfError(f"HDDBOOTIMAGE_INST_SIZE={vm.inst_size!r} is not an image size",
                        path=str(vm.source_path), hint="set e.g. HDDBOOTIMAGE_INST_SIZE=8G")
    fmt = (vm.qemu_img_format or "raw").lower()
    if mode in ("HDD", "VHDD") and fmt not in IMAGE_FORMATS:
        raise ConfError(f"QEMU_IMG={vm.qemu_img_format!r} is not an image format",
                        path=str(vm.source_path), hint="use one of " + ", ".join(IMAGE_FORMATS))
    if mode in ("HDD", "VHDD"):
        return TargetCreation(spec.tgt_path, vm.qemu_img_format or "raw", vm.inst_size, mode)
    return TargetCreation(spec.tgt_path, "raw", vm.inst_size, mode,
                          vm.inst_blocksize if mode == "HDDDOS" else None,
                          vm.inst_blockcount if mode == "HDDDOS" else None)


def final_request(vm: VmConfig, req: BootRequest) -> BootRequest:
    """After an INSTMODE run: boot the install target normally (same console/ARGSADD;
    the install-only KERNEL suboption is dropped)."""
    return _final_of(req, resolve_install(vm, req))


def _final_of(req: BootRequest, spec: InstallSpec) -> BootRequest:
    mode = {"FDD": BootMode.FDD, "USB": BootMode.USB}.get(spec.tgt_mode, BootMode.HDD)
    return replace(req, bootmode=mode, boot_path=spec.tgt_path, instmode=None, kernel=None,
                   install_phase=False)


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------

def _check_label(vm: VmConfig) -> str:
    name = vm.label or ""
    if not name.strip() or "/" in name or "\n" in name or "\x00" in name:
        raise ConfError(f"LABEL {name!r} cannot be a domain name", path=str(vm.source_path),
                        hint="use a LABEL without '/', newlines or NUL")
    return name


def _kernel(vm: VmConfig, kf: Optional[KernelFields], required: bool,
            media: Optional[MediaPolicy] = None) -> Optional[KernelSpec]:
    kernel = (kf.kernel if kf else None) or (str(vm.kernel) if vm.kernel else None)
    initrd = (kf.initrd if kf else None) or (str(vm.initrd) if vm.initrd else None)
    append = (kf.append if kf else None) or vm.append
    if not kernel:
        if required or kf is not None:
            raise NotFoundError(
                f"BOOTMODE KERNEL needs a kernel: set KERNELIMAGE in {vm.source_path}",
                hint="or give KERNEL:/path/to/kernel[%initrd[%append]]",
            )
        return None
    paths = []
    for what, var, p in (("kernel", "KERNELIMAGE", kernel), ("initrd", "INITRDIMAGE", initrd)):
        if p is None:
            paths.append(None)
            continue
        ap = _abs(vm, p)
        if not os.path.isfile(ap):
            raise NotFoundError(f"{what} {ap} is not a file ({var})",
                                hint=f"fix {var} in {vm.source_path} or the KERNEL suboption")
        if media is not None:
            ap, _ = check_medium(ap, media, what=what, write=False)
        paths.append(ap)
    return KernelSpec(kernel=Path(paths[0]), initrd=Path(paths[1]) if paths[1] else None,
                      append=append)


def _boot_media(slots: _Slots, vm: VmConfig, mode: BootMode, path: Optional[str]) -> bool:
    """Attach the medium of a normal boot; returns True when the NIC boots first."""
    p = _abs(vm, path) if path else None
    if mode in (BootMode.HDD, BootMode.VHDD):
        p, st = _need_medium(p or (_abs(vm, vm.hdd_boot_image) if vm.hdd_boot_image else None), vm,
                             f"BOOTMODE {mode.value}", "HDDBOOTIMAGE", f"BOOTMODE:{mode.value}%/path")
        slots.attach("hda", p, "disk", "boot", True, st)
        return False
    if mode in (BootMode.CD, BootMode.DVD, BootMode.FDD, BootMode.USB):
        var, conf_value = {
            BootMode.CD: ("CDIMAGE", vm.cd_image), BootMode.DVD: ("DVDIMAGE", vm.dvd_image),
            BootMode.FDD: ("FDDIMAGE", vm.fdd_image), BootMode.USB: ("USBBOOTIMAGE", vm.usb_image),
        }[mode]
        p, st = _need_medium(p or (_abs(vm, conf_value) if conf_value else None), vm,
                             f"BOOTMODE {mode.value}", var, f"BOOTMODE:{mode.value}%/path")
        role, device = _natural(mode.value)
        slots.attach(role, p, device, "boot", True, st)
        _keep_hdd(slots, vm, boot=True)
        return False
    if mode is BootMode.PXE:
        slots.boot.append("network")
        _keep_hdd(slots, vm, boot=True)
        return True
    # KERNEL: the disk is data for the kernel; it does not boot.
    _keep_hdd(slots, vm, boot=False)
    return False


def _install_media(slots: _Slots, vm: VmConfig, spec: InstallSpec) -> Optional[TargetCreation]:
    create = None
    if spec.src_mode == "PXE":
        slots.boot.append("network")
    else:
        st = _exists(spec.src_path)
        if st is None:
            raise NotFoundError(
                f"INSTMODE source {spec.src_mode}: {spec.src_path} does not exist",
                hint="fix the INSTMODE SRCPATH or DEFAULTINSTSOURCE/INSTSRC* in the conf",
            )
        if _not_an_image(st):
            raise NotFoundError(
                f"INSTMODE source {spec.src_mode}: {spec.src_path} {_not_an_image(st)}, not an image",
                hint="fix the INSTMODE SRCPATH or DEFAULTINSTSOURCE/INSTSRC* in the conf",
            )
        role, device = _natural(spec.src_mode)
        slots.attach(role, spec.src_path, device, "install-source", True, st)
    if spec.tgt_path == spec.src_path:
        raise UsageError(f"INSTMODE source and target are the same file: {spec.tgt_path}",
                         hint="give a different TGTPATH")
    if spec.tgt_mode == "FDD":
        role = slots.free("fda", "fdb")
        device = "floppy"
    elif spec.tgt_mode == "USB":
        role = slots.free("usb", "usb1")
        device = "disk"
    else:
        role = slots.free("hda", "hdb")
        device = "disk"
    st = _exists(spec.tgt_path)
    fmt = None
    if st is not None and _not_an_image(st):
        raise NotFoundError(f"install target {spec.tgt_path} {_not_an_image(st)}, not an image",
                            hint="give an image file or device as TGTPATH")
    if st is None:
        if spec.tgt_path.startswith("/dev/"):
            raise NotFoundError(f"install target device {spec.tgt_path} does not exist",
                                hint="plug in the device or give another TGTPATH")
        if spec.stage != "INIT":
            raise NotFoundError(
                f"install target {spec.tgt_path} does not exist",
                hint="add STAGE INIT to create it (INSTMODE:SRC%SRCPATH%TGT%TGTPATH%INIT)",
            )
        create = _target_creation(vm, spec)
        if not slots.media.trusted:
            create = replace(create, owner=(slots.media.acting_uid, slots.media.acting_gid))
        fmt = create.format
    slots.attach(role, spec.tgt_path, device, "install-target", True, st, fmt)
    return create


def _data_disks(slots: _Slots, vm: VmConfig) -> None:
    for role in ("hdb", "hdc", "hdd", "fdb"):
        p = vm.extra_disks.get(role)
        if not p:
            continue
        path = _abs(vm, p)
        var = role.upper()
        st = _exists(path)
        if st is None or _not_an_image(st):
            why = "does not exist" if st is None else _not_an_image(st)
            slots.warnings.append(f"{var} {path} {why}; not attached")
            continue
        if role in slots.disks:
            holder = slots.disks[role]
            slots.warnings.append(
                f"{var} {path} not attached: slot {role} holds the {holder.purpose} {holder.path}"
            )
            continue
        device = "floppy" if role == "fdb" else "disk"
        slots.attach(role, path, device, "data", False, st)


def resolve_plan(vm: VmConfig, req: BootRequest, facts: HostFacts) -> MachinePlan:
    """The machine for ``vm`` booted as ``req`` asks (see the module doc for the rules), on
    a host ``facts`` describes (the caller gathers them: host.facts.host_facts)."""
    warnings: List[str] = []
    name = _check_label(vm)
    uuid_hex, generated = _plan_uuid(vm, warnings)
    arch, cpu = _arch_cpu(vm)
    media = policy_for(vm, req.allow_devices)
    slots = _Slots(vm, warnings, media, facts.image_formats)

    install: Optional[InstallSpec] = None
    create = None
    bootmode: Optional[BootMode] = None
    kernel_req = req.kernel
    if req.instmode is not None:
        install = resolve_install(vm, req)
        if req.install_phase:
            if req.bootmode is not None:
                warnings.append(f"BOOTMODE {req.bootmode.value} ignored: INSTMODE decides the install boot")
            create = _install_media(slots, vm, install)
            network_first = install.src_mode == "PXE"
        else:
            freq = _final_of(req, install)      # INSTMODE resolved once, above
            kernel_req = None
            bootmode = freq.bootmode
            if _exists(install.tgt_path) is None:
                # Final definition of an install that creates its target: not there yet.
                if install.stage != "INIT":
                    raise NotFoundError(f"install target {install.tgt_path} does not exist",
                                        hint="add STAGE INIT to create it")
                role, device = _natural(bootmode.value)
                slots.attach(role, install.tgt_path, device, "boot", True, None,
                             _target_creation(vm, install).format)
                network_first = False
            else:
                network_first = _boot_media(slots, vm, bootmode, install.tgt_path)
    else:
        if req.bootmode is not None:
            bootmode, path = req.bootmode, req.boot_path
        else:
            try:
                bootmode, path = parse_bootmode(vm.default_bootmode or "HDD")
            except UsageError:
                raise ConfError(f"DEFAULTBOOTMODE={vm.default_bootmode!r} is not a boot mode",
                                path=str(vm.source_path), hint="use HDD, VHDD, CD, DVD, FDD, USB or PXE") from None
        network_first = _boot_media(slots, vm, bootmode, path)

    kernel = _kernel(vm, kernel_req, required=(bootmode is BootMode.KERNEL and install is None),
                     media=media)
    _data_disks(slots, vm)

    nic = None
    if vm.nic_model:
        model = vm.nic_model.strip()
        if not _NIC_MODEL_RE.fullmatch(model):
            raise ConfError(f"NIC={vm.nic_model!r} is not a NIC model name", path=str(vm.source_path),
                            hint="use e.g. rtl8139, e1000, virtio, pcnet, ne2k_pci")
        mac = vm.mac        # checked and lower-cased by conf.mapping
        if mac is None:
            # A MAC libvirt picked would change at every re-define: derive it from the
            # UUID, so the guest's NIC identity is as stable as the domain's.
            mac = mac_from_uuid(uuid_hex)
            warnings.append(f"{vm.source_path}: no MAC0 in the conf; using {mac} (derived from "
                            f'the UUID; add MAC0="{mac}" to keep it when the UUID changes)')
        nic = PlanNic(mac=mac, model=model)
    if network_first and nic is None:
        raise ConfError("PXE boot needs a NIC, but NIC is empty", path=str(vm.source_path),
                        hint="set NIC=rtl8139 (or another model) in the conf")

    # Boot orders: 1..n in priority order.
    disks = dict(slots.disks)
    order = 0
    kinds: List[str] = []
    for item in slots.boot:
        order += 1
        if item == "network":
            nic = replace(nic, boot_order=order)
            kinds.append("network")
        else:
            d = disks[item]
            # dataclasses.replace(d, boot_order=order), without its generic overhead
            disks[item] = d = PlanDisk(d.role, d.path, d.device, d.bus, d.target, d.format, order,
                                       d.readonly, d.purpose, d.block, d.exists)
            kinds.append(boot_kind(d))

    argsadd = _split_words(vm.argsadd, "ARGSADD", vm, True)
    for extra in req.argsadd:
        argsadd += _split_words(extra, "ARGSADD", vm, False)
    timeopt = [w for w in _split_words(vm.timeopt, "TIMEOPT", vm, True) if w != "-localtime"]


    return MachinePlan(
        name=name,
        uuid=uuid_hex,
        uuid_generated=generated,
        memory_mib=vm.memory_mib,     # conf.mapping checked MEMSIZE and SMP
        smp=vm.smp,
        arch=arch,
        cpu=cpu,
        accelerator=(vm.accelerator or "QEMU").strip().upper(),
        machine=MACHINE,
        disks=tuple(disks[r] for r in ROLE_ORDER if r in disks),
        boot_order=tuple(kinds),
        bootmode=bootmode,
        kernel=kernel,
        install=install,
        install_phase=bool(install is not None and req.install_phase),
        create_target=create,
        console=req.console,
        vnc_display=req.vnc_display if req.vnc_display is not None else vm.vnc_display,
        keymap=(vm.keyboard or None),
        nic=nic,
        localtime=bool(vm.localtime),
        timeopt_args=tuple(timeopt),
        vga=vm.vga,                    # conf.mapping checked VGADRIVER
        qemubios=check_dir(_abs(vm, vm.qemubios), media, what="QEMUBIOS") if vm.qemubios else None,
        argsadd=tuple(argsadd),
        warnings=tuple(warnings),
        conf_path=os.path.abspath(str(vm.source_path)),
        conf_sha256=vm.sha256,
        keys=tuple(vm.keys.items()),
        request=req,
        kernel_multiboot=kernel is not None and str(kernel.kernel) in facts.multiboot_kernels,
    )
