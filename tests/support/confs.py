"""Writing ctys conf files: runnable confs for the tiny guests, header-only confs for the
inventory, copies of the legacy example confs, small hand-made confs."""
from __future__ import annotations

import os
import uuid as uuidlib
from pathlib import Path
from typing import Optional

from ctys_libvirt.model import HostContext

from .paths import EXAMPLE_CONFS as EXAMPLES

LABELS = ("debian5", "centos55", "kvmkern")

# The context the fixtures' expected values assume (conf-format.md §7).
CENTOS_CTX = HostContext(mydist="CentOS", arch="x86_64", user="acue",
                         extra=(("QEMUBASE", "/usr/bin/qemu-system-x86_64"),))
DEBIAN_CTX = HostContext(mydist="debian", arch="x86_64", user="acue",
                         extra=(("QEMUBASE", "/usr/bin/qemu-system-x86_64"),))


def example_text(label: str, examples: Path = EXAMPLES) -> str:
    return (examples / label / f"{label}.ctys").read_text()


def copy_example(label: str, root: Path, examples: Path = EXAMPLES, text: str = None) -> Path:
    """Copy <label>.ctys to root/<label>/, rewriting /vm/qemu/<label> to that directory."""
    vmdir = root / label
    vmdir.mkdir(parents=True, exist_ok=True)
    body = example_text(label, examples) if text is None else text
    body = body.replace(f"/vm/qemu/{label}", str(vmdir))
    conf = vmdir / f"{label}.ctys"
    conf.write_text(body)
    return conf


def small_conf(root: Path, body: str = "", label: str = "vm1", header: str = None) -> Path:
    """root/<label>/<label>.ctys with magic, label and MEMSIZE, then `body`."""
    vmdir = root / label
    vmdir.mkdir(parents=True, exist_ok=True)
    if header is None:
        header = f'#@#MAGICID-QEMU\n#@#LABEL = "{label}"\nLABEL={label}\nMEMSIZE=64\n'
    conf = vmdir / f"{label}.ctys"
    conf.write_text(header + body)
    return conf


def disk_conf(root: Path, label: str = "plainvm", body: str = "") -> Path:
    """``small_conf`` booting a 512-byte hda.img next to it, without a NIC: a VM that `xml`
    and `create` take as it is (libvirt's test driver runs it)."""
    conf = small_conf(root, 'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/hda.img"\nACCELERATOR=QEMU\nNIC=\n'
                      + body, label=label)
    (conf.parent / "hda.img").write_bytes(b"\0" * 512)
    return conf


def write_conf(root: Path, label: str, *, image: Optional[Path] = None, uuid: Optional[str] = None,
               mac: Optional[str] = None, ip: str = "10.0.0.7", extra: str = "",
               memsize: int = 16) -> Path:
    """A ctys-generated-style conf in ``root/label/label.ctys``; ``image`` is copied next
    to it as hda.img (libvirt chowns what it boots, so never the shared file)."""
    d = root / label
    d.mkdir(mode=0o755, parents=True, exist_ok=True)
    uuid = uuid or uuidlib.uuid4().hex
    mac = mac or "52:54:00:%02x:%02x:%02x" % tuple(os.urandom(3))
    hda = ""
    if image is not None:
        target = d / "hda.img"
        target.write_bytes(Path(image).read_bytes())
        os.chmod(target, 0o644)
        hda = 'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/hda.img"\n'
    conf = d / f"{label}.ctys"
    conf.write_text(
        "#@#MAGICID-QEMU\n"
        f'#@#LABEL                     = "{label}"\n'
        f'LABEL="{label}"\n'
        f'#@#UUID                      = "{uuid}"\n'
        f'#@#MAC0                      = "{mac}"\n'
        f'MAC0="{mac}"\n'
        f'#@#IP0                       = "{ip}"\n'
        "ACCELERATOR=QEMU\n"
        f"MEMSIZE={memsize}\n"
        "SMP=1\n"
        "ARCH=x86_64\n"
        "NIC=\n"
        + hda + extra
    )
    return conf


def write_header_conf(base: Path, label: str, *, uuid: Optional[str] = None, mac: Optional[str] = None,
               ip: Optional[str] = None, magic: str = "#@#MAGICID-QEMU", extra: str = "",
               dirname: Optional[str] = None, stem: Optional[str] = None,
               body: str = "") -> Path:
    """<base>/<dirname or label>/<stem or label>.ctys with the usual #@# header."""
    d = base / (dirname or label)
    d.mkdir(parents=True, exist_ok=True)
    lines = ["#  -*- mode: conf; -*-", magic, f'#@#LABEL = "{label}"', f'LABEL="{label}"']
    if uuid:
        lines.append(f'#@#UUID = "{uuid}"')
    if mac:
        lines.append(f'#@#MAC0 = "{mac}"')
    if ip:
        lines.append(f'#@#IP0 = "{ip}"')
    if extra:
        lines.append(extra)
    if body:
        lines.append(body)
    p = d / f"{stem or label}.ctys"
    p.write_text("\n".join(lines) + "\n")
    return p


def uuid_of(n: int) -> str:
    return f"{n:032x}"


def mac_of(n: int) -> str:
    h = f"{n:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))
