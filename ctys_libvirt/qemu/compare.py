"""Semantic comparison of our modern argv with libvirt's for the same conf
(``conn.domainXMLToNative('qemu-argv', xml, 0)``): memory, smp, disks and their
media, boot order, NIC MAC/model, display, kernel, passthrough args.

Both argvs are reduced to the same small summary; the differences are returned as
text lines (empty list: they agree).  Textual equality is never expected: libvirt
uses -blockdev/-device/bootindex, we use -drive/-boot order."""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

_DEV_KIND = {"ide-hd": "disk", "ide-cd": "cdrom", "scsi-hd": "disk", "scsi-cd": "cdrom",
             "floppy": "floppy", "isa-fdc": "floppy", "usb-storage": "disk", "virtio-blk-pci": "disk"}
_NIC_MODEL = {"virtio-net-pci": "virtio"}
_BOOT_KIND = {"disk": "hd", "cdrom": "cdrom", "floppy": "fd"}
_LETTER = {"c": "hd", "d": "cdrom", "a": "fd", "n": "network"}


@dataclass
class Summary:
    memory_mib: Optional[int] = None
    smp: Optional[int] = None
    disks: List[Tuple[str, str]] = field(default_factory=list)     # (path, disk|cdrom|floppy)
    boot: List[str] = field(default_factory=list)                  # hd|cdrom|fd|network
    nics: List[Tuple[Optional[str], str]] = field(default_factory=list)  # (mac, model)
    vnc: Optional[str] = None                                      # host:display
    kernel: Optional[str] = None
    initrd: Optional[str] = None
    append: Optional[str] = None


def _kv(spec: str) -> Dict[str, str]:
    """'a=1,b=x,,y,flag' -> {'a': '1', 'b': 'x,y', 'flag': ''} (,, is a literal comma)."""
    from ctys_libvirt.qemu.opts import split_commas

    out = {}
    for n, p in enumerate(split_commas(spec)):
        k, sep, v = p.partition("=")
        out[k if sep else ("_" if n == 0 else k)] = v if sep else (p if n == 0 else "")
    return out


def _mem(v: str) -> Optional[int]:
    kv = _kv(v)
    size = kv.get("size", kv.get("_", v))
    m = re.fullmatch(r"(\d+)([kKmMgG]?)[bB]?", size)
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2).lower()
    return {"k": n // 1024, "g": n * 1024}.get(unit, n)


def summarize(argv: Sequence[str]) -> Summary:
    s = Summary()
    nodes: Dict[str, str] = {}          # blockdev node -> filename (through format nodes)
    fmt_parent: Dict[str, str] = {}
    drives: Dict[str, Tuple[str, str]] = {}
    boot_index: List[Tuple[int, str]] = []
    netmacs: List[Tuple[Optional[str], str]] = []
    a = list(argv)
    i = 1
    while i < len(a):
        opt = a[i]
        val = a[i + 1] if i + 1 < len(a) else ""
        if opt == "-m":
            s.memory_mib = _mem(val)
        elif opt == "-smp":
            s.smp = int(re.match(r"\d+", _kv(val).get("cpus", _kv(val).get("_", val))).group(0))
        elif opt == "-blockdev":
            d = json.loads(val) if val.startswith("{") else _kv(val)
            if "filename" in d:
                nodes[d["node-name"]] = d["filename"]
            elif isinstance(d.get("file"), str):
                fmt_parent[d["node-name"]] = d["file"]
        elif opt == "-drive":
            kv = _kv(val)
            media = kv.get("media", "disk")
            if kv.get("if") == "floppy":
                media = "floppy"
            if kv.get("if") == "none" and "id" in kv:
                drives[kv["id"]] = (kv.get("file", ""), media)
            else:
                s.disks.append((kv.get("file", ""), media))
        elif opt in ("-hda", "-hdb", "-hdc", "-hdd"):
            s.disks.append((val, "disk"))
        elif opt == "-cdrom":
            s.disks.append((val, "cdrom"))
        elif opt in ("-fda", "-fdb"):
            s.disks.append((val, "floppy"))
        elif opt == "-device":
            kv = _kv(val) if not val.startswith("{") else {k: str(v) for k, v in json.loads(val).items()}
            drv = kv.get("_") or kv.get("driver", "")
            if drv in _DEV_KIND and ("drive" in kv):
                node = kv["drive"]
                if node in drives:
                    path, kind = drives[node]
                    kind = _DEV_KIND[drv] if drv != "usb-storage" else kind
                else:
                    path = nodes.get(fmt_parent.get(node, node), nodes.get(node, ""))
                    kind = _DEV_KIND[drv]
                s.disks.append((path, kind))
                if "bootindex" in kv:
                    boot_index.append((int(kv["bootindex"]), _BOOT_KIND[kind]))
            elif "netdev" in kv or "mac" in kv:
                netmacs.append((kv.get("mac"), _NIC_MODEL.get(drv, drv)))
                if "bootindex" in kv:
                    boot_index.append((int(kv["bootindex"]), "network"))
        elif opt == "-net" and val.startswith("nic"):
            kv = _kv(val)
            netmacs.append((kv.get("macaddr"), kv.get("model", "")))
        elif opt == "-boot":
            kv = _kv(val)
            order = kv.get("order", kv.get("_", "") if "=" not in val else "")
            s.boot = [_LETTER[c] for c in order if c in _LETTER]
        elif opt == "-vnc":
            s.vnc = val.split(",")[0]
        elif opt == "-kernel":
            s.kernel = val
        elif opt == "-initrd":
            s.initrd = val
        elif opt == "-append":
            s.append = val
        i += 1
    if boot_index:
        s.boot = [k for _, k in sorted(boot_index)]
    s.nics = netmacs
    s.disks = sorted(s.disks)
    return s


def compare(ours: Sequence[str], theirs: Sequence[str], passthrough: Sequence[str] = ()) -> List[str]:
    """Differences between our argv and libvirt's (``passthrough`` = ARGSADD words that
    must appear, in order, at the end of theirs and of ours)."""
    a, b = summarize(ours), summarize(theirs)
    diffs = []
    for fld in ("memory_mib", "smp", "disks", "nics", "vnc", "kernel", "initrd", "append"):
        x, y = getattr(a, fld), getattr(b, fld)
        if x != y:
            diffs.append(f"{fld}: ours {x!r} libvirt {y!r}")
    # libvirt lists every bootable device; ours may rely on -boot order letters only
    if a.boot and b.boot and a.boot[: len(b.boot)] != b.boot[: len(a.boot)]:
        diffs.append(f"boot order: ours {a.boot} libvirt {b.boot}")
    elif bool(a.boot) != bool(b.boot):
        diffs.append(f"boot order: ours {a.boot} libvirt {b.boot}")
    if passthrough:
        n = len(passthrough)
        # libvirt appends its own -sandbox/-msg after the qemu:commandline args
        if not _contains(list(theirs), list(passthrough)):
            diffs.append(f"passthrough: ARGSADD {list(passthrough)} not in libvirt's argv")
        if list(ours[-n:]) != list(passthrough):
            diffs.append(f"passthrough: our tail {list(ours[-n:])} != ARGSADD {list(passthrough)}")
    return diffs


def _contains(seq: List[str], sub: List[str]) -> bool:
    n = len(sub)
    return any(seq[i:i + n] == sub for i in range(len(seq) - n + 1))


def libvirt_argv(conn, xml: str) -> List[str]:
    """libvirt's argv for ``xml`` (drops the leading environment assignments)."""
    native = conn.domainXMLToNative("qemu-argv", xml, 0)
    words = shlex.split(native.replace("\\\n", " "))
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words.pop(0)
    return words
