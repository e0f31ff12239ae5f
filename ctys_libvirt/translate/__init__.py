"""VmConfig + BootRequest -> libvirt domain XML (``xml``) and -> QEMU argv (``argv``).

Modules (import the one you need; this package imports nothing heavy itself):

* ``request``     CREATE suboption values -> validated BootRequest (``make_request``, ``parse_*``)
* ``plan``        VmConfig + BootRequest -> MachinePlan, the backend-neutral machine (``resolve_plan``)
* ``xml``         MachinePlan -> libvirt domain XML with lxml (``build_domain``, ``read_metadata``)
* ``imageformat`` disk format from the image header (``sniff_format``)
* ``hostcaps``    HostCaps from the local host or a libvirt connection
"""
