"""--workers (issue 14): the command line uses every core by default, any number of workers gives the same
bytes, and Beam's own INFO/WARNING lines stay off unless -v."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import DATA, tree_digest

from corpusmill.engine.options import worker_args

BOOKS = os.path.join(DATA, "books", "milton")


def test_workers_default_to_the_cores_and_yield_to_the_users_own_runner_flags(monkeypatch):
    monkeypatch.delenv("CORPUSMILL_WORKERS", raising=False)
    cores = os.cpu_count() or 1
    expected = [] if cores == 1 else ["--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"]
    assert worker_args(None, []) == expected
    assert worker_args(1, []) == []
    assert worker_args(3, ["--runner", "DirectRunner"])[-1] == "--direct_num_workers=3"
    assert worker_args(3, ["--runner=DataflowRunner"]) == []  # another runner: its own workers
    assert worker_args(3, ["--direct_running_mode=multi_threading"]) == []  # the user's own choice wins


def _cli(*args):
    env = dict(os.environ)
    env.pop("CORPUSMILL_WORKERS", None)
    command = os.path.join(os.path.dirname(sys.executable), "corpusmill")  # the installed console script
    return subprocess.run([command, *args], capture_output=True, text=True, env=env, timeout=600)


def test_two_workers_give_one_workers_bytes_quietly(tmp_path):
    one = _cli("source", "books", "--input", BOOKS, "--output", str(tmp_path / "one"), "--workers", "1")
    two = _cli("source", "books", "--input", BOOKS, "--output", str(tmp_path / "two"), "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert tree_digest(str(tmp_path / "one")) == tree_digest(str(tmp_path / "two"))
    assert "apache_beam" not in two.stderr and "WARNING" not in two.stderr, two.stderr[:2000]
    loud = _cli("source", "books", "--input", BOOKS, "--output", str(tmp_path / "loud"), "--workers", "2", "-v")
    assert loud.returncode == 0 and "apache_beam" in loud.stderr
    bad = _cli("source", "books", "--input", BOOKS, "--output", str(tmp_path / "bad"), "--workers", "0")
    assert bad.returncode == 2 and "--workers" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
