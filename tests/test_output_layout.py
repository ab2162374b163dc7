"""Output folders other tools open as they are (issue 29, item 7): a stage's bookkeeping sits in _meta/
(and the other _-prefixed folders), apart from its documents, so pandas and pyarrow read the documents of
a stage directory with no file list."""

from __future__ import annotations

import gzip
import json
import os

from helpers import DATA

from corpusmill.cli import main as cli_main
from corpusmill.core.files import read_output


def test_pandas_reads_a_stage_directory_of_parquet_documents(tmp_path):
    import pandas as pd

    docs = tmp_path / "docs.jsonl"
    with gzip.open(os.path.join(DATA, "quality", "wiki_en.jsonl.gz"), "rt") as src, open(docs, "w") as dst:
        for line in list(src)[:200]:
            dst.write(line)
    out = tmp_path / "cc"
    argv = ["ccnet", "--input", str(docs), "--output", str(out), "--format", "parquet", "--min-length", "0", "-q"]
    assert cli_main(argv + ["--write-dropped"]) == 0
    top = sorted(os.listdir(out))
    assert all(name.startswith("_") or os.path.isdir(out / name) for name in top), top  # only groups beside _*
    assert {"stats.json", "profile.json", "repeated_lines.json"} <= set(os.listdir(out / "_meta"))
    stats = json.loads((out / "_meta" / "stats.json").read_text())
    written = stats[-1]["kept"]
    frame = pd.read_parquet(out)
    assert len(frame) == written > 0 and {"id", "text", "metadata"} <= set(frame.columns)
    ours = {d.id: d.text for d in read_output(str(out))}  # corpusmill's own reader: the same documents
    assert dict(zip(frame["id"], frame["text"])) == ours
