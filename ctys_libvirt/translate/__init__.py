"""VmConfig + BootRequest + HostFacts -> libvirt domain XML (``xml``) and -> QEMU argv (``argv``).

Pure: the host facts (model.HostFacts: capabilities, image formats, multiboot kernels) come
in from the caller (host.facts.host_facts); nothing here imports host/, backends/ or libvirt.

Modules (import the one you need; this package imports nothing heavy itself):

* ``request``     CREATE suboption values -> parsed, checked BootRequest (``make_request``, ``parse_*``)
* ``plan``        VmConfig + BootRequest + HostFacts -> MachinePlan, the backend-neutral machine
                  (``resolve_plan``)
* ``xml``         -> libvirt domain XML (``build_domain``, ``render_build``, ``read_metadata``);
                  the document is built per element in ``domxml/``
* ``metadata``    our metadata namespaces and their reader
* ``legacy_args`` legacy ARGSADD words -> native libvirt elements
* ``argv``        MachinePlan -> QEMU argv for the direct backend
"""
