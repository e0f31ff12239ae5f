"""MachinePlan -> libvirt domain XML (design.md §5, conf-format.md §5.7): the entry point.

Legacy ARGSADD/TIMEOPT options libvirt has an element for are converted first
(``native_plan``, translate.legacy_args); only the rest becomes ``<qemu:commandline>``.
The document itself is built by one builder per element in ``translate/domxml/`` (start
at its ``__init__``; a device is one module under ``domxml/devices/``).

Public API:

    build_domain(vm, req, facts, options=None) -> DomainBuild
    render_build(vm, build, facts, options=None) -> DomainBuild   (same plans, other options)
    read_metadata(xml_or_element) -> dict | None
    METADATA_NS, METADATA_PREFIX, QEMU_NS
    validate_domain_xml(xml) -> None | str      (RelaxNG check against libvirt's schema)
    XmlOptions
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Union

from lxml import etree

from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import BootRequest, HostCaps, HostFacts, VmConfig
from ctys_libvirt.security.argwords import sources
from ctys_libvirt.translate.domxml import domain_element, serialize
from ctys_libvirt.translate.domxml.text import QEMU_NS  # noqa: F401 (API)
from ctys_libvirt.translate.plan import MachinePlan, resolve_plan
from ctys_libvirt.util.memo import once

from ctys_libvirt.translate.metadata import METADATA_NS, METADATA_PREFIX, read_instance  # noqa: F401 (API)


@dataclass(frozen=True)
class XmlOptions:
    """How the domain is wired on the target host.

    network: libvirt network name (wins over the active 'default' network); bridge: host
    bridge (wins over network); user_network: force user-mode networking; serial_log: file
    the serial console is logged to (tests read the guest marker from it)."""

    network: Optional[str] = None
    bridge: Optional[str] = None
    user_network: bool = False
    serial_log: Optional[str] = None
    sdl_display: Optional[str] = None    # CONSOLE SDL: the X display (and Xauthority) QEMU opens
    sdl_xauth: Optional[str] = None


@dataclass
class DomainBuild:
    xml: str                          # the domain to start (install XML for install runs)
    final_xml: Optional[str]          # install runs: persistent definition (same UUID)
    name: str
    uuid: str                         # dashed
    warnings: List[str]
    plan: MachinePlan
    install: bool                     # xml is a transient install run (on_reboot destroy)
    final_plan: Optional[MachinePlan] = None
    lint: List[str] = field(default_factory=list)   # ARGSADD lint findings (also in warnings)
    # the trees ``xml`` / ``final_xml`` were serialized from: callers that work on the XML
    # (merge into a definition, drift) take a copy of these instead of parsing our own text
    tree: Optional[etree._Element] = field(default=None, repr=False, compare=False)
    final_tree: Optional[etree._Element] = field(default=None, repr=False, compare=False)


SCHEMA_PATH = "/usr/share/libvirt/schemas/domain.rng"


@once
def _schema() -> Union[etree.RelaxNG, str]:
    """libvirt's domain schema compiled (about 0.1 s), or why it cannot be loaded."""
    try:
        return etree.RelaxNG(etree.parse(SCHEMA_PATH))
    except (OSError, etree.LxmlError) as exc:
        return f"cannot load the libvirt schema {SCHEMA_PATH}: {exc}"


def validate_domain_xml(xml: Union[str, bytes]) -> Optional[str]:
    """None if ``xml`` validates against libvirt's domain RelaxNG schema, else the first
    problem (schema compiled once per process)."""
    schema = _schema()
    if isinstance(schema, str):
        return schema
    doc = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if schema.validate(doc):
        return None
    err = schema.error_log.last_error
    return f"line {err.line}: {err.message}" if err is not None else "invalid"


_DEFAULT_OPTIONS = XmlOptions()          # frozen: safe to share


def _options(options: Any) -> XmlOptions:
    if options is None:
        return _DEFAULT_OPTIONS
    if isinstance(options, XmlOptions):
        return options
    # CreateOptions (or anything with the same attribute names)
    return XmlOptions(network=getattr(options, "network", None), bridge=getattr(options, "bridge", None),
                      user_network=bool(getattr(options, "user_network", False)),
                      serial_log=getattr(options, "serial_log", None),
                      sdl_display=getattr(options, "sdl_display", None),
                      sdl_xauth=getattr(options, "sdl_xauth", None))


def native_plan(plan: MachinePlan) -> MachinePlan:
    """The plan as libvirt runs it: legacy ARGSADD/TIMEOPT options with a libvirt element
    converted (translate.legacy_args), only the rest left in ``argsadd``."""
    words = list(plan.timeopt_args) + list(plan.argsadd)
    if not words:
        return plan
    from ctys_libvirt.translate import legacy_args     # only a VM with such words needs it

    return legacy_args.apply(plan, legacy_args.convert(words))


def build_domain(vm: VmConfig, req: BootRequest, facts: HostFacts,
                 options: Any = None) -> DomainBuild:
    """Domain XML for ``vm`` booted as ``req`` on a host ``facts`` describes (gathered by
    the caller: host.facts.host_facts(caps)).

    For an INSTMODE request in the install phase, ``xml`` is the transient install domain
    (``on_reboot`` destroy, source first in the boot order) and ``final_xml`` the persistent
    definition with the same UUID that boots the install target.  Raises the plan's errors
    (UsageError, NotFoundError, ConfError)."""
    caps = facts.caps
    opts = _options(options)
    plan = native_plan(resolve_plan(vm, req, facts))
    # backstop for every caller (define, sync, ...): no host-reaching ARGSADD reaches a
    # definition unless allowed; the commands check earlier, against the probed binary.
    # Without any words there is nothing to judge (the policy tables stay unloaded).
    srcs = sources(vm, req)
    if srcs:
        from ctys_libvirt.security.argsadd import enforce

        enforce(vm, req, None, allow=req.allow_argsadd, srcs=srcs)
    if caps.max_vcpus is not None and plan.smp > caps.max_vcpus:
        raise ConfError(f"SMP={plan.smp} is above the {caps.max_vcpus} vCPUs machine type "
                        f"{plan.machine} allows on this host", path=str(vm.source_path),
                        hint=f"set SMP to {caps.max_vcpus} or less")
    fplan = None
    if plan.install_phase:
        fplan = native_plan(resolve_plan(vm, replace(req, install_phase=False), facts))
    return _domain_build(vm, plan, fplan, caps, opts)


def render_build(vm: VmConfig, b: DomainBuild, facts: HostFacts, options: Any = None) -> DomainBuild:
    """``b`` (built for ``vm``) rendered again for other ``options`` (e.g. the persistent
    definition, without a run's serial log) from the plans it holds: nothing is resolved
    or checked again."""
    return _domain_build(vm, b.plan, b.final_plan, facts.caps, _options(options))


def _domain_build(vm: VmConfig, plan: MachinePlan, fplan: Optional[MachinePlan],
            caps: HostCaps, opts: XmlOptions) -> DomainBuild:
    warnings = list(plan.warnings)
    if plan.install_phase:
        tree = domain_element(plan, caps, opts, "install", warnings)
        final_tree = domain_element(fplan, caps, opts, "final", [])
        return DomainBuild(serialize(tree), serialize(final_tree), plan.name, plan.uuid_dashed,
                           warnings, plan, True, fplan, tree=tree, final_tree=final_tree)
    phase = "final" if plan.install is not None else "boot"
    tree = domain_element(plan, caps, opts, phase, warnings)
    return DomainBuild(serialize(tree), None, plan.name, plan.uuid_dashed, warnings, plan, False,
                       tree=tree)


def read_metadata(xml_or_element: Union[str, bytes, etree._Element]) -> Optional[Dict[str, Any]]:
    """Our ``<ctys:instance>`` from a domain XML, a metadata fragment (as ``dom.metadata()``
    returns it) or an lxml element -> dict, or None if the domain is not ours."""
    if isinstance(xml_or_element, (str, bytes)):
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            data = xml_or_element.encode() if isinstance(xml_or_element, str) else xml_or_element
            el = etree.fromstring(data, parser)
        except etree.XMLSyntaxError:
            return None
    else:
        el = xml_or_element
    return read_instance(el) or None
