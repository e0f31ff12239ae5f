"""ctys_libvirt: keep ctys QEMU conf files, run the VMs through libvirt (or QEMU directly)."""
__version__ = "0.3.0"
