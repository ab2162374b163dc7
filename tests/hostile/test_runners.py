"""Several bundles in one process at once (as on a Dataflow worker): every stage gives the bytes of
the in-memory runner (issue 13: a shared WARC handle once cut a page and made dead letters)."""

from __future__ import annotations

import pytest
from helpers import tree_digest
from sources import SOURCES, run_source

THREADS = ["--direct_running_mode=multi_threading", "--direct_num_workers=4"]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_multithreaded_runner_gives_the_in_memory_bytes(name, tmp_path):
    run_source(name, tmp_path / "memory")
    run_source(name, tmp_path / "threads", THREADS)
    memory, threads = tree_digest(str(tmp_path / "memory")), tree_digest(str(tmp_path / "threads"))
    assert any(p.startswith("part-") or "/part-" in p for p in memory), f"{name}: no documents written"
    assert threads == memory
