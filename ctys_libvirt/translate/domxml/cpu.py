"""``<cpu>``: a named model with ``<feature>`` flags (``mode='custom'``), or for CPU=host
the host's own CPU (``host-passthrough`` under KVM, ``maximum`` under TCG)."""
from __future__ import annotations

import re
from typing import List, Tuple

from lxml import etree

from ctys_libvirt.errors import ConfError

SubElement = etree.SubElement

_CPU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def cpu_spec(cpu: str) -> Tuple[str, List[Tuple[str, str]]]:
    """QEMU's ``-cpu model[,+feat|,-feat|,feat=on|off]`` -> (model, [(policy, feature)]):
    libvirt names features in <feature>, not in the model.  Anything else is a ConfError."""
    model, *flags = [w.strip() for w in cpu.split(",")]
    features: List[Tuple[str, str]] = []
    for flag in flags:
        name, policy = flag, "require"
        if flag[:1] in "+-":
            name, policy = flag[1:], "require" if flag[0] == "+" else "disable"
        elif "=" in flag:
            name, _, v = flag.partition("=")
            if v not in ("on", "off"):
                name = ""
            policy = "require" if v == "on" else "disable"
        if not _CPU_NAME.fullmatch(name or ""):
            raise ConfError(f"CPU {cpu!r}: {flag!r} is not a CPU feature flag",
                            construct="CPU", hint="write CPU=model[,+feature|,-feature]")
        features.append((policy, name))
    if not _CPU_NAME.fullmatch(model):
        raise ConfError(f"CPU {cpu!r} is not a CPU model name", construct="CPU",
                        hint="e.g. CPU=qemu64, CPU=Nehalem or CPU=qemu64,+ssse3")
    return model, features


def add_cpu(domain: etree._Element, cpu: str, domain_type: str, warnings: List[str]) -> None:
    """``<cpu>`` for the conf's CPU value on a domain of ``domain_type`` (kvm | qemu)."""
    if cpu == "host":
        # -cpu host has no named model: libvirt's passthrough mode is the same thing.  It
        # needs KVM; under TCG QEMU refuses it, and 'maximum' (-cpu max) is the nearest
        if domain_type == "kvm":
            SubElement(domain, "cpu", mode="host-passthrough")
        else:
            SubElement(domain, "cpu", mode="maximum")
            warnings.append("CPU=host needs KVM; under TCG the guest gets the emulator's "
                            "maximum CPU model instead (<cpu mode='maximum'>, QEMU -cpu max)")
        return
    model, features = cpu_spec(cpu)
    el = SubElement(domain, "cpu")
    el.set("mode", "custom")
    el.set("match", "exact")
    el.set("check", "none")
    model_el = SubElement(el, "model")
    model_el.set("fallback", "allow")
    model_el.text = model
    for policy, name in features:
        SubElement(el, "feature", policy=policy, name=name)
