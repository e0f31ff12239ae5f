"""CREATE suboption parsing: BOOTMODE, INSTMODE, KERNEL, CONSOLE -> BootRequest."""
import pytest

from ctys_libvirt.errors import UsageError
from ctys_libvirt.model import BootMode, ConsoleType
from ctys_libvirt.translate.request import (
    InstModeFields,
    KernelFields,
    make_request,
    parse_bootmode,
    parse_console,
    parse_instmode,
    parse_kernel,
)


@pytest.mark.parametrize("value,expected", [
    ("HDD", (BootMode.HDD, None)),
    ("vhdd", (BootMode.VHDD, None)),
    ("cd%/x.iso", (BootMode.CD, "/x.iso")),
    ("Dvd%/p/dvd%1.iso", (BootMode.DVD, "/p/dvd%1.iso")),   # everything after the FIRST %
    ("FDD%/fd/FDD.img", (BootMode.FDD, "/fd/FDD.img")),     # the mode name inside PATH is kept
    ("usb%/u.img", (BootMode.USB, "/u.img")),
    ("pxe", (BootMode.PXE, None)),
    ("KERNEL", (BootMode.KERNEL, None)),
    ("HDD%", (BootMode.HDD, None)),
])
def test_parse_bootmode(value, expected):
    assert parse_bootmode(value) == expected


@pytest.mark.parametrize("value", ["", "floppy", "HD", "cdrom%/x", "PXE%/x"])
def test_parse_bootmode_rejects(value):
    with pytest.raises(UsageError) as ei:
        parse_bootmode(value)
    assert repr(value) in str(ei.value) or "PXE" in str(ei.value)
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize("value,expected", [
    ("", InstModeFields()),
    ("DEFAULT", InstModeFields()),
    ("default", InstModeFields()),
    ("CD", InstModeFields("CD")),
    ("cdrom%/i.iso", InstModeFields("CD", "/i.iso")),
    ("CD%/i.iso%HDD%/t.img%init", InstModeFields("CD", "/i.iso", "HDD", "/t.img", "INIT")),
    ("DEFAULT%DEFAULT%fdd%/f.img", InstModeFields(None, None, "FDD", "/f.img")),
    ("%%%%INIT", InstModeFields(stage="INIT")),
    ("pxe%%hdddos%/Case/T.img%mytag", InstModeFields("PXE", None, "HDDDOS", "/Case/T.img", "MYTAG")),
])
def test_parse_instmode(value, expected):
    assert parse_instmode(value) == expected


@pytest.mark.parametrize("value,word", [
    ("CD%a%HDD%b%INIT%x", "6 fields"),
    ("NET%a", "'NET'"),
    ("CD%a%CD%b", "'CD'"),
    ("CD%a%VHDDX", "'VHDDX'"),
])
def test_parse_instmode_rejects(value, word):
    with pytest.raises(UsageError) as ei:
        parse_instmode(value)
    assert word in str(ei.value)
    assert "SRC" in str(ei.value) or "TGT" in str(ei.value)


@pytest.mark.parametrize("value,expected", [
    ("/k", KernelFields("/k")),
    ("/k%/i", KernelFields("/k", "/i")),
    ("/k%/i%root=/dev/sda1 ro", KernelFields("/k", "/i", "root=/dev/sda1 ro")),
    ("/k%%quiet", KernelFields("/k", None, "quiet")),
    ("/k%/i%a%b=50%", KernelFields("/k", "/i", "a%b=50%")),     # split on the first two % only
    ("%/i%x", KernelFields(None, "/i", "x")),
])
def test_parse_kernel(value, expected):
    assert parse_kernel(value) == expected


def test_parse_kernel_empty():
    with pytest.raises(UsageError, match="KERNEL"):
        parse_kernel("  ")


@pytest.mark.parametrize("value,expected", [
    ("VNC", (ConsoleType.VNC, None)),
    ("vnc:3", (ConsoleType.VNC, 3)),
    ("VNC:5907", (ConsoleType.VNC, 7)),
    ("sdl", (ConsoleType.SDL, None)),
    ("CLI", (ConsoleType.CLI, None)),
    ("cli0", (ConsoleType.CLI0, None)),
    ("XTERM", (ConsoleType.XTERM, None)),
    ("gterm", (ConsoleType.GTERM, None)),
    ("EMACS", (ConsoleType.EMACS, None)),
    ("EMACSM", (ConsoleType.EMACSM, None)),
    ("emacsa", (ConsoleType.EMACSA, None)),
    ("EMACSAM", (ConsoleType.EMACSAM, None)),
    ("NONE", (ConsoleType.NONE, None)),
])
def test_parse_console(value, expected):
    assert parse_console(value) == expected


@pytest.mark.parametrize("value", ["RDP", "", "VNC:x", "SDL:1", "VNC:99999"])
def test_parse_console_rejects(value):
    with pytest.raises(UsageError):
        parse_console(value)


def test_make_request_defaults_and_validation():
    r = make_request()
    assert (r.bootmode, r.instmode, r.console, r.vnc_display, r.argsadd) == (None, None, ConsoleType.VNC, None, ())
    r = make_request(bootmode="cd%/a b.iso", console="vnc:2", argsadd=["-a 'b c'"], instmode="DEFAULT")
    assert (r.bootmode, r.boot_path, r.vnc_display, r.argsadd, r.instmode) == (
        BootMode.CD, "/a b.iso", 2, ("-a 'b c'",), InstModeFields())
    assert r.instmode.text == "DEFAULT"     # as written, for the domain metadata
    # parsed once, here: the request carries typed fields, not the raw text
    r = make_request(instmode="cdrom%/i.iso%hdd%/t.img%init", kernel="/k%%quiet")
    assert r.instmode == InstModeFields("CD", "/i.iso", "HDD", "/t.img", "INIT")
    assert r.instmode.text == "cdrom%/i.iso%hdd%/t.img%init"
    assert r.kernel == KernelFields("/k", None, "quiet") and r.kernel.text == "/k%%quiet"
    assert make_request(console="VNC:2", vnc_display=5).vnc_display == 5
    with pytest.raises(UsageError):
        make_request(instmode="XX%")
    with pytest.raises(UsageError):
        make_request(kernel="")
