"""typer front ends: ``ctys-libvirt`` (app.py) and ``ctys-qemu`` (ctys_qemu.py).
The only place that prints or exits."""
