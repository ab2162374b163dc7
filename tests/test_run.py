"""``corpusmill run``: the CCNet stage, tokenizer, counts and shards from one manifest; resume."""

from __future__ import annotations

import filecmp
import json
import os
import shutil

import pytest
import yaml

from corpusmill.cli import main
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_output
from corpusmill.pipelines.recipe import run_recipe
from corpusmill.tokenize import ShardDataset

DATA = os.path.join(os.path.dirname(__file__), "data")

MANIFEST = {
    "name": "runtest",
    "seed": 11,
    "seq_len": 256,
    "budget_tokens": "max",
    "tokenizer": {"vocab_size": 800, "sample_chars": 200_000},
    "shards": {"rows_per_shard": 200, "batch_rows": 32, "pack_group_tokens": 100_000},
    "sources": {
        # the CCNet stage on the bundled real crawls (English only, as LLaMA)
        "cc": {
            "weight": 0.78,
            "epochs": 1.1,
            "processor": "ccnet",
            "input": [os.path.join(DATA, "warc", "iana.warc.gz"), os.path.join(DATA, "warc", "pydocs.warc.gz")],
            "options": {"languages": ["en"]},
            "groups": ["en*"],
        },
        "wikipedia": {"weight": 0.22, "epochs": 2.45, "documents": os.path.join(DATA, "mixing", "wiki_en")},
    },
}


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    path = write_yaml(tmp / "recipe.yaml", dict(MANIFEST, output=str(tmp / "out")))
    lines = []
    result = run_recipe(path, log=lines.append)
    return path, result, lines


def _shard_files(shards_dir):
    return sorted(f for f in os.listdir(shards_dir) if f.endswith(".arrow")) + ["manifest.json", "tokenizer.model"]


def test_whole_recipe(first_run):
    path, result, lines = first_run
    out = result.manifest.output
    assert result.ran == ["sources/cc", "tokenizer", "tokens", "counts", "shards"]
    text = "\n".join(lines)
    assert "skipped source" not in text  # an unknown processor is an error now (tests/test_cli_strict.py)
    # the CCNet stage really ran: its documents are English pages of the bundled crawls
    cc_docs = read_output(os.path.join(out, "sources", "cc"))
    assert cc_docs and {d.metadata["language"] for d in cc_docs} == {"en"}
    with open(os.path.join(out, "counts", "counts.json"), encoding="utf-8") as fh:
        counts_file = json.load(fh)
    counts = counts_file["sources"]
    # the tokenizer's sha256 is in every manifest that uses it: counts.json and the shards' manifest.json
    assert counts_file["tokenizer_sha256"] == result.shards_manifest["tokenizer_sha256"]
    assert counts["cc"]["documents"] == len(cc_docs)
    man = result.shards_manifest
    assert "skipped_sources" not in man  # nothing is ever skipped: an unknown processor is an error
    assert set(man["mixture"]) == {"cc", "wikipedia"}
    assert man["mixture"]["cc"]["weight"] == pytest.approx(0.78)
    assert man["mixture"]["cc"]["epochs_target"] <= 1.1 + 1e-9
    assert man["mixture"]["wikipedia"]["epochs_target"] <= 2.45 + 1e-9
    ds = ShardDataset(result.shards_dir)
    assert len(ds) == man["rows"] > 0 and ds.seq_len == 256
    with open(os.path.join(out, "tokenizer", "corpusmill_tokenizer.json"), encoding="utf-8") as fh:
        assert json.load(fh)["sha256"] == man["tokenizer_sha256"]


def test_resume_skips_done_stages_and_rebuilds_deleted_ones(first_run, tmp_path, capsys):
    path, result, _ = first_run
    out, shards = result.manifest.output, result.shards_dir
    keep = tmp_path / "before"
    shutil.copytree(shards, keep)
    cc_mtime = os.path.getmtime(os.path.join(out, "sources", "cc", "_meta/stats.json"))

    # nothing to do: every stage is complete (and the CLI prints the mixture)
    assert main(["run", path]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done already") == 5 and "shards:" in printed

    # a killed shard stage (output deleted): only it runs again, with the same bytes
    shutil.rmtree(shards)
    again = run_recipe(path, log=lambda *_: None)
    assert again.ran == ["shards"]
    names = _shard_files(keep)
    assert filecmp.cmpfiles(keep, shards, names, shallow=False)[0] == names

    # a stage killed before its marker: rebuilt; the same model, so counts and shards stay valid
    os.remove(os.path.join(out, "tokenizer", "_SUCCESS"))
    lines = []
    again = run_recipe(path, log=lines.append)
    assert again.ran == ["tokenizer"]
    assert any("incomplete" in line for line in lines)
    assert os.path.getmtime(os.path.join(out, "sources", "cc", "_meta/stats.json")) == cc_mtime

    # a changed manifest rebuilds what it changes: another seed draws other documents
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    data["tokenizer"]["model"] = os.path.join(out, "tokenizer", "tokenizer.model")
    data["seed"] = 12
    changed = run_recipe(write_yaml(tmp_path / "seed12.yaml", data), log=lambda *_: None)
    assert changed.ran == ["shards"]
    assert changed.shards_manifest["seed"] == 12
    assert changed.shards_manifest["shards"][0]["sha256"] != result.shards_manifest["shards"][0]["sha256"]


def test_processor_input_and_options_are_checked(tmp_path):
    data = json.loads(json.dumps(MANIFEST))
    data["output"] = str(tmp_path / "out")
    data["sources"]["cc"]["input"] = [str(tmp_path / "missing" / "*.warc.gz")]
    with pytest.raises(CorpusmillError, match="sources.cc.input: .* matches no files"):
        run_recipe(write_yaml(tmp_path / "a.yaml", data), log=lambda *_: None)
    data = json.loads(json.dumps(MANIFEST))
    data["output"] = str(tmp_path / "out2")
    data["sources"]["cc"]["options"] = {"langauges": ["en"]}
    with pytest.raises(CorpusmillError, match="sources.cc.options.langauges: unknown option; did you mean languages"):
        run_recipe(write_yaml(tmp_path / "b.yaml", data), log=lambda *_: None)


def test_groups_that_match_nothing_name_the_manifest_field(first_run, tmp_path):
    path, result, _ = first_run
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    data["sources"]["cc"]["groups"] = ["de*"]  # the CCNet stage wrote only English
    bad = write_yaml(tmp_path / "de.yaml", data)
    with pytest.raises(CorpusmillError) as err:
        run_recipe(bad, log=lambda *_: None)
    msg = str(err.value)
    assert msg.startswith(f"{bad}: sources.cc.groups: de* match no sub-directory")
    subdirs = sorted(
        d
        for d in os.listdir(os.path.join(result.manifest.output, "sources", "cc"))
        if not d.startswith("_") and os.path.isdir(os.path.join(result.manifest.output, "sources", "cc", d))
    )
    assert subdirs and msg.endswith(f"its sub-directories: {', '.join(subdirs)}")


def test_holdout_by_token_count(first_run, tmp_path):
    """``holdout_tokens``: about that many tokens of a source held out (issue 17), as the share of its tokens
    it is; documents drawn by hash at that share. Half or more of a source is refused."""
    path, result, _ = first_run
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    data["tokenizer"]["model"] = os.path.join(result.manifest.output, "tokenizer", "tokenizer.model")
    data["output"] = str(tmp_path / "out")
    data["sources"]["wikipedia"]["holdout_tokens"] = 40000
    lines = []
    again = run_recipe(write_yaml(tmp_path / "h.yaml", data), log=lines.append)
    held = again.shards_manifest["held_out"]["wikipedia"]
    assert abs(held["tokens"] - 40000) <= 0.25 * 40000, held  # near the count: whole documents, by hash
    assert any("holdout_tokens 40,000: a share" in line for line in lines)
    assert ShardDataset(os.path.join(again.shards_dir, held["dir"])).manifest["rows"] > 0
    data["sources"]["wikipedia"]["holdout_tokens"] = 10**9
    with pytest.raises(CorpusmillError, match="sources.wikipedia.holdout_tokens: 1,000,000,000 tokens is half or more"):
        run_recipe(write_yaml(tmp_path / "h2.yaml", data), log=lambda *_: None)
    data["sources"]["wikipedia"]["holdout"] = 0.1
    with pytest.raises(CorpusmillError, match="not both"):
        run_recipe(write_yaml(tmp_path / "h3.yaml", data), log=lambda *_: None)
