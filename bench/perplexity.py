"""Benchmark: documents/s of perplexity scoring, in the CCNet stage and in a plain kenlm loop.

    .venv/bin/python bench/perplexity.py [--copies 20] [--vocab-size 4000] [-- beam options]

Models: trained here from the bundled Wikipedia sample (``train_demo_models``: SentencePiece unigram +
5-gram KenLM). Documents: the held-out Wikipedia paragraphs and the low-quality pages of
tests/data/quality/, repeated ``--copies`` times under new ids (real text, about 480 documents a copy).

Measured, on the same documents:

1. ``kenlm loop``: ``kenlm.Model.score`` over pieces prepared in advance (one call per line), the floor;
2. ``filter loop``: the ``perplexity`` filter in plain Python (normalize + SentencePiece + KenLM + formula);
3. ``stage step``: a Beam pipeline that reads the documents with the stage's reader and applies the
   ``perplexity`` step through the glue (counting, stats.json), minus the same pipeline with a
   pass-through step, on the runner the Beam options pick (DirectRunner in memory by default;
   ``--direct_running_mode=multi_processing --direct_num_workers=2`` for processes).

Each measurement is the best of ``--repeat`` runs (the stage: of ``--repeat - 1``), since the machine may
be shared. Prints one line per measurement; the numbers are recorded in docs/quality.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from corpusmill.core.document import Document  # noqa: E402
from corpusmill.core.files import encode_jsonl_gz, read_documents_file  # noqa: E402
from corpusmill.engine.stage import OutputOptions, run_build  # noqa: E402
from corpusmill.filters.base import Filter, keep  # noqa: E402
from corpusmill.filters.perplexity import (  # noqa: E402
    LanguageModel,
    Perplexity,
    model_paths,
    normalize_for_lm,
)
from corpusmill.io.documents import ParseDocument, ReadRawRecords  # noqa: E402
from corpusmill.pipelines.quality import train_demo_models  # noqa: E402

Q = os.path.join(HERE, "..", "tests", "data", "quality")


class PassThrough(Filter):
    name = "pass"

    def __call__(self, doc):
        return keep(doc)


def stage_seconds(docs_path: str, filt: Filter, out: str, beam_args) -> float:
    def build(p, run):
        docs = run.step(p | ReadRawRecords([docs_path]), "read", ParseDocument())
        run.step(docs, "perplexity", filt)

    start = time.perf_counter()
    stats = run_build(OutputOptions(output=out, overwrite=True), beam_args, build)
    elapsed = time.perf_counter() - start
    assert stats[-1]["kept"] > 0 and stats[-1]["failed"] == 0, stats
    return elapsed


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per measurement (default: 3)")
    args, beam_args = ap.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = train_demo_models(
            os.path.join(Q, "wiki_en.jsonl.gz"),
            [os.path.join(Q, "lowq_en.jsonl.gz")],
            os.path.join(tmp, "models"),
            vocab_size=args.vocab_size,
            log=lambda *a: None,
        )
        base = list(read_documents_file(models["ref_heldout"])) + list(
            read_documents_file(os.path.join(Q, "lowq_en.jsonl.gz"))
        )
        docs = [
            Document(id=f"{d.id}-{i}", text=d.text, metadata={"language": "en"})
            for i in range(args.copies)
            for d in base
        ]
        n, mb = len(docs), sum(d.nbytes for d in docs) / 1e6
        print(
            f"documents: {n} ({mb:.1f} MB), models: vocab {args.vocab_size}, 5-gram, "
            f"{os.path.getsize(model_paths(models['lm_dir'], 'en')[1]) / 1e6:.1f} MB KenLM"
        )

        lm = LanguageModel(*model_paths(models["lm_dir"], "en"))
        pieces = [[" ".join(lm.sp.EncodeAsPieces(normalize_for_lm(line))) for line in d.text.split("\n")] for d in docs]

        def kenlm_loop():
            for lines in pieces:
                sum(lm.lm.score(line) for line in lines)

        t_kenlm = best_of(args.repeat, kenlm_loop)
        print(f"kenlm loop (pieces prepared):        {n / t_kenlm:9.0f} docs/s  {mb / t_kenlm:6.2f} MB/s")

        filt = Perplexity(models["lm_dir"])
        filt.setup()
        t_filter = best_of(args.repeat, lambda: [filt(d) for d in docs])
        print(f"filter loop (normalize+SP+KenLM):    {n / t_filter:9.0f} docs/s  {mb / t_filter:6.2f} MB/s")

        docs_path = os.path.join(tmp, "docs.jsonl.gz")
        with open(docs_path, "wb") as fh:
            encode_jsonl_gz((d.to_dict() for d in docs), fh)
        runner = " ".join(beam_args) or "DirectRunner in memory"
        stage_runs = max(1, args.repeat - 1)
        t_pass = min(
            stage_seconds(docs_path, PassThrough(), os.path.join(tmp, "pass"), beam_args) for _ in range(stage_runs)
        )
        t_stage = min(
            stage_seconds(docs_path, Perplexity(models["lm_dir"]), os.path.join(tmp, "ppl"), beam_args)
            for _ in range(stage_runs)
        )
        print(f"stage, read + pass-through step:     {t_pass:9.1f} s  ({runner})")
        print(f"stage, read + perplexity step:       {t_stage:9.1f} s  -> whole pipeline {n / t_stage:.0f} docs/s")
        step = max(t_stage - t_pass, 1e-9)
        print(
            f"stage, perplexity step alone:        {n / step:9.0f} docs/s  {mb / step:6.2f} MB/s "
            f"(stage time minus the pass-through pipeline)"
        )


if __name__ == "__main__":
    main()
