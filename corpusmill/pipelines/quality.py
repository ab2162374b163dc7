"""CCNet quality: the ``train-lm``, ``cutoffs`` and ``train-classifier`` commands, and the steps the CCNet
stage adds after language ID (``perplexity``, ``bucket``, ``wiki_classifier``).

    corpusmill train-lm --lang en --input wiki_en.jsonl.gz --output lm/
    corpusmill cutoffs --input 'cc/en/*.jsonl.gz' --lm-dir lm/ --output lm/cutoffs.csv
    corpusmill train-classifier --positive refs.jsonl.gz --negative 'cc/en_head/*.jsonl.gz' --output lm/wiki.bin
    corpusmill ccnet --input 'crawl/*.warc.gz' --output out/cc --lm-dir lm/ --classifier en=lm/wiki.bin

The cutoffs command is a Beam pipeline (scoring is the costly part and runs on every worker); its
accounting (stats.json, _failed/) goes to ``<output>.run/``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.hashing import stable_hash
from corpusmill.core.outputs import OutputOptions
from corpusmill.core.stage import Stage
from corpusmill.core.stats import format_stats
from corpusmill.filters.perplexity import (
    BUCKETS,
    Perplexity,
    PerplexityBucket,
    cutoffs_csv,
    parse_buckets,
    percentile_table,
    read_cutoffs,
    validate_lm_dir,
)
from corpusmill.filters.wiki_classifier import (
    DEFAULT_THRESHOLD,
    WikiClassifier,
    check_threshold,
    load_classifier,
    parse_classifiers,
)

# The configs here import no Beam (`--help` stays fast); readers, writers and the runner are imported
# where a stage runs, and localize (a model's local copy) where a model is read.


def localize(path, **kw):
    from corpusmill.io.files import localize as local_copy

    return local_copy(path, **kw)


def expand_inputs(patterns):
    from corpusmill.io.files import expand_inputs as expand

    return expand(patterns)


CUTOFFS_FILE = "cutoffs.csv"


# -- in the CCNet stage -----------------------------------------------------------------------------
def cutoffs_path_for(lm_dir: Optional[str], cutoffs: Optional[str]) -> Optional[str]:
    """``--cutoffs``, else ``<lm-dir>/cutoffs.csv``."""
    if cutoffs:
        return cutoffs
    return os.path.join(lm_dir, CUTOFFS_FILE) if lm_dir else None


def validate_quality(cfg) -> None:
    """Check the quality options and load/check every model file, before any work starts.

    ``cfg`` has ``lm_dir``, ``cutoffs``, ``keep_buckets``, ``classifier`` (``[LANG=]MODEL`` items),
    ``wiki_threshold`` and ``languages``. Only the models of ``languages`` (when given) are checked and
    later loaded; a language with a model but no cutoffs column is refused here.
    """
    languages = getattr(cfg, "languages", None)
    if (cfg.cutoffs or cfg.keep_buckets) and not cfg.lm_dir:
        raise CorpusmillError("--cutoffs and --keep-buckets need --lm-dir (the perplexity models)")
    if cfg.lm_dir:
        local = localize(cfg.lm_dir, only=_lm_files(cfg.lm_dir, languages))  # remote models: a local copy
        langs = validate_lm_dir(local, languages)
        path = localize(cutoffs_path_for(cfg.lm_dir, cfg.cutoffs))
        if not os.path.isfile(path):
            raise CorpusmillError(
                f"no perplexity cutoffs: {path} does not exist; compute them with `corpusmill cutoffs --input DOCS "
                f"--lm-dir {cfg.lm_dir} --output {os.path.join(cfg.lm_dir, CUTOFFS_FILE)}` or pass --cutoffs FILE"
            )
        table = read_cutoffs(path)
        missing = [lang for lang in langs if lang not in table]
        if missing:
            raise CorpusmillError(
                f"--cutoffs {path}: no column for {', '.join(missing)}, which --lm-dir has a model for; its documents "
                f"would pass unbucketed. Compute the cutoffs for them with `corpusmill cutoffs`, or leave them out "
                f"with --languages"
            )
        parse_buckets(cfg.keep_buckets)
    check_threshold(cfg.wiki_threshold)
    for lang, model in parse_classifiers(cfg.classifier).items():
        if languages and lang not in languages:
            raise CorpusmillError(f"--classifier {lang}={model}: {lang} is not in --languages ({','.join(languages)})")
        load_classifier(localize(model))


def _lm_files(lm_dir: str, languages) -> Optional[List[str]]:
    """The files of ``lm_dir`` a run with ``languages`` needs (None: every language's)."""
    if not languages:
        return None
    from corpusmill.filters.perplexity import LM_SUFFIX, SP_SUFFIX

    return [lang + suffix for lang in languages for suffix in (SP_SUFFIX, LM_SUFFIX)]


def quality_filters(cfg) -> List[tuple]:
    """The steps after ``lid``, as ``(name, make filter)``: perplexity + bucket when ``cfg.lm_dir``,
    wiki_classifier when ``cfg.classifier``. With ``cfg.score_only`` they annotate every document and drop
    none (``corpusmill filter`` judges later)."""
    score_only = getattr(cfg, "score_only", False)
    out = []
    if cfg.lm_dir:
        cutoffs = cutoffs_path_for(cfg.lm_dir, cfg.cutoffs)
        keep_buckets = BUCKETS if score_only else parse_buckets(cfg.keep_buckets)
        out.append(("perplexity", lambda: Perplexity(cfg.lm_dir, getattr(cfg, "languages", None))))
        out.append(("bucket", lambda: PerplexityBucket(cutoffs, keep_buckets, read_cutoffs(localize(cutoffs)))))
    if cfg.classifier:
        threshold = 0.0 if score_only else check_threshold(cfg.wiki_threshold)
        out.append(("wiki_classifier", lambda: WikiClassifier(parse_classifiers(cfg.classifier), threshold)))
    return out


def add_quality_steps(run, docs, cfg):
    """The quality steps (:func:`quality_filters`) applied as pipeline steps."""
    for name, make in quality_filters(cfg):
        docs = run.step(docs, name, make())
    return docs


def output_group_fn(cfg) -> Callable:
    """``<lang>_<bucket>`` when the stage buckets documents, else ``<lang>``."""
    if cfg.lm_dir:
        return lambda d: f"{d.metadata['language']}_{d.metadata['bucket']}"
    return lambda d: d.metadata["language"]


# -- corpusmill cutoffs -----------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class CutoffsConfig:
    input: List[str] = option(required=True, metavar="GLOB", help="corpusmill documents (.jsonl(.gz), .parquet)")
    lm_dir: str = option(required=True, metavar="DIR", help="models from `corpusmill train-lm`")
    output: str = option(required=True, metavar="CSV", help="cutoffs file, e.g. LM_DIR/cutoffs.csv")
    sample: int = option(100_000, min=1, help="documents per language the percentiles are computed from")
    lang: Optional[str] = option(None, help="language of documents without metadata.language (default: skip them)")


def _write_cutoffs(rows, output: str) -> None:
    from corpusmill.io.files import write_text_atomic

    table = {lang: values for lang, values, _ in rows}
    if table:
        write_text_atomic(output, cutoffs_csv(table))


def build_cutoffs(p, run, cfg: CutoffsConfig, files: Sequence[str]) -> None:
    import apache_beam as beam

    from corpusmill.io.documents import ParseDocument, ReadRawRecords

    raw = p | "ReadDocs" >> ReadRawRecords(files)
    docs = run.step(raw, "read", ParseDocument())
    scored = run.step(docs, "perplexity", Perplexity(cfg.lm_dir, require_model=True, default_language=cfg.lang))
    n, output = cfg.sample, cfg.output
    (
        scored
        | "KeyByLanguage" >> beam.Map(lambda d: (d.metadata["language"], (stable_hash(d.id), d.metadata["perplexity"])))
        # a deterministic sample: the n documents with the smallest id hashes, per language
        | "Sample" >> beam.combiners.Top.PerKey(n, key=lambda hv: -hv[0])
        | "Percentiles" >> beam.Map(lambda kv: (kv[0], percentile_table(v for _, v in kv[1]), len(kv[1])))
        | "AllLanguages" >> beam.combiners.ToList()
        | "WriteCutoffs" >> beam.Map(_write_cutoffs, output)
    )


def run_cutoffs(cfg: CutoffsConfig, beam_args: Sequence[str] = ()) -> Dict[str, List[float]]:
    """Compute and write the cutoffs table; returns it."""
    from corpusmill.engine.stage import run_build

    validate_lm_dir(localize(cfg.lm_dir))  # a remote directory is checked on a local copy
    files = expand_inputs(cfg.input)
    run_dir = cfg.output + ".run"
    stats = run_build(
        OutputOptions(output=run_dir, overwrite=True), beam_args, lambda p, run: build_cutoffs(p, run, cfg, files)
    )
    if next(s["kept"] for s in stats if s["step"] == "perplexity") == 0:  # nothing written, an old file is left
        raise CorpusmillError(
            f"no document could be scored, so no cutoffs were written:\n{format_stats(stats)}\n"
            f"documents need metadata.language with a model in {cfg.lm_dir} (pass --lang xx for documents without "
            f"one); details in {run_dir}"
        )
    if "://" not in cfg.output:
        return read_cutoffs(cfg.output)
    import tempfile

    from corpusmill.io.files import read_bytes

    with tempfile.TemporaryDirectory() as tmp:  # a remote table, read back fresh (not from the model cache)
        local = os.path.join(tmp, "cutoffs.csv")
        with open(local, "wb") as fh:
            fh.write(read_bytes(cfg.output))
        return read_cutoffs(local)


# -- demo ---------------------------------------------------------------------------------------------
def train_demo_models(
    ref_jsonl: str,
    negatives: Sequence[str],
    out_dir: str,
    *,
    lang: str = "en",
    vocab_size: int = 4000,
    heldout: float = 0.1,
    beam_args: Sequence[str] = (),
    log=print,
) -> dict:
    """Train small quality models for the demo (and the tests) in seconds, from real reference text.

    ``ref_jsonl``: reference (Wikipedia) corpusmill documents; ``negatives``: low-quality documents.
    A deterministic ``heldout`` share of the reference (by a hash of the id) is kept out of the language
    model; the cutoffs are the perplexity percentiles of those held-out documents and the negatives
    together (documents without metadata.language count as ``lang``), so they fall between what the
    model has and has not seen. The classifier is trained on the whole reference against the negatives.

    Writes ``out_dir/lm/{lang}.sp.model``, ``{lang}.arpa.bin``, ``cutoffs.csv``, ``out_dir/wiki_classifier.bin``
    and ``out_dir/ref_{train,heldout}.jsonl.gz``. Returns ``{"lm_dir", "cutoffs", "classifier",
    "classifier_metrics", "ref_train", "ref_heldout"}``; pass ``lm_dir``, ``cutoffs`` and ``classifier``
    to :class:`corpusmill.pipelines.ccnet.CCNetConfig`.
    """
    from corpusmill.core.files import encode_jsonl_gz, read_documents_file
    from corpusmill.quality.classifier import train_classifier
    from corpusmill.quality.lm import train_lm

    os.makedirs(out_dir, exist_ok=True)
    docs = list(read_documents_file(ref_jsonl))
    parts = {"train": [], "heldout": []}
    for doc in docs:
        parts["heldout" if stable_hash("demo-heldout:" + doc.id) % 1000 < heldout * 1000 else "train"].append(doc)
    paths = {}
    for name, part in parts.items():
        if not part:
            raise CorpusmillError(f"{ref_jsonl}: {len(docs)} documents are too few to hold out {heldout:.0%}")
        paths[name] = os.path.join(out_dir, f"ref_{name}.jsonl.gz")
        with open(paths[name], "wb") as fh:
            encode_jsonl_gz((d.to_dict() for d in part), fh)

    lm_dir = os.path.join(out_dir, "lm")
    train_lm(lang, [paths["train"]], lm_dir, vocab_size=vocab_size, log=log)
    cutoffs = os.path.join(lm_dir, CUTOFFS_FILE)
    run_cutoffs(
        CutoffsConfig(input=[paths["heldout"], *negatives], lm_dir=lm_dir, output=cutoffs, lang=lang), beam_args
    )
    classifier = os.path.join(out_dir, "wiki_classifier.bin")
    metrics = train_classifier([ref_jsonl], list(negatives), classifier, log=log)
    return {
        "lm_dir": lm_dir,
        "cutoffs": cutoffs,
        "classifier": classifier,
        "classifier_metrics": metrics,
        "ref_train": paths["train"],
        "ref_heldout": paths["heldout"],
    }


# -- train-lm, train-classifier ----------------------------------------------------------------------
def local_files(patterns: Sequence[str]) -> List[str]:
    """The files of ``patterns`` on this machine: remote ones (gs://, s3://) copied to the local cache once."""
    return [localize(f) for f in expand_inputs(patterns)]


@dataclasses.dataclass(kw_only=True)
class TrainLMConfig:
    lang: str = option(required=True, help="language code, e.g. en (must match lid's labels)")
    input: List[str] = option(
        required=True,
        metavar="GLOB",
        help="reference text: corpusmill documents or .txt(.gz) with one document per line",
    )
    output: str = option(required=True, metavar="DIR", help="model directory (the --lm-dir of ccnet)")
    vocab_size: int = option(65536, min=16, help="SentencePiece vocabulary (cc_net's: 65536)")
    order: int = option(5, min=1, max=10, help="n-gram order")
    max_docs: Optional[int] = option(None, min=1, help="read at most this many documents (cc_net: 1M)")
    sp_sentences: int = option(1_000_000, min=1, help="lines sampled to train SentencePiece")
    memory: str = option("20%", help="lmplz -S memory budget, e.g. 4G or 50%")
    threads: int = option(1, min=1, help="SentencePiece training threads")
    lm_type: str = option(
        "probing", choices=("probing", "trie"), help="KenLM binary structure: probing (fast) or trie (small)"
    )
    keep_arpa: bool = option(False, help="also keep the ARPA text model")


def run_train_lm(cfg: TrainLMConfig, beam_args: Sequence[str] = ()) -> dict:
    from corpusmill.quality.lm import train_lm

    return train_lm(
        cfg.lang,
        local_files(cfg.input),
        cfg.output,
        vocab_size=cfg.vocab_size,
        order=cfg.order,
        max_docs=cfg.max_docs,
        sp_sentences=cfg.sp_sentences,
        memory=cfg.memory,
        threads=cfg.threads,
        lm_type=cfg.lm_type,
        keep_arpa=cfg.keep_arpa,
    )


def _show_train_lm(cfg: TrainLMConfig, _result) -> None:
    print(f"models: {os.path.abspath(cfg.output)}/{cfg.lang}.sp.model, {cfg.lang}.arpa.bin")


def _show_cutoffs(cfg: CutoffsConfig, table) -> None:
    from corpusmill.filters.perplexity import HEAD_PERCENTILE, TAIL_PERCENTILE

    for lang, values in sorted(table.items()):
        print(
            f"{lang}: p{HEAD_PERCENTILE} = {values[HEAD_PERCENTILE]}, p{TAIL_PERCENTILE} = {values[TAIL_PERCENTILE]}, "
            f"median = {values[50]}"
        )
    print(f"cutoffs: {os.path.abspath(cfg.output)}")


@dataclasses.dataclass(kw_only=True)
class TrainClassifierConfig:
    positive: List[str] = option(required=True, metavar="GLOB", help="reference documents")
    negative: List[str] = option(required=True, metavar="GLOB", help="crawl documents")
    output: str = option(required=True, metavar="MODEL", help="model file (.bin)")
    holdout: float = option(0.1, min=0.0, below=1.0, help="share held out for evaluation")
    balance: str = option(
        "upsample",
        choices=("upsample", "cut", "none"),
        help="upsample: the smaller class "
        "repeated to the larger's size in training (every document used); cut: the larger one "
        "cut to the smaller's; none: as given",
    )
    min_docs: int = option(20, min=1, help="documents each class needs (fewer: refused, unless --force)")
    force: bool = option(
        False, help="train on classes under --min-docs and keep a model that does not separate its held-out documents"
    )
    min_chars: int = option(
        0, min=0, help="skip documents shorter than this (RedPajama dropped reference pages under 1000)"
    )
    epoch: int = option(5, min=1, help="fastText epochs")
    lr: float = option(0.1, above=0.0, help="fastText learning rate")
    word_ngrams: int = option(1, min=1, help="fastText word n-grams")
    threads: int = option(1, min=1, help="fastText threads (1 makes the model reproducible)")
    wiki_threshold: float = option(
        DEFAULT_THRESHOLD, min=0.0, max=1.0, help="threshold the held-out precision and recall are also reported at"
    )


def run_train_classifier(cfg: TrainClassifierConfig, beam_args: Sequence[str] = ()) -> dict:
    from corpusmill.quality.classifier import train_classifier

    return train_classifier(
        local_files(cfg.positive),
        local_files(cfg.negative),
        cfg.output,
        holdout=cfg.holdout,
        balance=cfg.balance,
        min_docs=cfg.min_docs,
        force=cfg.force,
        min_chars=cfg.min_chars,
        epoch=cfg.epoch,
        lr=cfg.lr,
        word_ngrams=cfg.word_ngrams,
        threads=cfg.threads,
        threshold=check_threshold(cfg.wiki_threshold),
    )


TRAIN_LM = Stage(
    name="train-lm",
    config=TrainLMConfig,
    run=run_train_lm,
    show=_show_train_lm,
    beam=False,
    description="Train <lang>.sp.model (SentencePiece unigram) and <lang>.arpa.bin (KenLM n-gram over its pieces, "
    "estimated with lmplz, converted with build_binary) in OUTPUT, as cc_net did from Wikipedia. "
    "Inputs: corpusmill documents (.jsonl(.gz), .parquet) or .txt(.gz) with one document per line. "
    "lmplz and build_binary come from `make kenlm-bin`.",
)
CUTOFFS = Stage(
    name="cutoffs",
    config=CutoffsConfig,
    run=run_cutoffs,
    show=_show_cutoffs,
    description="Score a sample of documents with the models in --lm-dir and write the per-language percentile "
    "table the bucket step reads (head < p30 <= middle < p60 <= tail). Documents need "
    "metadata.language (the output of `corpusmill ccnet` has it). Other options must be Beam's.",
)
TRAIN_CLASSIFIER = Stage(
    name="train-classifier",
    config=TrainClassifierConfig,
    run=run_train_classifier,
    beam=False,
    description="Train a fastText supervised model: --positive reference pages (__label__wiki) against --negative "
    "crawl pages (__label__cc). Holds out a deterministic share of each class and prints precision, "
    "recall and ROC AUC on it (also written to MODEL.json).",
)
