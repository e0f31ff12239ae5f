"""Stack addresses ``host[vm1][vm2]`` (ctys-cli.md §1.5, §3): resolved level by level --
vm1 is a VM on host's hypervisor, vm2 a VM on the hypervisor inside vm1 (found as for
CANCEL propagation: its ``#@#STACKURI`` or ``#@#IP0``), and so on.  A level without a TCP/IP
address stops the walk with the legacy message "Missing the TCP/IP address of VM:<label>"."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Optional

from ctys_libvirt.errors import BackendError, CtysError, NotFoundError, NotRunning
from ctys_libvirt.ctys.targets import Target, target_uri
from ctys_libvirt.stack.inside import Inside, StackSite, inside_of





def display(host: str, levels) -> str:
    return host + "".join(f"[{lv}]" for lv in levels)


@dataclass
class Hop:
    label: str            # the VM of this level
    name: str             # its domain name
    on: str               # the hypervisor it runs on (URI without parameters)
    inside: Inside        # what runs inside it


@dataclass
class Resolved:
    """Where a stack address leads: the hypervisor inside its last VM."""

    base: str                                   # host's hypervisor URI
    hops: List[Hop] = field(default_factory=list)

    @property
    def inside(self) -> Inside:
        return self.hops[-1].inside

    @property
    def uri(self) -> str:
        return self.inside.uri or ""

    @property
    def container(self) -> str:
        """The machine that contains what is found there (LIST field 1): the last VM."""
        return self.hops[-1].label


def find_vm(backend, label: str):
    """The domain for ``label`` on ``backend``: by name or UUID, else by the conf label our
    metadata records; None when there is none."""
    info = backend.lookup(label)
    if info is not None:
        return info
    hits = [i for i in backend.list(include_inactive=True) if i.label == label]
    return hits[0] if len(hits) == 1 else None


def resolve_stack(base_uri: str, levels, site: Optional[StackSite] = None, *,
                  opener=None) -> Resolved:
    """Walk ``levels`` from the hypervisor at ``base_uri``; each VM must run and name its
    inside.  Errors: NotFoundError (exit 2) for a missing VM or TCP/IP address, NotRunning
    for a VM that is off, BackendError when a level's hypervisor does not answer."""
    from ctys_libvirt.stack.cancel import domain_keys, open_inside

    site = site or StackSite.from_env()
    if opener is None:
        from ctys_libvirt.backends.libvirt import LibvirtBackend

        def opener(uri):
            return LibvirtBackend(uri, events=False)
    res = Resolved(base=base_uri.split("?", 1)[0])
    uri, where = base_uri, base_uri.split("?", 1)[0]
    for n, label in enumerate(levels):
        if n == 0:
            be = opener(uri)
        else:
            try:
                be = open_inside(res.hops[-1].inside, site.connect_timeout, opener)
            except CtysError as exc:    # refused, or silent past the connect timeout
                raise BackendError(f"the hypervisor inside VM:{res.hops[-1].label} ({where}) "
                                   f"does not answer: {exc.message}",
                                   hint="check that the VM runs sshd and libvirtd and takes the "
                                        "key (docs/stacks.md)") from None
        try:
            info = find_vm(be, label)
            if info is None:
                raise NotFoundError(f"no VM {label} on {where}",
                                    hint="the stack address names running VMs level by level")
            if info.state not in ("running", "paused", "blocked"):
                raise NotRunning(f"VM:{label} is {info.state} on {where}: nothing inside it answers",
                                 hint=f"start it first (ctys-libvirt create {label})")
            keys = domain_keys(be, info.name)
        finally:
            be.close()
        inside = inside_of(label, keys, site)
        if inside.uri is None:
            if not inside.ip:
                raise NotFoundError(f"Missing the TCP/IP address of VM:{label}",
                                    hint="set #@#IP0 (or #@#STACKURI) in its conf")
            raise NotFoundError(f"the inside of VM:{label} cannot be reached: {inside.reason}",
                                hint="see docs/stacks.md")
        res.hops.append(Hop(label=label, name=info.name, on=where, inside=inside))
        uri, where = inside.uri, inside.display
    return res


def stack_uri(t: Target, *, transport: str = "ssh", local_uri: Optional[str] = None):
    """A stack target -> the resolved walk (ctys_libvirt.stack.address.Resolved); its
    ``uri`` is the hypervisor inside the last VM."""
    return resolve_stack(target_uri(t.base, transport=transport, local_uri=local_uri), t.stack)


def stack_ssh_target(t: Target) -> Target:
    """The ssh login into the last VM of a stack target (for ctys-libvirt run there)."""
    site = StackSite.from_env()
    res = stack_uri(t)
    st = res.inside.ssh_target(site)
    if st is None:
        raise BackendError(f"VM:{res.container} is not reached over ssh ({res.inside.display})",
                           hint="ENUMERATE inside a VM runs ctys-libvirt there over ssh: "
                                "give it an ssh #@#STACKURI or #@#IP0")
    return replace(st, remote_cmd=t.remote_cmd)
