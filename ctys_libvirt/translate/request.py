"""CREATE suboption values (BOOTMODE, INSTMODE, KERNEL, CONSOLE, ARGSADD) -> BootRequest.

Each parser validates its value and raises UsageError with one line naming the value and
the accepted forms.  Decisions where the legacy grammar was loose (conf-format.md §4, §8):

* BOOTMODE ``MODE[%PATH]``: PATH is everything after the *first* ``%`` (the legacy wrapper
  took the text after the last ``%`` and deleted MODE from it).
* INSTMODE ``SRC%SRCPATH%TGT%TGTPATH%STAGE``: 1 to 5 fields (missing trailing fields are
  empty); ``DEFAULT`` (any case) or an empty field takes the conf default; the whole value
  ``''``/``DEFAULT`` means "all defaults".  More than 5 fields is an error (a path with ``%``
  cannot be told apart from a field separator).
* KERNEL ``img[%initrd[%append]]``: split on the first two ``%`` only, so the kernel command
  line may contain ``%``; empty fields fall back to the conf (KERNELIMAGE/INITRDIMAGE/APPEND).
* CONSOLE ``VNC:<N>``: N < 5900 is a display number, N >= 5900 a TCP port (display N-5900).
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

from ctys_libvirt.errors import UsageError
from ctys_libvirt.model import (
    VNC_BASEPORT,
    BootMode,
    BootRequest,
    ConsoleType,
    InstModeFields,
    KernelFields,
)
_MAX_DISPLAY = 65535 - VNC_BASEPORT

BOOTMODES = tuple(m.value for m in BootMode)
CONSOLES = tuple(c.value for c in ConsoleType)
# name -> member: a dict look-up instead of the Enum's call machinery (every plan parses
# DEFAULTBOOTMODE, every request its CONSOLE)
_BOOTMODE = {m.value: m for m in BootMode}
_CONSOLE = {c.value: c for c in ConsoleType}
# Install source modes; CDROM is the legacy prefix spelling of CD.
INST_SOURCE_MODES = ("CD", "DVD", "FDD", "USB", "HDD", "PXE")
_SOURCE_ALIASES = {"CDROM": "CD", "DVDROM": "DVD"}
INST_TARGET_MODES = ("HDD", "HDDDOS", "VHDD", "FDD", "USB")


def parse_bootmode(value: str) -> Tuple[BootMode, Optional[str]]:
    """'cd%/x.iso' -> (BootMode.CD, '/x.iso'); 'HDD' -> (BootMode.HDD, None)."""
    text = (value or "").strip()
    mode, sep, path = text.partition("%")
    bm = _BOOTMODE.get(mode.strip().upper())
    if bm is None:
        raise UsageError(
            f"unknown BOOTMODE {value!r}",
            hint="use MODE[%PATH] with MODE one of " + ", ".join(BOOTMODES),
        )
    if sep and bm in (BootMode.PXE, BootMode.KERNEL) and path:
        raise UsageError(
            f"BOOTMODE {bm.value} takes no path: {value!r}",
            hint="use KERNEL:img%initrd%append for a kernel, or BOOTMODE PXE alone",
        )
    return bm, (path if sep and path else None)


def _norm_src_mode(word: str, value: str) -> str:
    mode = _SOURCE_ALIASES.get(word, word)
    if mode not in INST_SOURCE_MODES:
        raise UsageError(
            f"unknown INSTMODE source mode {word!r} in {value!r}",
            hint="SRC is one of " + ", ".join(INST_SOURCE_MODES) + " or DEFAULT",
        )
    return mode


def parse_instmode(value: Optional[str]) -> InstModeFields:
    """'CD%/x.iso%HDD%%INIT' -> InstModeFields(...); '' / 'DEFAULT' -> all None."""
    text = (value or "").strip()
    if text.upper() in ("", "DEFAULT"):
        return InstModeFields(text=value or "")
    parts = text.split("%")
    if len(parts) > 5:
        raise UsageError(
            f"INSTMODE {value!r} has {len(parts)} fields",
            hint="use SRC%SRCPATH%TGT%TGTPATH%STAGE (at most 5 fields; paths cannot contain %)",
        )
    parts += [""] * (5 - len(parts))

    def field(i: int) -> Optional[str]:
        s = parts[i].strip()
        return None if s == "" or s.upper() == "DEFAULT" else s

    src, src_path, tgt, tgt_path, stage = (field(i) for i in range(5))
    if src is not None:
        src = _norm_src_mode(src.upper(), value)
    if tgt is not None:
        tgt = tgt.upper()
        if tgt not in INST_TARGET_MODES:
            raise UsageError(
                f"unknown INSTMODE target mode {parts[2]!r} in {value!r}",
                hint="TGT is one of " + ", ".join(INST_TARGET_MODES) + " or DEFAULT",
            )
    if stage is not None:
        stage = stage.upper()
    return InstModeFields(src, src_path, tgt, tgt_path, stage, text=value)


def parse_kernel(value: str) -> KernelFields:
    """'img%initrd%append' -> KernelFields; append may itself contain '%'."""
    text = value or ""
    if not text.strip():
        raise UsageError(
            "empty KERNEL value",
            hint="use KERNEL:img[%initrd[%append]] (empty fields use KERNELIMAGE/INITRDIMAGE/APPEND)",
        )
    parts = text.split("%", 2) + ["", ""]
    kernel, initrd, append = parts[0].strip(), parts[1].strip(), parts[2]
    return KernelFields(kernel or None, initrd or None, append if append.strip() else None, text=value)


def parse_console(value: str) -> Tuple[ConsoleType, Optional[int]]:
    """'VNC' | 'VNC:<display or port>' | 'SDL' | 'CLI' | 'CLI0' | ... -> (type, display)."""
    text = (value or "").strip()
    name, sep, arg = text.partition(":")
    ctype = _CONSOLE.get(name.strip().upper())
    if ctype is None:
        raise UsageError(
            f"unknown CONSOLE {value!r}",
            hint="use one of " + ", ".join(CONSOLES) + " (VNC:<display> pins the display)",
        )
    if not sep:
        return ctype, None
    if ctype is not ConsoleType.VNC:
        raise UsageError(f"CONSOLE {ctype.value} takes no argument: {value!r}",
                         hint="only VNC:<display> has an argument")
    arg = arg.strip()
    if not arg.isdigit():
        raise UsageError(f"VNC display in CONSOLE {value!r} is not a number",
                         hint="use VNC:<display> (0..) or VNC:<port> (5900..)")
    n = int(arg)
    display = n - VNC_BASEPORT if n >= VNC_BASEPORT else n
    if display > _MAX_DISPLAY:
        raise UsageError(f"VNC display in CONSOLE {value!r} is out of range",
                         hint=f"use a display 0..{_MAX_DISPLAY}")
    return ctype, display


def make_request(
    *,
    bootmode: Optional[str] = None,
    instmode: Optional[str] = None,
    kernel: Optional[str] = None,
    console: Optional[str] = None,
    argsadd: Iterable[str] = (),
    install_phase: bool = True,
    vnc_display: Optional[int] = None,
    allow_argsadd: Iterable[str] = (),
    allow_devices: Iterable[str] = (),
) -> BootRequest:
    """Validate raw suboption values and build the BootRequest the translators take.

    ``instmode=None`` means no install; ``''``/``'DEFAULT'`` means install with the conf
    defaults.  ``vnc_display`` (e.g. a CLI flag) wins over a display in ``console``."""
    bm, path = parse_bootmode(bootmode) if bootmode is not None else (None, None)
    inst = parse_instmode(instmode) if instmode is not None else None
    kern = parse_kernel(kernel) if kernel is not None else None
    ctype, display = parse_console(console) if console is not None else (ConsoleType.VNC, None)
    if vnc_display is not None:
        if not 0 <= vnc_display <= _MAX_DISPLAY:
            raise UsageError(f"VNC display {vnc_display} is out of range",
                             hint=f"use a display 0..{_MAX_DISPLAY}")
        display = vnc_display
    return BootRequest(
        bootmode=bm,
        boot_path=path,
        instmode=inst,
        kernel=kern,
        console=ctype,
        vnc_display=display,
        argsadd=tuple(argsadd),
        install_phase=install_phase,
        allow_argsadd=tuple(allow_argsadd),
        allow_devices=tuple(allow_devices),
    )
