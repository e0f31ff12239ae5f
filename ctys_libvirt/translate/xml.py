"""MachinePlan -> libvirt domain XML (design.md §5, conf-format.md §5.7).

Legacy ARGSADD/TIMEOPT options libvirt has an element for are converted first
(``native_plan``, translate.legacy_args); only the rest becomes ``<qemu:commandline>``.

The skeleton ``xml_templates/domain.xml`` is parsed with lxml and filled through the lxml
API only, so every value is escaped structurally.  Output is pretty printed in a fixed
element order so golden files diff well.

Public API:

    build_domain(vm, req, caps, options=None) -> DomainBuild
    read_metadata(xml_or_element) -> dict | None
    METADATA_NS, METADATA_PREFIX, QEMU_NS
    validate_domain_xml(xml) -> None | str      (RelaxNG check against libvirt's schema)
    XmlOptions
"""
from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Dict, List, Optional, Tuple, Union

from lxml import etree

from ctys_libvirt import __version__
from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import BootRequest, HostCaps, VmConfig
from ctys_libvirt.translate import legacy_args
from ctys_libvirt.translate.plan import MachinePlan, resolve_plan
from ctys_libvirt.translate.request import VNC_BASEPORT

from ctys_libvirt.translate.metadata import METADATA_NS, METADATA_PREFIX, read_instance
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
VNC_LISTEN = "127.0.0.1"
# serial consoles that also get VNC (autoport) and a video device for later attachment
VNC_PREPARED = frozenset({"CLI", "XTERM", "GTERM", "EMACS", "EMACSM", "EMACSA", "EMACSAM"})
# ctys/QEMU -vga names -> libvirt <video><model type=...>
VIDEO_MODELS = {"cirrus": "cirrus", "std": "vga", "vmware": "vmvga", "qxl": "qxl",
                "virtio": "virtio", "none": "none"}
# Characters XML 1.0 cannot carry at all, and lone surrogates: the bytes of a non-UTF-8
# file name (os functions decode them with surrogateescape) that lxml/libvirt cannot encode.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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


_CPU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _cpu_spec(cpu: str) -> Tuple[str, List[Tuple[str, str]]]:
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


# libvirt's <os><type arch=...> names (schemas/basictypes.rng "archnames")
LIBVIRT_ARCHES = frozenset(
    "aarch64 alpha armv6l armv7l cris i686 ia64 lm32 m68k microblaze microblazeel mips mipsel "
    "mips64 mips64el openrisc parisc parisc64 ppc ppc64 ppc64le ppcemb riscv32 riscv64 s390 "
    "s390x sh4 sh4eb sparc sparc64 unicore32 x86_64 xtensa xtensaeb".split())
_TEMPLATE: Optional[etree._Element] = None
_SCHEMA: Optional[etree.RelaxNG] = None
SCHEMA_PATH = "/usr/share/libvirt/schemas/domain.rng"


def validate_domain_xml(xml: Union[str, bytes]) -> Optional[str]:
    """None if ``xml`` validates against libvirt's domain RelaxNG schema, else the first
    problem (schema compiled once per process)."""
    global _SCHEMA
    if _SCHEMA is None:
        try:
            _SCHEMA = etree.RelaxNG(etree.parse(SCHEMA_PATH))
        except (OSError, etree.LxmlError) as exc:
            return f"cannot load the libvirt schema {SCHEMA_PATH}: {exc}"
    doc = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if _SCHEMA.validate(doc):
        return None
    err = _SCHEMA.error_log.last_error
    return f"line {err.line}: {err.message}" if err is not None else "invalid"


def _template_root() -> etree._Element:
    global _TEMPLATE
    if _TEMPLATE is None:
        parser = etree.XMLParser(remove_blank_text=True, remove_comments=True)
        data = resources.files("ctys_libvirt.xml_templates").joinpath("domain.xml").read_bytes()
        _TEMPLATE = etree.fromstring(data, parser)
    return _TEMPLATE


def _clean(value: Any, what: str) -> str:
    text = str(value)
    if _XML_BAD.search(text):
        raise ConfError(f"{what} {text!r} contains control characters or non-UTF-8 bytes "
                        "XML cannot carry",
                        hint="remove them from the conf or the request (rename such files)")
    return text


def _meta_text(value: Any) -> str:
    # Metadata is informational: replace what XML cannot carry instead of failing.
    text = str(value)
    return _XML_BAD.sub("\ufffd", text) if _XML_BAD.search(text) else text


def _domain_type(plan: MachinePlan, caps: HostCaps, warnings: List[str]) -> str:
    if plan.accelerator == "KVM":
        if caps.kvm:
            return "kvm"
        warnings.append("ACCELERATOR=KVM but KVM is not usable on this host "
                        "(/dev/kvm missing or not accessible to QEMU); using TCG (domain type qemu)")
    elif plan.accelerator == "KQEMU":
        warnings.append("ACCELERATOR=KQEMU is obsolete (removed from QEMU); using TCG (domain type qemu)")
    elif plan.accelerator not in ("QEMU", "TCG"):
        warnings.append(f"ACCELERATOR={plan.accelerator} is unknown; using TCG (domain type qemu)")
    return "qemu"


# Rendering in two steps.  _describe() turns a plan into `ops` (the document's shape: which
# elements with which attribute names, as hashable tuples) and `vals` (every text and
# attribute value, in op order), running every check and warning in document order.
# _render() fills the template through the lxml API.  Its tree is kept per shape: the next
# document of that shape is made by assigning only the values that differ from the ones
# the tree holds and serializing it (confs made from one ctys template share their shape,
# and most values).  A lock keeps threads from interleaving on one kept tree.
_AT, _SET, _TEXT, _NEW, _UP, _KEYS, _CLEAR, _REMOVE = range(8)
_SKELETONS: Dict[tuple, list] = {}       # ops -> [root, slots, the values it holds]
_SKELETONS_MAX = 64
_SKELETONS_LOCK = threading.Lock()
_MD = "{%s}" % METADATA_NS
_Q = "{%s}" % QEMU_NS
_KEY_TAG = _MD + "key"
_NS_MD = ((METADATA_PREFIX, METADATA_NS),)
_NS_Q = (("qemu", QEMU_NS),)
_UP_OP = (_UP,)
_TEXT_OP = (_TEXT,)
_KEYS_SLOT = object()


def _describe(plan: MachinePlan, caps: HostCaps, opts: XmlOptions, phase: str,
              warnings: List[str]) -> tuple:
    ops: list = []
    vals: list = []
    op = ops.append
    val = vals.append
    op((_AT, None))
    op((_SET, "type"))
    dtype = _domain_type(plan, caps, warnings)
    val(dtype)
    op((_AT, "name"))
    op(_TEXT_OP)
    val(_clean(plan.name, "LABEL"))
    op((_AT, "uuid"))
    op(_TEXT_OP)
    val(plan.uuid_dashed)

    # <metadata><ctys:instance>
    req = plan.request
    op((_AT, "metadata"))
    op((_NEW, _MD + "instance", (), _NS_MD))
    op((_NEW, _MD + "conf", ("path", "sha256"), None))
    val(_meta_text(plan.conf_path))
    val(plan.conf_sha256 or "")
    op(_UP_OP)
    op((_NEW, _MD + "label", (), None))
    op(_TEXT_OP)
    val(_meta_text(plan.name))
    op(_UP_OP)
    op((_NEW, _MD + "tool", ("name", "version"), None))
    val("ctys-libvirt")
    val(__version__)
    op(_UP_OP)
    attrs = {"console": plan.console.value, "phase": phase}
    if plan.bootmode is not None:
        attrs["bootmode"] = plan.bootmode.value
    if req.boot_path and phase == "boot":
        attrs["bootpath"] = _meta_text(req.boot_path)
    if req.instmode is not None:
        attrs["instmode"] = _meta_text(req.instmode)
    if req.kernel is not None:
        attrs["kernel"] = _meta_text(req.kernel)
    if plan.vnc_display is not None:
        attrs["vncdisplay"] = str(plan.vnc_display)
    op((_NEW, _MD + "request", tuple(attrs), None))
    vals.extend(attrs.values())
    for word in req.argsadd:
        op((_NEW, _MD + "argsadd", (), None))
        op(_TEXT_OP)
        val(_meta_text(word))
        op(_UP_OP)
    op(_UP_OP)
    op((_NEW, _MD + "keys", (), None))
    pairs = plan.keys
    op((_KEYS, tuple([k for k, _ in pairs])))
    values = tuple([v for _, v in pairs])
    if _XML_BAD.search("".join(values)):
        values = tuple([_meta_text(v) for v in values])
    val(values)                             # one value: the texts of all <ctys:key>s

    op((_AT, "memory"))
    op(_TEXT_OP)
    val(str(plan.memory_mib))
    op((_AT, "vcpu"))
    op(_TEXT_OP)
    val(str(plan.smp))
    op((_AT, "os/type"))
    op((_SET, "arch"))
    if plan.arch not in LIBVIRT_ARCHES:
        raise ConfError(f"ARCH {plan.arch!r} is not an architecture libvirt knows",
                        construct="ARCH",
                        hint="use e.g. x86_64 or i686 (amd64/i386/i586 are mapped), or --backend direct")
    val(plan.arch)
    op((_SET, "machine"))
    val(plan.machine)
    if plan.arch not in caps.arches:
        warnings.append(f"ARCH {plan.arch} is not offered by this host ({', '.join(caps.arches)})")
    kernel = plan.kernel
    if kernel is not None:
        op((_AT, "os"))
        op((_NEW, "kernel", (), None))
        op(_TEXT_OP)
        val(_clean(kernel.kernel, "KERNELIMAGE"))
        op(_UP_OP)
        if kernel.initrd is not None:
            if plan.kernel_multiboot and (" " in str(kernel.initrd) or "," in str(kernel.initrd)):
                # libvirt hands -initrd to QEMU as is; QEMU's multiboot loader splits it
                raise ConfError(
                    f"{plan.name}: multiboot module {kernel.initrd} has a "
                    f"{'blank' if ' ' in str(kernel.initrd) else 'comma'} in its path, which QEMU's "
                    "multiboot loader splits on (',' separates modules, a blank starts the module's "
                    "command line)",
                    hint="move or symlink the module to a path without blanks and commas"
                         + ("" if " " in str(kernel.initrd) else ", or use --backend direct (it escapes commas)"))
            op((_NEW, "initrd", (), None))
            op(_TEXT_OP)
            val(_clean(kernel.initrd, "INITRDIMAGE"))
            op(_UP_OP)
        if kernel.append:
            op((_NEW, "cmdline", (), None))
            op(_TEXT_OP)
            val(_clean(kernel.append, "APPEND"))
            op(_UP_OP)
    if plan.cpu == "host":
        # -cpu host has no named model: libvirt's passthrough mode is the same thing.  It
        # needs KVM; under TCG QEMU refuses it, and 'maximum' (-cpu max) is the nearest
        op((_AT, "cpu"))
        op((_CLEAR,))
        op((_SET, "mode"))
        if dtype == "kvm":
            val("host-passthrough")
        else:
            val("maximum")
            warnings.append("CPU=host needs KVM; under TCG the guest gets the emulator's "
                            "maximum CPU model instead (<cpu mode='maximum'>, QEMU -cpu max)")
        op((_REMOVE, "model"))
    else:
        model, features = _cpu_spec(plan.cpu)
        op((_AT, "cpu/model"))
        op(_TEXT_OP)
        val(model)
        if features:
            op((_AT, "cpu"))
            for policy, name in features:
                op((_NEW, "feature", ("policy", "name"), None))
                val(policy)
                val(name)
                op(_UP_OP)
    native = plan.native
    if native is not None and native.boot_menu is not None:
        op((_AT, "os"))
        op((_NEW, "bootmenu", ("enable",), None))
        val("yes" if native.boot_menu else "no")
        op(_UP_OP)
    if native is not None and native.acpi is False:
        op((_AT, "features"))
        op((_REMOVE, "acpi"))
    op((_AT, "clock"))
    op((_SET, "offset"))
    if native is not None and native.clock_start is not None:
        val("absolute")
        op((_SET, "start"))
        val(native.clock_start)
    else:
        val("localtime" if plan.localtime else "utc")
    if native is not None and (native.rtc_track or native.rtc_tickpolicy):
        names = ("name",) + (("track",) if native.rtc_track else ()) \
            + (("tickpolicy",) if native.rtc_tickpolicy else ())
        op((_NEW, "timer", names, None))
        vals += ["rtc"] + [v for v in (native.rtc_track, native.rtc_tickpolicy) if v]
        op(_UP_OP)
    if native is not None and native.hpet is False:
        op((_NEW, "timer", ("name", "present"), None))
        vals += ["hpet", "no"]
        op(_UP_OP)
    if phase == "install":
        op((_AT, "on_reboot"))
        op(_TEXT_OP)
        val("destroy")

    # <devices>
    op((_AT, "devices"))
    if caps.emulator:
        op((_NEW, "emulator", (), None))
        op(_TEXT_OP)
        val(_clean(caps.emulator, "emulator path"))
        op(_UP_OP)
    for d in plan.disks:
        op((_NEW, "disk", ("type", "device"), None))
        val("block" if d.block else "file")
        val(d.device)
        op((_NEW, "driver", ("name", "type"), None))
        val("qemu")
        val(d.format)
        op(_UP_OP)
        op((_NEW, "source", ("dev" if d.block else "file",), None))
        val(_clean(d.path, f"{d.role} path"))
        op(_UP_OP)
        op((_NEW, "target", ("dev", "bus"), None))
        val(d.target)
        val(d.bus)
        op(_UP_OP)
        if d.boot_order is not None:
            op((_NEW, "boot", ("order",), None))
            val(str(d.boot_order))
            op(_UP_OP)
        if d.readonly:
            op((_NEW, "readonly", (), None))
            op(_UP_OP)
        op(_UP_OP)
    nics = ([plan.nic] if plan.nic is not None else []) + (list(native.nics) if native else [])
    # ARGSADD -net user|bridge chooses the link unless the command line did (--bridge/--network)
    arg_kind = native.net_kind if native is not None and not (opts.bridge or opts.network) else None
    bridge = opts.bridge or (native.net_bridge if arg_kind == "bridge" else None)
    for nic in nics:
        if bridge:
            kind = "bridge"
        elif arg_kind == "user":
            kind = "user"
        elif opts.network or (caps.default_network_active and not opts.user_network):
            kind = "network"
        else:
            kind = "user"
        op((_NEW, "interface", ("type",), None))
        val(kind)
        if nic.mac:
            op((_NEW, "mac", ("address",), None))
            val(nic.mac)
            op(_UP_OP)
        if bridge:
            op((_NEW, "source", ("bridge",), None))
            val(_clean(bridge, "bridge name"))
            op(_UP_OP)
        elif kind == "network":
            op((_NEW, "source", ("network",), None))
            val(_clean(opts.network or "default", "network name"))
            op(_UP_OP)
        op((_NEW, "model", ("type",), None))
        val(nic.model)
        op(_UP_OP)
        if getattr(nic, "boot_order", None) is not None:
            op((_NEW, "boot", ("order",), None))
            val(str(nic.boot_order))
            op(_UP_OP)
        op(_UP_OP)
    op((_NEW, "serial", ("type",), None))
    val("pty")
    if opts.serial_log:
        op((_NEW, "log", ("file", "append"), None))
        val(_clean(opts.serial_log, "serial log path"))
        val("on")
        op(_UP_OP)
    op((_NEW, "target", ("port",), None))
    val("0")
    op(_UP_OP)
    op(_UP_OP)
    for port, typ in enumerate(native.extra_serials if native else (), start=1):
        op((_NEW, "serial", ("type",), None))
        val(typ)
        op((_NEW, "target", ("port",), None))
        val(str(port))
        op(_UP_OP)
        op(_UP_OP)
    for port, typ in enumerate(native.parallels if native else ()):
        op((_NEW, "parallel", ("type",), None))
        val(typ)
        op((_NEW, "target", ("port",), None))
        val(str(port))
        op(_UP_OP)
        op(_UP_OP)
    op((_NEW, "console", ("type",), None))
    val("pty")
    op((_NEW, "target", ("type", "port"), None))
    val("serial")
    val("0")
    op(_UP_OP)
    op(_UP_OP)
    graphics = False
    console = plan.console.value
    # the manual: CLI, XTERM, GTERM and EMACS* also get the VNC port "for later attachment"
    if native is not None and native.graphics is False:
        pass                        # ARGSADD -nographic: no window, no VNC
    elif console == "VNC" or console in VNC_PREPARED:
        graphics = True
        if plan.vnc_display is not None and console == "VNC":
            names: tuple = ("type", "port", "autoport", "listen")
            vals += ["vnc", str(VNC_BASEPORT + plan.vnc_display), "no", VNC_LISTEN]
        else:
            names = ("type", "autoport", "listen")
            vals += ["vnc", "yes", VNC_LISTEN]
        if plan.keymap:
            names += ("keymap",)
            val(_clean(plan.keymap, "KBD_LAYOUT"))
        op((_NEW, "graphics", names, None))
        op((_NEW, "listen", ("type", "address"), None))
        val("address")
        val(VNC_LISTEN)
        op(_UP_OP)
        op(_UP_OP)
    elif console == "SDL":
        graphics = True
        sdl_names: tuple = ("type",)
        val("sdl")
        # qemu:///system runs QEMU without the caller's environment: name the X display
        # (and its Xauthority) the window goes to
        if opts.sdl_display:
            sdl_names += ("display",)
            val(_clean(opts.sdl_display, "DISPLAY"))
        if opts.sdl_xauth:
            sdl_names += ("xauth",)
            val(_clean(opts.sdl_xauth, "XAUTHORITY"))
        op((_NEW, "graphics", sdl_names, None))
        op(_UP_OP)
    video = "none" if not graphics else (VIDEO_MODELS[plan.vga] if plan.vga else None)
    if video is not None:
        op((_NEW, "video", (), None))
        op((_NEW, "model", ("type",), None))
        val(video)
        op(_UP_OP)
        op(_UP_OP)
    if native is not None:
        _native_devices(native, op, val)
    op((_NEW, "memballoon", ("model",), None))
    val(native.balloon if native is not None and native.balloon else "none")
    op(_UP_OP)

    # <qemu:commandline>
    args: List[str] = []
    if plan.qemubios:
        args += ["-L", plan.qemubios]
    args += list(plan.timeopt_args) + list(plan.argsadd)
    if args:
        op((_AT, None))
        op((_NEW, _Q + "commandline", (), _NS_Q))
        for a in args:
            op((_NEW, _Q + "arg", ("value",), None))
            val(_clean(a, "ARGSADD word"))
            op(_UP_OP)
    if console == "SDL":
        # SDL asks D-Bus to autolaunch a session bus, which forks: libvirt's seccomp sandbox
        # (spawn=deny) kills QEMU for that.  No session bus is needed for the window.
        if not args:
            op((_AT, None))
            op((_NEW, _Q + "commandline", (), _NS_Q))
        op((_NEW, _Q + "env", ("name", "value"), None))
        val("DBUS_SESSION_BUS_ADDRESS")
        val("disabled:")
        op(_UP_OP)
    return tuple(ops), vals


def _native_devices(native, op, val) -> None:
    """Devices ARGSADD asked for (translate.legacy_args): one USB controller, USB inputs,
    sound cards, a watchdog."""
    if native.usb:
        # libvirt's controller 0 is the one QEMU's -usb made; a second on the same slot fails
        op((_NEW, "controller", ("type", "index", "model"), None))
        val("usb")
        val("0")
        val(native.usb_model or "piix3-uhci")
        op(_UP_OP)
    for kind in native.inputs:
        op((_NEW, "input", ("type", "bus"), None))
        val(kind)
        val("usb")
        op(_UP_OP)
    for snd in native.sounds:
        op((_NEW, "sound", ("model",), None))
        val(snd.model)
        if snd.codec:
            op((_NEW, "codec", ("type",), None))
            val(snd.codec)
            op(_UP_OP)
        op(_UP_OP)
    if native.watchdog:
        op((_NEW, "watchdog", ("model", "action"), None))
        val(native.watchdog)
        val(native.watchdog_action or "reset")
        op(_UP_OP)


def _render(ops: tuple, vals: list) -> tuple:
    """The document of (ops, vals) built through the lxml API, and its value slots
    ((element, attribute name | None for its text | _KEYS_SLOT for its children's texts),
    one per value)."""
    root = copy.deepcopy(_template_root())
    cur = root
    stack: list = []
    it = iter(vals)
    slots: list = []
    for o in ops:
        kind = o[0]
        if kind == _AT:
            cur = root if o[1] is None else root.find(o[1])
            stack = []
        elif kind == _SET:
            cur.set(o[1], next(it))
            slots.append((cur, o[1]))
        elif kind == _TEXT:
            cur.text = next(it)
            slots.append((cur, None))
        elif kind == _NEW:
            attrib = {}
            for name in o[2]:
                attrib[name] = next(it)
            el = etree.SubElement(cur, o[1], attrib, nsmap=dict(o[3]) if o[3] else None)
            slots.extend((el, name) for name in o[2])
            stack.append(cur)
            cur = el
        elif kind == _UP:
            cur = stack.pop()
        elif kind == _KEYS:
            for name, text in zip(o[1], next(it)):
                etree.SubElement(cur, _KEY_TAG, name=_meta_text(name)).text = text
            slots.append((cur, _KEYS_SLOT))
        elif kind == _CLEAR:
            cur.attrib.clear()
        elif kind == _REMOVE:
            cur.remove(cur.find(o[1]))
        else:  # pragma: no cover
            raise AssertionError(kind)
    return root, tuple(slots)


def _to_xml(vm: VmConfig, plan: MachinePlan, caps: HostCaps, opts: XmlOptions,
            phase: str, warnings: List[str]) -> str:
    ops, vals = _describe(plan, caps, opts, phase, warnings)
    with _SKELETONS_LOCK:
        hit = _SKELETONS.get(ops)
        if hit is None:
            root, slots = _render(ops, vals)
            if len(_SKELETONS) >= _SKELETONS_MAX:
                _SKELETONS.clear()
            _SKELETONS[ops] = [root, slots, vals]
        else:
            root, slots, held = hit
            try:
                for (el, name), v, o in zip(slots, vals, held):
                    if v != o:
                        if name is None:
                            el.text = v
                        elif name is _KEYS_SLOT:    # el: <ctys:keys>, v: its children's texts
                            for child, text, old in zip(el, v, o):
                                if text != old:
                                    child.text = text
                        else:
                            el.set(name, v)
            except BaseException:
                del _SKELETONS[ops]        # partly updated: never reuse it
                raise
            hit[2] = vals
        return etree.tostring(root, pretty_print=True, encoding="unicode")


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
    return legacy_args.apply(plan, legacy_args.convert(words))


def build_domain(vm: VmConfig, req: BootRequest, caps: Optional[HostCaps] = None,
                 options: Any = None) -> DomainBuild:
    """Domain XML for ``vm`` booted as ``req`` on a host with ``caps``.

    For an INSTMODE request in the install phase, ``xml`` is the transient install domain
    (``on_reboot`` destroy, source first in the boot order) and ``final_xml`` the persistent
    definition with the same UUID that boots the install target.  Raises the plan's errors
    (UsageError, NotFoundError, ConfError)."""
    caps = caps or HostCaps()
    opts = _options(options)
    plan = native_plan(resolve_plan(vm, req))
    # backstop for every caller (define, sync, ...): no host-reaching ARGSADD reaches a
    # definition unless allowed; the commands check earlier, against the probed binary
    from ctys_libvirt.security.argsadd import enforce

    enforce(vm, req, None, allow=req.allow_argsadd)
    if caps.max_vcpus is not None and plan.smp > caps.max_vcpus:
        raise ConfError(f"SMP={plan.smp} is above the {caps.max_vcpus} vCPUs machine type "
                        f"{plan.machine} allows on this host", path=str(vm.source_path),
                        hint=f"set SMP to {caps.max_vcpus} or less")
    warnings = list(plan.warnings)
    if plan.install_phase:
        xml = _to_xml(vm, plan, caps, opts, "install", warnings)
        fplan = native_plan(resolve_plan(vm, replace(req, install_phase=False)))
        final_xml = _to_xml(vm, fplan, caps, opts, "final", [])
        return DomainBuild(xml, final_xml, plan.name, plan.uuid_dashed, warnings, plan, True, fplan)
    phase = "final" if plan.install is not None else "boot"
    xml = _to_xml(vm, plan, caps, opts, phase, warnings)
    return DomainBuild(xml, None, plan.name, plan.uuid_dashed, warnings, plan, False)


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
