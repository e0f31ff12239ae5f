"""Legacy ARGSADD words -> typed libvirt settings and devices, plus the words left over.

On the legacy command line ARGSADD came after everything the wrapper wrote, so QEMU took
ARGSADD's value where both gave one; here such a value wins too, with a warning.  Only
options libvirt has an element for are converted; everything else (and every form that
reaches the host: files, sockets, host devices, scripts) stays a word for
``<qemu:commandline>``, where the trust policy and the QEMU lint judge it.  The direct
backend never uses this module: it passes ARGSADD verbatim.

Public API:

    convert(words) -> LegacyArgs          pure: parsed words only, no conf knowledge
    apply(plan, conv) -> MachinePlan      merged with what the conf gives (libvirt path)
    LegacyArgs, Conversion, NativeNic, NativeSound
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from ctys_libvirt.model import VGA_MODELS

# QEMU -soundhw names -> libvirt <sound model>; 'hda' is libvirt's ich6 (intel-hda + duplex
# codec).  pcspk is left out: libvirt 9 spells <sound model='pcspk'> as -soundhw, which QEMU
# 7.1+ no longer has, so it would fail exactly like the passthrough.
SOUNDHW = {"sb16": "sb16", "es1370": "es1370", "ac97": "ac97", "hda": "ich6"}
# the PCI/ISA cards of `-soundhw all` that libvirt models (the PC speaker is dropped, warned)
SOUNDHW_ALL = ("sb16", "es1370", "ac97", "ich6")
# -device models -> (kind, libvirt value)
DEVICE_MODELS = {
    "usb-tablet": ("input", "tablet"), "usb-mouse": ("input", "mouse"), "usb-kbd": ("input", "keyboard"),
    "virtio-balloon": ("balloon", "virtio"), "virtio-balloon-pci": ("balloon", "virtio"),
    "i6300esb": ("watchdog", "i6300esb"), "ib700": ("watchdog", "ib700"),
    "intel-hda": ("sound", "ich6"), "ich9-intel-hda": ("sound", "ich9"),
    "AC97": ("sound", "ac97"), "ac97": ("sound", "ac97"), "sb16": ("sound", "sb16"),
    "ES1370": ("sound", "es1370"), "es1370": ("sound", "es1370"),
    "hda-duplex": ("codec", "duplex"), "hda-output": ("codec", "output"), "hda-micro": ("codec", "micro"),
    "piix3-usb-uhci": ("usb", "piix3-uhci"), "piix4-usb-uhci": ("usb", "piix4-uhci"),
    "usb-ehci": ("usb", "ehci"), "ich9-usb-ehci1": ("usb", "ich9-ehci1"),
    "nec-usb-xhci": ("usb", "nec-xhci"), "qemu-xhci": ("usb", "qemu-xhci"),
}
# -device / -net nic model names -> libvirt <model type>
NIC_MODELS = {"e1000": "e1000", "e1000e": "e1000e", "rtl8139": "rtl8139", "ne2k_pci": "ne2k_pci",
              "pcnet": "pcnet", "i82551": "i82551", "i82557b": "i82557b", "i82559er": "i82559er",
              "virtio": "virtio", "virtio-net-pci": "virtio", "virtio-net": "virtio", "vmxnet3": "vmxnet3"}
USBDEVICE_INPUTS = {"tablet": "tablet", "mouse": "mouse", "keyboard": "keyboard"}
WATCHDOG_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "none", "inject-nmi")
RTC_TRACK = {"host": "wall", "rt": "realtime", "vm": "guest"}
# serial backends that are the guest console port libvirt already gives (a pty here)
SERIAL_CONSOLE = ("pty", "vc", "stdio", "mon:stdio")
# options that always take a value (so a value starting with '-' is still theirs)
_WITH_VALUE = frozenset("""-m -smp -cpu -vga -k -rtc -boot -name -net -netdev -device -serial
 -parallel -soundhw -usbdevice -balloon -watchdog -watchdog-action -M -machine -drive -hda -hdb
 -hdc -hdd -fda -fdb -cdrom -monitor -qmp -chardev -display -vnc -smbios -global -object -L
 -bios -kernel -initrd -append -audiodev -accel -redir -tftp -smb -bootp -option-rom -uuid""".split())
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_SIZE = re.compile(r"(\d+)([MmGg]?)")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Conversion:
    """One legacy option and the libvirt element(s) it became (for check/xml reports)."""

    words: Tuple[str, ...]
    became: str


@dataclass(frozen=True)
class NativeNic:
    model: Optional[str]        # libvirt model type; None: the conf's NIC model
    mac: Optional[str]          # lower-case; None: the conf's MAC0 / backend choice


@dataclass(frozen=True)
class NativeSound:
    model: str                  # libvirt <sound model>
    codec: Optional[str] = None  # hda codec type (duplex|output|micro)


@dataclass(frozen=True)
class LegacyArgs:
    """What ARGSADD asks for, in libvirt terms.  None/empty: ARGSADD said nothing about it."""

    memory_mib: Optional[int] = None
    smp: Optional[int] = None
    cpu: Optional[str] = None
    vga: Optional[str] = None
    keymap: Optional[str] = None
    localtime: Optional[bool] = None
    clock_start: Optional[str] = None      # -rtc base=<date>: epoch seconds for offset='absolute'
    rtc_track: Optional[str] = None        # <timer name='rtc' track=...>
    rtc_tickpolicy: Optional[str] = None   # <timer name='rtc' tickpolicy=...>
    acpi: Optional[bool] = None
    hpet: Optional[bool] = None
    accelerator: Optional[str] = None      # KVM | QEMU
    usb: bool = False                      # a USB controller is needed (libvirt's own, one)
    usb_model: Optional[str] = None        # -device <usb host controller>
    inputs: Tuple[str, ...] = ()           # USB input devices: tablet | mouse | keyboard
    sounds: Tuple[NativeSound, ...] = ()
    watchdog: Optional[str] = None
    watchdog_action: Optional[str] = None
    balloon: Optional[str] = None          # virtio | none
    nics: Tuple[NativeNic, ...] = ()       # -net nic / -device <nic>, in order
    net_kind: Optional[str] = None         # user | bridge | default (the host's usual link)
    net_bridge: Optional[str] = None
    net_none: bool = False
    graphics: Optional[bool] = None        # False: -nographic
    extra_serials: Tuple[str, ...] = ()    # libvirt serial types for ports after the console's
    parallels: Tuple[str, ...] = ()        # libvirt parallel types
    boot: Optional[str] = None             # legacy -boot letters (c d a n), priority order
    boot_menu: Optional[bool] = None
    leftover: Tuple[str, ...] = ()
    converted: Tuple[Conversion, ...] = ()
    warnings: Tuple[str, ...] = ()


def _opts(value: str) -> Tuple[str, Dict[str, str]]:
    """'name,k=v,flag' -> ('name', {k: v, flag: ''}) (QEMU's option syntax, no ',,')."""
    head, *rest = value.split(",")
    d: Dict[str, str] = {}
    for item in rest:
        k, _, v = item.partition("=")
        d[k] = v
    return head, d


def _keyvals(value: str) -> Dict[str, str]:
    """'k=v,flag' -> {k: v, flag: ''}."""
    return _opts("," + value)[1]


class _Builder:
    def __init__(self):
        self.v: Dict[str, object] = {}
        self.inputs: List[str] = []
        self.sounds: List[NativeSound] = []
        self.nics: List[NativeNic] = []
        self.serials: List[str] = []
        self.parallels: List[str] = []
        self.left: List[str] = []
        self.done: List[Conversion] = []
        self.warn: List[str] = []
        self.netdevs: Dict[str, Tuple[str, Dict[str, str]]] = {}   # id -> (kind, opts)
        self.serial_seen = False

    def ok(self, words, became: str, **settings) -> bool:
        self.v.update(settings)
        self.done.append(Conversion(tuple(words), became))
        return True


def _mem(value: str) -> Optional[int]:
    """-m N[M|G] or -m size=N[M|G] -> MiB; slots/maxmem (hotplug) are not converted."""
    v = value[5:] if value.startswith("size=") else value
    m = _SIZE.fullmatch(v)
    if not m:
        return None
    n = int(m.group(1)) * (1024 if m.group(2) in ("G", "g") else 1)
    return n if n > 0 else None


def _cpu_ok(value: str) -> bool:
    """model[,+feat|,-feat|,feat=on|off]: what libvirt's <cpu> can say."""
    model, *flags = value.split(",")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", model):
        return False
    return all(re.fullmatch(r"[+-][A-Za-z0-9_.-]+|[A-Za-z0-9_.-]+=(on|off)", f) for f in flags)


def _one(b: _Builder, opt: str, val: Optional[str]) -> bool:
    """Convert one option (with its value); False leaves it for qemu:commandline."""
    w = (opt,) if val is None else (opt, val)
    if opt == "-usb":
        return b.ok(w, "the one USB controller libvirt gives the machine (no second one)", usb=True)
    if opt == "-usbdevice" and val in USBDEVICE_INPUTS:
        b.inputs.append(USBDEVICE_INPUTS[val])
        return b.ok(w, f"<input type='{USBDEVICE_INPUTS[val]}' bus='usb'/>", usb=True)
    if opt == "-soundhw" and val:
        cards = SOUNDHW_ALL if val == "all" else tuple(val.split(","))
        if not all(c in SOUNDHW or c in SOUNDHW.values() for c in cards):
            return False            # a card libvirt has no model for: QEMU decides (lint warns)
        models = [SOUNDHW.get(c, c) for c in cards]
        if val == "all":
            b.warn.append("ARGSADD -soundhw all: the PC speaker (pcspk) has no libvirt element "
                          "this QEMU accepts; the other cards are converted")
        b.sounds.extend(NativeSound(m) for m in models)
        return b.ok(w, " ".join(f"<sound model='{m}'/>" for m in models))
    if opt in ("-vga", "-std-vga"):
        name = "std" if opt == "-std-vga" else (val or "").lower()
        name = name if name in VGA_MODELS else None
        if name is None:
            return False
        return b.ok(w, f"video model of VGADRIVER={name} (with a graphical console)", vga=name)
    if opt == "-k" and val and _NAME.fullmatch(val):
        return b.ok(w, f"<graphics keymap='{val}'> (as KBD_LAYOUT)", keymap=val)
    if opt == "-localtime":
        return b.ok(w, "<clock offset='localtime'/>", localtime=True)
    if opt == "-rtc" and val:
        return _rtc(b, w, val)
    if opt == "-no-acpi":
        return b.ok(w, "<features> without <acpi/>", acpi=False)
    if opt == "-no-hpet":
        return b.ok(w, "<timer name='hpet' present='no'/>", hpet=False)
    if opt == "-m" and val:
        n = _mem(val)
        return n is not None and b.ok(w, f"<memory unit='MiB'>{n}</memory>", memory_mib=n)
    if opt == "-smp" and val:
        head, kv = _opts(val)
        if head.startswith("cpus="):
            head = head[5:]
        if not head.isdigit() or int(head) <= 0 or kv:
            return False            # topology/maxcpus: QEMU decides
        return b.ok(w, f"<vcpu>{int(head)}</vcpu>", smp=int(head))
    if opt == "-cpu" and val and _cpu_ok(val):
        return b.ok(w, f"<cpu> model {val.split(',')[0]} (as CPU)", cpu=val)
    if opt == "-enable-kvm" or (opt == "-accel" and val == "kvm"):
        return b.ok(w, "<domain type='kvm'> (as ACCELERATOR=KVM)", accelerator="KVM")
    if opt == "-no-kvm" or (opt == "-accel" and val == "tcg"):
        return b.ok(w, "<domain type='qemu'> (as ACCELERATOR=QEMU)", accelerator="QEMU")
    if opt == "-no-kqemu":
        return b.ok(w, "nothing (the QEMU libvirt runs has no KQEMU to disable)")
    if opt == "-daemonize":
        return b.ok(w, "nothing (libvirt runs QEMU in the background itself)")
    if opt == "-rtc-td-hack":
        return b.ok(w, "<timer name='rtc' tickpolicy='catchup'/> (its -rtc driftfix=slew spelling)",
                    rtc_tickpolicy="catchup")
    if opt == "-uuid" and val:
        b.warn.append(f"ARGSADD -uuid {val}: the domain keeps the conf's UUID (#@#UUID); dropped")
        return b.ok(w, "nothing (the domain UUID is the conf's)")
    if opt == "-name" and val:
        b.warn.append(f"ARGSADD -name {val}: the domain is named after the conf's LABEL; dropped")
        return b.ok(w, "nothing (the domain name is the LABEL)")
    if opt == "-boot" and val:
        return _boot(b, w, val)
    if opt == "-nographic":
        return b.ok(w, "no <graphics>, <video model='none'> (the serial console stays a pty)",
                    graphics=False)
    if opt == "-balloon" and val:
        head, kv = _opts(val)
        if head in ("virtio", "none") and not kv:
            return b.ok(w, f"<memballoon model='{head}'/>", balloon=head)
        return False
    if opt == "-watchdog" and val in ("i6300esb", "ib700"):
        return b.ok(w, f"<watchdog model='{val}'/>", watchdog=val)
    if opt == "-watchdog-action" and val in WATCHDOG_ACTIONS:
        return b.ok(w, f"<watchdog action='{val}'/>", watchdog_action=val)
    if opt == "-net" and val:
        return _net(b, w, val)
    if opt == "-netdev" and val:
        kind, kv = _opts(val)
        if kind in ("user", "bridge", "tap") and "id" in kv and _net_backend(kind, kv) is not None:
            b.netdevs[kv["id"]] = (kind, kv)
            return True             # reported with its -device
        return False
    if opt == "-device" and val:
        return _device(b, w, val)
    if opt == "-serial" and val:
        return _serial(b, w, val)
    if opt == "-parallel" and val in ("none", "null", "pty", "vc"):
        if val == "none":
            return b.ok(w, "nothing (libvirt gives no parallel port unless asked)")
        typ = "pty" if val == "vc" else val
        b.parallels.append(typ)
        return b.ok(w, f"<parallel type='{typ}'/>")
    return False


def _rtc(b: _Builder, w, val: str) -> bool:
    kv = _keyvals(val)
    if set(kv) - {"base", "clock", "driftfix"}:
        return False
    settings: Dict[str, object] = {}
    parts = []
    base = kv.get("base")
    if base in ("utc", "localtime"):
        settings["localtime"] = base == "localtime"
        parts.append(f"<clock offset='{base}'/>")
    elif base:
        start = _epoch(base)
        if start is None:
            return False
        settings["clock_start"] = start
        parts.append(f"<clock offset='absolute' start='{start}'/> ({base} UTC)")
    if "clock" in kv:
        if kv["clock"] not in RTC_TRACK:
            return False
        settings["rtc_track"] = RTC_TRACK[kv["clock"]]
        parts.append(f"<timer name='rtc' track='{RTC_TRACK[kv['clock']]}'/>")
    if "driftfix" in kv:
        if kv["driftfix"] not in ("slew", "none"):
            return False
        settings["rtc_tickpolicy"] = "catchup" if kv["driftfix"] == "slew" else "delay"
        parts.append(f"<timer name='rtc' tickpolicy='{settings['rtc_tickpolicy']}'/>")
    return b.ok(w, " ".join(parts), **settings)


def _epoch(date: str) -> Optional[str]:
    """QEMU's base=YYYY-MM-DD[THH:MM:SS] (UTC) -> seconds since the epoch, as libvirt wants."""
    import datetime

    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            t = datetime.datetime.strptime(date, fmt).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
        return str(int(t.timestamp())) if t.year >= 1970 else None
    return None


def _boot(b: _Builder, w, val: str) -> bool:
    kv = _keyvals(val)
    letters = None
    if len(kv) == 1 and list(kv.values()) == [""] and "=" not in val:
        letters = val                # -boot cd
        kv = {}
    else:
        letters = kv.pop("order", None)
    menu = kv.pop("menu", None)
    if kv or (letters is not None and not re.fullmatch(r"[acdn]+", letters)) \
            or menu not in (None, "on", "off"):
        return False
    parts = []
    settings: Dict[str, object] = {}
    if letters:
        settings["boot"] = letters
        parts.append(f"per-device <boot order> {letters}")
    if menu:
        settings["boot_menu"] = menu == "on"
        parts.append(f"<bootmenu enable='{'yes' if menu == 'on' else 'no'}'/>")
    return bool(parts) and b.ok(w, ", ".join(parts), **settings)


def _net_backend(kind: str, kv: Dict[str, str]) -> Optional[Tuple[str, Optional[str]]]:
    """(net_kind, bridge) for a host side libvirt wires itself; None: not converted
    (scripts, fds, host forwards, ifnames reach the host: left to the policy and QEMU)."""
    extra = set(kv) - {"id", "vlan", "name"}
    if kind == "user" and not extra:
        return "user", None
    if kind == "bridge" and extra <= {"br"} and _NAME.fullmatch(kv.get("br", "br0")):
        return "bridge", kv.get("br", "br0")
    if kind == "tap" and not extra:
        return "default", None      # the wrapper's tap on the host bridge: libvirt's usual link
    return None


def _nic(b: _Builder, w, model: Optional[str], mac: Optional[str]) -> bool:
    if model is not None and model not in NIC_MODELS:
        return False
    if mac is not None and not _MAC.fullmatch(mac):
        return False
    nm = NIC_MODELS.get(model) if model else None
    b.nics.append(NativeNic(nm, mac.lower() if mac else None))
    desc = "<interface>" + (f" model {nm}" if nm else "") + (f" mac {mac.lower()}" if mac else "")
    return b.ok(w, desc)


def _net(b: _Builder, w, val: str) -> bool:
    kind, kv = _opts(val)
    if kind == "nic":
        if set(kv) - {"model", "macaddr", "vlan", "name"}:
            return False
        return _nic(b, w, kv.get("model"), kv.get("macaddr"))
    if kind == "none" and not kv:
        return b.ok(w, "no <interface>", net_none=True)
    be = _net_backend(kind, kv)
    if be is None:
        return False
    what = {"user": "<interface type='user'>", "bridge": f"<interface type='bridge'> on {be[1]}",
            "default": "<interface> on the host's usual link (the default network or --bridge)"}[be[0]]
    return b.ok(w, what, net_kind=be[0], net_bridge=be[1])


def _device(b: _Builder, w, val: str) -> bool:
    model, kv = _opts(val)
    if model in NIC_MODELS and model != "virtio":
        if set(kv) - {"netdev", "mac", "id"}:
            return False
        nd = kv.get("netdev")
        backend = b.netdevs.get(nd) if nd else None
        if nd and backend is None:
            return False
        if not _nic(b, w, model, kv.get("mac")):
            return False
        if backend is not None:
            kind, bkv = backend
            net_kind, bridge = _net_backend(kind, bkv)
            b.v.update(net_kind=net_kind, net_bridge=bridge)
            b.done[-1] = Conversion(("-netdev", _netdev_text(kind, bkv)) + tuple(w),
                                    b.done[-1].became + f" type {net_kind}")
        return True
    hit = DEVICE_MODELS.get(model)
    if hit is None or set(kv) - {"id"}:
        return False
    kind, value = hit
    if kind == "input":
        b.inputs.append(value)
        return b.ok(w, f"<input type='{value}' bus='usb'/>", usb=True)
    if kind == "balloon":
        return b.ok(w, "<memballoon model='virtio'/>", balloon="virtio")
    if kind == "watchdog":
        return b.ok(w, f"<watchdog model='{value}'/>", watchdog=value)
    if kind == "sound":
        b.sounds.append(NativeSound(value))
        return b.ok(w, f"<sound model='{value}'/>")
    if kind == "codec":
        hda = next((i for i in range(len(b.sounds) - 1, -1, -1)
                    if b.sounds[i].model in ("ich6", "ich9") and b.sounds[i].codec is None), None)
        if hda is None:
            return False            # a codec needs its HDA controller before it
        b.sounds[hda] = replace(b.sounds[hda], codec=value)
        return b.ok(w, f"<codec type='{value}'/> of <sound model='{b.sounds[hda].model}'>")
    if kind == "usb":
        return b.ok(w, f"<controller type='usb' model='{value}'/> (instead of libvirt's default)",
                    usb=True, usb_model=value)
    return False


def _serial(b: _Builder, w, val: str) -> bool:
    console = val in SERIAL_CONSOLE or val.startswith("vc:")       # vc:WxH: a sized console
    if console and not b.serial_seen and not b.serials:
        b.serial_seen = True
        return b.ok(w, "the console's <serial type='pty'> port 0 (ctys-libvirt console attaches)")
    if val == "null":
        b.serials.append("null")
        return b.ok(w, f"<serial type='null'> port {len(b.serials)}")
    if val == "none":
        b.warn.append("ARGSADD -serial none: the console's serial port 0 stays (ctys-libvirt console needs it)")
        return b.ok(w, "nothing (serial port 0 is the console)")
    return False                   # files, sockets, host devices: reach the host


def convert(words: Sequence[str]) -> LegacyArgs:
    """ARGSADD ``words`` (already split) -> LegacyArgs.  Never raises: what it cannot
    convert stays in ``leftover`` in its original order."""
    b = _Builder()
    i = 0
    n = len(words)
    while i < n:
        word = words[i]
        if not word.startswith("-") or word in ("-", "--"):
            b.left.append(word)
            i += 1
            continue
        opt = "-" + word.lstrip("-")        # --usb is -usb to QEMU
        # a value follows options known to take one, and unknown options followed by a
        # word that is not an option (kept together in the leftover either way)
        takes = opt in _WITH_VALUE or (opt not in _FLAGS and i + 1 < n
                                       and not words[i + 1].startswith("-"))
        val = words[i + 1] if takes and i + 1 < n else None
        step = 2 if val is not None else 1
        if not _one(b, opt, val):
            b.left.extend(words[i:i + step])
        i += step
    for nd_id, (kind, _kv) in b.netdevs.items():
        if not any(c.words[:1] == ("-netdev",) and f"id={nd_id}" in c.words[1].split(",")
                   for c in b.done):
            b.left.extend(["-netdev", _netdev_text(kind, _kv)])    # no -device used it
    return LegacyArgs(
        inputs=tuple(dict.fromkeys(b.inputs)), sounds=tuple(b.sounds), nics=tuple(b.nics),
        extra_serials=tuple(b.serials), parallels=tuple(b.parallels), leftover=tuple(b.left),
        converted=tuple(b.done), warnings=tuple(b.warn), **b.v)


def _netdev_text(kind: str, kv: Dict[str, str]) -> str:
    return ",".join([kind] + [f"{k}={v}" if v else k for k, v in kv.items()])


_FLAGS = frozenset("""-usb -localtime -no-acpi -no-hpet -enable-kvm -no-kvm -nographic -std-vga
 -snapshot -no-reboot -no-shutdown -full-screen -no-fd-bootchk -win2k-hack -no-quit -S -sdl
 -curses -alt-grab -ctrl-grab -no-frame -daemonize -nodefaults -enable-kqemu -no-kqemu
 -kernel-kqemu -rtc-td-hack -no-kvm-irqchip -no-kvm-pit -tdf""".split())


# ---------------------------------------------------------------------------
# merged with the conf (libvirt path)
# ---------------------------------------------------------------------------

def apply(plan, conv: LegacyArgs):
    """``plan`` with ARGSADD's converted settings merged in, ``argsadd``/``timeopt_args``
    reduced to the leftover words and ``native`` set; a value both the conf and ARGSADD
    give is ARGSADD's (QEMU took the later one), with a warning naming both."""
    from ctys_libvirt.translate.plan import PlanNic, boot_kind

    warnings = list(plan.warnings) + list(conv.warnings)
    changes: Dict[str, object] = {}

    def take(field_: str, conf_name: str, new, shown=None):
        if new is None:
            return
        old = getattr(plan, field_)
        if old is not None and old != new and conf_name:
            warnings.append(f"ARGSADD sets {conf_name} to {shown or new}, the conf to {old}: "
                            "ARGSADD wins, as it did on the legacy QEMU command line")
        changes[field_] = new

    take("memory_mib", "MEMSIZE", conv.memory_mib)
    take("smp", "SMP", conv.smp)
    take("cpu", "CPU", conv.cpu)
    take("vga", "VGADRIVER", conv.vga)
    take("keymap", "KBD_LAYOUT", conv.keymap)
    if conv.localtime is not None:
        changes["localtime"] = conv.localtime
    if conv.accelerator is not None:
        take("accelerator", "ACCELERATOR", conv.accelerator)

    nic = plan.nic
    if conv.net_none:
        if nic is not None:
            warnings.append("ARGSADD -net none: the guest gets no network card (the conf's NIC dropped)")
        nic = None
    extra: List[NativeNic] = []
    for i, n in enumerate(conv.nics):
        if i == 0 and nic is not None and (n.mac is None or n.mac == nic.mac):
            # the NIC the conf already gives (same or no MAC): one card, not two
            if n.model and n.model != nic.model:
                warnings.append(f"ARGSADD sets the NIC model to {n.model}, the conf to {nic.model}: "
                                "ARGSADD wins, as it did on the legacy QEMU command line")
            nic = replace(nic, model=n.model or nic.model)
        elif i == 0 and nic is None and not conv.net_none:
            nic = PlanNic(mac=n.mac, model=n.model or "rtl8139")
        else:
            # a further card: the conf NIC's model unless ARGSADD named one
            extra.append(replace(n, model=n.model or (nic.model if nic is not None else "rtl8139")))
    if conv.watchdog_action and not conv.watchdog:
        warnings.append(f"ARGSADD -watchdog-action {conv.watchdog_action}: no -watchdog to act; ignored")
    changes["nic"] = nic

    disks = list(plan.disks)
    if conv.boot:
        disks, nic, kinds = _reorder_boot(plan, disks, nic, conv.boot, warnings, boot_kind)
        changes["nic"] = nic
        changes["disks"] = tuple(disks)
        changes["boot_order"] = kinds
    extra_nics = tuple(extra)
    # conv as it is unless a NIC's model was filled in (a copy of ~30 fields otherwise)
    native = conv if extra_nics == conv.nics else replace(conv, nics=extra_nics)
    changes.update(argsadd=conv.leftover, timeopt_args=(), warnings=tuple(warnings),
                   native=native)
    return replace(plan, **changes)


def _reorder_boot(plan, disks, nic, letters: str, warnings: List[str], boot_kind):
    """Legacy -boot letters as per-device boot orders: the first device of each letter's
    class in letter order, then the devices that booted before, in their old order."""
    kind_of = {"c": "hd", "d": "cdrom", "a": "fd", "n": "network"}
    items = [d for d in disks] + ([nic] if nic is not None else [])

    def kind(x):
        return "network" if x is nic else boot_kind(x)

    chosen = []
    for letter in dict.fromkeys(letters):
        hit = next((x for x in items if kind(x) == kind_of[letter] and x not in chosen), None)
        if hit is None:
            warnings.append(f"ARGSADD -boot {letters}: no {kind_of[letter]} device to boot for '{letter}'")
        else:
            chosen.append(hit)
    rest = sorted((x for x in items if x not in chosen and x.boot_order is not None),
                  key=lambda x: x.boot_order)
    order = {id(x): i + 1 for i, x in enumerate(chosen + rest)}
    new_disks = [replace(d, boot_order=order.get(id(d))) for d in disks]
    new_nic = replace(nic, boot_order=order.get(id(nic))) if nic is not None else None
    ranked = sorted((x for x in new_disks + ([new_nic] if new_nic else []) if x.boot_order),
                    key=lambda x: x.boot_order)
    kinds = tuple("network" if x is new_nic else boot_kind(x) for x in ranked)
    return new_disks, new_nic, kinds


def conf_conversion(vm) -> LegacyArgs:
    """What the libvirt path makes of a conf's own TIMEOPT and ARGSADD words (for `check`;
    a word list that cannot be split reports nothing converted)."""
    import shlex

    words: List[str] = []
    for text in (vm.timeopt, vm.argsadd):
        try:
            words += shlex.split(text or "")
        except ValueError:
            return LegacyArgs()
    return convert(words)


def describe(conv: LegacyArgs) -> List[str]:
    """One line per conversion: 'ARGSADD <words> -> <element>'."""
    import shlex

    return [f"{shlex.join(c.words)} -> {c.became}" for c in conv.converted]
