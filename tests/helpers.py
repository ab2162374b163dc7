"""What several test files share (import it as ``from helpers import ...``; pyproject puts tests/ on the
path, so it works with any --import-mode): the bundled data, byte-identity digests, real inputs built at
test time, the failure budget of tests that break their inputs on purpose, Chromium, small shard sets."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess

import pytest

from corpusmill.tokenize.shards import mark_complete, pack_documents, write_manifest, write_shard

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
BOS, EOS = 1, 2  # the shard tests' special ids

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

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium(args, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing in CI: `make test` installs it (target `browser`)")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    proc = subprocess.run(
        [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc


def random_docs(n, vocab, seed=0, max_len=300):
    rng = random.Random(seed)
    return [[rng.randrange(3, vocab) for _ in range(rng.randrange(0, max_len))] for _ in range(n)]


def build_shards(tmp_path, docs, *, seq_len=64, vocab=32000, per_shard=7, batch_rows=3):
    rows, bounds = pack_documents(docs, seq_len, BOS, EOS, vocab_size=vocab)
    infos = []
    for k, a in enumerate(range(0, len(rows), per_shard)):
        infos.append(
            write_shard(
                str(tmp_path / f"shard-{k:05d}.arrow"),
                rows[a : a + per_shard],
                bounds[a : a + per_shard],
                batch_rows=batch_rows,
            )
        )
    write_manifest(
        str(tmp_path),
        infos,
        seq_len=seq_len,
        vocab_size=vocab,
        tokenizer_sha256="ab" * 32,
        seed=7,
        extra={"tokens_per_source": {"test": int(rows.size)}},
    )
    mark_complete(str(tmp_path))
    return rows, bounds, infos
