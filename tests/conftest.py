"""Shared fixtures: paths to the bundled real samples, and a local Beam portable job service."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from helpers import DATA, warc  # noqa: F401 (fixtures below use them)

# The command line runs on every core by default (--workers); the tests run their many small pipelines
# in one process, which is faster for them. tests/test_workers.py checks the default and that any number
# of workers gives the same bytes.
os.environ.setdefault("CORPUSMILL_WORKERS", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models train faster with one intra-op thread, and CI machines are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def portable_job_service():
    """Beam's Python local job service on a free port; yields the PortableRunner options."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail("the Beam local job service exited at start")
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the Beam local job service did not start within 60 s")
    yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{port}", "--environment_type=LOOPBACK"]
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def remote_root(tmp_path, monkeypatch):
    """A folder behind the ``cmtest://`` Beam file system (tests/remote_fs.py), standing for a bucket."""
    import remote_fs

    root = tmp_path / "bucket"
    root.mkdir()
    monkeypatch.setattr(remote_fs, "ROOT", str(root))
    monkeypatch.setenv("CORPUSMILL_MODEL_CACHE", str(tmp_path / "cache"))
    return root
