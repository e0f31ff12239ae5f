"""The shared vocabulary: typed dataclasses passed between conf reader, translators,
backends, inventory and CLI.  No behaviour beyond small helpers lives here."""
from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Dict, List, Mapping, Optional, Tuple


class BootMode(str, enum.Enum):
    HDD = "HDD"
    VHDD = "VHDD"
    CD = "CD"
    DVD = "DVD"
    FDD = "FDD"
    USB = "USB"
    PXE = "PXE"
    KERNEL = "KERNEL"


class ConsoleType(str, enum.Enum):
    VNC = "VNC"
    SDL = "SDL"
    CLI = "CLI"
    CLI0 = "CLI0"
    XTERM = "XTERM"
    GTERM = "GTERM"
    EMACS = "EMACS"
    EMACSM = "EMACSM"
    EMACSA = "EMACSA"
    EMACSAM = "EMACSAM"
    NONE = "NONE"

    @property
    def is_serial(self) -> bool:
        """Consoles that attach to the guest's serial line (ctys 'CLI family')."""
        return self in SERIAL_CONSOLES


SERIAL_CONSOLES = frozenset(
    {ConsoleType.CLI, ConsoleType.CLI0, ConsoleType.XTERM, ConsoleType.GTERM,
     ConsoleType.EMACS, ConsoleType.EMACSM, ConsoleType.EMACSA, ConsoleType.EMACSAM}
)
# Consoles with a client window on the invoker's display (backends/console_client.py)
WINDOW_CONSOLES = frozenset(
    {ConsoleType.VNC, ConsoleType.XTERM, ConsoleType.GTERM, ConsoleType.EMACS,
     ConsoleType.EMACSM, ConsoleType.EMACSA, ConsoleType.EMACSAM}
)


# Image formats qemu-img can create for an install target (QEMU_IMG), and the image size
# syntax it takes (HDDBOOTIMAGE_INST_SIZE): checked by the plan, used by host.images.
IMAGE_FORMATS = ("raw", "qcow2", "qcow", "vmdk", "vdi", "vpc", "vhdx", "qed", "cow")
IMAGE_SIZE = re.compile(r"^\d+(\.\d+)?[kKmMgGtT]?$")

# VNC display N listens on TCP port VNC_BASEPORT + N (QEMU, libvirt and ctys alike).
VNC_BASEPORT = 5900

# The one VGA table: ctys/QEMU ``-vga`` name -> libvirt ``<video><model type=...>``.
# conf.mapping checks VGADRIVER against it; translate.xml/argv and coexist read it.
VGA_MODELS = {"cirrus": "cirrus", "std": "vga", "vmware": "vmvga", "qxl": "qxl",
              "virtio": "virtio", "none": "none"}
# other spellings of the same devices (QEMU's -std-vga, libvirt's model names)
VGA_ALIASES = {"vga": "std", "std-vga": "std", "vmvga": "vmware"}


class CancelMode(str, enum.Enum):
    POWEROFF = "POWEROFF"
    FORCE = "FORCE"
    RESET = "RESET"
    REBOOT = "REBOOT"
    PAUSE = "PAUSE"
    SUSPEND = "SUSPEND"
    RESUME = "RESUME"


# ---------------------------------------------------------------------------
# Conf file -> VmConfig
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class HostContext:
    """Host facts a conf is evaluated against (never the process environment unless
    the user asks).  ``extra`` adds/overrides arbitrary variables (e.g. QEMUBASE)."""

    mydist: str = "debian"
    arch: str = "x86_64"
    user: str = "root"
    extra: Tuple[Tuple[str, str], ...] = ()

    def variables(self) -> Dict[str, str]:
        v = {"MYDIST": self.mydist, "ARCH_HOST": self.arch, "USER": self.user}
        v.update(dict(self.extra))
        return v


@dataclass(frozen=True)
class Disk:
    """A disk-like medium attached to the VM.  ``role`` is the legacy device slot
    (hda..hdd, fda, fdb, cdrom, usb)."""

    role: str
    path: Path
    device: str = "disk"  # disk | cdrom | floppy


@dataclass(frozen=True)
class ConfTrust:
    """Whose rights a conf acts with (decided once at load by security/trust.py)."""

    trusted: bool
    owner_uid: int        # whose rights an untrusted conf acts with (the conf file's owner)
    owner_gid: int
    reason: str           # one line for `check` and for refusals
    by_policy: bool = False   # trusted because the site policy trusts its owner

    @property
    def acts_as_root(self) -> bool:
        return self.trusted and os.geteuid() == 0

    def as_dict(self) -> dict:
        return {"trusted": self.trusted, "owner_uid": self.owner_uid, "owner_gid": self.owner_gid,
                "reason": self.reason, "by_policy": self.by_policy}


@dataclass
class VmConfig:
    """Everything a translator or backend needs from one ``<LABEL>.ctys``."""

    label: str
    source_path: Path                # absolute path of the .ctys (or legacy .conf) read
    conf_dir: Path                   # CTYSWRAPPERPATH
    sha256: str                      # of the conf file's bytes
    uuid: Optional[str] = None       # 32 lower-case hex digits, no dashes (None: none in conf)
    mac: Optional[str] = None        # MAC0, lower case
    ip: Optional[str] = None         # IP0 (first address field only)
    memory_mib: int = 512
    smp: int = 1
    arch: str = "x86_64"             # guest arch for libvirt (<os><type arch=>): x86_64 | i686 | ...
    cpu: Optional[str] = None        # -cpu model (qemu64, qemu32, ...)
    accelerator: str = "QEMU"        # KVM | QEMU | KQEMU (as written in the conf)
    startercall: Optional[str] = None
    wrappercall: Optional[str] = None
    qemubios: Optional[str] = None   # -L directory
    hdd_boot_image: Optional[Path] = None      # HDDBOOTIMAGE (HDA alias)
    extra_disks: Dict[str, Path] = field(default_factory=dict)  # hdb/hdc/hdd/fdb -> path
    fdd_image: Optional[Path] = None           # FDDIMAGE
    cd_image: Optional[Path] = None            # CDIMAGE
    dvd_image: Optional[Path] = None           # DVDIMAGE
    usb_image: Optional[Path] = None           # USBBOOTIMAGE
    qemu_img_format: str = "raw"               # QEMU_IMG, used for install-target creation
    inst_size: Optional[str] = None            # HDDBOOTIMAGE_INST_SIZE, e.g. "8G"
    inst_blocksize: Optional[str] = None
    inst_blockcount: Optional[str] = None
    default_bootmode: str = "HDD"
    default_instmode: str = "CD"
    default_instsource: Optional[str] = None
    default_insttarget: Optional[str] = None
    inst_sources: Dict[str, str] = field(default_factory=dict)  # CD/FDD/USB/HDD -> INSTSRC*
    kernel: Optional[Path] = None
    initrd: Optional[Path] = None
    append: Optional[str] = None
    nic_model: Optional[str] = "rtl8139"       # None: no NIC (plain NIC= in conf)
    vga: Optional[str] = None                  # cirrus | std | vmware | ... (from VGADRIVER)
    keyboard: Optional[str] = None             # KBD_LAYOUT
    localtime: bool = True                     # TIMEOPT contains -localtime
    timeopt: str = ""                          # raw TIMEOPT words other than -localtime
    argsadd: str = ""                          # raw ARGSADD (split with shell-word rules later)
    vnc_display: Optional[int] = None          # VNCACCESSDISPLAY pinned in conf
    default_console: Optional[str] = None      # #@#DEFAULTCONSOLE
    keys: Dict[str, str] = field(default_factory=dict)        # #@# keys, first wins
    variables: Dict[str, str] = field(default_factory=dict)   # final shell variables
    warnings: List[str] = field(default_factory=list)
    # decided once by load_conf (security/trust.py); None for a VmConfig built in code
    trust: Optional["ConfTrust"] = None

    @property
    def uuid_dashed(self) -> Optional[str]:
        return dash_uuid(self.uuid) if self.uuid else None


def dash_uuid(hex32: str) -> str:
    """'3f2a…' (32 hex, dashes optional) -> '3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c'."""
    h = hex32.replace("-", "").lower()
    if not re.fullmatch(r"[0-9a-f]{32}", h):
        raise ValueError(f"not a UUID: {hex32!r}")
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# ---------------------------------------------------------------------------
# CREATE request
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelSpec:
    kernel: Path
    initrd: Optional[Path] = None
    append: Optional[str] = None


@dataclass(frozen=True)
class InstallSpec:
    """INSTMODE after DEFAULT/empty fields were filled from the conf."""

    src_mode: str            # CD | DVD | FDD | USB | HDD | PXE
    src_path: Optional[str]  # None for PXE
    tgt_mode: str            # HDD | FDD | USB | VHDD | HDDDOS ...
    tgt_path: Optional[str]  # None: no target attached
    stage: Optional[str]     # INIT or a custom tag; INIT creates a missing target


@dataclass(frozen=True)
class InstModeFields:
    """INSTMODE as given (``translate.request.parse_instmode``); None marks an empty or
    DEFAULT field, filled from the conf by the plan.  ``text``: the value as written (the
    domain metadata and messages quote it)."""

    src_mode: Optional[str] = None    # CD | DVD | FDD | USB | HDD | PXE (CDROM/DVDROM folded)
    src_path: Optional[str] = None
    tgt_mode: Optional[str] = None    # HDD | HDDDOS | VHDD | FDD | USB
    tgt_path: Optional[str] = None
    stage: Optional[str] = None       # upper case: INIT or a custom tag
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class KernelFields:
    """KERNEL suboption as given (``translate.request.parse_kernel``); None fields fall back
    to KERNELIMAGE/INITRDIMAGE/APPEND.  ``text``: the value as written."""

    kernel: Optional[str] = None
    initrd: Optional[str] = None
    append: Optional[str] = None
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class BootRequest:
    """The CREATE suboptions that shape the machine, parsed and checked once by
    ``translate.request.make_request``; the plan trusts these values."""

    bootmode: Optional[BootMode] = None
    boot_path: Optional[str] = None          # BOOTMODE:<mode>%<path>
    instmode: Optional[InstModeFields] = None   # None: no install run
    kernel: Optional[KernelFields] = None       # None: no KERNEL suboption
    console: ConsoleType = ConsoleType.VNC
    vnc_display: Optional[int] = None        # explicit VNC display (port VNC_BASEPORT+N)
    argsadd: Tuple[str, ...] = ()            # raw ARGSADD strings, each shell-word split later
    install_phase: bool = True               # with INSTMODE: XML of the install run (False: final)
    allow_argsadd: Tuple[str, ...] = ()      # --allow-argsadd: host-reaching options allowed
    allow_devices: Tuple[str, ...] = ()      # host block/char devices a medium may be (--allow-device)


@dataclass(frozen=True)
class HostCaps:
    """What the target host offers; decides domain type, network and emulator."""

    kvm: bool = False
    emulator: Optional[str] = None           # path of qemu-system-x86_64 on the host
    default_network_active: bool = False
    arches: Tuple[str, ...] = ("x86_64", "i686")
    max_vcpus: Optional[int] = None          # the machine type's vCPU limit (domain capabilities)


@dataclass(frozen=True)
class HostFacts:
    """What translate/ needs to know about the host and never finds out itself: the
    capabilities, the format of each disk image (from its header) and which kernels QEMU
    loads as multiboot (from theirs).  The caller gathers them (``host.facts.host_facts``:
    mappings that read a header only when the plan looks a path up, once); a test passes
    plain dicts.  An image missing from ``image_formats`` is raw."""

    caps: HostCaps = field(default_factory=HostCaps)
    image_formats: Mapping[str, str] = field(default_factory=dict)   # real path -> format
    multiboot_kernels: Container[str] = frozenset()                  # kernel paths



@dataclass(frozen=True)
class CreateOptions:
    transient: bool = False
    reuse: bool = False
    wait_install: bool = False
    timeout: float = 60.0
    strict: bool = False
    network: Optional[str] = None            # libvirt network name
    bridge: Optional[str] = None             # host bridge
    qemu: Optional[str] = None               # direct backend: binary to use
    qemu_version: Optional[str] = None       # direct backend: its version, if -h does not say
    serial_log: Optional[str] = None         # also log the guest serial port to this file
    sdl_display: Optional[str] = None        # CONSOLE SDL under libvirt: X display for QEMU's window
    sdl_xauth: Optional[str] = None          # ... and the Xauthority file QEMU may read
    run_as: Optional[str] = None             # direct backend as root: QEMU's user (security.runas)


@dataclass
class CreateResult:
    name: str
    uuid: str
    backend: str                              # libvirt | direct
    state: str
    console: str
    vnc_display: Optional[int] = None
    vnc_port: Optional[int] = None
    serial: Optional[str] = None              # pty path / socket of the serial console
    pid: Optional[int] = None
    defined: bool = False                     # persistent definition written/updated
    install: bool = False
    created_target: Optional[str] = None      # install target created by STAGE INIT
    messages: List[str] = field(default_factory=list)   # what was done (for the user's eyes)
    warnings: List[str] = field(default_factory=list)   # what may be wrong (CLI: stderr)


@dataclass
class CancelResult:
    name: str
    mode: CancelMode
    action: str              # what happened: shutdown | destroyed | reset | paused | saved | resumed ...
    state: str               # state afterwards
    seconds: float = 0.0
    messages: List[str] = field(default_factory=list)
    # VM stacks (ctys_libvirt/stack): where the VM runs, the hypervisor found inside it and
    # the CANCELs done there first (deepest first), so a stack cancel is a tree of these
    uri: Optional[str] = None          # hypervisor the VM runs on (without URI parameters)
    inside: Optional[str] = None       # hypervisor inside the VM, when the conf names one
    reached: Optional[bool] = None     # inside answered; None: not tried (FORCE, --no-stack, ...)
    inner: List["CancelResult"] = field(default_factory=list)
    started: Optional[float] = None    # epoch seconds: this level's CANCEL began ...
    finished: Optional[float] = None   # ... and the VM itself was done (after its inner ones)


@dataclass
class DomainInfo:
    """One running or defined VM as LIST sees it, libvirt or direct."""

    name: str
    uuid: str
    state: str                                # running | paused | shutoff | ...
    backend: str                              # libvirt | direct
    host: str = ""
    ours: bool = False                        # carries our metadata / runtime dir
    label: Optional[str] = None
    mac: Optional[str] = None
    ip: Optional[str] = None
    vnc_display: Optional[int] = None
    vnc_port: Optional[int] = None
    console: Optional[str] = None
    pid: Optional[int] = None
    conf_path: Optional[str] = None
    conf_sha256: Optional[str] = None
    persistent: Optional[bool] = None
    autostart: Optional[bool] = None
    domain_id: Optional[int] = None
    hypervisor: str = "QEMU"
    accelerator: Optional[str] = None
    arch: Optional[str] = None
    memory_mib: Optional[int] = None
    vcpus: Optional[int] = None
    user: Optional[str] = None
    extra: Dict[str, str] = field(default_factory=dict)
    drift: Optional[str] = None               # ours: in sync | conf changed | domain edited | conflict | conf missing


@dataclass
class DefineResult:
    """One row of `define` / `sync`: what happened to one VM's persistent definition.
    status: defined | updated | unchanged | conflict | error (dry runs: would-*)."""

    address: str
    status: str
    name: Optional[str] = None
    uuid: Optional[str] = None
    conf_path: Optional[str] = None
    reason: str = ""
    drift: Optional[str] = None
    fields: List[Dict[str, str]] = field(default_factory=list)   # name, conf, domain, state
    messages: List[str] = field(default_factory=list)
    exit_code: int = 0
