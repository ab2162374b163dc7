"""Score once, filter many times: `ccnet --score-only` then `corpusmill filter` gives the documents of a
full CCNet run with the same thresholds, for two different sets of thresholds, without any model."""

from __future__ import annotations

import json
import os

import pytest
from helpers import DATA, warc

from corpusmill.cli import main as cli_main
from corpusmill.core.document import Document
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_output, read_provenance
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet
from corpusmill.pipelines.filter import FilterConfig, run_filter
from corpusmill.pipelines.quality import train_demo_models

Q = os.path.join(DATA, "quality")

THRESHOLDS = [
    dict(lang_threshold=0.6, languages=["en", "fr", "de"], keep_buckets=["head", "middle"], wiki_threshold=0.3),
    dict(lang_threshold=0.3, languages=None, keep_buckets=["tail", "all"], wiki_threshold=0.05),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("filter")
    models = train_demo_models(
        os.path.join(Q, "wiki_en.jsonl.gz"),
        [os.path.join(Q, "lowq_en.jsonl.gz")],
        str(root / "models"),
        vocab_size=2000,
        log=lambda *a: None,
    )
    udhr = root / "udhr.jsonl"  # many languages beside the English crawls
    with open(udhr, "w", encoding="utf-8") as fh:
        for line in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8"):
            row = json.loads(line)
            fh.write(
                Document(f"udhr-{row['lang']}", row["text"] * 3, "udhr", location=row["gflanguages_id"]).to_json()
                + "\n"
            )
    common = dict(
        input=[warc("pydocs.warc.gz"), warc("iana.warc.gz"), str(udhr)],
        lm_dir=models["lm_dir"],
        classifier=[models["classifier"]],
        min_length=100,
    )
    scored = root / "scored"
    run_ccnet(CCNetConfig(output=str(scored), score_only=True, **common))
    return root, common, scored


def documents(out):
    """Every output group's documents, each byte for byte (its JSON form; the steps differ, so stats.json and
    the profile do, and the files follow each run's input files: a full run's crawl files, filter's the
    scored run's output files)."""
    groups = {}
    for doc in read_output(out):
        groups.setdefault(doc.metadata["language"] + "_" + doc.metadata.get("bucket", ""), []).append(doc.to_json())
    return {g: sorted(docs) for g, docs in groups.items()}


@pytest.mark.parametrize("which", [0, 1])
def test_filter_on_a_scored_run_gives_the_documents_of_a_full_run(setup, which):
    root, common, scored = setup
    thresholds = THRESHOLDS[which]
    full, filtered = root / f"full{which}", root / f"filtered{which}"
    run_ccnet(CCNetConfig(output=str(full), **common, **thresholds))
    stats = run_filter(FilterConfig(input=str(scored), output=str(filtered), **thresholds))
    assert documents(filtered) == documents(full) and read_output(full)
    # the thresholds did something: documents went, and each set keeps other groups
    assert 0 < len(read_output(filtered)) < len(read_output(scored))
    groups = {k.split("/")[0] for k in documents(filtered)}
    if which == 0:  # languages without an LM are in bucket "all", which this set does not keep
        assert groups == {"en_head", "en_middle"}
    else:
        assert len(groups) > 5 and all(g.endswith(("_tail", "_all")) for g in groups)  # the languages of the UDHR
    assert [s["step"] for s in stats] == ["read", "lid", "bucket", "wiki_classifier", "url_dedup", "content_dedup"]
    # no model was loaded: the provenance lists none, while the full run's lists the LM and the classifier
    assert all(not s["models"] for s in read_provenance(str(filtered))["steps"])
    assert any(s["models"] for s in read_provenance(str(full))["steps"] if s["step"] == "wiki_classifier")


def test_the_scored_run_keeps_every_document_with_its_scores(setup):
    root, common, scored = setup
    docs = read_output(scored)
    assert {d.metadata["language"] for d in docs} >= {"en", "fr", "de", "ru", "zh"}  # no language dropped
    assert all(isinstance(d.metadata["language_score"], float) for d in docs)
    en = [d for d in docs if d.metadata["language"] == "en"]
    assert all("perplexity" in d.metadata and "wiki_prob" in d.metadata for d in en)
    assert {d.metadata["bucket"] for d in en} == {"head", "middle", "tail"}  # tail too: nothing dropped
    stats = {s["step"]: s for s in json.loads((scored / "_meta/stats.json").read_text())}
    assert not stats["lid"]["dropped"] and not stats["bucket"]["dropped"] and not stats["wiki_classifier"]["dropped"]
    assert "url_dedup" not in stats  # the doc dedup runs after the thresholds, in `corpusmill filter`


def test_filter_refuses_a_run_that_was_not_scored(setup, tmp_path, capsys):
    root, common, _scored = setup
    plain = tmp_path / "plain"
    run_ccnet(CCNetConfig(output=str(plain), input=[warc("iana.warc.gz")]))
    with pytest.raises(CorpusmillError, match="not a scored CCNet run"):
        run_filter(FilterConfig(input=str(plain), output=str(tmp_path / "o")))
    assert cli_main(["filter", "--input", str(plain), "--output", str(tmp_path / "o")]) == 2
    assert "not a scored CCNet run" in capsys.readouterr().err
    assert cli_main(["filter", "--input", str(plain), "--output", str(tmp_path / "o"), "--wiki-treshold", "1"]) == 2
    assert "did you mean --wiki-threshold" in capsys.readouterr().err
