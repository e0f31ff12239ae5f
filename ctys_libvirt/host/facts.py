"""HostFacts for translate/: the caller gathers what the translation needs to know about
the host (model.HostFacts) and passes it in, so translate/ itself never reads image
headers or asks libvirt.

The image formats and multiboot answers are mappings read lazily: which disks a plan
attaches depends on the boot mode, so only the images the plan really uses are read, each
once per HostFacts (a create resolves the run's plan and the definition's from one)."""
from __future__ import annotations

from typing import Dict, Iterator, Mapping, Optional

from ctys_libvirt.host.imageformat import multiboot_kernel, sniff_format
from ctys_libvirt.model import HostCaps, HostFacts


class ImageFormats(Mapping[str, str]):
    """path -> format from the image's header (host.imageformat.sniff_format); a path
    that cannot be read is raw, as QEMU's own probe would take it."""

    def __init__(self) -> None:
        self._seen: Dict[str, str] = {}

    def __getitem__(self, path: str) -> str:
        fmt = self._seen.get(path)
        if fmt is None:
            try:
                fmt = sniff_format(path)
            except OSError:
                fmt = "raw"
            self._seen[path] = fmt
        return fmt

    def get(self, path: str, default=None) -> str:
        # every path is in the mapping (unreadable ones are raw): Mapping.get's
        # try/except KeyError around __getitem__ is an extra Python frame per disk
        return self[path]

    def __iter__(self) -> Iterator[str]:      # the paths looked up so far
        return iter(self._seen)

    def __len__(self) -> int:
        return len(self._seen)


class MultibootKernels:
    """``path in kernels``: QEMU loads the kernel at ``path`` as multiboot."""

    def __init__(self) -> None:
        self._seen: Dict[str, bool] = {}

    def __contains__(self, path: object) -> bool:
        p = str(path)
        hit = self._seen.get(p)
        if hit is None:
            hit = self._seen[p] = multiboot_kernel(p)
        return hit


def host_facts(caps: Optional[HostCaps] = None) -> HostFacts:
    """Facts of this machine's files with ``caps`` (host.caps.libvirt_host_caps or
    local_host_caps; default: HostCaps(), e.g. for the direct backend's argv)."""
    return HostFacts(caps=caps or HostCaps(), image_formats=ImageFormats(),
                     multiboot_kernels=MultibootKernels())
