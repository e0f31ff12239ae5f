"""Helpers for the conf reader tests: example-conf copies and small confs."""
from __future__ import annotations

import os
from pathlib import Path

from ctys_libvirt.model import HostContext

_REPO = Path(__file__).resolve().parents[2]
EXAMPLES = _REPO / "tests" / "data" / "legacy" / "examples" / "confs"
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
