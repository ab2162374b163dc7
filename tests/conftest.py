"""Shared fixtures: paths to the bundled real samples, and a local Beam portable job service."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
WARC_DIR = os.path.join(DATA, "warc")


def warc(name: str) -> str:
    return os.path.join(WARC_DIR, name)


def tree_digest(root: str) -> dict:
    """{relative path: sha256} for every file under root (what "byte-identical output" compares)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


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
    proc = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
