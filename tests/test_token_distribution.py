"""Llama 3's token-distribution step (issue 28): 1,200 real Wikipedia extracts and 10 real link-list pages
(the Python docs' index pages); the step drops the documents furthest from their language's words, on
keys, in the final phase, the same on any number of workers."""

from __future__ import annotations

import gzip
import json
import math
import os

import numpy as np
import pytest
from helpers import DATA

from corpusmill.cli import main as cli_main
from corpusmill.core.files import read_dropped
from corpusmill.filters.token_dist import kl_divergence, merge_counts, quantile_cutoff, word_counts


def _docs(path, lists=10):
    wiki = [json.loads(x) for x in gzip.open(os.path.join(DATA, "quality", "wiki_en.jsonl.gz"), "rt")]
    low = [json.loads(x) for x in gzip.open(os.path.join(DATA, "quality", "lowq_en.jsonl.gz"), "rt")]
    link_lists = [d for d in low if d["metadata"].get("kind") == "link_list"][::14][:lists]
    rows = [{"id": f"w{i}", "text": d["text"]} for i, d in enumerate(wiki)]
    rows += [{"id": f"list{i}", "text": d["text"]} for i, d in enumerate(link_lists)]
    for name, part in (("a.jsonl", rows[::2]), ("b.jsonl", rows[1::2])):  # two files: two pieces
        with open(path / name, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in part)
    return [str(path / "a.jsonl"), str(path / "b.jsonl")]


def test_kl_with_a_prior_is_the_divergence_over_the_whole_vocabulary():
    """The closed form (the corpus's other words summed in one term) equals the sum over every word."""
    texts = ["the cat sat on the mat", "a dog sat on a log", "the dog and the cat", "zq xv qq zq"]
    parts = [word_counts(t, "en") for t in texts]
    keys, counts = merge_counts(parts)
    total = int(counts.sum())
    assert total == sum(len(t.split()) for t in texts)
    for prior in (0.0, 3.0, 100.0):
        for k, c in parts:
            q = counts / total
            dense = np.zeros(len(keys))
            dense[np.searchsorted(keys, k)] = c
            p = (dense + prior * q) / (c.sum() + prior)
            brute = float(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0.0)))
            assert kl_divergence(k, c, keys, counts, total, prior) == pytest.approx(brute, abs=1e-12)
    # the odd document is the furthest from the corpus, with or without the prior
    scores = [kl_divergence(k, c, keys, counts, total, 2.0) for k, c in parts]
    assert max(scores) == scores[-1]


def test_the_cutoff_is_read_on_fixed_bins():
    hist = np.zeros(20_000, dtype=np.int64)
    hist[[100, 200, 300]] = [98, 1, 1]  # 98 documents near 0.1 nats, one at 0.2, one at 0.3
    assert quantile_cutoff(hist, 0.98) == pytest.approx(0.101)  # the 98 are at or below it, two above
    assert quantile_cutoff(hist, 0.99) == pytest.approx(0.201)
    assert quantile_cutoff(np.zeros(10, dtype=np.int64), 0.99) == math.inf


def _run(files, out, *extra):
    argv = ["ccnet", "--input", *files, "--output", str(out), "--min-length", "0", "--write-dropped", "-q"]
    assert cli_main(argv + ["--token-distribution", *extra]) == 0
    stats = {s["step"]: s for s in json.loads((out / "_meta/stats.json").read_text())}
    dropped = {
        r["document"]["id"] for r in read_dropped(str(out)).get("token_distribution", {}).get("token_distribution", [])
    }
    return stats, dropped


def test_link_lists_among_wikipedia_extracts_are_the_outliers(tmp_path):
    files = _docs(tmp_path)
    stats, dropped = _run(files, tmp_path / "cc")
    steps = list(stats)
    assert steps[-1] == "token_distribution" and steps.index("collect") < steps.index("token_distribution")
    step = stats["token_distribution"]
    assert step["read"] == step["kept"] + sum(step["dropped"].values()) + step["failed"]
    report = json.loads((tmp_path / "cc" / "_meta/token_distribution.json").read_text())
    en = report["languages"]["en"]
    assert en["judged"] and en["documents"] == step["read"] and report["quantile"] == 0.99
    # about 1% of the judged documents are above the 0.99 quantile (fixed bins: a tie may add one)
    assert len(dropped) == step["dropped"]["token_distribution"] == en["above"]
    assert math.floor(0.01 * step["read"]) <= len(dropped) <= math.ceil(0.01 * step["read"]) + 1
    # every link list that lid kept (English enough) is among them
    lid_dropped = {r["document"]["id"] for rs in read_dropped(str(tmp_path / "cc"))["lid"].values() for r in rs}
    reached = {f"list{i}" for i in range(10)} - lid_dropped
    assert len(reached) >= 5 and reached <= dropped, (reached, dropped)
    profile = json.loads((tmp_path / "cc" / "_meta/profile.json").read_text())
    hist = profile["steps"]["token_distribution"]["histograms"]["token_kl"]
    assert sum(map(sum, hist["dropped"].values())) == len(dropped)
    assert sum(map(sum, hist["kept"].values())) == step["kept"]

    # the plain KL (no prior) catches fewer of them: it scores short documents highest
    _stats, plain = _run(files, tmp_path / "plain", "--token-prior", "0")
    assert len(plain & reached) < len(reached)

    # two workers: the same bytes
    _run(files, tmp_path / "two", "--workers", "2")
    for group in ("en",):
        one = sorted(os.listdir(tmp_path / "cc" / group))
        assert one == sorted(os.listdir(tmp_path / "two" / group))
        for name in one:
            assert (tmp_path / "cc" / group / name).read_bytes() == (tmp_path / "two" / group / name).read_bytes()
