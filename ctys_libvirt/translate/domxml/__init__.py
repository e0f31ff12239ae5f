"""MachinePlan -> libvirt domain XML, one builder per element.

Where to look (each module's docstring names the element it produces):

* ``domain.py``           ``<domain>``: the top-level assembly, in libvirt's element order
* ``metadata.py``         ``<metadata><ctys:instance>`` (our on-disk contract, read by LIST)
* ``os.py``               ``<os>``: machine type, direct kernel boot, boot menu
* ``cpu.py``              ``<cpu>``: model and feature flags, or host passthrough
* ``clock.py``            ``<features>`` and ``<clock>`` with its timers
* ``devices/__init__.py`` ``<devices>``: the device list, in order; one module per device
* ``qemu_commandline.py`` ``<qemu:commandline>``: what libvirt has no element for

Adding a device: write ``devices/<name>.py`` with one ``add_<name>(devices, ...)`` and call
it from ``devices/__init__.py``.  Builders use plain ``etree.SubElement``; the elements every
document has set their attributes one by one with ``el.set`` (in document order), because
lxml's keyword/attrib-dict path costs about a quarter more per attribute and a document has
~60 of them (keywords are fine for rare elements).  Values pass
through ``text.clean`` (paths, names: refuse what XML cannot carry) or ``text.meta_text``
(metadata: replace it).  Checks and warnings run in document order.
"""
from ctys_libvirt.translate.domxml.domain import domain_element, serialize

__all__ = ["domain_element", "serialize"]
