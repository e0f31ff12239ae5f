"""Domain XML -> ctys conf values: the assignments and ``#@#`` keys that describe a
domain's conf-owned fields.  Used by `export` (a whole new conf from any domain) and by
`sync --prefer domain` (the domain's values written back into an existing conf)."""
from __future__ import annotations

import shlex
from typing import Dict, List, Optional, Tuple

from ctys_libvirt.coexist import fields as F
from ctys_libvirt.model import VGA_MODELS, VNC_BASEPORT

# libvirt <video><model type> -> ctys/QEMU -vga name (model.VGA_MODELS, reversed)
VGA_NAMES = {model: name for name, model in VGA_MODELS.items() if name != "none"}
DISK_VARS = {"hda": "HDDBOOTIMAGE", "hdb": "HDB", "hdc": "HDC", "hdd": "HDD", "fdb": "FDB"}


class Values:
    """Ordered conf assignments and keys, plus notes on what could not be expressed."""

    def __init__(self):
        self.vars: Dict[str, str] = {}
        self.keys: Dict[str, str] = {}
        self.notes: List[str] = []
        self.by_field: Dict[str, List[str]] = {}

    def set(self, fieldname: str, var: str, value: str, key: bool = False) -> None:
        # a conf is line-based and keys are "…"-quoted: what cannot be written is a note
        if any(c in value for c in "\n\r\0") or (key and '"' in value):
            self.notes.append(f"{'#@#' if key else ''}{var}: value {value!r} cannot be written to a conf")
            return
        (self.keys if key else self.vars)[var] = value
        self.by_field.setdefault(fieldname, []).append(("#@#" if key else "") + var)


def _boot(el) -> Optional[int]:
    b = el.find("boot")
    try:
        return int(b.get("order")) if b is not None else None
    except (TypeError, ValueError):
        return None


def from_domain(root, *, meta_console: Optional[str] = None) -> Values:
    """The conf values for domain ``root`` (an lxml <domain>)."""
    v = Values()
    name = root.findtext("name") or ""
    v.set("name", "LABEL", name)
    v.set("name", "LABEL", name, key=True)
    uuid = (root.findtext("uuid") or "").replace("-", "").lower()
    if uuid:
        v.set("uuid", "UUID", uuid, key=True)
    v.set("type", "ACCELERATOR", "KVM" if root.get("type") == "kvm" else "QEMU")
    mem = F.value(root, "memory", F.Context())
    try:
        kib = int(mem.split()[0])
        if kib % 1024:
            v.notes.append(f"memory {kib} KiB rounded down to {kib // 1024} MiB")
        v.set("memory", "MEMSIZE", str(max(1, kib // 1024)))
    except (ValueError, IndexError):
        v.notes.append(f"memory {mem!r} not understood; MEMSIZE not written")
    vcpu = (root.findtext("vcpu") or "1").strip()
    v.set("vcpu", "SMP", vcpu if vcpu.isdigit() else "1")
    os_ = root.find("os")
    t = os_.find("type") if os_ is not None else None
    arch = t.get("arch", "x86_64") if t is not None else "x86_64"
    v.set("os", "ARCH", arch)
    cpu = root.find("cpu")
    if cpu is not None:
        mode = cpu.get("mode", "custom")
        if mode in ("host-passthrough", "host-model", "maximum"):
            v.set("cpu", "CPU", "host")
        elif cpu.findtext("model"):
            feats = "".join(f",{'+' if f.get('policy', 'require') in ('require', 'force') else '-'}{f.get('name')}"
                            for f in cpu.iterfind("feature"))
            v.set("cpu", "CPU", cpu.findtext("model").strip() + feats)
    clock = root.find("clock")
    if clock is not None and clock.get("offset") == "utc":
        v.set("clock", "TIMEOPT", "")
    # disks and the boot medium
    bootmode = "HDD"
    first_boot = None
    dev = root.find("devices")
    free = ["HDDBOOTIMAGE", "HDB", "HDC", "HDD"]
    disks = list(dev.iterfind("disk")) if dev is not None else []
    for d in disks:
        src = d.find("source")
        path = (src.get("file") or src.get("dev") or "") if src is not None else ""
        tgt = F.disk_target(d)
        bus = (d.find("target").get("bus", "") if d.find("target") is not None else "")
        device = d.get("device", "disk")
        order = _boot(d)
        if not path:
            v.notes.append(f"{device} {tgt} has no source; not written")
            continue
        if device == "cdrom":
            var, mode = "CDIMAGE", "CD"
        elif device == "floppy":
            var, mode = ("FDDIMAGE", "FDD") if tgt != "fdb" else ("FDB", None)
        elif bus == "usb":
            var, mode = "USBBOOTIMAGE", "USB"
        elif tgt in DISK_VARS and DISK_VARS[tgt] in free:
            var, mode = DISK_VARS[tgt], "HDD" if tgt == "hda" else None
        elif free:
            var, mode = free[0], "HDD" if free[0] == "HDDBOOTIMAGE" else None
            v.notes.append(f"disk {tgt} ({bus}) becomes {var}")
        else:
            v.notes.append(f"disk {tgt} {path}: no ctys slot left; not written")
            continue
        if var in free:
            free.remove(var)
        v.set("disks", var, path)
        if order is not None and mode and (first_boot is None or order < first_boot):
            first_boot, bootmode = order, mode
    iface = None
    if dev is not None:
        ifaces = dev.findall("interface")
        iface = ifaces[0] if ifaces else None
        if len(ifaces) > 1:
            v.notes.append(f"{len(ifaces) - 1} more interface(s) not written (ctys knows NIC0 only)")
    if iface is not None:
        mac = F._mac_of(iface)
        if mac:
            v.set("nic", "MAC0", mac)
            v.set("nic", "MAC0", mac, key=True)
        m = iface.find("model")
        v.set("nic", "NIC", m.get("type") if m is not None and m.get("type") else "rtl8139")
        order = _boot(iface)
        if order is not None and (first_boot is None or order < first_boot):
            first_boot, bootmode = order, "PXE"
    else:
        v.set("nic", "NIC", "")
    if os_ is not None and os_.find("kernel") is not None:
        v.set("os", "KERNELIMAGE", os_.findtext("kernel").strip())
        if os_.find("initrd") is not None:
            v.set("os", "INITRDIMAGE", os_.findtext("initrd").strip())
        if os_.find("cmdline") is not None:
            v.set("os", "APPEND", os_.findtext("cmdline"))
        if first_boot is None:          # nothing else boots: the kernel is the boot medium
            bootmode = "KERNEL"
    if os_ is not None and first_boot is None:
        devs = [b.get("dev") for b in os_.iterfind("boot")]
        if devs:
            bootmode = {"cdrom": "CD", "fd": "FDD", "network": "PXE"}.get(devs[0], bootmode)
    v.set("os", "DEFAULTBOOTMODE", bootmode)
    # console
    graphics = dev.findall("graphics") if dev is not None else []
    console = "NONE"
    if graphics:
        g = graphics[0]
        console = {"vnc": "VNC", "sdl": "SDL"}.get(g.get("type"), "NONE")
        if g.get("keymap"):
            v.set("graphics", "KBD_LAYOUT", g.get("keymap"))
        if g.get("type") == "vnc" and g.get("autoport") == "no" and (g.get("port") or "").isdigit():
            v.set("graphics", "VNCACCESSDISPLAY", str(int(g.get("port")) - VNC_BASEPORT))
        video = [x.find("model").get("type") for x in dev.iterfind("video") if x.find("model") is not None]
        if video and video[0] in VGA_NAMES:
            v.set("video", "VGADRIVER", f"-vga {VGA_NAMES[video[0]]}")
    elif meta_console:
        console = meta_console
    v.set("graphics", "DEFAULTCONSOLE", console, key=True)
    cmd = root.find(F._QCMD)
    if cmd is not None:
        args = [a.get("value", "") for a in cmd.iterfind(F._QARG)]
        # "-L DIR" is how QEMUBIOS reaches QEMU: back to QEMUBIOS, not into ARGSADD (where the
        # ARGSADD policy would refuse it as host-reaching)
        if "-L" in args[:-1]:
            i = args.index("-L")
            v.set("qemu:commandline", "QEMUBIOS", args[i + 1])
            args = args[:i] + args[i + 2:]
        if args:
            v.set("qemu:commandline", "ARGSADD", shlex.join(args))
    return v


def shell_word(value: str) -> str:
    """A value as one word the conf reader reads back literally."""
    if value == "":
        return '""'
    if "'" not in value:
        return f"'{value}'" if not _plain(value) else value
    return '"' + "".join("\\" + c if c in '"$`\\' else c for c in value) + '"'


def _plain(value: str) -> bool:
    return all(c.isalnum() or c in "._-/:,+=@%" for c in value)


def conf_text(v: Values, *, source: str) -> str:
    """A whole conf: keys first (the inventory reads them), then the assignments."""
    keys = [("MAGICID-QEMU", None)] + [(k, val) for k, val in v.keys.items()]
    lines = []
    for k, val in keys:
        lines.append(f"#@#{k}" if val is None else f'#@#{k:<24} = "{val}"')
    lines += [f'#@#SESSIONTYPE              = "QEMU"',
              f"#@#INST_EDITOR              = \"ctys-libvirt export\"",
              f"# exported from libvirt domain {source}; read as data, never executed",
              ""]
    for k, val in v.vars.items():
        lines.append(f"{k}={shell_word(val)}")
    return "\n".join(lines) + "\n"


def writable_fields() -> Tuple[str, ...]:
    """Fields `sync --prefer domain` writes back as simple assignments."""
    return ("type", "memory", "vcpu", "cpu", "clock", "nic", "video")
