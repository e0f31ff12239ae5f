"""VmConfig + BootRequest -> libvirt domain XML (``xml``) and -> QEMU argv (``argv``).

Modules (import the one you need; this package imports nothing heavy itself):

* ``request``     CREATE suboption values -> validated BootRequest (``make_request``, ``parse_*``)
* ``plan``        VmConfig + BootRequest -> MachinePlan, the backend-neutral machine (``resolve_plan``)
* ``xml``         MachinePlan -> libvirt domain XML (``build_domain``, ``read_metadata``);
                  the document is built per element in ``domxml/``
* ``imageformat`` disk format from the image header (``sniff_format``)
* ``hostcaps``    HostCaps from the local host or a libvirt connection
"""
