"""Final conf variables + `#@#` keys -> typed VmConfig (the rules of task/design §3).

Image existence is not checked here: which images must exist depends on the boot mode,
so the translators check per request."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional

from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import VGA_ALIASES, VGA_MODELS, VmConfig

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
_UUID = re.compile(r"[0-9a-f]{32}")
_MEM = re.compile(r"([0-9]+)\s*([mMgGtT]?)(?:i?[bB])?")
_MEM_MAX_MIB = 16 * 1024 * 1024          # 16 TiB: beyond any host, and libvirt's range
_SMP_MAX = 65535                         # libvirt's <vcpu> is an unsigned short
_INT = re.compile(r"[0-9]+")
_KEYMAP = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]+)*")   # en-us, de, fr-ch, pt-br, sl

_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "i386": "i686", "i486": "i686",
         "i586": "i686", "i686": "i686", "x86": "i686"}
_DEFAULT_CPU = {"x86_64": "qemu64", "i686": "qemu32"}
_DISK_VARS = (("hdb", "HDB"), ("hdc", "HDC"), ("hdd", "HDD"), ("fdb", "FDB"))
_INST_SOURCES = (("CD", "INSTSRCCDROM"), ("FDD", "INSTSRCFDD"), ("USB", "INSTSRCUSB"),
                 ("HDD", "INSTSRCHDD"))


def normalise_arch(arch: str) -> str:
    a = arch.replace(" ", "")
    return _ARCH.get(a.lower(), a)


def _path(value: str, conf_dir: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else conf_dir / p


def _path_str(value: str, conf_dir: Path) -> str:
    """Relative -> absolute under the conf dir; devices/absolute paths unchanged."""
    return value if value.startswith("/") else str(conf_dir / value)


def parse_memory(value: str, path: Path) -> int:
    """MEMSIZE -> MiB: '512', '512M', '2G' (ConfError otherwise)."""
    m = _MEM.fullmatch(value.strip())
    mib = 0
    if m:
        mib = int(m.group(1)) * {"g": 1024, "t": 1024 * 1024}.get(m.group(2).lower(), 1)
    if mib <= 0 or mib > _MEM_MAX_MIB:
        raise ConfError(f"MEMSIZE={value!r} is not a memory size in MiB", path=str(path),
                        construct="MEMSIZE", hint="set MEMSIZE to a number of MiB, e.g. MEMSIZE=512")
    return mib


def parse_vga(value: str, warnings: List[str]) -> Optional[str]:
    """VGADRIVER -> a key of model.VGA_MODELS: '-vga cirrus', ' -vga std ' (leading blank
    tolerated, a legacy defect), '-std-vga' -> 'std', '-vga vmvga' -> 'vmware'; empty -> None.
    A name the table does not know is a warning and the default video device."""
    words = value.split()
    if not words:
        return None
    if words == ["-std-vga"]:
        return "std"
    if len(words) == 2 and words[0] == "-vga":
        name = words[1]
    elif len(words) == 1 and words[0].startswith("-vga="):
        name = words[0][5:]
        if not name:
            return None
    else:
        warnings.append(f"VGADRIVER={value!r} not understood; default video used")
        return None
    v = name.strip().lower()
    v = VGA_ALIASES.get(v, v)
    if v not in VGA_MODELS:
        warnings.append(f"VGADRIVER {name!r} is not known ({', '.join(VGA_MODELS)}); "
                        "using the default video device")
        return None
    return v


_QEMU_NAME = re.compile(r"(?:qemu|kvm)(?:[-_.+][A-Za-z0-9_.+-]*)?")
_SPACE = re.compile(r"\s")             # what str.isspace() calls a blank


def _startercall(value: Optional[str], warnings: List[str]) -> Optional[str]:
    """STARTERCALL names the QEMU binary, which gets run (``<bin> -h`` when probed).  A
    value that is not a QEMU binary name (qemu*, kvm*) -- ``/sbin/poweroff``, a script --
    would make reading a conf run an arbitrary program: it is ignored (warning) and the
    QEMU is discovered as without one."""
    if not value:
        return None
    word = value.strip()
    if _QEMU_NAME.fullmatch(os.path.basename(word)) and not _SPACE.search(word):
        return word
    warnings.append(f"STARTERCALL {value!r} is not a QEMU binary name (qemu*, kvm*); "
                    "ignored, never run (use --qemu PATH to pick a binary)")
    return None


def to_vmconfig(variables: Dict[str, str], keys: Dict[str, str], *, source_path: Path,
                conf_dir: Path, sha256: str, warnings: List[str],
                host_arch: str = "x86_64") -> VmConfig:
    v = variables
    path = source_path

    vget = v.get

    # label
    var_label = v.get("LABEL")
    key_label = keys.get("LABEL")
    if var_label and key_label and var_label != key_label:
        raise ConfError(f"LABEL={var_label!r} differs from #@#LABEL={key_label!r}",
                        path=str(path), construct="LABEL",
                        hint="make the shell LABEL and the #@#LABEL key equal")
    label = var_label or key_label or ""
    if not label:
        raise ConfError("no LABEL in conf", path=str(path), construct="LABEL",
                        hint='add LABEL="<name>" and #@#LABEL = "<name>"')
    if not var_label:
        warnings.append("shell LABEL missing; using #@#LABEL")
    if not _LABEL.fullmatch(label):
        raise ConfError(f"LABEL {label!r} is not usable as a domain name/file stem",
                        path=str(path), construct="LABEL",
                        hint="use up to 64 of A-Z a-z 0-9 _ . + -, starting with a letter or digit")

    # uuid
    uuid = None
    raw_uuid = keys.get("UUID", "")
    if raw_uuid:
        u = raw_uuid.replace("-", "").lower()
        if not _UUID.fullmatch(u):
            raise ConfError(f"#@#UUID {raw_uuid!r} is not 32 hex digits", path=str(path),
                            construct="UUID", hint="fix or remove the #@#UUID key")
        if u == "0" * 32:
            # libvirt takes the nil UUID for "none" and would invent a new one at each define
            raise ConfError(f"#@#UUID {raw_uuid!r} is the nil UUID, which names no machine",
                            path=str(path), construct="UUID",
                            hint="give the VM its own UUID (uuidgen) or remove the #@#UUID key")
        uuid = u

    # mac
    var_mac, key_mac = vget("MAC0", ""), keys.get("MAC0", "")
    mac = var_mac or key_mac or None
    if mac is not None:
        if not _MAC.fullmatch(mac):
            raise ConfError(f"MAC0 {mac!r} is not a MAC address xx:xx:xx:xx:xx:xx",
                            path=str(path), construct="MAC0", hint="fix MAC0 and #@#MAC0")
        mac = mac.lower()
        if mac == "00:00:00:00:00:00":
            raise ConfError(f"MAC0 {mac!r} is the zero MAC, which libvirt refuses for a NIC",
                            path=str(path), construct="MAC0",
                            hint="use a unicast address, e.g. 52:54:00:xx:xx:xx, or leave MAC0 empty")
        if int(mac[:2], 16) & 1:
            raise ConfError(f"MAC0 {mac!r} is a multicast address; a NIC needs a unicast MAC",
                            path=str(path), construct="MAC0",
                            hint="the first octet must be even, e.g. 52:54:00:xx:xx:xx")
        if var_mac and key_mac and var_mac.lower() != key_mac.lower():
            warnings.append(f"MAC0={var_mac} differs from #@#MAC0={key_mac}; using MAC0")

    ip = keys.get("IP0", "").split(",")[0].split("%")[0].strip() or None

    memsize = vget("MEMSIZE", "")
    if "MEMSIZE" in v or memsize:
        memory_mib = parse_memory(memsize, path)
    else:
        memory_mib = 512
        warnings.append("MEMSIZE not set; using 512 MiB")

    smp_raw = vget("SMP", "").strip()
    if not smp_raw:
        smp = 1
    elif _INT.fullmatch(smp_raw) and 0 < int(smp_raw) <= _SMP_MAX:
        smp = int(smp_raw)
    else:
        raise ConfError(f"SMP={smp_raw!r} is not a number of CPUs from 1 to {_SMP_MAX}", path=str(path),
                        construct="SMP", hint="set SMP to the number of virtual CPUs")

    arch = normalise_arch(vget("ARCH", "") or host_arch)
    cpu = vget("CPU", "").strip() or _DEFAULT_CPU.get(arch)

    def opt(name: str) -> Optional[str]:
        return vget(name) or None

    keyboard = vget("KBD_LAYOUT", "").strip() or None
    if keyboard is not None and not _KEYMAP.fullmatch(keyboard):
        # QEMU would refuse to start ("could not read keymap file") long after define
        raise ConfError(f"KBD_LAYOUT={keyboard!r} is not a keymap name", path=str(path),
                        construct="KBD_LAYOUT", hint="use a QEMU keymap such as en-us, de or fr-ch")

    def opt_path(name: str) -> Optional[Path]:
        val = v.get(name)
        return _path(val, conf_dir) if val else None

    hdd = vget("HDDBOOTIMAGE", "") or vget("HDA", "")
    fdd = vget("FDDIMAGE", "") or vget("FDA", "")
    extra = {}
    for role, name in _DISK_VARS:
        val = vget(name, "")
        if not val:
            continue
        if val.endswith("/"):
            warnings.append(f"{name}={val!r} is a directory path; disk {role} skipped")
            continue
        extra[role] = _path(val, conf_dir)

    insttarget = vget("DEFAULTINSTTARGET", "")
    sources = {}
    for mode, name in _INST_SOURCES:
        val = vget(name, "")
        if val:
            sources[mode] = _path_str(val, conf_dir) if mode == "HDD" else val

    nic = v.get("NIC", "rtl8139").strip() or None

    timeopt_words = (v["TIMEOPT"] if "TIMEOPT" in v else "-localtime").split()
    localtime = "-localtime" in timeopt_words
    timeopt = " ".join(w for w in timeopt_words if w != "-localtime")

    vnc_raw = vget("VNCACCESSDISPLAY", "").strip() or keys.get("VNCACCESSDISPLAY", "").strip()
    vnc_display = None
    if vnc_raw:
        if _INT.fullmatch(vnc_raw):
            vnc_display = int(vnc_raw)
        else:
            warnings.append(f"VNCACCESSDISPLAY={vnc_raw!r} is not a display number; ignored")

    return VmConfig(
        label=label,
        source_path=source_path,
        conf_dir=conf_dir,
        sha256=sha256,
        uuid=uuid,
        mac=mac,
        ip=ip,
        memory_mib=memory_mib,
        smp=smp,
        arch=arch,
        cpu=cpu,
        accelerator=(vget("ACCELERATOR", "").strip().upper() or "QEMU"),
        startercall=_startercall(opt("STARTERCALL"), warnings),
        wrappercall=opt("WRAPPERCALL"),
        qemubios=opt("QEMUBIOS"),
        hdd_boot_image=_path(hdd, conf_dir) if hdd else None,
        extra_disks=extra,
        fdd_image=_path(fdd, conf_dir) if fdd else None,
        cd_image=opt_path("CDIMAGE"),
        dvd_image=opt_path("DVDIMAGE"),
        usb_image=opt_path("USBBOOTIMAGE"),
        qemu_img_format=vget("QEMU_IMG", "").strip() or "raw",
        inst_size=opt("HDDBOOTIMAGE_INST_SIZE"),
        inst_blocksize=opt("HDDBOOTIMAGE_INST_BLOCKSIZE"),
        inst_blockcount=opt("HDDBOOTIMAGE_INST_BLOCKCOUNT"),
        default_bootmode=vget("DEFAULTBOOTMODE", "").strip().upper() or "HDD",
        default_instmode=vget("DEFAULTINSTMODE", "").strip().upper() or "CD",
        default_instsource=opt("DEFAULTINSTSOURCE"),
        default_insttarget=_path_str(insttarget, conf_dir) if insttarget else None,
        inst_sources=sources,
        kernel=opt_path("KERNELIMAGE"),
        initrd=opt_path("INITRDIMAGE"),
        append=opt("APPEND"),
        nic_model=nic,
        vga=parse_vga(vget("VGADRIVER", ""), warnings),
        keyboard=keyboard,
        localtime=localtime,
        timeopt=timeopt,
        argsadd=vget("ARGSADD", ""),
        vnc_display=vnc_display,
        default_console=keys.get("DEFAULTCONSOLE") or None,
        keys=dict(keys),
        variables=v,
        warnings=warnings,
    )
