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

# The command line runs on every core by default (--workers); the tests run their many small pipelines
# in one process, which is faster for them. tests/test_workers.py checks the default and that any number
# of workers gives the same bytes.
os.environ.setdefault("CORPUSMILL_WORKERS", "1")
WARC_DIR = os.path.join(DATA, "warc")


def warc(name: str) -> str:
    return os.path.join(WARC_DIR, name)


def tree_digest(root: str) -> dict:
    """{relative path: sha256} for every file under root (what "byte-identical output" compares), but
    the provenance records: they hold the run's times (corpusmill.engine.provenance)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name == "_provenance.json":
                continue
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


def rewrite_warc_page(src: str, dst: str, text, encoding: str, content_type: str) -> None:
    """Write ``dst``: one WARC response for the first HTML page's URL of ``src``, its body ``text`` as
    HTML paragraphs encoded in ``encoding`` (``text=None``: high bytes that no charset decodes),
    served with the HTTP header ``Content-Type: content_type`` (which may lie about the charset)."""
    import io
    import random

    from warcio.archiveiterator import ArchiveIterator
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(src, "rb") as fh:
        uri = next(
            r.rec_headers.get_header("WARC-Target-URI")
            for r in ArchiveIterator(fh)
            if r.rec_type == "response" and "html" in (r.http_headers.get_header("Content-Type") or "")
        )
    if text is None:
        rng = random.Random(13)
        body = b"<html><body><p>" + bytes(rng.randrange(128, 256) for _ in range(4000)) + b"</p></body></html>"
    else:
        paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n"))
        body = f"<html><head><title>page</title></head><body>{paragraphs}</body></html>".encode(encoding)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders(
            "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
        )
        record = writer.create_warc_record(
            uri + "?rewritten",
            "response",
            payload=io.BytesIO(body),
            http_headers=http,
            warc_headers_dict={
                "WARC-Record-ID": "<urn:uuid:3f0c7a52-6a4e-4c1e-9d0b-"
                + hashlib.sha1(dst.encode()).hexdigest()[:12]
                + ">",
                "WARC-Date": "2024-01-01T00:00:00Z",
            },
        )
        writer.write_record(record)


# Tests that feed broken inputs on purpose (to check their dead letters) run within a failure budget that
# allows them; the default budget (1% of records, no whole file) is tested in tests/hostile/test_round3.py.
ANY_FAILURES = {"max_failed_fraction": 1.0, "max_failed_files": 100}
