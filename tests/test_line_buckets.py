"""Line dedup in Llama 3's bucket form (issue 28, item 6): `--line-bucket-docs N` counts a line within
buckets of about N documents of its scope (Llama 3: more than 6 times in a bucket of 30M documents), a
document's bucket drawn by a hash of its place, on 102 real Debian copyright files that share licence text."""

from __future__ import annotations

import json
import os

from helpers import DATA

from corpusmill.cli import main as cli_main

COPYRIGHT = os.path.join(DATA, "fuzzy", "copyright.jsonl.gz")


def _run(out, *extra):
    argv = ["ccnet", "--input", COPYRIGHT, "--output", str(out), "--dedup-order", "llama3", "--line-max-docs", "6"]
    argv += ["--dedup-scope", "run", "--min-length", "0", "--no-doc-dedup", "-q", *extra]
    assert cli_main(argv) == 0
    stats = {s["step"]: s for s in json.loads((out / "_meta/stats.json").read_text())}
    repeated = json.loads((out / "_meta/repeated_lines.json").read_text())["lines"]
    return stats["line_dedup"], repeated


def _files(out):
    return {
        os.path.relpath(os.path.join(d, f), out): open(os.path.join(d, f), "rb").read()
        for d, _, fs in os.walk(out / "en")
        for f in fs
    }


def test_buckets_count_a_line_within_about_n_documents(tmp_path):
    whole, rep_whole = _run(tmp_path / "whole")
    three, rep_three = _run(tmp_path / "three", "--line-bucket-docs", "34")  # 102 documents: 3 buckets
    one, _ = _run(tmp_path / "one", "--line-bucket-docs", "1000")  # one bucket: the scope itself
    assert whole["read"] == three["read"] == 102
    # a licence line in 84 documents is over 6 in the whole run and in each bucket of about 34; lines
    # shared by 7 to 20 documents are over 6 in the run but mostly not within a bucket: fewer bytes go
    assert whole["bytes_kept"] < three["bytes_kept"] < three["bytes_read"]
    assert one["bytes_kept"] == whole["bytes_kept"] and _files(tmp_path / "one") == _files(tmp_path / "whole")
    assert {r["scope"] for r in rep_three} <= {"bucket 0", "bucket 1", "bucket 2"}
    assert rep_whole[0]["documents"] == 84 and rep_three[0]["documents"] < 84 / 2
    # the buckets do not depend on the hash ranges or the workers
    _run(tmp_path / "ranges", "--line-bucket-docs", "34", "--shuffle-partitions", "3", "--workers", "2")
    assert _files(tmp_path / "ranges") == _files(tmp_path / "three")
