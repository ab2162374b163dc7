"""Every stage corpusmill has, by name, without importing any of them (``corpusmill --help`` stays fast).

``COMMANDS`` maps a command to ``module:attribute`` of its :class:`corpusmill.core.stage.Stage` and a
one-line summary. ``PROCESSORS`` are the stages a manifest source may name as its ``processor``; a
processor may also be named by import path (``mypkg.sources:MY_SOURCE``), see docs/extending.md.
"""

from __future__ import annotations

from typing import Dict, Tuple

from corpusmill.core.config import close_matches
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.plugins import import_object, is_import_path
from corpusmill.core.stage import Stage

COMMANDS: Dict[str, Tuple[str, str]] = {
    "ccnet": (
        "corpusmill.pipelines.ccnet:STAGE",
        "CCNet stage over Common Crawl WARC/WET: extract, normalize, line dedup, language ID, quality",
    ),
    "filter": (
        "corpusmill.pipelines.filter:STAGE",
        "apply new language, perplexity and classifier thresholds to a scored CCNet run (no models)",
    ),
    "train-lm": (
        "corpusmill.pipelines.quality:TRAIN_LM",
        "train a SentencePiece + KenLM perplexity model for one language from reference text",
    ),
    "cutoffs": (
        "corpusmill.pipelines.quality:CUTOFFS",
        "per-language perplexity percentiles for the head/middle/tail buckets",
    ),
    "train-classifier": (
        "corpusmill.pipelines.quality:TRAIN_CLASSIFIER",
        "train the Wikipedia-reference fastText classifier",
    ),
    "source wikipedia": (
        "corpusmill.pipelines.wikipedia:STAGE",
        "MediaWiki XML dumps -> plain-text articles (namespace 0, no redirects)",
    ),
    "source books": (
        "corpusmill.pipelines.books:STAGE",
        "Gutenberg / Books3 books: strip PG headers, drop exact and near-duplicate books",
    ),
    "source arxiv": ("corpusmill.pipelines.arxiv:STAGE", "arXiv LaTeX sources -> cleaned paper text"),
    "source c4": ("corpusmill.pipelines.c4:STAGE", "C4: the TFDS builder's rules over a crawl, or released C4"),
    "source github": (
        "corpusmill.pipelines.github:STAGE",
        "GitHub code (local repositories or BigQuery): licence, quality rules, exact dedup",
    ),
    "source stackexchange": (
        "corpusmill.pipelines.stackexchange:STAGE",
        "StackExchange Posts.xml dumps -> question + answers documents",
    ),
    "train-tokenizer": (
        "corpusmill.pipelines.tokenizer:STAGE",
        "train the SentencePiece tokenizer on a sample of documents in mixture proportion",
    ),
    "run": (
        "corpusmill.pipelines.recipe:STAGE",
        "run the whole recipe of a manifest: source processors, tokenizer, mixer, shards (resumable)",
    ),
    "train": (
        "corpusmill.cli.train:STAGE",
        "train a LLaMA model on corpusmill shards (PyTorch; torchrun for DDP/FSDP2)",
    ),
    "export": (
        "corpusmill.cli.model:EXPORT",
        "write a trained checkpoint as a Hugging Face Llama directory or in Meta's layout",
    ),
    "export-shards": ("corpusmill.cli.model:EXPORT_SHARDS", "write packed shards as Megatron-LM's indexed dataset"),
    "sample": ("corpusmill.cli.model:SAMPLE", "generate text from a trained checkpoint (greedy or top-p, KV cache)"),
    "report": (
        "corpusmill.report.make:STAGE",
        "write an HTML report of a run (funnels, languages, scores, samples, mixture)",
    ),
    "demo": ("corpusmill.pipelines.demo:STAGE", "run the whole recipe on bundled real samples and write a report"),
    "ablate": (
        "corpusmill.pipelines.ablate:STAGE",
        "prove a data choice by training: variants of a manifest, tiny LLaMAs per seed, one held-out set",
    ),
}

PROCESSORS: Dict[str, str] = {
    "ccnet": "ccnet",
    "wikipedia": "source wikipedia",
    "books": "source books",
    "arxiv": "source arxiv",
    "c4": "source c4",
    "github": "source github",
    "stackexchange": "source stackexchange",
}


def _checked(obj, spec: str, what: str) -> Stage:
    if not isinstance(obj, Stage):
        raise CorpusmillError(
            f"{what} {spec!r}: expected a corpusmill.core.stage.Stage, got {type(obj).__name__} (see docs/extending.md)"
        )
    return obj


def load_stage(name: str) -> Stage:
    """The stage of a command name (``ccnet``, ``source books``, also ``books``) or an import path."""
    if is_import_path(name):
        return _checked(import_object(name, "stage"), name, "stage")
    key = name if name in COMMANDS else PROCESSORS.get(name, name)
    if key not in COMMANDS:
        names = sorted(set(COMMANDS) | set(PROCESSORS))
        raise CorpusmillError(f"unknown stage {name!r}{close_matches(name, names)} (known: {', '.join(names)})")
    target = COMMANDS[key][0]
    return _checked(import_object(target, "stage"), target, "stage")


def check_processor(name: str, where: str) -> None:
    """A manifest's ``processor`` must be registered or an import path; nothing is skipped silently."""
    if name in PROCESSORS or is_import_path(name):
        return
    raise CorpusmillError(
        f"{where}: unknown processor {name!r}{close_matches(name, PROCESSORS)} "
        f"(registered: {', '.join(sorted(PROCESSORS))}; or name your own as module:STAGE)"
    )


def load_processor(name: str, where: str) -> Stage:
    check_processor(name, where)
    try:
        stage = load_stage(PROCESSORS.get(name, name))
    except CorpusmillError as exc:
        raise CorpusmillError(f"{where}: {exc}") from None
    if not stage.documents:
        raise CorpusmillError(f"{where}: stage {name!r} does not write documents, so it cannot be a processor")
    return stage
