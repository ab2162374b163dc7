"""Complete or absent (issue 13): an output's _SUCCESS lists its files; consumers refuse one without it,
and a directory input reads the documents, never a run's metadata."""

from __future__ import annotations

import json
import os

import pytest
from helpers import warc

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import list_output_files, read_output
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet
from corpusmill.pipelines.mix import source_files


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("complete") / "out"
    run_ccnet(CCNetConfig(input=[warc("pydocs.warc.gz")], output=str(out), docs_per_shard=5, lang_threshold=0.0))
    return out


def test_the_marker_lists_every_file_with_size_and_sha256(done):
    record = json.loads((done / "_SUCCESS").read_text())
    listed = {f["path"]: f for f in record["files"]}
    parts = [os.path.relpath(p, done) for p in list_output_files(str(done))]
    assert parts and all(p in listed for p in parts) and "_meta/stats.json" in listed
    assert not any(p.startswith("_shards/") for p in listed)  # the resume state is not output
    for rel, f in listed.items():
        assert os.path.getsize(done / rel) == f["bytes"] and len(f["sha256"]) == 64


def test_a_directory_input_reads_the_documents_and_no_metadata(done, tmp_path):
    stats = run_ccnet(CCNetConfig(input=[str(done)], output=str(tmp_path / "again"), min_length=0, lang_threshold=0.0))
    assert stats[0]["step"] == "read" and stats[0]["failed"] == 0
    assert stats[0]["read"] == len(read_output(str(done)))  # not _dropped/, _failed/, stats.json or _shards/


def test_an_incomplete_or_changed_output_is_refused_by_every_consumer(done, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(done, broken)
    (broken / "_SUCCESS").unlink()  # as a killed run leaves it
    for consume in (
        lambda: run_ccnet(CCNetConfig(input=[str(broken)], output=str(tmp_path / "o"))),
        lambda: run_ccnet(CCNetConfig(input=[str(broken / "en" / "*.jsonl.gz")], output=str(tmp_path / "o"))),
        lambda: source_files("cc", str(broken)),
        lambda: source_files("cc", str(broken / "en" / "*.jsonl.gz")),
    ):
        with pytest.raises(CorpusmillError, match="incomplete corpusmill output"):
            consume()
    assert not (tmp_path / "o").exists()
    changed = tmp_path / "changed"
    shutil.copytree(done, changed)
    part = list_output_files(str(changed))[0]
    with open(part, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(CorpusmillError, match="missing or changed"):
        source_files("cc", str(changed))


def test_an_output_that_is_contains_or_lies_inside_an_input_is_refused(done, tmp_path):
    import shutil

    from corpusmill.cli import main as cli_main

    data = tmp_path / "data"
    shutil.copytree(done, data)
    before = sorted(os.listdir(data))
    for output in (data, data / "sub", tmp_path):  # is, lies inside, contains
        assert cli_main(["ccnet", "--input", str(data), "--output", str(output), "--overwrite"]) == 2
    assert sorted(os.listdir(data)) == before and (data / "_SUCCESS").exists()  # nothing was deleted
    # a file input beside the output is fine
    assert (
        cli_main(
            ["ccnet", "--input", warc("pydocs.warc.gz"), "--output", str(tmp_path / "beside"), "--lang-threshold", "0"]
        )
        == 0
    )
