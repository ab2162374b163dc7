"""The CCNet stage on a WET file against a plain one-process loop of the same kernels.

    .venv/bin/python bench/wet_kernels.py [--docs /usr/share/doc/python3.11/html] [--copies 2] [--profile]

The WET file: every page of Debian's python3.11-doc, its main text extracted once with resiliparse and
written as WET ``conversion`` records (what Common Crawl's WET files hold), ``--copies`` times under new
URLs with a copy mark in every line ("(copy aaa)": letters, since the dedup form folds digits; so line
dedup does not remove the copies). Then, alternating:

- the stage: ``corpusmill ccnet --input X.wet.gz --languages en --workers 1`` (the in-memory runner, one
  process, start-up included);
- the kernels: read the records with warcio, ``normalize_text``, cc_net's line hashes of every
  document, the lines in two documents removed, lid.176 on what is left, (with ``--quality``) the
  perplexity, bucket and classifier filters, and the kept documents written as JSONL.gz (what the
  stage writes too); one process, no Beam.

``--quality`` first trains the models as a user would (``corpusmill train-lm``, ``cutoffs``,
``train-classifier`` on the bundled tests/data/quality samples) and gives both sides the same ones.

Prints both wall times, the ratio, and with ``--profile`` the stage's top functions (cProfile).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import glob
import gzip
import io
import os
import pstats
import sys
import tempfile
import time

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter


def build_wet(path: str, docs: str, copies: int) -> int:
    from corpusmill.filters.html import decode_html, extract_main_text

    texts = []
    for page in sorted(glob.glob(os.path.join(docs, "**", "*.html"), recursive=True)):
        html, _ = decode_html(open(page, "rb").read(), None)
        text = extract_main_text(html or "", page, extractor="resiliparse")
        if text:
            texts.append((os.path.relpath(page, docs), text))
    n = 0
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for c in range(copies):
            mark = f" (copy {'abcdefghijklmnopqrstuvwxyz'[c - 1] * 3})" if c else ""  # letters: dedup folds digits
            for rel, text in texts:
                body = "\n".join(line + mark for line in text.split("\n")).encode("utf-8")
                writer.write_record(writer.create_warc_record(
                    f"https://docs.python.org/3.11/{rel}?copy={c}", "conversion", payload=io.BytesIO(body),
                    warc_headers_dict={"Content-Type": "text/plain"}))
                n += 1
    return n


QUALITY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "quality")


def train_models(tmp: str) -> dict:
    """perplexity models, cutoffs and a classifier, made with the CLI from the bundled samples."""
    from corpusmill.cli.main import main as cli_main

    lm_dir, clf = os.path.join(tmp, "lm"), os.path.join(tmp, "wiki.bin")
    wiki, lowq = os.path.join(QUALITY, "wiki_en.jsonl.gz"), os.path.join(QUALITY, "lowq_en.jsonl.gz")
    for argv in (["train-lm", "--lang", "en", "--input", wiki, "--output", lm_dir, "--vocab-size", "2000",
                  "--max-docs", "400", "--lm-type", "trie"],
                 ["cutoffs", "--input", lowq, "--lm-dir", lm_dir, "--output", os.path.join(lm_dir, "cutoffs.csv"),
                  "--lang", "en"],
                 ["train-classifier", "--positive", wiki, "--negative", lowq, "--output", clf]):
        assert cli_main(argv) == 0, argv
    return {"lm_dir": lm_dir, "classifier": clf}


def kernels(path: str, out: str, models: dict) -> int:
    from corpusmill.core.files import encode_jsonl_gz
    from corpusmill.dedup.lines import remove_lines
    from corpusmill.filters.base import run_filters
    from corpusmill.filters.lid import LanguageId
    from corpusmill.filters.normalize import line_hashes, normalize_text
    from corpusmill.filters.perplexity import Perplexity, PerplexityBucket, read_cutoffs
    from corpusmill.filters.wiki_classifier import WikiClassifier

    texts = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "conversion":
                text = normalize_text(rec.content_stream().read().decode("utf-8", "replace"))
                if text:
                    texts.append(text)
    seen = collections.Counter()
    for text in texts:
        seen.update(set(line_hashes(text)))
    repeated = {h for h, n in seen.items() if n > 1}
    filters = [LanguageId(languages=["en"])]
    if models:
        cutoffs = os.path.join(models["lm_dir"], "cutoffs.csv")
        filters += [Perplexity(models["lm_dir"], ["en"]), PerplexityBucket(cutoffs, None, read_cutoffs(cutoffs)),
                    WikiClassifier({"en": models["classifier"]})]
    for f in filters:
        f.setup()
    from corpusmill.core.document import Document

    kept = []
    for i, text in enumerate(texts):
        text = remove_lines(text, repeated)
        if not text:
            continue
        verdict = run_filters(filters, Document(str(i), text))
        if verdict.kept:
            kept.append(verdict.doc)
    with open(out, "wb") as fh:
        encode_jsonl_gz((d.to_dict() for d in kept), fh)
    return len(kept)


def stage(path: str, out: str, models: dict) -> int:
    from corpusmill.cli.main import main as cli_main

    quality = ["--lm-dir", models["lm_dir"], "--classifier", models["classifier"]] if models else []
    code = cli_main(["ccnet", "--input", path, "--output", out, "--languages", "en", "--workers", "1",
                     "--min-length", "0", *quality])
    assert code == 0
    from corpusmill.core.files import read_output

    return len(read_output(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--quality", action="store_true", help="perplexity buckets and the classifier on both sides")
    args = ap.parse_args()
    os.environ["CORPUSMILL_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        wet = os.path.join(tmp, "pages.wet.gz")
        n = build_wet(wet, args.docs, args.copies)
        models = train_models(tmp) if args.quality else {}
        print(f"{n} WET records, {os.path.getsize(wet) / 1e6:.1f} MB; uncompressed "
              f"{len(gzip.open(wet).read()) / 1e6:.1f} MB")
        times = {"stage": [], "kernels": []}
        for r in range(args.rounds):
            t = time.perf_counter()
            kept_k = kernels(wet, os.path.join(tmp, "loop.jsonl.gz"), models)
            times["kernels"].append(time.perf_counter() - t)
            t = time.perf_counter()
            kept_s = stage(wet, os.path.join(tmp, f"out{r}"), models)
            times["stage"].append(time.perf_counter() - t)
        s, k = min(times["stage"]), min(times["kernels"])
        print(f"kernels: {k:.2f} s ({kept_k} kept); stage: {s:.2f} s ({kept_s} kept); ratio {s / k:.2f}x")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            stage(wet, os.path.join(tmp, "profiled"), models)
            prof.disable()
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
