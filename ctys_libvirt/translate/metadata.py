"""Our ``<metadata>`` contract with libvirt: the namespace every domain we define carries,
and its reader.  Light on purpose (no lxml import): LIST reads it for every domain and must
not pay for importing the translator."""
from __future__ import annotations

from typing import Dict

# Part of the on-disk contract (domains defined by earlier versions carry it): never change.
METADATA_NS = "https://ctys-libvirt.invalid/xmlns/domain/1"
METADATA_PREFIX = "ctys"

# Our own lifecycle element, next to the translator's metadata: the baseline of our last
# define (digests per conf-owned field; coexist/merge.py writes and reads it).
LIFECYCLE_NS = "https://ctys-libvirt.invalid/ns/lifecycle/1"
LIFECYCLE_TAG = f"{{{LIFECYCLE_NS}}}define"


def read_instance(inst, ns: str = METADATA_NS) -> Dict[str, object]:
    """Our ``<ctys:instance>`` (or an element holding it) -> dict; {} when there is none.
    One pass over the children: LIST calls it once per domain, for thousands of domains."""
    q = "{%s}" % ns
    if inst.tag != q + "instance":
        inst = inst.find(f".//{q}instance")
        if inst is None:
            return {}
    conf = tool = req = label = keys = None
    argsadd = []
    for el in inst:
        tag = el.tag
        if tag == q + "conf":
            conf = el if conf is None else conf
        elif tag == q + "tool":
            tool = el if tool is None else tool
        elif tag == q + "request":
            req = el if req is None else req
        elif tag == q + "label":
            label = el if label is None else label
        elif tag == q + "keys":
            keys = el if keys is None else keys
    out: Dict[str, object] = {
        "conf_path": conf.get("path") if conf is not None else None,
        "conf_sha256": conf.get("sha256") if conf is not None else None,
        "label": label.text if label is not None else None,
        "tool_version": tool.get("version") if tool is not None else None,
        "console": None, "phase": None, "bootmode": None, "bootpath": None, "instmode": None,
        "kernel": None, "vnc_display": None, "argsadd": argsadd,
        "keys": {},
    }
    if req is not None:
        get = req.get
        for k in ("console", "phase", "bootmode", "bootpath", "instmode", "kernel"):
            out[k] = get(k)
        if get("vncdisplay") is not None:
            out["vnc_display"] = int(get("vncdisplay"))
        argsadd.extend(a.text or "" for a in req.iterchildren(q + "argsadd"))
    out["install_phase"] = out["phase"] == "install"
    if keys is not None:
        kd = out["keys"]
        for k in keys.iterchildren(q + "key"):
            kd.setdefault(k.get("name"), k.text or "")
    return out
