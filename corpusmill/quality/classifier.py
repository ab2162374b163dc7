"""``corpusmill train-classifier``: the Wikipedia-reference classifier (fastText supervised).

Positives (``__label__wiki``) are reference pages, negatives (``__label__cc``) random crawl pages.
RedPajama used pages cited by English Wikipedia (under 1000 characters dropped) against an equal
number of random CC head/middle pages, with fastText's default settings. Here every document is used:
a deterministic share of each class (``--holdout``, 10%, at least one document of each, by a hash of the
document key) is held out, and in the training split the smaller class is repeated to the size of the
larger (``--balance upsample``; ``cut`` drops the larger class's extra documents instead, ``none`` keeps
the classes as they are). Precision, recall and ROC AUC on the held-out part are reported. A class under
``--min-docs`` documents, or a model that does not separate its held-out documents, is refused (exit 2,
naming the fix) unless ``--force``. Training uses one thread and a fixed seed, so the same input gives the
same model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.hashing import stable_hash
from corpusmill.filters.wiki_classifier import (
    NEGATIVE,
    POSITIVE,
    classifier_text,
    load_classifier,
    wiki_probability,
)
from corpusmill.quality.texts import read_texts


def roc_auc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float:
    """P(score of a random positive > score of a random negative), ties count half (Mann-Whitney U / n1 n2)."""
    if not positive_scores or not negative_scores:
        raise ValueError("AUC needs at least one positive and one negative score")
    labelled = sorted([(s, 1) for s in positive_scores] + [(s, 0) for s in negative_scores])
    rank_sum, i = 0.0, 0
    while i < len(labelled):  # average ranks over ties
        j = i
        while j < len(labelled) and labelled[j][0] == labelled[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2.0
        rank_sum += avg_rank * sum(1 for k in range(i, j) if labelled[k][1] == 1)
        i = j
    n1, n0 = len(positive_scores), len(negative_scores)
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


BALANCE = ("upsample", "cut", "none")
MIN_DOCS = 20  # documents of each class below which a classifier is refused (unless forced)


def held_out_keys(items: List[Tuple[str, str]], holdout: float) -> set:
    """The keys held out of one class: ``ceil(holdout * n)`` of them (at least one, and one fewer than all),
    the smallest by a hash of the key, so the choice is the same on every run."""
    if holdout <= 0 or len(items) < 2:
        return set()
    k = min(len(items) - 1, max(1, math.ceil(holdout * len(items))))
    return {key for key, _ in sorted(items, key=lambda kv: stable_hash("holdout:" + kv[0]))[:k]}


def _balance(items: List[Tuple[str, str]], n: int) -> List[Tuple[str, str]]:
    if len(items) <= n:
        return items
    return sorted(items, key=lambda kv: stable_hash("balance:" + kv[0]))[:n]


def _upsample(items: list, n: int) -> list:
    """``items`` repeated (whole passes, then a hash-chosen part) to ``n``: every document is used."""
    if not items or len(items) >= n:
        return list(items)
    order = sorted(items, key=lambda x: stable_hash("upsample:" + x[0]))
    return [order[i % len(order)] for i in range(n)]


_TRAIN_SCRIPT = """
import json, os, sys
import fasttext
params, output = json.loads(sys.argv[1]), sys.argv[2]
model = fasttext.train_supervised(**params)
model.save_model(output + ".tmp")
os.replace(output + ".tmp", output)
"""


def _train_fasttext(params: dict, output: str) -> None:
    """Train in a fresh Python process: fastText-numpy2 0.10.4 gives 'Encountered NaN' or a different model
    when a process trains a second time, and a native crash must not take the caller down."""
    proc = subprocess.run(
        [sys.executable, "-c", _TRAIN_SCRIPT, json.dumps(params), output],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise CorpusmillError(
            "fastText training failed (exit %d): %s; a lower --lr often helps" % (proc.returncode, " | ".join(tail))
        )


def train_fasttext_lines(lines, params: dict, output: str, prefix: str) -> None:
    """Write ``lines`` (``__label__X text``) to a temporary file beside ``output`` and train fastText on it
    with ``params`` (in a fresh process); the file is removed afterwards."""
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".txt", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
        _train_fasttext(dict(params, input=path), output)
    finally:
        os.unlink(path)


def binary_metrics(pos_probs: Sequence[float], neg_probs: Sequence[float], threshold: float) -> Dict[str, float]:
    tp = sum(p >= threshold for p in pos_probs)
    fp = sum(p >= threshold for p in neg_probs)
    fn = len(pos_probs) - tp
    return {
        "threshold": threshold,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
    }


MIN_SEPARATION = 0.2  # kept positives minus kept negatives at the threshold, on held-out documents


def check_separation(test_pos, test_neg, threshold: float, output: str, epoch: int, lr: float) -> None:
    """Refuse a model whose threshold keeps about the same share of held-out references and crawl pages
    (e.g. every probability between 0.4977 and 0.5006: it would filter nothing, or everything)."""
    kept_pos = sum(p >= threshold for p in test_pos) / len(test_pos)
    kept_neg = sum(p >= threshold for p in test_neg) / len(test_neg)
    if kept_pos - kept_neg < MIN_SEPARATION:
        lo, hi = min(test_pos + test_neg), max(test_pos + test_neg)
        os.replace(output, output + ".rejected")
        raise CorpusmillError(
            f"train-classifier: the model does not separate the held-out classes at --wiki-threshold {threshold}: it "
            f"keeps {kept_pos:.0%} of references and {kept_neg:.0%} of crawl pages (probabilities {lo:.4f}..{hi:.4f}); "
            f"train longer or faster (now --epoch {epoch} --lr {lr}; try --epoch {epoch * 4} --lr {min(1.0, lr * 5):g}) "
            f"or give more documents. The model was moved to {output}.rejected"
        )


def train_classifier(
    positive: Sequence[str],
    negative: Sequence[str],
    output: str,
    *,
    holdout: float = 0.1,
    balance: str = "upsample",
    min_chars: int = 0,
    min_docs: int = MIN_DOCS,
    force: bool = False,
    epoch: int = 5,
    lr: float = 0.1,
    dim: int = 100,
    word_ngrams: int = 1,
    bucket: int = 1 << 18,
    threads: int = 1,
    seed: int = 0,
    threshold: float = 0.25,
    log=print,
) -> dict:
    """Train the classifier to ``output`` (a fastText .bin); returns the held-out metrics, also written
    to ``<output>.json``."""
    if not 0.0 <= holdout < 1.0:
        raise CorpusmillError(f"--holdout {holdout}: must be at least 0 and below 1")
    if balance not in BALANCE:
        raise CorpusmillError(f"--balance {balance!r}: expected one of {', '.join(BALANCE)}")
    pos = [(k, t) for k, t in read_texts(positive) if len(t) >= min_chars]
    neg = [(k, t) for k, t in read_texts(negative) if len(t) >= min_chars]
    if not pos or not neg:
        raise CorpusmillError(
            f"need both positive and negative documents of at least {min_chars} characters; "
            f"found {len(pos)} positive, {len(neg)} negative"
        )
    small = [(name, n) for name, n in (("--positive", len(pos)), ("--negative", len(neg))) if n < min_docs]
    if small and not force:
        name, n = small[0]
        raise CorpusmillError(
            f"train-classifier: {name} has {n} documents of at least {min_chars} characters, under --min-docs "
            f"{min_docs}: a classifier trained and judged on so few does not generalize; give more documents "
            f"(RedPajama used tens of thousands of each), or pass --force"
        )
    if balance == "cut":
        n = min(len(pos), len(neg))
        pos, neg = _balance(pos, n), _balance(neg, n)
    splits = {"train": [], "test": []}
    by_label = {POSITIVE: [], NEGATIVE: []}
    for label, items in ((POSITIVE, pos), (NEGATIVE, neg)):
        held = held_out_keys(items, holdout)
        for key, text in items:
            (splits["test"] if key in held else by_label[label]).append((key, label, text))
    if balance == "upsample":  # the training split's smaller class repeated: every document counts
        n = max(len(v) for v in by_label.values())
        by_label = {label: _upsample(v, n) for label, v in by_label.items()}
    splits["train"] = by_label[POSITIVE] + by_label[NEGATIVE]
    train = sorted(splits["train"], key=lambda x: (stable_hash("order:" + x[0]), x[1]))  # mixed, reproducible
    if not any(label == POSITIVE for _, label, _ in train) or not any(label == NEGATIVE for _, label, _ in train):
        raise CorpusmillError("the training split lacks one of the classes; give more documents")
    log(
        f"[train-classifier] {len(pos)} positive, {len(neg)} negative documents; "
        f"{len(train)} for training, {len(splits['test'])} held out"
    )
    # hash buckets hold word n-grams only: none without them, 2**18 (not fastText's 2M) with them
    params = {
        "epoch": epoch,
        "lr": lr,
        "dim": dim,
        "wordNgrams": word_ngrams,
        "bucket": bucket if word_ngrams > 1 else 0,
        "thread": max(1, threads),
        "seed": seed,
        "verbose": 0,
    }
    train_fasttext_lines(
        (f"{label} {classifier_text(text)}" for _, label, text in train), params, output, ".train-classifier-"
    )
    model = load_classifier(output)

    metrics = {
        "positive": len(pos),
        "negative": len(neg),
        "train": len(train),
        "held_out": len(splits["test"]),
        "balance": balance,
    }
    test_pos = [wiki_probability(model, t) for _, label, t in splits["test"] if label == POSITIVE]
    test_neg = [wiki_probability(model, t) for _, label, t in splits["test"] if label == NEGATIVE]
    if test_pos and test_neg:
        metrics["auc"] = round(roc_auc(test_pos, test_neg), 4)
        metrics["at_0.5"] = binary_metrics(test_pos, test_neg, 0.5)
        metrics[f"at_{threshold}"] = binary_metrics(test_pos, test_neg, threshold)
        log(
            f"[train-classifier] held out: AUC {metrics['auc']:.3f}; at 0.5 precision "
            f"{metrics['at_0.5']['precision']:.3f} recall {metrics['at_0.5']['recall']:.3f}; at {threshold} "
            f"precision {metrics[f'at_{threshold}']['precision']:.3f} recall {metrics[f'at_{threshold}']['recall']:.3f}"
        )
        every = sorted(test_pos + test_neg)
        metrics["spread"] = {
            "min": every[0],
            "p10": every[len(every) // 10],
            "median": every[len(every) // 2],
            "p90": every[(9 * len(every)) // 10],
            "max": every[-1],
        }
        log(
            f"[train-classifier] held-out wiki_prob spread: min {every[0]:.4f}, median "
            f"{metrics['spread']['median']:.4f}, max {every[-1]:.4f}"
        )
    else:
        log("[train-classifier] nothing held out: no metrics (--holdout 0)")
    with open(output + ".json", "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    if test_pos and test_neg and not force:
        check_separation(test_pos, test_neg, threshold, output, epoch, lr)
    log(f"[train-classifier] model: {output} ({os.path.getsize(output) / 1e6:.1f} MB)")
    return metrics
