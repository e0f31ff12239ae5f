"""Values into XML: what XML 1.0 cannot carry is refused (``clean``) or replaced
(``meta_text``), and the namespaces and constants the builders share."""
from __future__ import annotations

import re
from typing import Any

from ctys_libvirt.errors import ConfError
from ctys_libvirt.translate.metadata import METADATA_NS, METADATA_PREFIX

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
CTYS = "{%s}" % METADATA_NS          # Clark prefix of our metadata elements
QEMU = "{%s}" % QEMU_NS              # ... and of <qemu:commandline>
NSMAP_CTYS = {METADATA_PREFIX: METADATA_NS}
NSMAP_QEMU = {"qemu": QEMU_NS}
VNC_LISTEN = "127.0.0.1"

# Characters XML 1.0 cannot carry at all, and lone surrogates: the bytes of a non-UTF-8
# file name (os functions decode them with surrogateescape) that lxml/libvirt cannot encode.
XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(value: Any, what: str) -> str:
    """``value`` as text, or a ConfError naming ``what`` when XML cannot carry it."""
    text = str(value)
    if XML_BAD.search(text):
        raise ConfError(f"{what} {text!r} contains control characters or non-UTF-8 bytes "
                        "XML cannot carry",
                        hint="remove them from the conf or the request (rename such files)")
    return text


def meta_text(value: Any) -> str:
    """``value`` as text with what XML cannot carry replaced: metadata is informational."""
    text = str(value)
    return XML_BAD.sub("\ufffd", text) if XML_BAD.search(text) else text
