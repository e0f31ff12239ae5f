"""The interface both backends (libvirt, direct QEMU exec) implement, so the CLIs and
the ctys front end drive either through the same calls."""
from __future__ import annotations

from typing import List, Optional, Protocol

from ctys_libvirt.model import (
    BootRequest,
    CancelMode,
    CancelResult,
    CreateOptions,
    CreateResult,
    DomainInfo,
    VmConfig,
)


class Backend(Protocol):
    name: str  # "libvirt" | "direct"

    def create(self, vm: VmConfig, request: BootRequest, options: CreateOptions) -> CreateResult:
        """Start the VM; raise AlreadyRunning, NotFoundError (image), BackendError."""

    def cancel(self, target: str, mode: CancelMode, timeout: float = 20.0) -> CancelResult:
        """Stop/reset/pause/... the VM named ``target`` (label, or UUID)."""

    def list(self, include_inactive: bool = True) -> List[DomainInfo]:
        """Every VM this backend can see (ours and foreign)."""

    def lookup(self, target: str) -> Optional[DomainInfo]:
        """The VM by label/name or UUID, or None."""

    def close(self) -> None:
        """Release connections/sockets."""
