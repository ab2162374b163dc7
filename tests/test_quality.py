"""CCNet quality on real text: SentencePiece + KenLM perplexity, head/middle/tail buckets, the
Wikipedia-reference classifier, and the three steps inside the CCNet stage.

Reference side: Wikipedia lead extracts; low-quality side: Python documentation index pages (link
lists), 1993 Usenet posts and trafilatura's spam/boilerplate test pages (tests/data/quality/, see
PROVENANCE.md). Models are trained here, small (vocabulary 4000), in seconds.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import time

import numpy as np
import pytest
from helpers import DATA, tree_digest, warc

import corpusmill.filters.perplexity as perplexity_module
from corpusmill.cli import main as cli_main
from corpusmill.core.document import Document
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import encode_jsonl_gz, read_documents_file, read_output
from corpusmill.engine.step import check_accounting, stable_hash
from corpusmill.filters.lid import default_lid_model
from corpusmill.filters.perplexity import (
    LanguageModel,
    Perplexity,
    PerplexityBucket,
    find_kenlm_binary,
    model_paths,
    normalize_for_lm,
    read_cutoffs,
    validate_lm_dir,
)
from corpusmill.filters.wiki_classifier import WikiClassifier, load_classifier
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet
from corpusmill.pipelines.quality import CutoffsConfig, run_cutoffs, train_demo_models
from corpusmill.quality.classifier import roc_auc, train_classifier
from corpusmill.quality.lm import train_lm

Q = os.path.join(DATA, "quality")
WIKI_EN, WIKI_FR, LOWQ = (os.path.join(Q, n) for n in ("wiki_en.jsonl.gz", "wiki_fr.jsonl.gz", "lowq_en.jsonl.gz"))


def p_head_tail(cutoffs_csv, lang):
    """p30 and p60 read straight from the CSV (not through read_cutoffs)."""
    with open(cutoffs_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index(lang)
    by_pct = {int(r[0]): float(r[col]) for r in rows[1:]}
    return by_pct[30], by_pct[60]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """LM on 90% of the Wikipedia sample; cutoffs over the other 10% and the low-quality pages; classifier."""
    out = tmp_path_factory.mktemp("quality")
    return train_demo_models(WIKI_EN, [LOWQ], str(out), vocab_size=4000, log=lambda *a: None)


@pytest.fixture(scope="module")
def lm(models):
    return LanguageModel(*model_paths(models["lm_dir"], "en"))


@pytest.fixture(scope="module")
def heldout_wiki(models):
    return list(read_documents_file(models["ref_heldout"]))


@pytest.fixture(scope="module")
def lowq():
    return list(read_documents_file(LOWQ))


# -- perplexity ---------------------------------------------------------------------------------------
def test_normalize_for_lm_is_cc_nets():
    assert normalize_for_lm("  Ça coûte 12,50 — «très» cher…  ") == 'ca coute 00,00  -  "tres" cher...'
    assert normalize_for_lm("Ｆｕｌｌ：ｗｉｄｔｈ？") == "ｆｕｌｌ:ｗｉｄｔｈ?"
    assert normalize_for_lm("tab\there\x85") == "tabhere"
    assert normalize_for_lm("   ") == ""


def test_heldout_wikipedia_scores_lower_than_link_lists_and_boilerplate(models, lm, heldout_wiki, lowq):
    train_ids = {d.id for d in read_documents_file(models["ref_train"])}
    assert heldout_wiki and not train_ids & {d.id for d in heldout_wiki}  # truly held out
    wiki = [lm.perplexity(d.text) for d in heldout_wiki]
    by_kind = {}
    for d in lowq:
        by_kind.setdefault(d.metadata["kind"], []).append(lm.perplexity(d.text))
    assert set(by_kind) >= {"link_list", "usenet", "spam", "boilerplate"}
    for kind, values in by_kind.items():
        assert statistics.median(wiki) < statistics.median(values), kind
    # rank statistic: P(a held-out Wikipedia paragraph scores lower than a low-quality page)
    negatives = [v for values in by_kind.values() for v in values]
    assert roc_auc([-x for x in wiki], [-x for x in negatives]) >= 0.95
    for kind in ("link_list", "usenet"):
        assert roc_auc([-x for x in wiki], [-x for x in by_kind[kind]]) >= 0.95, kind


def test_perplexity_is_cc_nets_formula_over_lines(models, lm, heldout_wiki):
    text = heldout_wiki[0].text + "\n" + heldout_wiki[1].text
    total, count = 0.0, 0
    for line in text.split("\n"):
        pieces = lm.sp.EncodeAsPieces(normalize_for_lm(line))
        # the sum of the per-piece scores KenLM reports, end of sentence included
        total += sum(prob for prob, _, _ in lm.lm.full_scores(" ".join(pieces)))
        count += len(pieces) + 1
    assert lm.perplexity(text) == round(10 ** (-total / count), 1)
    doc = Document(id="x", text=text, metadata={"language": "en"})
    verdict = Perplexity(models["lm_dir"])(doc)
    assert verdict.kept and verdict.doc.metadata["perplexity"] == lm.perplexity(text)


def test_bad_documents_get_a_finite_perplexity(models, lm, heldout_wiki):
    filt = Perplexity(models["lm_dir"])
    wiki_median = statistics.median(lm.perplexity(d.text) for d in heldout_wiki)
    for text in ("", "\n\n", "!!! ... ??? --- ,,, ;;; ((( )))", "1234567890 2024 1999 42 7 3.14159"):
        verdict = filt(Document(id="bad", text=text, metadata={"language": "en"}))
        ppl = verdict.doc.metadata["perplexity"]
        assert verdict.kept and math.isfinite(ppl) and ppl > wiki_median, text


def test_language_without_model_is_bucket_all(models):
    doc = Document(id="fr", text="Le chat dort sur le tapis.", metadata={"language": "fr"})
    verdict = Perplexity(models["lm_dir"])(doc)
    assert verdict.kept and "perplexity" not in verdict.doc.metadata
    keep_all = PerplexityBucket(models["cutoffs"])(verdict.doc)
    assert keep_all.kept and keep_all.doc.metadata["bucket"] == "all"
    strict = PerplexityBucket(models["cutoffs"], ["head", "middle"])(verdict.doc)
    assert not strict.kept and strict.reason == "bucket_all"
    assert Perplexity(models["lm_dir"], require_model=True)(doc).reason == "no_model"
    unlabeled = Document(id="u", text="The cat sat on the mat.")  # no language at all
    assert (
        PerplexityBucket(models["cutoffs"])(Perplexity(models["lm_dir"])(unlabeled).doc).doc.metadata["bucket"] == "all"
    )


def test_a_50_mb_line(models, lm, heldout_wiki):
    para = " ".join(d.text.replace("\n", " ") for d in heldout_wiki)
    line = ((para + " ") * (50_000_000 // len(para) + 1))[:50_000_000]
    doc = Document(id="huge", text=line, metadata={"language": "en"})
    filt = Perplexity(models["lm_dir"])
    filt.setup()
    start = time.time()
    verdict = filt(doc)
    elapsed = time.time() - start
    ppl = verdict.doc.metadata["perplexity"]
    # scored in parts of 100k characters: the same as scoring the 1 MB prefix whole, within 1%
    prefix = line[:1_000_000]
    whole_score, whole_n = lm.line_score(prefix, chunk_chars=10**9)
    assert lm.line_score(prefix)[1] == whole_n  # same pieces
    assert abs(ppl - 10 ** (-whole_score / whole_n)) / ppl < 0.01
    assert elapsed < 120
    wiki = WikiClassifier(models["classifier"])(doc)  # the classifier reads the first 100k characters
    assert 0.0 <= wiki.doc.metadata["wiki_prob"] <= 1.0


# -- cutoffs and buckets ------------------------------------------------------------------------------
def test_cutoffs_are_the_percentiles_of_the_sample(models, lm, heldout_wiki, lowq):
    sample = [lm.perplexity(d.text) for d in heldout_wiki + lowq]
    p30, p60 = p_head_tail(models["cutoffs"], "en")
    assert p30 == round(float(np.percentile(sample, 30)), 1)
    assert p60 == round(float(np.percentile(sample, 60)), 1)
    table = read_cutoffs(models["cutoffs"])
    assert list(table) == ["en"] and len(table["en"]) == 101 and table["en"] == sorted(table["en"])


def test_buckets_follow_the_cutoffs(models, heldout_wiki, lowq):
    p30, p60 = p_head_tail(models["cutoffs"], "en")
    scorer = Perplexity(models["lm_dir"], default_language="en")
    bucket = PerplexityBucket(models["cutoffs"], ["head", "middle", "tail", "all"])
    drop_tail = PerplexityBucket(models["cutoffs"])
    counts = {"head": 0, "middle": 0, "tail": 0}
    for doc in heldout_wiki + lowq:
        scored = scorer(doc).doc
        ppl = scored.metadata["perplexity"]
        got = bucket(scored).doc.metadata["bucket"]
        assert got == ("head" if ppl < p30 else "middle" if ppl < p60 else "tail")
        counts[got] += 1
        dropped = drop_tail(scored)
        assert dropped.kept == (got != "tail") and (dropped.kept or dropped.reason == "bucket_tail")
    n = sum(counts.values())  # the cutoffs were computed on exactly these documents
    assert abs(counts["head"] / n - 0.3) < 0.02 and abs(counts["middle"] / n - 0.3) < 0.02
    # and the buckets sort by quality: Wikipedia lands in head far more often than low-quality pages
    wiki_head = sum(bucket(scorer(d).doc).doc.metadata["bucket"] == "head" for d in heldout_wiki) / len(heldout_wiki)
    lowq_head = sum(bucket(scorer(d).doc).doc.metadata["bucket"] == "head" for d in lowq) / len(lowq)
    assert wiki_head > 0.8 and lowq_head < 0.2


def test_cutoffs_file_errors(tmp_path, models):
    with pytest.raises(CorpusmillError, match="does not exist"):
        read_cutoffs(str(tmp_path / "none.csv"))
    bad = tmp_path / "bad.csv"
    lines = open(models["cutoffs"]).read().splitlines()
    bad.write_text("\n".join(lines[:10] + ["9,abc"] + lines[11:]) + "\n")
    with pytest.raises(CorpusmillError, match=r"bad.csv:11: malformed row"):
        read_cutoffs(str(bad))
    bad.write_text("lang,en\n0,1\n")
    with pytest.raises(CorpusmillError, match="not a cutoffs file"):
        read_cutoffs(str(bad))


def test_cutoffs_command_skips_documents_without_a_model(tmp_path, models, monkeypatch):
    docs = tmp_path / "mixed.jsonl.gz"
    fr = list(read_documents_file(WIKI_FR))[:5]
    en = list(read_documents_file(models["ref_heldout"]))[:30]
    with open(docs, "wb") as fh:
        encode_jsonl_gz([d.to_dict() for d in fr + en], fh)
    out = tmp_path / "c.csv"
    # the KenLM model is loaded once per worker (the in-memory runner: this process), not per document
    loads = []
    real_load = perplexity_module.load_kenlm
    monkeypatch.setattr(perplexity_module, "load_kenlm", lambda path: loads.append(path) or real_load(path))
    table = run_cutoffs(CutoffsConfig(input=[str(docs)], lm_dir=models["lm_dir"], output=str(out), sample=20))
    assert loads == [model_paths(models["lm_dir"], "en")[1]]
    assert list(table) == ["en"]
    stats = {s["step"]: s for s in __import__("json").load(open(str(out) + ".run/_meta/stats.json"))}
    assert stats["perplexity"]["dropped"] == {"no_model": 5} and stats["perplexity"]["kept"] == 30
    # only fr documents: nothing to compute, a clear error
    with open(docs, "wb") as fh:
        encode_jsonl_gz([d.to_dict() for d in fr], fh)
    with pytest.raises(CorpusmillError, match="no document could be scored"):
        run_cutoffs(CutoffsConfig(input=[str(docs)], lm_dir=models["lm_dir"], output=str(out)))


# -- model files: clear errors before any work --------------------------------------------------------
def test_missing_and_corrupt_models(tmp_path, models):
    with pytest.raises(CorpusmillError, match="no such directory"):
        validate_lm_dir(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusmillError, match="holds no language model"):
        validate_lm_dir(str(empty))
    sp, arpa = model_paths(models["lm_dir"], "en")
    with open(sp, "rb") as fh:
        good_sp = fh.read()
    with open(arpa, "rb") as fh:
        good_arpa = fh.read()
    cases = [  # (name, en.sp.model bytes, en.arpa.bin bytes or None, expected message)
        ("only_sp", good_sp, None, r"en.arpa.bin does not exist"),
        ("truncated", good_sp, good_arpa[: len(good_arpa) // 3], r"en.arpa.bin.*damaged or truncated"),
        ("garbage_sp", b"not a sentencepiece model" * 10, good_arpa, r"cannot load SentencePiece model .*en.sp.model"),
        ("not_kenlm", good_sp, b"\x00" * 4096, "is not a KenLM model"),
    ]
    for name, sp_bytes, arpa_bytes, message in cases:
        lm_dir = tmp_path / name
        lm_dir.mkdir()
        (lm_dir / "en.sp.model").write_bytes(sp_bytes)
        if arpa_bytes is not None:
            (lm_dir / "en.arpa.bin").write_bytes(arpa_bytes)
        with pytest.raises(CorpusmillError, match=message):
            validate_lm_dir(str(lm_dir))
    # classifiers: a fastText model with other labels, and garbage
    with pytest.raises(CorpusmillError, match="not a Wikipedia-reference classifier"):
        load_classifier(default_lid_model())
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x01\x02" * 1000)
    with pytest.raises(CorpusmillError, match="cannot load fastText model"):
        load_classifier(str(garbage))


def test_stage_refuses_bad_models_before_any_work(tmp_path, models):
    out = tmp_path / "out"
    cases = [
        dict(lm_dir=str(tmp_path / "nowhere")),
        dict(lm_dir=models["lm_dir"], cutoffs=str(tmp_path / "none.csv")),
        dict(lm_dir=models["lm_dir"], keep_buckets=["head", "best"]),
        dict(classifier=str(tmp_path / "none.bin")),
        dict(classifier=models["classifier"], wiki_threshold=1.5),
        dict(cutoffs=models["cutoffs"]),
    ]
    for kw in cases:
        with pytest.raises(CorpusmillError):
            run_ccnet(CCNetConfig(input=[warc("pydocs.warc.gz")], output=str(out), **kw))
        assert not out.exists(), kw
    rc = cli_main(["ccnet", "--input", warc("pydocs.warc.gz"), "--output", str(out), "--lm-dir", str(tmp_path)])
    assert rc == 2 and not out.exists()


def test_train_lm_errors(tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("The cat sat on the mat.\nA dog barked at night.\n")
    with pytest.raises(CorpusmillError, match=r"--vocab-size 5000 is too large"):
        train_lm("en", [str(tiny)], str(tmp_path / "lm"), vocab_size=5000, log=lambda *a: None)
    assert not any(n.endswith((".sp.model", ".arpa.bin")) for n in os.listdir(tmp_path / "lm"))
    with pytest.raises(CorpusmillError, match="make kenlm-bin"):
        find_kenlm_binary("lmplz-that-does-not-exist")
    with pytest.raises(CorpusmillError, match="unknown file type"):
        train_lm(
            "en",
            [str(tmp_path / "tiny.txt"), warc("pydocs.warc.gz")],
            str(tmp_path / "lm2"),
            vocab_size=20,
            log=lambda *a: None,
        )


# -- the classifier -----------------------------------------------------------------------------------
def test_classifier_separates_wikipedia_from_crawl_junk_on_held_out_pages(tmp_path, lowq):
    """Trained on 80% of each side, judged on the other 20% (documents the training never saw)."""
    wiki = list(read_documents_file(WIKI_EN))

    def split(docs):
        test = [d for d in docs if stable_hash("t:" + d.id) % 5 == 0]
        return [d for d in docs if stable_hash("t:" + d.id) % 5 != 0], test

    (wiki_train, wiki_test), (lowq_train, lowq_test) = split(wiki), split(lowq)
    paths = {}
    for name, docs in (("pos", wiki_train), ("neg", lowq_train)):
        paths[name] = str(tmp_path / f"{name}.jsonl.gz")
        with open(paths[name], "wb") as fh:
            encode_jsonl_gz([d.to_dict() for d in docs], fh)
    model = str(tmp_path / "wiki.bin")
    metrics = train_classifier([paths["pos"]], [paths["neg"]], model, log=lambda *a: None)
    assert metrics["auc"] >= 0.9 and os.path.exists(model + ".json")
    clf = WikiClassifier(model)
    pos = [clf.probability(d.text) for d in wiki_test]
    neg = [clf.probability(d.text) for d in lowq_test]
    assert roc_auc(pos, neg) >= 0.9
    assert statistics.median(pos) >= 0.25 > statistics.median(neg)
    # the same input gives the same model, byte for byte
    again = str(tmp_path / "again.bin")
    train_classifier([paths["pos"]], [paths["neg"]], again, log=lambda *a: None)
    assert open(model, "rb").read() == open(again, "rb").read()


def test_a_classifier_that_does_not_separate_is_refused(tmp_path, lowq):
    wiki = list(read_documents_file(WIKI_EN))[:60]
    paths = {}
    for name, docs in (("pos", wiki), ("neg", lowq[:60])):
        paths[name] = str(tmp_path / f"{name}.jsonl.gz")
        with open(paths[name], "wb") as fh:
            encode_jsonl_gz([d.to_dict() for d in docs], fh)
    model = str(tmp_path / "flat.bin")
    with pytest.raises(CorpusmillError, match=r"does not separate the held-out classes.*--epoch"):
        train_classifier([paths["pos"]], [paths["neg"]], model, epoch=1, lr=0.0001, holdout=0.3, log=lambda *a: None)
    assert not os.path.exists(model) and os.path.exists(model + ".rejected")
    spread = json.load(open(model + ".json"))["spread"]
    assert spread["max"] - spread["min"] < 0.05  # every probability near 0.5, as in the issue


def test_a_classifier_uses_every_document_holds_out_each_class_and_refuses_too_few(tmp_path, lowq):
    """Issue 28: 5,846 references against 13 crawl pages trained on 13 + 13 documents and held nothing out.
    Now a class under --min-docs is refused (exit 2 naming the fix) unless forced; forced, each class still
    has held-out documents, and the training split repeats the smaller class to the larger's size."""
    paths = {}
    for name, docs in (("pos", list(read_documents_file(WIKI_EN))[:400]), ("neg", lowq[:13])):
        paths[name] = str(tmp_path / f"{name}.jsonl.gz")
        with open(paths[name], "wb") as fh:
            encode_jsonl_gz([d.to_dict() for d in docs], fh)
    model = str(tmp_path / "few.bin")
    with pytest.raises(CorpusmillError, match=r"--negative has 13 documents.*--min-docs 20.*--force"):
        train_classifier([paths["pos"]], [paths["neg"]], model, log=lambda *a: None)
    metrics = train_classifier([paths["pos"]], [paths["neg"]], model, force=True, log=lambda *a: None)
    held_pos, held_neg = 40, 2  # ceil(10%) of each class
    assert metrics["held_out"] == held_pos + held_neg and "auc" in metrics
    assert metrics["train"] == 2 * (400 - held_pos)  # 11 crawl pages repeated to 360: every one used
    assert metrics["balance"] == "upsample"
    cut = train_classifier(
        [paths["pos"]], [paths["neg"]], str(tmp_path / "cut.bin"), balance="cut", force=True, log=lambda *a: None
    )
    assert cut["train"] == 2 * (13 - 2)  # the old way: the larger class cut to the smaller


def test_classifiers_per_language(models):
    en = Document(
        "e",
        "The city is the capital of the region and has a population of about two million people.",
        metadata={"language": "en"},
    )
    fr = Document(
        "f",
        "La ville est la capitale de la région et compte environ deux millions d'habitants.",
        metadata={"language": "fr"},
    )
    clf = WikiClassifier({"en": models["classifier"]})
    assert "wiki_prob" in clf(en).doc.metadata
    verdict = clf(fr)
    assert verdict.kept and verdict.counts == {"no_classifier": 1} and "wiki_prob" not in verdict.doc.metadata
    both = WikiClassifier({"en": models["classifier"], "fr": models["classifier"]})
    assert "wiki_prob" in both(fr).doc.metadata
    from corpusmill.filters.wiki_classifier import parse_classifiers

    assert parse_classifiers(["en=a.bin", "fr=b.bin"]) == {"en": "a.bin", "fr": "b.bin"}
    assert parse_classifiers(["a.bin"]) == {"en": "a.bin"}
    with pytest.raises(CorpusmillError, match="two models for 'en'"):
        parse_classifiers(["a.bin", "en=b.bin"])


def test_a_language_with_a_model_but_no_cutoffs_is_refused_and_cc_nets_file_is_read(tmp_path, models):
    rows = list(csv.reader(open(models["cutoffs"], newline="")))
    other = tmp_path / "de_only.csv"
    other.write_text("\n".join(",".join(["percentile", "de"] if i == 0 else r) for i, r in enumerate(rows)) + "\n")
    with pytest.raises(CorpusmillError, match="no column for en"):
        run_ccnet(
            CCNetConfig(
                input=[warc("pydocs.warc.gz")], output=str(tmp_path / "o"), lm_dir=models["lm_dir"], cutoffs=str(other)
            )
        )
    assert not (tmp_path / "o").exists()
    # cc_net's data/cutoff.csv: an empty first header cell, then one column per language
    ccnet_style = tmp_path / "cutoff.csv"
    ccnet_style.write_text("\n".join(",".join([""] + r[1:] if i == 0 else r) for i, r in enumerate(rows)) + "\n")
    assert read_cutoffs(str(ccnet_style)) == read_cutoffs(models["cutoffs"])
    # only the models of --languages are used (and copied from a remote directory)
    assert Perplexity(models["lm_dir"], ["fr"]).model_subset("lm_dir") == ["fr.sp.model", "fr.arpa.bin"]
    assert Perplexity(models["lm_dir"]).model_subset("lm_dir") is None


def test_roc_auc_counts_ties_as_half():
    assert roc_auc([3, 2], [1, 0]) == 1.0
    assert roc_auc([0], [1]) == 0.0
    assert roc_auc([1, 1], [1, 1]) == 0.5
    assert roc_auc([2, 1], [1, 0]) == 0.875  # 3 wins + 1 tie of 4 pairs


# -- in the CCNet stage -------------------------------------------------------------------------------
def test_stage_with_models_on_multiprocess_runner(tmp_path, models, lm):
    inputs = [warc("pydocs.warc.gz"), warc("iana.warc.gz"), models["ref_heldout"], WIKI_FR, LOWQ]
    cfg = dict(input=inputs, lm_dir=models["lm_dir"], classifier=models["classifier"], docs_per_shard=20)
    out = tmp_path / "mp"
    stats = run_ccnet(
        CCNetConfig(output=str(out), **cfg), ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    steps = [s["step"] for s in stats]
    assert steps[steps.index("lid") :] == [
        "lid",
        "perplexity",
        "bucket",
        "wiki_classifier",
        "collect",
        "url_dedup",
        "content_dedup",
    ]
    assert check_accounting(stats) == []
    by = {s["step"]: s for s in stats}
    assert by["perplexity"]["read"] == by["lid"]["kept"] and by["bucket"]["read"] == by["perplexity"]["kept"]
    assert by["wiki_classifier"]["read"] == by["bucket"]["kept"]
    assert set(by["bucket"]["dropped"]) == {"bucket_tail"} and by["bucket"]["dropped"]["bucket_tail"] > 0
    assert by["wiki_classifier"]["dropped"].get("not_wiki_like", 0) > 0

    p30, p60 = p_head_tail(models["cutoffs"], "en")
    groups = sorted(d for d in os.listdir(out) if not d.startswith("_") and os.path.isdir(out / d))
    assert "en_head" in groups and "en_middle" in groups and "fr_all" in groups
    docs = read_output(str(out))
    assert len(docs) == by["content_dedup"]["kept"] >= by["wiki_classifier"]["kept"] - 2  # a text in two inputs
    # one classifier, English: French pages are not judged by it, and counted
    assert by["wiki_classifier"]["counters"]["no_classifier"] == sum(d.metadata["language"] != "en" for d in docs) > 0
    for doc in docs:
        meta = doc.metadata
        assert meta["wiki_prob"] >= 0.25 if meta["language"] == "en" else "wiki_prob" not in meta
        if meta["language"] == "en":
            # the model that was pickled into the workers scores as the one loaded here
            assert meta["perplexity"] == lm.perplexity(doc.text)
            assert meta["bucket"] == ("head" if meta["perplexity"] < p30 else "middle")
        else:
            assert "perplexity" not in meta and meta["bucket"] == "all"
    for group in groups:
        lang, bucket = group.rsplit("_", 1)
        for doc in read_output(str(out / group)):
            assert (doc.metadata["language"], doc.metadata["bucket"]) == (lang, bucket)
    # Wikipedia paragraphs survive far more often than link lists and Usenet posts
    kept_ids = {d.id for d in docs}  # documents read from JSONL keep their ids
    heldout = list(read_documents_file(models["ref_heldout"]))
    wiki_kept = sum(d.id in kept_ids for d in heldout) / len(heldout)
    lowq_docs = list(read_documents_file(LOWQ))
    lowq_kept = sum(d.id in kept_ids for d in lowq_docs) / len(lowq_docs)
    print(f"kept: {wiki_kept:.2f} of held-out Wikipedia, {lowq_kept:.2f} of low-quality pages")
    assert wiki_kept > 0.5 > 0.1 > lowq_kept

    # and the in-memory runner writes the same bytes
    mem = tmp_path / "mem"
    run_ccnet(CCNetConfig(output=str(mem), **cfg))
    assert tree_digest(str(mem)) == tree_digest(str(out))


def test_cli_train_lm_cutoffs_train_classifier(tmp_path, capsys):
    lm_dir, clf = tmp_path / "lm", tmp_path / "wiki.bin"
    assert (
        cli_main(
            [
                "train-lm",
                "--lang",
                "en",
                "--input",
                WIKI_EN,
                "--output",
                str(lm_dir),
                "--vocab-size",
                "2000",
                "--max-docs",
                "400",
                "--lm-type",
                "trie",
            ]
        )
        == 0
    )
    assert sorted(os.listdir(lm_dir)) == ["en.arpa.bin", "en.lm.json", "en.sp.model"]
    assert (
        cli_main(
            [
                "cutoffs",
                "--input",
                LOWQ,
                "--lm-dir",
                str(lm_dir),
                "--output",
                str(lm_dir / "cutoffs.csv"),
                "--lang",
                "en",
            ]
        )
        == 0
    )
    assert cli_main(["train-classifier", "--positive", WIKI_EN, "--negative", LOWQ, "--output", str(clf)]) == 0
    out = capsys.readouterr().out
    assert "en: p30 = " in out and "held out: AUC" in out
    # precision and recall on the held-out 10% are printed too, and written next to the model
    assert "at 0.5 precision" in out and "at 0.25 precision" in out and out.count("recall") >= 2
    with open(str(clf) + ".json", encoding="utf-8") as fh:
        metrics = json.load(fh)
    assert abs(metrics["held_out"] / (metrics["train"] + metrics["held_out"]) - 0.1) < 0.04  # 10% held out
    assert 0.0 <= metrics["auc"] <= 1.0
    assert set(metrics["at_0.5"]) == set(metrics["at_0.25"]) == {"threshold", "precision", "recall"}
    assert validate_lm_dir(str(lm_dir)) == ["en"] and load_classifier(str(clf)) is not None
    assert (
        cli_main(["train-lm", "--lang", "en", "--input", str(tmp_path / "nothing*.txt"), "--output", str(lm_dir)]) == 2
    )
