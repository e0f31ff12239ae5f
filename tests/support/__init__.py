"""The one helper package of the test suite; small modules by job.

paths      where the repository, its fixtures and the venv are
cli        THE way to run ``ctys-libvirt`` / ``ctys-qemu`` in a test (subprocess, one result type)
confs      writing ctys conf files and conf trees
guests     boot media for the tiny guests, serial-marker waits
domains    unique test labels, hand-written domain XML, the domain janitor
golden     compare against a golden file (``pytest --update-goldens`` rewrites)
translate  VmConfig objects, the RelaxNG check, XML queries, the golden documents
fakeqemu   generated fake legacy QEMU binaries; ``fakeqemu.vms`` their VmConfigs
loopback   test-only sshd and qemu+tcp proxy on 127.0.0.1
stack      session hypervisors "inside a VM" for the stack tests
x11        a private Xvfb and the means to look at it
realguests Debian guests built from Debian packages

pytest fixtures are defined here and registered once in ``tests/conftest.py``."""
