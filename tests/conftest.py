import os
import socket
import sys
import threading
from pathlib import Path

# Under pytest-xdist each worker gets its share of the cores, and so does every process it starts
# (`course run`, `course grade`): torch's default of one thread per core in every worker at once
# oversubscribes the CPU, and its spinning threads then make the whole suite several times slower.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    _share = str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.update(OMP_NUM_THREADS=_share, MKL_NUM_THREADS=_share)

import pytest  # noqa: E402  (after the thread settings, which torch reads when it is imported)
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # solutions/ and autograder/ are instructor folders, not installed packages


def pytest_collection_modifyitems(config, items):
    # The modules that grade whole notebooks in subprocesses run first, so that with `--dist loadfile`
    # the longest ones do not start last and leave one core idle at the end.
    items.sort(key=lambda item: not item.path.name.startswith(("test_grading", "test_reference_runs")))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


class LoopbackServer:
    """A TCP server on 127.0.0.1 that keeps the first 100 bytes a client sends (a submission trying
    to send data out of the grading sandbox)."""

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._received: list[bytes] = []
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self):
        self._server.settimeout(600)
        try:
            conn, _ = self._server.accept()
            self._received.append(conn.recv(100))
        except OSError:
            pass

    def stop(self) -> list[bytes]:
        """Close the server; what it received."""
        self._server.close()
        return self._received


@pytest.fixture
def loopback_server():
    server = LoopbackServer()
    yield server
    server.stop()
