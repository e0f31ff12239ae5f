"""VM stacks: the hypervisor running inside a VM (``inside``), CANCEL propagated into it
deepest first (``cancel``), and stack addresses ``host[vm1][vm2]`` (``address``)."""
