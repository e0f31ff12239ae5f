"""Probe a QEMU binary by running ``<bin> -h`` (never through a shell): version,
ctys MAGIC id, option set (exact tokens), accelerators.  Results are cached on
disk keyed by (real path, size, mtime) because modern ``-h`` is not free and a
direct-exec create probes on every start.

Host state (/dev/kvm usable, /dev/kqemu present) is evaluated at load time,
never cached: it changes without the binary changing."""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Tuple

from ctys_libvirt.errors import QemuProbeError, UsageError
from ctys_libvirt.qemu import optsets

Version = Tuple[int, int, int]
CACHE_FORMAT = 3
PROBE_TIMEOUT = 10.0

# "QEMU PC emulator version 0.9.1 (kvm-83), Copyright ..."; "QEMU emulator version
# 2.11.1(Debian ...)"; "... version 1.0,"; "... version 9.1.50 (v9.1.0-123-gabcdef)";
# multi-digit majors such as 10.1.0 are taken whole (the legacy parser cut them to 0.1.0).
_VERSION_RE = re.compile(r"\bversion\s+v?(\d+)\.(\d+)(?:\.(\d+))?(?![\d])", re.I)
_EMULATOR_RE = re.compile(r"\bemulator\s+version\s+v?\d", re.I)
# the fork tag in parentheses right after the version: (kvm-83), (qemu-kvm-0.12.5)
_FORK_RE = re.compile(r"\bversion\s+v?[\d.]+\s*\(((?:qemu-)?kvm-[^),\s]+)[),]", re.I)
# The banner is the first line of -h in every release seen, but builds print warnings
# first (GTK, audio, RHEL notices); look a little further, never into the option list.
_BANNER_LINES = 40
_OPTION_LINE_RE = re.compile(r"^(-{1,2}[A-Za-z][\w.+-]*(?:/-[A-Za-z][\w.+-]*)*)(?:\s+or\s+(-[A-Za-z][\w-]*))?(.*)$")


@dataclass(frozen=True)
class QemuProbe:
    """What ``<bin> -h`` told us about one binary (plus live host accelerator facts)."""

    path: str                              # absolute path as found (not resolved)
    realpath: str
    version: Version
    banner: str                            # the version line
    kvm_release: Optional[str] = None      # 'kvm-83' | 'qemu-kvm-0.12.5' (fork builds)
    options: FrozenSet[str] = frozenset()
    options_with_arg: FrozenSet[str] = frozenset()
    synthetic: bool = False                # from --qemu-version, no binary
    kvm_usable: bool = False               # /dev/kvm opens read-write (host state)
    kqemu_present: bool = False            # /dev/kqemu exists (host state)

    # -- derived facts -----------------------------------------------------
    @property
    def version_text(self) -> str:
        return optsets.vstr(self.version)

    @property
    def is_kvm_fork(self) -> bool:
        """qemu-kvm / kvm-NN build: the legacy rule, iff ``-no-kvm`` is listed."""
        return "-no-kvm" in self.options

    @property
    def kqemu_capable(self) -> bool:
        return bool(self.options & {"-kernel-kqemu", "-no-kqemu"})

    @property
    def magic(self) -> str:
        return magic_for(self.version)

    @property
    def hyperrel(self) -> str:
        """The legacy 'hyperrelrun' string (qemu-0.12.5[-qemu-kvm-0.12.5])."""
        base = f"qemu-{self.version_text}"
        return f"{base}-{self.kvm_release}" if self.is_kvm_fork and self.kvm_release else base

    @property
    def accelerators(self) -> Tuple[str, ...]:
        """Usable accelerators, best first: KVM (fork binary or -enable-kvm/-accel with
        a usable /dev/kvm), KQEMU (options listed and /dev/kqemu present), TCG."""
        acc = []
        # a fork build uses KVM by itself, but only where /dev/kvm opens
        if self.kvm_usable and (self.is_kvm_fork or self.options & {"-enable-kvm", "-accel"}):
            acc.append("KVM")
        if self.kqemu_capable and self.kqemu_present:
            acc.append("KQEMU")
        acc.append("TCG")
        return tuple(acc)

    @property
    def accelerator(self) -> str:
        """The legacy single-word accelerator (KVM iff -no-kvm listed, else QEMU)."""
        return "KVM" if self.is_kvm_fork else "QEMU"

    def has(self, option: str) -> bool:
        """Exact token match (legacy matched substrings: -vga 'found' in -std-vga)."""
        return option in self.options

    def accepts(self, option: str) -> bool:
        """Listed, or accepted though hidden from ``-h`` in this release (``-M`` on
        0.15+, ``-localtime`` on 0.12-3.0): what ARGSADD linting should ask."""
        return option in self.options or optsets.hidden_accepted(option, self.version)

    def as_dict(self) -> Dict[str, object]:
        return {
            "path": self.path, "realpath": self.realpath, "version": self.version_text,
            "banner": self.banner, "magic": self.magic, "hyperrel": self.hyperrel,
            "kvm_release": self.kvm_release, "kvm_fork": self.is_kvm_fork,
            "accelerator": self.accelerator, "accelerators": list(self.accelerators),
            "kqemu_capable": self.kqemu_capable, "qmp": self.has("-qmp"),
            "options": len(self.options), "synthetic": self.synthetic,
        }


# getQEMUMAGIC's case patterns over "qemu-<x.y.z>", first match wins (spec §1.5)
_MAGIC_PATTERNS = (("qemu-0.9.0*", "QEMU_090"), ("qemu-0.9.1*", "QEMU_091"), ("qemu-0.9*", "QEMU_09x"),
                   ("qemu-0.10*", "QEMU_010"), ("qemu-0.11*", "QEMU_011"), ("qemu-0.12*", "QEMU_012"))


def magic_for(version: Version) -> str:
    """ctys MAGIC id from the version (conf-format.md §5.6), matched like the legacy
    shell globs: 0.10.50 (kvm-88) is QEMU_010, 0.12.1 (RHEL 6) QEMU_012, 0.13+ GENERIC."""
    text = "qemu-" + optsets.vstr(version)
    for pattern, magic in _MAGIC_PATTERNS:
        if fnmatch.fnmatchcase(text, pattern):
            return magic
    return "QEMU_GENERIC"


def parse_version(text: str) -> Tuple[Version, str, Optional[str]]:
    """(version, banner line, kvm fork tag) from ``-h`` output; raises ValueError when
    no version banner exists.  A line saying "... emulator version X.Y[.Z]" wins over
    any other line that mentions QEMU and a version (option lines are never banners)."""
    lines = [l for l in text.splitlines()[:_BANNER_LINES] if not l.lstrip().startswith("-")]
    ranked = [l for l in lines if _EMULATOR_RE.search(l)]
    ranked += [l for l in lines if "qemu" in l.lower() and l not in ranked]
    for line in ranked:
        m = _VERSION_RE.search(line)
        if m:
            ver = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
            fork = _FORK_RE.search(line)
            return ver, line.strip(), fork.group(1) if fork else None
    raise ValueError("no 'QEMU ... version X.Y[.Z]' line")


def parse_options(text: str) -> Tuple[FrozenSet[str], FrozenSet[str]]:
    """Every option token listed at the start of a ``-h`` line (``-fda/-fdb`` gives
    both; ``-h or -help`` both) and the subset shown with an argument."""
    opts, with_arg = set(), set()
    for line in text.splitlines():
        m = _OPTION_LINE_RE.match(line)
        if not m:
            continue
        names = m.group(1).split("/")
        if m.group(2):
            names.append(m.group(2))
        rest = m.group(3)
        # "-m megs         set ..." takes an argument; the help column is 16, so after a
        # name of 15+ characters one blank separates the description ("-no-kvm-irqchip
        # disable ...") unless a lone word follows ("-kvm-shadow-memory MEGABYTES")
        takes = bool(re.match(r"^ [^\s]", rest)) and not m.group(2) \
            and (len(m.group(1)) < 15 or not re.search(r"\s", rest.strip()))
        for n in names:
            # QEMU takes --opt for -opt ("--preconfig" is listed with two dashes)
            forms = {n, "-" + n.lstrip("-")} if n.startswith("--") else {n}
            opts |= forms
            if takes:
                with_arg |= forms
    return frozenset(opts), frozenset(with_arg)


def _kvm_usable() -> bool:
    try:
        fd = os.open(os.environ.get("CTYS_KVM_DEVICE", "/dev/kvm"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def _kqemu_present() -> bool:
    return os.path.exists(os.environ.get("CTYS_KQEMU_DEVICE", "/dev/kqemu"))


def cache_dir() -> Path:
    from ctys_libvirt.util.paths import user_cache_dir

    return user_cache_dir()


def _cache_file(key: str) -> Path:
    return cache_dir() / "qemu-probe" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


_NO_VERSION_HINT = ("if it is a QEMU system emulator with an unusual banner, state its version "
                    "with --qemu-version X.Y.Z (e.g. --qemu-version 0.12.5)")


def _option_lines(text: str) -> int:
    return sum(1 for l in text.splitlines() if _OPTION_LINE_RE.match(l))


def _parses(text: str) -> bool:
    try:
        parse_version(text)
    except ValueError:
        return False
    return True


def _pick_help(out: str, err: str, need_banner: bool) -> Optional[str]:
    """The help text among stdout, stderr (ancient builds and wrappers printed help
    there) and both: the first that has a banner (if needed) and real option lines."""
    for cand in (out, err, err + "\n" + out):
        if (_parses(cand) or not need_banner) and _option_lines(cand) >= 3:
            return cand
    for cand in (out, err):            # a banner but (almost) no options: still a QEMU
        if need_banner and _parses(cand):
            return cand
    return None


def _run_help(path: str, timeout: float, *, need_banner: bool = True) -> str:
    env = {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if os.environ.get("LD_LIBRARY_PATH"):   # /opt builds find their libraries the same way
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    try:
        proc = subprocess.Popen([path, "-h"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        raise QemuProbeError(f"QEMU binary {path} cannot be run: {exc.strerror}",
                             hint="check the path and its execute permission") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        raise QemuProbeError(f"QEMU binary {path} hung on '-h' (no answer within {timeout:g}s)",
                             hint="pass a working binary with --qemu") from None
    if proc.returncode < 0:
        raise QemuProbeError(
            f"QEMU binary {path} crashed on '-h' (signal {-proc.returncode})"
            + _tail(err), hint="pass a working binary with --qemu")
    out_t, err_t = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    # the exit status is not trusted: QEMU 0.9-0.11 and wrappers exit 1 after the help
    text = _pick_help(out_t, err_t, need_banner)
    if text is not None:
        return text
    if proc.returncode != 0 and _option_lines(out_t + err_t) < 3:
        raise QemuProbeError(f"QEMU binary {path} failed on '-h' (exit {proc.returncode})" + _tail(err),
                             hint="missing shared libraries? run it by hand") from None
    shown = out_t if out_t.strip() else err_t
    first = shown.strip().splitlines()[0][:80] if shown.strip() else "(no output)"
    raise QemuProbeError(f"QEMU binary {path}: unparseable version in '-h' output: {first!r}",
                         hint=_NO_VERSION_HINT) from None


def _tail(err: bytes) -> str:
    lines = [l for l in err.decode("utf-8", "replace").splitlines() if l.strip()]
    return (": " + " | ".join(lines[-3:])) if lines else ""


def probe_text(path: str, text: str, realpath: Optional[str] = None,
               assume_version: Optional[str] = None) -> QemuProbe:
    """Build a probe from ``-h`` text (no process; used by tests and the cache).
    ``assume_version`` (X.Y.Z) replaces the banner's version, e.g. for a build whose
    banner is not recognised."""
    forced = parse_version_arg(assume_version) if assume_version else None
    try:
        ver, banner, fork = parse_version(text)
    except ValueError:
        if forced is None:
            first = text.strip().splitlines()[0][:80] if text.strip() else "(no output)"
            raise QemuProbeError(f"QEMU binary {path}: unparseable version in '-h' output: {first!r}",
                                 hint=_NO_VERSION_HINT) from None
        ver, banner, fork = forced, f"(version {optsets.vstr(forced)} given by the user)", None
    opts, with_arg = parse_options(text)
    return QemuProbe(path=path, realpath=realpath or path, version=forced or ver, banner=banner,
                     kvm_release=fork, options=opts, options_with_arg=with_arg,
                     kvm_usable=_kvm_usable(), kqemu_present=_kqemu_present())


def probe(path: str, *, use_cache: bool = True, timeout: float = PROBE_TIMEOUT,
          assume_version: Optional[str] = None, vm_dir: Optional[str] = None) -> QemuProbe:
    """Probe ``path`` (cached by real path, size, mtime).  The binary must pass
    security.binaries (root's, not in ``vm_dir``) before it is ever run."""
    p = Path(path)
    try:
        real = os.path.realpath(p)
        st = os.stat(real)
    except (OSError, ValueError):      # ValueError: a NUL byte in the path
        raise QemuProbeError(f"QEMU binary {path} not found",
                             hint="install QEMU or pass --qemu PATH") from None
    if not os.path.isfile(real) or not os.access(real, os.X_OK):
        raise QemuProbeError(f"QEMU binary {path} is not an executable file",
                             hint="pass an executable with --qemu PATH")
    # running `-h` is running the program: only binaries nobody but root could have put there
    from ctys_libvirt.security.binaries import check_binary

    check_binary(str(path), vm_dir=vm_dir)
    if assume_version:
        parse_version_arg(assume_version)      # a bad value is a usage error, before running
    key = f"{real}|{st.st_size}|{st.st_mtime_ns}|{assume_version or ''}"
    cf = _cache_file(key)
    if use_cache:
        try:
            data = json.loads(cf.read_text())
            if data.get("format") == CACHE_FORMAT and data.get("key") == key:
                return QemuProbe(
                    path=str(path), realpath=real, version=tuple(data["version"]),
                    banner=data["banner"], kvm_release=data["kvm_release"],
                    options=frozenset(data["options"]),
                    options_with_arg=frozenset(data["options_with_arg"]),
                    kvm_usable=_kvm_usable(), kqemu_present=_kqemu_present())
        except (OSError, ValueError, KeyError, TypeError):
            pass
    text = _run_help(str(path), timeout, need_banner=not assume_version)
    pr = probe_text(str(path), text, realpath=real, assume_version=assume_version)
    if use_cache:
        _store(cf, key, pr)
    return pr


def _store(cf: Path, key: str, pr: QemuProbe) -> None:
    data = {"format": CACHE_FORMAT, "key": key, "version": list(pr.version),
            "banner": pr.banner, "kvm_release": pr.kvm_release,
            "options": sorted(pr.options), "options_with_arg": sorted(pr.options_with_arg)}
    try:
        cf.parent.mkdir(parents=True, exist_ok=True)
        tmp = cf.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, cf)
    except OSError:
        pass  # a read-only cache only costs speed


def parse_version_arg(text: str) -> Version:
    """X.Y[.Z] as users copy it: a leading 'v' and a package/git suffix are allowed
    ('v9.1.0-123-gabcdef', '7.2.22 (Debian ...)', '2.12.92')."""
    m = re.fullmatch(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+~ (].*)?\s*", text or "", re.S)
    if not m:
        raise UsageError(f"--qemu-version {text!r} is not X.Y or X.Y.Z", hint="e.g. 0.12.5 or 7.2.0")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def synthetic_probe(version: str, *, kvm_fork: bool = False, kqemu: bool = False,
                    path: str = "qemu") -> QemuProbe:
    """A probe for ``--qemu-version X.Y.Z`` from the option history (no binary)."""
    ver = parse_version_arg(version)
    opts = optsets.option_set(ver, kvm_fork=kvm_fork, kqemu=kqemu)
    name = "QEMU PC emulator" if ver < (0, 13, 0) else "QEMU emulator"
    tag = f" (qemu-kvm-{optsets.vstr(ver)})" if kvm_fork else ""
    return QemuProbe(path=path, realpath=path, version=ver,
                     banner=f"{name} version {optsets.vstr(ver)}{tag} (synthetic)",
                     kvm_release=f"qemu-kvm-{optsets.vstr(ver)}" if kvm_fork else None,
                     options=opts, options_with_arg=frozenset(opts - _NO_ARG),
                     synthetic=True, kvm_usable=_kvm_usable(), kqemu_present=_kqemu_present())


_NO_ARG = frozenset({"-h", "-help", "-version", "-snapshot", "-no-fd-bootchk", "-nographic",
                     "-localtime", "-full-screen", "-win2k-hack", "-usb", "-S", "-s",
                     "-std-vga", "-no-acpi", "-no-hpet", "-no-reboot", "-no-shutdown",
                     "-daemonize", "-nodefaults", "-no-quit", "-alt-grab", "-ctrl-grab",
                     "-no-frame", "-sdl", "-curses", "-portrait", "-enable-kvm", "-no-kqemu",
                     "-kernel-kqemu", "-enable-kqemu", "-no-kvm", "-no-kvm-irqchip",
                     "-no-kvm-pit", "-no-kvm-pit-reinjection", "-tdf", "-audio-help"})
