"""The CCNet stage on a WET file against a plain one-process loop of the same kernels, in CPU seconds.

    .venv/bin/python bench/wet_kernels.py [--docs /usr/share/doc/python3.11/html] [--copies 4] [--rounds 3]
        [--quality] [--workers 1] [--profile]

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

Each side is a fresh process, measured by ``getrusage(RUSAGE_CHILDREN)`` in a helper (user + system CPU
seconds, peak RSS), the two alternating for ``--rounds`` rounds; the medians and their ratio are printed.
Both sides start Python and import what they use, so both carry a start-up; the stage's is also
measured alone (a one-record WET) against ``import apache_beam``. ``--workers 2`` runs the stage
with two workers too (the same work: its CPU against one worker's). ``--profile`` runs the stage in
this process under cProfile and prints the functions with the most time of their own, with their share.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import glob
import gzip
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter


def split_wet(path: str, folder: str, files: int) -> str:
    """The records of ``path`` dealt round-robin into ``files`` WET files under ``folder`` (what several
    workers can share: the stage cuts its work by input file)."""
    from warcio.archiveiterator import ArchiveIterator

    os.makedirs(folder, exist_ok=True)
    outs = [open(os.path.join(folder, f"part-{i}.warc.wet.gz"), "wb") for i in range(files)]
    writers = [WARCWriter(o, gzip=True) for o in outs]
    with open(path, "rb") as fh:
        for i, rec in enumerate(ArchiveIterator(fh)):
            writer = writers[i % files]
            writer.write_record(
                writer.create_warc_record(
                    rec.rec_headers.get_header("WARC-Target-URI"),
                    "conversion",
                    payload=io.BytesIO(rec.content_stream().read()),
                    warc_headers_dict={"Content-Type": "text/plain"},
                )
            )
    for o in outs:
        o.close()
    return folder


def build_wet(path: str, docs: str, copies: int, limit: int = 0) -> int:
    from corpusmill.filters.html import decode_html, extract_main_text

    texts = []
    for page in sorted(glob.glob(os.path.join(docs, "**", "*.html"), recursive=True)):
        html, _ = decode_html(open(page, "rb").read(), None)
        text = extract_main_text(html or "", page, extractor="resiliparse")
        if text:
            texts.append((os.path.relpath(page, docs), text))
            if limit and len(texts) >= limit:
                break
    n = 0
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for c in range(copies):
            mark = f" (copy {'abcdefghijklmnopqrstuvwxyz'[c - 1] * 3})" if c else ""  # letters: dedup folds digits
            for rel, text in texts:
                body = "\n".join(line + mark for line in text.split("\n")).encode("utf-8")
                writer.write_record(
                    writer.create_warc_record(
                        f"https://docs.python.org/3.11/{rel}?copy={c}",
                        "conversion",
                        payload=io.BytesIO(body),
                        warc_headers_dict={"Content-Type": "text/plain"},
                    )
                )
                n += 1
    return n


QUALITY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "quality")


def train_models(tmp: str) -> dict:
    """perplexity models, cutoffs and a classifier, made with the CLI from the bundled samples."""
    from corpusmill.cli.main import main as cli_main

    lm_dir, clf = os.path.join(tmp, "lm"), os.path.join(tmp, "wiki.bin")
    wiki, lowq = os.path.join(QUALITY, "wiki_en.jsonl.gz"), os.path.join(QUALITY, "lowq_en.jsonl.gz")
    for argv in (
        [
            "train-lm",
            "--lang",
            "en",
            "--input",
            wiki,
            "--output",
            lm_dir,
            "--vocab-size",
            "2000",
            "--max-docs",
            "400",
            "--lm-type",
            "trie",
        ],
        [
            "cutoffs",
            "--input",
            lowq,
            "--lm-dir",
            lm_dir,
            "--output",
            os.path.join(lm_dir, "cutoffs.csv"),
            "--lang",
            "en",
        ],
        ["train-classifier", "--positive", wiki, "--negative", lowq, "--output", clf],
    ):
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
    hashes = [line_hashes(text) for text in texts]  # each line normalized and hashed once
    for hs in hashes:
        seen.update(set(hs))
    repeated = {h for h, n in seen.items() if n > 1}
    filters = [LanguageId(languages=["en"])]
    if models:
        cutoffs = os.path.join(models["lm_dir"], "cutoffs.csv")
        filters += [
            Perplexity(models["lm_dir"], ["en"]),
            PerplexityBucket(cutoffs, None, read_cutoffs(cutoffs)),
            WikiClassifier({"en": models["classifier"]}),
        ]
    for f in filters:
        f.setup()
    from corpusmill.core.document import Document

    kept = []
    for i, (text, hs) in enumerate(zip(texts, hashes)):
        text = remove_lines(text, repeated, hashes=hs)
        if not text:
            continue
        verdict = run_filters(filters, Document(str(i), text))
        if verdict.kept:
            kept.append(verdict.doc)
    with open(out, "wb") as fh:
        encode_jsonl_gz((d.to_dict() for d in kept), fh)
    return len(kept)


HELPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL); r = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(r.ru_utime + r.ru_stime, r.ru_maxrss)"
)


def measure(argv) -> tuple:
    """(CPU seconds, peak RSS in MiB) of one command run as a fresh process."""
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    out = subprocess.run([sys.executable, "-c", HELPER, *argv], capture_output=True, text=True, env=env, check=True)
    cpu, rss = out.stdout.split()
    return float(cpu), int(rss) / 1024


def stage_argv(path: str, out: str, models: dict, workers: int = 1) -> list:
    quality = ["--lm-dir", models["lm_dir"], "--classifier", models["classifier"]] if models else []
    command = os.path.join(os.path.dirname(sys.executable), "corpusmill")
    return [
        command,
        "ccnet",
        "--input",
        path,
        "--output",
        out,
        "--languages",
        "en",
        "--workers",
        str(workers),
        "--min-length",
        "0",
        *quality,
    ]


def kernels_argv(path: str, out: str, models: dict) -> list:
    return [sys.executable, os.path.abspath(__file__), "--kernels-only", path, out, json.dumps(models)]


def median(values):
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also run the stage with this many workers, and with one, on the same records in --files files",
    )
    ap.add_argument("--files", type=int, default=4, help="the files the workers' comparison cuts the records into")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--quality", action="store_true", help="perplexity buckets and the classifier on both sides")
    ap.add_argument("--kernels-only", nargs=3, metavar=("WET", "OUT", "MODELS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.kernels_only:
        wet, out, models = args.kernels_only
        kernels(wet, out, json.loads(models))
        return
    os.environ["CORPUSMILL_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        wet = os.path.join(tmp, "pages.wet.gz")
        n = build_wet(wet, args.docs, args.copies)
        one = os.path.join(tmp, "one.wet.gz")
        build_wet(one, args.docs, 1, limit=1)
        models = train_models(tmp) if args.quality else {}
        print(
            f"{n} WET records, {os.path.getsize(wet) / 1e6:.1f} MB; uncompressed "
            f"{len(gzip.open(wet).read()) / 1e6:.1f} MB"
        )
        cpu = collections.defaultdict(list)
        for r in range(args.rounds):
            cpu["kernels"].append(measure(kernels_argv(wet, os.path.join(tmp, f"loop{r}.jsonl.gz"), models)))
            cpu["stage"].append(measure(stage_argv(wet, os.path.join(tmp, f"out{r}"), models)))
            if args.workers > 1:
                cut = split_wet(wet, os.path.join(tmp, "cut"), args.files) if r == 0 else os.path.join(tmp, "cut")
                cpu[f"stage, {args.files} files, 1 worker"].append(
                    measure(stage_argv(cut, os.path.join(tmp, f"outc{r}"), models, 1))
                )
                cpu[f"stage, {args.files} files, {args.workers} workers"].append(
                    measure(stage_argv(cut, os.path.join(tmp, f"outw{r}"), models, args.workers))
                )
            cpu["stage on one record"].append(measure(stage_argv(one, os.path.join(tmp, f"one{r}"), models)))
            cpu["import apache_beam"].append(measure([sys.executable, "-c", "import apache_beam"]))
        rows = {name: (median([c for c, _ in v]), median([m for _, m in v])) for name, v in cpu.items()}
        for name, (c, m) in rows.items():
            print(f"{name:28s} {c:7.2f} CPU-s  peak RSS {m:6.0f} MiB")
        print(
            f"stage / kernels: {rows['stage'][0] / rows['kernels'][0]:.2f}x CPU; start-up: "
            f"{rows['stage on one record'][0] - rows['import apache_beam'][0]:.2f} CPU-s over Beam's import"
        )
        if args.workers > 1:
            many, one_ = f"stage, {args.files} files, {args.workers} workers", f"stage, {args.files} files, 1 worker"
            print(f"{args.workers} workers / 1 on {args.files} files: {rows[many][0] / rows[one_][0]:.2f}x CPU")
        if args.profile:
            from corpusmill.cli.main import main as cli_main

            prof = cProfile.Profile()
            argv = stage_argv(wet, os.path.join(tmp, "profiled"), models)[1:]
            prof.enable()
            cli_main(argv)
            prof.disable()
            stats = pstats.Stats(prof)
            total = stats.total_tt
            print(f"cProfile of the stage, {total:.2f} s in all; the functions with the most time of their own:")
            entries = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]
            for (path, line, name), (_cc, calls, tottime, cumtime, _callers) in entries:
                print(
                    f"{100 * tottime / total:5.1f}%  own {tottime:6.2f} s  cumulative {cumtime:6.2f} s  "
                    f"{calls:8d} calls  {name} ({os.path.basename(path)}:{line})"
                )


if __name__ == "__main__":
    main()
