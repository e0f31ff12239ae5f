"""A monitor socket whose QEMU is dying (accepts, then closes or resets before the
prompt/greeting) is a BackendError, never a raw OSError/EOFError traceback."""
import socket
import struct
import threading

import pytest

from ctys_libvirt.errors import BackendError
from ctys_libvirt.qemu.monitor import open_monitor


def _server(path, reset: bool):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        if reset:  # linger 0: the close sends RST (ECONNRESET on the client's recv)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("kind", ["hmp", "qmp"])
@pytest.mark.parametrize("reset", [False, True])
def test_dying_qemu_monitor_is_backend_error(tmp_path, kind, reset):
    path = tmp_path / "mon.sock"
    t = _server(path, reset)
    with pytest.raises(BackendError, match="closed before the"):
        open_monitor(str(path), kind, 2.0)
    t.join(5)
