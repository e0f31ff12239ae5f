"""Helpers for the lifecycle integration tests: ctys confs for the tiny guests,
hand-written domain XML, serial-marker waits, the CLI runner and domain cleanup."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import List, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [str(REPO / ".venv" / "bin" / "ctys-libvirt")]
if not Path(CLI[0]).exists():  # running from another venv
    CLI = [sys.executable, "-m", "ctys_libvirt.cli.app"]

BOGUS_URI = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"


def unique_label(tag: str = "") -> str:
    return f"ctystest-{tag}{'-' if tag else ''}{uuidlib.uuid4().hex[:6]}"


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


def run_cli(*args: str, timeout: float = 120, input: Optional[str] = None,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("LIBVIRT_DEFAULT_URI", None)
    if env:
        e.update(env)
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout,
                          input=input, env=e)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ctys-libvirt: error: "), lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def read_serial(path: Path) -> str:
    try:
        return Path(path).read_bytes().decode("ascii", "replace")
    except FileNotFoundError:
        return ""


def wait_marker(path: Path, marker: str, count: int = 1, timeout: float = 30.0) -> str:
    """Until the ``count``-th line holding ``marker`` is complete in the serial log.

    The guests write a line byte by byte (slowly under TCG on a busy host), so seeing the
    marker is not seeing the line: wait for the newline after it, or callers asserting on
    the rest of the line race the guest."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = read_serial(path)
        at = -1
        for _ in range(count):
            at = text.find(marker, at + 1)
            if at < 0:
                break
        if at >= 0 and "\n" in text[at:]:
            return text
        time.sleep(0.02)
    raise AssertionError(f"marker {marker!r} x{count} (whole line) not in {path} after {timeout}s: "
                         f"{text[-300:]!r}")


def read_until_marker(fd: int, dom, first_reset: float = 0.3, every: float = 4.0,
                      timeout: float = 30.0, marker: bytes = b"CTYS-GUEST-OK\r\n") -> bytes:
    """Read a console's output from ``fd`` until the guest's marker line; reset ``dom``
    after ``first_reset`` s and again every ``every`` s meanwhile (the console stream may
    open late on a loaded host, and a marker printed before it opened is gone).  Never
    blocks on a read past ``timeout``."""
    buf = b""
    deadline = time.monotonic() + timeout
    next_reset = time.monotonic() + first_reset
    while marker not in buf and time.monotonic() < deadline:
        if time.monotonic() >= next_reset:
            dom.reset(0)
            next_reset = time.monotonic() + every
        if select.select([fd], [], [], 0.2)[0]:
            buf += os.read(fd, 256)
    return buf


def domain_xml(name: str, uuid: str, image: Path, serial_log: Path, *, boot: str = "hd",
               device: str = "disk", metadata: bool = True, graphics: bool = False) -> str:
    """Hand-written TCG domain for backend-level tests (pty serial with a log file, so
    both the console stream and the marker file work)."""
    from ctys_libvirt.translate.metadata import METADATA_NS

    target = {"disk": "<target dev='hda' bus='ide'/>",
              "cdrom": "<target dev='hdc' bus='ide'/><readonly/>",
              "floppy": "<target dev='fda' bus='fdc'/>"}[device]
    ns = METADATA_NS
    md = (f"<metadata><c:instance xmlns:c='{ns}'><c:conf path='/nowhere/{name}.ctys' sha256='0'/>"
          f"<c:label>{name}</c:label><c:keys><c:key name='IP0'>10.1.2.3</c:key></c:keys>"
          "</c:instance></metadata>"
          if metadata else "")
    gfx = "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>" if graphics else ""
    return f"""<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid>{md}
  <memory unit='MiB'>16</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='{boot}'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='{device}'><driver name='qemu' type='raw'/>
      <source file='{image}'/>{target}</disk>
    <interface type='user'><mac address='52:54:00:aa:bb:01'/><model type='rtl8139'/></interface>
    <serial type='pty'><log file='{serial_log}' append='off'/><target port='0'/></serial>
    <console type='pty'/>{gfx}
    <video><model type='none'/></video><memballoon model='none'/>
  </devices>
</domain>"""


def purge_domain(conn, name: str) -> None:
    """Destroy + undefine (with managed save) a test domain; silent if it is gone."""
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    try:
        if dom.isPersistent():
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                              | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError:
        try:
            dom.undefine()
        except libvirt.libvirtError:
            pass


class DomainJanitor:
    """Remembers test domain names; ``cleanup`` removes them and any leftover
    ``ctystest-`` domain carrying one of the remembered prefixes."""

    def __init__(self, conn):
        self.conn = conn
        self.names: List[str] = []

    def add(self, *names: str) -> str:
        self.names.extend(names)
        return names[0] if names else ""

    def cleanup(self) -> None:
        for n in self.names:
            purge_domain(self.conn, n)


@pytest.fixture
def janitor(libvirt_conn):
    j = DomainJanitor(libvirt_conn)
    yield j
    j.cleanup()

