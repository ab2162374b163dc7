"""CCNet quality: the ``train-lm``, ``cutoffs`` and ``train-classifier`` commands, and the steps the CCNet
stage adds after language ID (``perplexity``, ``bucket``, ``wiki_classifier``).

    corpusmill train-lm --lang en --input wiki_en.jsonl.gz --output lm/
    corpusmill cutoffs --input 'cc/en/*.jsonl.gz' --lm-dir lm/ --output lm/cutoffs.csv
    corpusmill train-classifier --positive refs.jsonl.gz --negative 'cc/en_head/*.jsonl.gz' --output lm/wiki.bin
    corpusmill ccnet --input 'crawl/*.warc.gz' --output out/cc --lm-dir lm/ --classifier lm/wiki.bin

The cutoffs command is a Beam pipeline (scoring is the costly part and runs on every worker); its
accounting (stats.json, _failed/) goes to ``<output>.run/``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, List, Optional, Sequence

import apache_beam as beam

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.hashing import stable_hash
from corpusmill.engine.run import Run
from corpusmill.engine.stage import OutputOptions, format_stats, run_stage
from corpusmill.filters.perplexity import (
    BUCKETS,
    DEFAULT_KEEP_BUCKETS,
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
)
from corpusmill.io.documents import ParseDocument, ReadRawRecords
from corpusmill.io.files import expand_inputs, localize, write_text_atomic

CUTOFFS_FILE = "cutoffs.csv"


# -- in the CCNet stage -----------------------------------------------------------------------------
def cutoffs_path_for(lm_dir: Optional[str], cutoffs: Optional[str]) -> Optional[str]:
    """``--cutoffs``, else ``<lm-dir>/cutoffs.csv``."""
    if cutoffs:
        return cutoffs
    return os.path.join(lm_dir, CUTOFFS_FILE) if lm_dir else None


def validate_quality(cfg) -> None:
    """Check the quality options and load/check every model file, before any work starts.

    ``cfg`` has ``lm_dir``, ``cutoffs``, ``keep_buckets``, ``classifier``, ``wiki_threshold``.
    """
    if (cfg.cutoffs or cfg.keep_buckets) and not cfg.lm_dir:
        raise CorpusmillError("--cutoffs and --keep-buckets need --lm-dir (the perplexity models)")
    if cfg.lm_dir:
        validate_lm_dir(localize(cfg.lm_dir))  # models on gs:// are checked on a local copy
        path = localize(cutoffs_path_for(cfg.lm_dir, cfg.cutoffs))
        if not os.path.isfile(path):
            raise CorpusmillError(
                f"no perplexity cutoffs: {path} does not exist; compute them with `corpusmill cutoffs --input DOCS "
                f"--lm-dir {cfg.lm_dir} --output {os.path.join(cfg.lm_dir, CUTOFFS_FILE)}` or pass --cutoffs FILE")
        read_cutoffs(path)
        parse_buckets(cfg.keep_buckets)
    check_threshold(cfg.wiki_threshold)
    if cfg.classifier:
        load_classifier(localize(cfg.classifier))


def add_quality_steps(run: Run, docs: beam.PCollection, cfg) -> beam.PCollection:
    """The steps after ``lid``: perplexity + bucket when ``cfg.lm_dir``, wiki_classifier when ``cfg.classifier``."""
    if cfg.lm_dir:
        docs = run.step(docs, "perplexity", Perplexity(cfg.lm_dir))
        docs = run.step(docs, "bucket", PerplexityBucket(localize(cutoffs_path_for(cfg.lm_dir, cfg.cutoffs)),
                                                         parse_buckets(cfg.keep_buckets)))
    if cfg.classifier:
        docs = run.step(docs, "wiki_classifier", WikiClassifier(cfg.classifier, check_threshold(cfg.wiki_threshold)))
    return docs


def output_group_fn(cfg) -> Callable:
    """``<lang>_<bucket>`` when the stage buckets documents, else ``<lang>``."""
    if cfg.lm_dir:
        return lambda d: f"{d.metadata['language']}_{d.metadata['bucket']}"
    return lambda d: d.metadata["language"]


def add_quality_options(parser) -> None:
    group = parser.add_argument_group("quality (perplexity buckets and Wikipedia-reference classifier)")
    group.add_argument("--lm-dir", default=None, metavar="DIR",
                       help="perplexity models (<lang>.sp.model + <lang>.arpa.bin from `corpusmill train-lm`); "
                            "adds the perplexity and bucket steps and writes OUT/<lang>_<bucket>/")
    group.add_argument("--cutoffs", default=None, metavar="FILE",
                       help="per-language perplexity percentiles from `corpusmill cutoffs` "
                            "(default: <lm-dir>/cutoffs.csv)")
    group.add_argument("--keep-buckets", default=None, metavar="B,B",
                       help=f"buckets to keep, from {','.join(BUCKETS)} (default: {','.join(DEFAULT_KEEP_BUCKETS)}; "
                            f"'all' is a language with no model)")
    group.add_argument("--classifier", default=None, metavar="MODEL",
                       help="Wikipedia-reference classifier from `corpusmill train-classifier`; adds the "
                            "wiki_classifier step")
    group.add_argument("--wiki-threshold", type=float, default=DEFAULT_THRESHOLD,
                       help=f"drop documents with wiki_prob below this as not_wiki_like (default: {DEFAULT_THRESHOLD})")


def quality_config_from_args(args) -> dict:
    return {"lm_dir": args.lm_dir, "cutoffs": args.cutoffs,
            "keep_buckets": list(parse_buckets(args.keep_buckets)) if args.keep_buckets else None,
            "classifier": args.classifier, "wiki_threshold": args.wiki_threshold}


# -- corpusmill cutoffs -----------------------------------------------------------------------------
@dataclasses.dataclass
class CutoffsConfig:
    inputs: List[str]
    lm_dir: str
    output: str
    sample: int = 100_000
    default_language: Optional[str] = None


def _write_cutoffs(rows, output: str) -> None:
    table = {lang: values for lang, values, _ in rows}
    if table:
        write_text_atomic(output, cutoffs_csv(table))


def build_cutoffs(p: beam.Pipeline, run: Run, cfg: CutoffsConfig, files: Sequence[str]) -> None:
    raw = p | "ReadDocs" >> ReadRawRecords(files)
    docs = run.step(raw, "read", ParseDocument())
    scored = run.step(docs, "perplexity", Perplexity(cfg.lm_dir, require_model=True,
                                                     default_language=cfg.default_language))
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
    if cfg.sample < 1:
        raise CorpusmillError("--sample must be 1 or more")
    validate_lm_dir(cfg.lm_dir)
    files = expand_inputs(cfg.inputs)
    run_dir = cfg.output + ".run"
    stats = run_stage(OutputOptions(run_dir, overwrite=True), beam_args,
                      lambda p, run: build_cutoffs(p, run, cfg, files))
    if next(s["kept"] for s in stats if s["step"] == "perplexity") == 0:  # nothing written, an old file is left
        raise CorpusmillError(
            f"no document could be scored, so no cutoffs were written:\n{format_stats(stats)}\n"
            f"documents need metadata.language with a model in {cfg.lm_dir} (pass --lang xx for documents without "
            f"one); details in {run_dir}")
    return read_cutoffs(cfg.output)


# -- demo ---------------------------------------------------------------------------------------------
def train_demo_models(ref_jsonl: str, negatives: Sequence[str], out_dir: str, *, lang: str = "en",
                      vocab_size: int = 4000, heldout: float = 0.1, beam_args: Sequence[str] = (),
                      log=print) -> dict:
    """Train small quality models for the demo (and the tests) in seconds, from real reference text.

    ``ref_jsonl``: reference (Wikipedia) corpusmill documents; ``negatives``: low-quality documents.
    A deterministic ``heldout`` share of the reference (by a hash of the id) is kept out of the language
    model; the cutoffs are the perplexity percentiles of those held-out documents and the negatives
    together (documents without metadata.language count as ``lang``), so they fall between what the
    model has and has not seen. The classifier is trained on the whole reference against the negatives.

    Writes ``out_dir/lm/{lang}.sp.model``, ``{lang}.arpa.bin``, ``cutoffs.csv``, ``out_dir/wiki_classifier.bin``
    and ``out_dir/ref_{train,heldout}.jsonl.gz``. Returns ``{"lm_dir", "cutoffs", "classifier",
    "classifier_metrics", "ref_train", "ref_heldout"}``; pass ``lm_dir``, ``cutoffs`` and ``classifier``
    to :class:`corpusmill.stages.ccnet.CCNetConfig`.
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
    run_cutoffs(CutoffsConfig([paths["heldout"], *negatives], lm_dir, cutoffs, default_language=lang), beam_args)
    classifier = os.path.join(out_dir, "wiki_classifier.bin")
    metrics = train_classifier([ref_jsonl], list(negatives), classifier, log=log)
    return {"lm_dir": lm_dir, "cutoffs": cutoffs, "classifier": classifier, "classifier_metrics": metrics,
            "ref_train": paths["train"], "ref_heldout": paths["heldout"]}


# -- CLI ----------------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser(
        "train-lm", help="train a SentencePiece + KenLM perplexity model for one language from reference text",
        description="Train <lang>.sp.model (SentencePiece unigram) and <lang>.arpa.bin (KenLM n-gram over its "
                    "pieces, estimated with lmplz, converted with build_binary) in OUTPUT, as cc_net did from "
                    "Wikipedia. Inputs: corpusmill documents (.jsonl(.gz), .parquet) or .txt(.gz) with one "
                    "document per line. lmplz and build_binary come from `make kenlm-bin`.")
    p.add_argument("--lang", required=True, help="language code, e.g. en (must match lid's labels)")
    p.add_argument("--input", action="append", required=True, metavar="GLOB", help="reference text; repeat for more")
    p.add_argument("--output", required=True, metavar="DIR", help="model directory (the --lm-dir of ccnet)")
    p.add_argument("--vocab-size", type=int, default=65536, help="SentencePiece vocabulary (default: 65536, cc_net's)")
    p.add_argument("--order", type=int, default=5, help="n-gram order (default: 5)")
    p.add_argument("--max-docs", type=int, default=None, help="read at most this many documents (cc_net: 1M)")
    p.add_argument("--sp-sentences", type=int, default=1_000_000,
                   help="lines sampled to train SentencePiece (default: 1000000)")
    p.add_argument("--memory", default="20%", help="lmplz -S memory budget, e.g. 4G or 50%% (default: 20%%)")
    p.add_argument("--threads", type=int, default=1, help="SentencePiece training threads (default: 1)")
    p.add_argument("--lm-type", choices=("probing", "trie"), default="probing",
                   help="KenLM binary structure: probing (fast) or trie (small) (default: probing)")
    p.add_argument("--keep-arpa", action="store_true", help="also keep the ARPA text model")
    p.set_defaults(func=_train_lm_main)

    p = sub.add_parser(
        "cutoffs", help="per-language perplexity percentiles (0..100) for the head/middle/tail buckets",
        description="Score a sample of documents with the models in --lm-dir and write the per-language "
                    "percentile table the bucket step reads (head < p30 <= middle < p60 <= tail). Documents "
                    "need metadata.language (the output of `corpusmill ccnet` has it). Unrecognized options "
                    "go to Beam.")
    p.add_argument("--input", action="append", required=True, metavar="GLOB",
                   help="corpusmill documents (.jsonl(.gz), .parquet); repeat for more")
    p.add_argument("--lm-dir", required=True, metavar="DIR", help="models from `corpusmill train-lm`")
    p.add_argument("--output", required=True, metavar="CSV", help="cutoffs file, e.g. LM_DIR/cutoffs.csv")
    p.add_argument("--sample", type=int, default=100_000,
                   help="documents per language the percentiles are computed from (default: 100000)")
    p.add_argument("--lang", default=None, help="language of documents without metadata.language (default: skip them)")
    p.set_defaults(func=_cutoffs_main, accepts_beam_args=True)

    p = sub.add_parser(
        "train-classifier", help="train the Wikipedia-reference fastText classifier",
        description="Train a fastText supervised model: --positive reference pages (__label__wiki) against "
                    "--negative crawl pages (__label__cc). Holds out a deterministic share of each class and "
                    "prints precision, recall and ROC AUC on it (also written to MODEL.json).")
    p.add_argument("--positive", action="append", required=True, metavar="GLOB", help="reference documents")
    p.add_argument("--negative", action="append", required=True, metavar="GLOB", help="crawl documents")
    p.add_argument("--output", required=True, metavar="MODEL", help="model file (.bin)")
    p.add_argument("--holdout", type=float, default=0.1, help="share held out for evaluation (default: 0.1)")
    p.add_argument("--no-balance", dest="balance", action="store_false",
                   help="keep all documents (default: cut the larger class to the size of the smaller)")
    p.add_argument("--min-chars", type=int, default=0,
                   help="skip documents shorter than this (RedPajama dropped reference pages under 1000)")
    p.add_argument("--epoch", type=int, default=5, help="fastText epochs (default: 5)")
    p.add_argument("--lr", type=float, default=0.1, help="fastText learning rate (default: 0.1)")
    p.add_argument("--word-ngrams", type=int, default=1, help="fastText word n-grams (default: 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="fastText threads (default: 1, which makes the model reproducible)")
    p.add_argument("--wiki-threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="threshold the held-out precision and recall are also reported at (default: 0.25)")
    p.set_defaults(func=_train_classifier_main)


def _train_lm_main(args, beam_args) -> int:
    from corpusmill.quality.lm import train_lm

    train_lm(args.lang, args.input, args.output, vocab_size=args.vocab_size, order=args.order,
             max_docs=args.max_docs, sp_sentences=args.sp_sentences, memory=args.memory, threads=args.threads,
             lm_type=args.lm_type, keep_arpa=args.keep_arpa)
    print(f"models: {os.path.abspath(args.output)}/{args.lang}.sp.model, {args.lang}.arpa.bin")
    return 0


def _cutoffs_main(args, beam_args) -> int:
    from corpusmill.filters.perplexity import HEAD_PERCENTILE, TAIL_PERCENTILE

    table = run_cutoffs(CutoffsConfig(args.input, args.lm_dir, args.output, args.sample, args.lang), beam_args)
    for lang, values in sorted(table.items()):
        print(f"{lang}: p{HEAD_PERCENTILE} = {values[HEAD_PERCENTILE]}, p{TAIL_PERCENTILE} = {values[TAIL_PERCENTILE]}, "
              f"median = {values[50]}")
    print(f"cutoffs: {os.path.abspath(args.output)}")
    return 0


def _train_classifier_main(args, beam_args) -> int:
    from corpusmill.quality.classifier import train_classifier

    train_classifier(args.positive, args.negative, args.output, holdout=args.holdout, balance=args.balance,
                     min_chars=args.min_chars, epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams,
                     threads=args.threads, threshold=check_threshold(args.wiki_threshold))
    return 0
