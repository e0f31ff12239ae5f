"""The small exception hierarchy every layer raises; the CLI maps it to exit codes.

Exit codes (design.md §7): 0 ok, 1 usage, 2 not found / ambiguous, 3 conf error,
4 backend error, 5 timeout, 6 conflict (conf and libvirt definition both changed a field).  Messages name the object and, via ``hint``, the fix.
"""
from __future__ import annotations

from typing import Optional, Sequence


class CtysError(Exception):
    """Base of all errors the library raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The single line the CLI prints: message plus the fix, if known."""
        text = " ".join(self.message.split("\n"))
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __str__(self) -> str:
        return self.one_line()


class UsageError(CtysError):
    """Malformed request: unknown option/suboption, bad BOOTMODE/INSTMODE/KERNEL syntax."""

    exit_code = 1


class NotFoundError(CtysError):
    """An address, conf, image or domain that does not exist."""

    exit_code = 2


class AmbiguousAddressError(NotFoundError):
    """An address that matches more than one VM; carries the candidates."""

    def __init__(self, message: str, candidates: Sequence[str] = (), *, hint: Optional[str] = None):
        super().__init__(message, hint=hint)
        self.candidates = list(candidates)


class ConfError(CtysError):
    """A conf file that cannot be read, parsed or used (never executed)."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        col: Optional[int] = None,
        construct: Optional[str] = None,
        hint: Optional[str] = None,
    ):
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
                if col is not None:
                    where += f":{col}"
            where += ": "
        super().__init__(where + message, hint=hint)
        self.path = path
        self.line = line
        self.col = col
        self.construct = construct


class BackendError(CtysError):
    """libvirt or QEMU refused or failed an operation."""

    exit_code = 4


class LibvirtUnavailable(BackendError):
    """No libvirt connection could be opened (daemon down, bad URI, no permission)."""


class AlreadyRunning(BackendError):
    """CREATE of a VM whose domain/process is already running."""


class NotRunning(BackendError):
    """CANCEL/CONSOLE of a VM that is not running."""


class QemuProbeError(BackendError):
    """A QEMU binary that is missing, hangs, crashes or prints no parsable version."""


class CtysTimeout(CtysError):
    """A wait that ran out (boot, shutdown, install)."""

    exit_code = 5


class ConflictError(CtysError):
    """The conf and the libvirt definition both changed the same field since our last
    define (or the conf moved): nothing is written until `sync --prefer conf|domain`."""

    exit_code = 6

    def __init__(self, message: str, *, hint: Optional[str] = None, fields=()):
        super().__init__(message, hint=hint)
        self.fields = list(fields)      # FieldState-like: name, conf, domain
