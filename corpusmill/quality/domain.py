"""Training the domain classifier (``code`` / ``math`` / ``general``) from labelled sources: Llama 3 trained
classifiers for code and math/reasoning pages to set its mix; corpusmill trains one fastText model from
its own outputs, a source standing for its label (GitHub for code, ArXiv and math StackExchange sites for
math, Wikipedia, Books and the crawl for general).

- Examples: each document is cut into windows of about :data:`WINDOW` characters at line ends (a paper
  gives many examples, and the model learns from the text it will see, not only a file's header); windows
  under :data:`MIN_WINDOW` characters are skipped.
- A deterministic 10% of each label's *documents* (by a hash of the key), and at least
  :data:`MIN_HELD_OUT` (up to a third of the label), is held out, so no window of a held-out document is
  trained on (a label of under :data:`MIN_DOCS_HELD` documents holds out 10% of its windows instead, said
  in ``held_out_by``); a label measured on fewer than :data:`MIN_HELD_OUT` documents is said loudly; the classes are balanced by cutting each to at most
  ``max_ratio`` times the smallest (by hash).
- fastText supervised, one thread and a fixed seed in a fresh process (the same input gives the same model).
- The held-out documents (whole, as the ``domain`` step sees them, with its rule: code or math only at a
  probability of 0.9 or more) give per-label precision, recall and the confusion matrix, written to ``MODEL.json``. A model whose held-out recall of some label is under
  :data:`MIN_RECALL` is refused, loudly, with what to try.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.hashing import stable_hash
from corpusmill.filters.domain import CLASSIFIED, LABEL, classified, domain_text, load_domain_model, predict_domain
from corpusmill.quality.classifier import train_fasttext_lines
from corpusmill.quality.texts import read_texts

WINDOW = 2000
MIN_WINDOW = 200
MIN_RECALL = 0.5
MIN_DOCS_HELD = 20  # a label with fewer documents is held out by window
MIN_HELD_OUT = 50  # documents held out per label (up to a third of a label's documents), whatever the share


def windows(text: str, size: int = WINDOW, min_size: int = MIN_WINDOW) -> List[str]:
    """``text`` cut at line ends into pieces of about ``size`` characters (the last kept if long enough)."""
    out, cur, n = [], [], 0
    for line in text.split("\n"):
        cur.append(line)
        n += len(line) + 1
        if n >= size:
            out.append("\n".join(cur))
            cur, n = [], 0
    if n >= min_size:
        out.append("\n".join(cur))
    return out


def _held_out(key: str, holdout: float) -> bool:
    return stable_hash("domain-holdout:" + key) % 10_000 < holdout * 10_000


def held_out_keys(keys: Sequence[str], holdout: float) -> set:
    """The documents of one label held out: the ``holdout`` share of them, and at least
    :data:`MIN_HELD_OUT` (at most a third of the label), the first by a hash of their key."""
    if not holdout:
        return set()
    want = max(sum(_held_out(k, holdout) for k in keys), min(MIN_HELD_OUT, len(keys) // 3))
    return set(sorted(keys, key=lambda k: (stable_hash("domain-holdout:" + k), k))[:want])


def train_domain_classifier(
    labelled: Dict[str, Sequence[str]],
    output: str,
    *,
    holdout: float = 0.1,
    max_ratio: float = 3.0,
    epoch: int = 10,
    lr: float = 0.5,
    dim: int = 64,
    word_ngrams: int = 2,
    seed: int = 0,
    log=print,
) -> dict:
    """Train ``output`` (a fastText .bin) from ``{label: document files}``; returns the held-out metrics
    (also written to ``<output>.json``)."""
    unknown = sorted(set(labelled) - set(CLASSIFIED))
    if unknown:
        raise CorpusmillError(
            f"domain labels {unknown}: the classifier knows {', '.join(CLASSIFIED)} "
            f"(multilingual comes from the language)"
        )
    if len(labelled) < 2:
        raise CorpusmillError(f"a domain classifier needs documents of at least two labels; got {sorted(labelled)}")
    train: Dict[str, List[Tuple[str, str]]] = {}
    test: Dict[str, List[Tuple[str, str]]] = {}
    held_by = {}
    for label, files in sorted(labelled.items()):
        docs = read_texts(list(files))
        if not docs:
            raise CorpusmillError(f"domain label {label}: its sources hold no documents")
        # whole documents held out; a label of few documents (a handful of papers) holds out windows
        held_by[label] = "document" if len(docs) >= MIN_DOCS_HELD else "window"
        held = held_out_keys([key for key, _ in docs], holdout) if held_by[label] == "document" else set()
        for key, text in docs:
            if key in held:
                test.setdefault(label, []).append((key, text))
                continue
            for i, w in enumerate(windows(text)):
                if held_by[label] == "window" and holdout and _held_out(f"{key}#{i}", holdout):
                    test.setdefault(label, []).append((f"{key}#{i}", w))
                else:
                    train.setdefault(label, []).append((f"{key}#{i}", w))
    for label in labelled:
        if not train.get(label):
            raise CorpusmillError(
                f"domain label {label}: no training window of {MIN_WINDOW}+ characters; give "
                f"it more (or longer) documents"
            )
    smallest = min(len(v) for v in train.values())
    cap = int(smallest * max_ratio)
    examples = []
    for label, items in sorted(train.items()):
        items = sorted(items, key=lambda kv: stable_hash("domain-balance:" + kv[0]))[:cap]
        examples += [(key, label, text) for key, text in items]
    examples.sort(key=lambda x: stable_hash("domain-order:" + x[0]))
    counts = {label: sum(1 for _, lab, _ in examples if lab == label) for label in sorted(train)}
    log(
        f"[domain] training windows per label: {counts}; held-out documents: "
        f"{ {k: len(v) for k, v in sorted(test.items())} }"
    )
    train_fasttext_lines(
        (f"{LABEL}{label} {domain_text(text)}" for _, label, text in examples),
        {
            "epoch": epoch,
            "lr": lr,
            "dim": dim,
            "wordNgrams": word_ngrams,
            "bucket": 1 << 18 if word_ngrams > 1 else 0,
            "thread": 1,
            "seed": seed,
            "verbose": 0,
            "minCount": 1,
        },
        output,
        ".train-domain-",
    )
    model = load_domain_model(output)
    confusion = {t: {p: 0 for p in sorted(labelled)} for t in sorted(labelled)}
    for label, items in test.items():
        for _key, text in items:
            got = classified(*predict_domain(model, text))  # the domain step's rule
            confusion[label][got] = confusion[label].get(got, 0) + 1
    per_label = {}
    for label in sorted(labelled):
        tp = confusion[label][label]
        predicted = sum(confusion[t].get(label, 0) for t in confusion)
        actual = sum(confusion[label].values())
        per_label[label] = {
            "held_out": actual,
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / actual, 4) if actual else None,
        }
    metrics = {
        "training_windows": counts,
        "labels": per_label,
        "confusion": confusion,
        "held_out_by": held_by,
        "params": {
            "epoch": epoch,
            "lr": lr,
            "dim": dim,
            "word_ngrams": word_ngrams,
            "window": WINDOW,
            "max_ratio": max_ratio,
            "holdout": holdout,
            "seed": seed,
        },
    }
    with open(output + ".json", "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2, sort_keys=True)
        fh.write("\n")
    log(
        "[domain] held out: "
        + "; ".join(
            f"{k} precision {v['precision']} recall {v['recall']} ({v['held_out']} docs)" for k, v in per_label.items()
        )
    )
    unmeasured = sorted(k for k, v in per_label.items() if not v["held_out"])
    if holdout and unmeasured:
        raise CorpusmillError(
            f"domain labels {', '.join(unmeasured)}: nothing held out to measure the classifier "
            f"on; give them more documents"
        )
    few = {k: v["held_out"] for k, v in per_label.items() if v["held_out"] < MIN_HELD_OUT}
    if holdout and few:
        log(
            f"[domain] WARNING: held-out scores rest on few documents: {few} (under {MIN_HELD_OUT}); give "
            f"those labels more documents for a measure that means something"
        )
    weak = {k: v["recall"] for k, v in per_label.items() if v["recall"] is not None and v["recall"] < MIN_RECALL}
    if weak:
        os.replace(output, output + ".rejected")
        raise CorpusmillError(
            f"the domain classifier does not separate the labels: held-out recall "
            f"{', '.join(f'{k} {r:.2f}' for k, r in sorted(weak.items()))} (under {MIN_RECALL}); "
            f"give those labels more documents, or train longer (epoch {epoch} -> {epoch * 3}). "
            f"The model was moved to {output}.rejected; confusion: {confusion}"
        )
    return metrics
