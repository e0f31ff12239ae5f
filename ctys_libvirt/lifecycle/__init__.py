"""One path for a VM's life, shared by both front ends (``ctys-libvirt``, ``ctys-qemu``).

* ADDRESS -> conf under one rule (``resolve_conf``; errors: NotFoundError /
  AmbiguousAddressError, exit 2, or UsageError for a malformed address).
* ``--backend auto|libvirt|direct`` -> an open backend under one set of fallback rules
  (``open_backend``): libvirt unless the conf needs the direct backend; ``auto`` falls back
  to the local direct backend when libvirt cannot be opened, unless the user named the
  libvirt to use.
* ``Lifecycle``: the backends one command uses and the VM it started, with one cleanup
  path in the manner of QEMU's ``python/qemu/machine``: ``__exit__`` -> ``shutdown()``,
  whose ``finally`` always runs the post-shutdown cleanup (every backend closed), also
  after a failed launch.  A CLI0 VM lives as long as its console: ``shutdown()`` destroys
  it on every way out, whichever backend runs it.

The library never prints: warnings go to ``warn`` and progress lines to ``say``, callbacks
the front end passes; an attached console relays the guest's serial on fds 0/1 itself.
Backends are imported lazily (libvirt is heavy; ``--help`` stays fast).

Parts: ``address`` (ADDRESS -> conf, stack addresses, domains), ``choice`` (--backend ->
an open backend), ``machine`` (the Lifecycle object, consoles), ``notify`` (callbacks)."""
from __future__ import annotations

from ctys_libvirt.lifecycle.address import (domain_names, load_vm, resolve_conf, stack_address,
                                           stack_vm)
from ctys_libvirt.lifecycle.choice import (KINDS, check_backend, direct_available, list_direct,
                                          may_fall_back, open_backend, open_direct, open_libvirt)
from ctys_libvirt.lifecycle.machine import Lifecycle, console, direct_console_socket
from ctys_libvirt.lifecycle.notify import Say

__all__ = ["KINDS", "Lifecycle", "Say", "check_backend", "console", "direct_available",
           "direct_console_socket", "domain_names", "list_direct", "load_vm", "may_fall_back",
           "open_backend", "open_direct", "open_libvirt", "resolve_conf", "stack_address",
           "stack_vm"]
