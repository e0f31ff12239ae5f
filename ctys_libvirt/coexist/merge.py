"""Three-way merge of a conf's generated domain XML into the existing definition.

The definition remembers, per conf-owned field, the digest of the conf's value and of
the definition's value at our last define (the *baseline*, in our lifecycle metadata
element).  On a re-define, per field:

* conf and definition agree: nothing to do;
* only the conf changed since the baseline: the conf's value is written;
* only the definition changed (virsh edit, virt-manager): it is kept ("domain edited");
* both changed: a conflict, refused unless ``prefer`` says which side wins.

Everything that is not a conf-owned field is never touched (fields.py).  A domain
without a baseline (defined before this version) takes the conf's values, as before."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from lxml import etree

from ctys_libvirt.coexist import fields as F
from ctys_libvirt.translate.metadata import LIFECYCLE_NS, LIFECYCLE_TAG, read_instance

_FIELD_TAG = "{%s}field" % LIFECYCLE_NS

IN_SYNC, CONF_CHANGED, DOMAIN_EDITED, CONFLICT = "in sync", "conf changed", "domain edited", "conflict"


@dataclass
class Baseline:
    fields: Dict[str, Tuple[str, str]]      # name -> (conf digest, definition digest)
    targets: Tuple[str, ...] = ()
    macs: Tuple[str, ...] = ()
    digest: Optional[str] = None            # of the generated XML (older versions: only this)
    conf_path: Optional[str] = None


@dataclass
class FieldState:
    name: str
    conf: str             # the conf's value now
    domain: str           # the definition's value now
    state: str            # IN_SYNC | CONF_CHANGED | DOMAIN_EDITED | CONFLICT
    written: bool = False


@dataclass
class MergeResult:
    status: str                              # defined | updated | unchanged | conflict
    xml: Optional[str]                       # what to define (None: nothing to define)
    fields: List[FieldState] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)   # the admin's own additions, kept

    @property
    def conflicts(self) -> List[FieldState]:
        return [f for f in self.fields if f.state == CONFLICT]

    @property
    def drift(self) -> str:
        return summarize([f.state for f in self.fields])


def summarize(states) -> str:
    s = set(states)
    if CONFLICT in s:
        return CONFLICT
    if CONF_CHANGED in s and DOMAIN_EDITED in s:
        return "conf changed, domain edited"
    for st in (CONF_CHANGED, DOMAIN_EDITED):
        if st in s:
            return st
    return IN_SYNC


def read_baseline(root) -> Optional[Baseline]:
    md = root.find("metadata")
    el = md.find(LIFECYCLE_TAG) if md is not None else None
    if el is None:
        return None
    fl = {f.get("name"): (f.get("conf", ""), f.get("domain", "")) for f in el.iterfind(_FIELD_TAG)}
    return Baseline(fields=fl, targets=tuple((el.get("targets") or "").split()),
                    macs=tuple((el.get("macs") or "").split()), digest=el.get("digest"),
                    conf_path=el.get("conf"))


def write_baseline(root, b: Baseline) -> None:
    md = root.find("metadata")
    if md is None:
        md = etree.Element("metadata")
        F._insert_after(root, md, ("name", "uuid", "genid", "title", "description"))
    for old in md.findall(LIFECYCLE_TAG):
        md.remove(old)
    el = etree.SubElement(md, LIFECYCLE_TAG, nsmap={"ctyslc": LIFECYCLE_NS})
    el.set("digest", b.digest or "")
    if b.conf_path:
        el.set("conf", b.conf_path)
    el.set("targets", " ".join(sorted(set(b.targets))))
    el.set("macs", " ".join(sorted(set(b.macs))))
    for name in F.CONF_FIELDS:
        if name in b.fields:
            c, d = b.fields[name]
            etree.SubElement(el, _FIELD_TAG, name=name, conf=c, domain=d)


def context(gen, base: Optional[Baseline]) -> F.Context:
    return F.Context(F.targets_of(gen) + (base.targets if base else ()),
                     F.macs_of(gen) + (base.macs if base else ()),
                     first_nic=base is None or not base.fields)


def complete(gen):
    """Make explicit what libvirt would add on define, so the definition's values equal
    the conf's right after it: a display without a <video> gets QEMU's classic default
    adapter, cirrus (what a ctys conf without VGADRIVER always had)."""
    dev = gen.find("devices")
    if dev is not None and dev.find("graphics") is not None and dev.find("video") is None:
        video = etree.Element("video")
        etree.SubElement(video, "model", type="cirrus")
        F._insert_after(dev, video, ("emulator", "disk", "controller", "interface", "serial",
                                     "console", "input", "graphics"))
    return gen


def _gen_digest(gen_xml: str) -> str:
    return F.digest(gen_xml)


def merge(existing_xml: Optional[str], gen_xml: str, *, prefer: Optional[str] = None,
          conf_path: Optional[str] = None, known=None) -> MergeResult:
    """The definition to write for ``gen_xml`` given the current inactive definition
    (None: a new domain).  ``prefer`` 'conf' or 'domain' settles conflicts and domain
    edits (domain: the definition's values become the new baseline).  ``known``: the trees
    of the XML the caller built (``fields.parse``)."""
    gen = complete(F.parse(gen_xml, known))
    if existing_xml is None:
        ctx = context(gen, None)
        vals = F.values(gen, ctx)
        out = gen                       # a fresh parse: ours to change
        write_baseline(out, Baseline({n: (F.digest(v), F.digest(v)) for n, v in vals.items()},
                                     F.targets_of(gen), F.macs_of(gen), _gen_digest(gen_xml), conf_path))
        return MergeResult("defined", etree.tostring(out, encoding="unicode"),
                           [FieldState(n, v, v, IN_SYNC, True) for n, v in vals.items()])
    ex = F.parse(existing_xml)
    base = read_baseline(ex)
    ctx = context(gen, base)
    if base is not None and not base.fields:
        base = None                     # an older version's element: digest only
    newc = F.values(gen, ctx)
    curd = F.values(ex, ctx)
    out = copy.deepcopy(ex)
    states: List[FieldState] = []
    nb: Dict[str, Tuple[str, str]] = {}
    wrote_disks = wrote_nic = False
    for n in F.CONF_FIELDS:
        c, d = newc[n], curd[n]
        dc, dd = F.digest(c), F.digest(d)
        bc, bd = base.fields.get(n, (None, None)) if base else (None, None)
        conf_changed = bc is None or dc != bc
        dom_changed = bd is not None and dd != bd
        st = FieldState(n, c, d, IN_SYNC)
        states.append(st)
        if c == d:
            nb[n] = (dc, dd)
            continue
        if conf_changed and dom_changed:
            st.state = CONFLICT
        elif conf_changed:
            st.state = CONF_CHANGED
        elif dom_changed:
            st.state = DOMAIN_EDITED
        # else: both unchanged since a baseline that accepted the domain's value
        take_conf = st.state == CONF_CHANGED or (prefer == "conf" and st.state != IN_SYNC) \
            or (prefer == "conf" and not conf_changed and not dom_changed)
        if take_conf:
            F.replace(out, gen, n, ctx)
            st.written = True
            nb[n] = (dc, dc)
            wrote_disks |= n == "disks"
            wrote_nic |= n == "nic"
        elif prefer == "domain" or st.state == IN_SYNC:
            nb[n] = (dc, dd)
        elif st.state == DOMAIN_EDITED:
            nb[n] = (bc, bd)
        else:
            nb[n] = (bc or dc, bd or dd)
    if prefer is None and any(s.state == CONFLICT for s in states):
        return MergeResult("conflict", None, states, kept=kept_additions(ex, ctx))
    F.replace_instance(out, gen)
    targets = F.targets_of(gen) + (() if wrote_disks or base is None else base.targets)
    macs = F.macs_of(gen) + (() if wrote_nic or base is None else base.macs)
    new_base = Baseline(nb, targets, macs, _gen_digest(gen_xml), conf_path)
    write_baseline(out, new_base)
    old_inst = read_instance(ex)
    unchanged = (not any(s.written for s in states) and old_inst == read_instance(gen)
                 and base is not None and base.fields == nb
                 and set(base.targets) == set(targets) and set(base.macs) == set(macs)
                 and (conf_path is None or base.conf_path == conf_path))
    if unchanged:
        return MergeResult("unchanged", None, states, kept=kept_additions(ex, ctx))
    return MergeResult("updated", etree.tostring(out, encoding="unicode"), states,
                       kept=kept_additions(ex, ctx))


def assess(existing_xml: str, gen_xml: str, known=None) -> MergeResult:
    """Field states of a definition against the conf's XML, nothing written."""
    r = merge(existing_xml, gen_xml, known=known)
    r.xml = None
    return r


def overlay(definition_xml: str, normal_xml: str, run_xml: str, known=None) -> Optional[str]:
    """The live configuration of a run with one-off choices: the definition (the admin's
    devices included) with every field where the run differs from the conf's normal boot
    taken from the run.  None when the run is the normal boot."""
    normal, run = complete(F.parse(normal_xml, known)), complete(F.parse(run_xml, known))
    live = F.parse(definition_xml)
    ctx = F.Context(F.targets_of(normal) + F.targets_of(run), F.macs_of(normal) + F.macs_of(run))
    changed = [n for n in F.RUN_FIELDS if F.value(normal, n, ctx) != F.value(run, n, ctx)]
    if not changed:
        return None
    for n in changed:
        F.replace(live, run, n, ctx)
    F.replace_instance(live, run)
    return etree.tostring(live, encoding="unicode")


def kept_additions(root, ctx: F.Context) -> List[str]:
    """What the admin owns in the definition, in words (for `diff`)."""
    out: List[str] = []
    for tag in ("title", "description"):
        if root.find(tag) is not None:
            out.append(f"<{tag}> {(root.findtext(tag) or '').strip()[:60]}")
    md = root.find("metadata")
    if md is not None:
        for child in md:
            if isinstance(child.tag, str) and child.tag not in (LIFECYCLE_TAG, F._INSTANCE):
                out.append(f"metadata {child.tag}")
    dev = root.find("devices")
    if dev is not None:
        nic = F.our_nic(root, ctx)
        nic_mac = F._mac_of(nic) if nic is not None else None
        for el in dev:
            if not isinstance(el.tag, str):
                continue
            # libvirt's own defaults (controllers, input, audio) and our devices are no news
            if el.tag in ("emulator", "controller", "input", "audio", "serial", "console", "video",
                          "graphics", "memballoon"):
                continue
            if el.tag == "disk" and F.disk_target(el) in ctx.targets:
                continue
            if el.tag == "interface" and nic_mac is not None and F._mac_of(el) == nic_mac:
                continue
            desc = el.get("model") or el.get("type") or ""
            if el.tag == "disk":
                desc = F.disk_target(el)
            elif el.tag == "interface":
                desc = F._mac_of(el)
            out.append(f"device <{el.tag}> {desc}".rstrip())
    for tag in ("cputune", "memtune", "blkiotune", "numatune", "resource", "iothreads"):
        if root.find(tag) is not None:
            out.append(f"tuning <{tag}>")
    return out
