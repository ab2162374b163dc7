"""Benchmark: tokenization in the pipeline vs a plain SentencePiece loop; random access to shards.

    .venv/bin/python bench/tokenize_shards.py [--repeat 20] [--vocab 8000] [--seq-len 2048] [-- beam options]

Corpus: the bundled real documents of tests/data/mixing (English and French Wikipedia extracts, stdlib
modules), written ``--repeat`` times under new ids (so the pipeline sees that many distinct
documents). A tokenizer is trained on it once (LLaMA options). Then, on the same text:

1. ``sp.encode`` one document at a time in a plain loop (one core), and ``sp.encode(list,
   num_threads=N)`` (SentencePiece's own threads);
2. the count stage (read + the ``tokenize`` step + a per-source sum) on the DirectRunner, in memory and
   with ``--direct_running_mode=multi_processing --direct_num_workers=2``;
3. the shard stage (tokenize again, draw, pack, shuffle, write) in memory;
4. random access through ``ShardDataset``: single rows (zero-copy views) and batches of 32 (copied),
   plus opening with checksum verification.

Prints one line per measurement; record them in docs/mixing.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from corpusmill.core.document import Document
from corpusmill.core.files import read_output
from corpusmill.io.documents import write_documents_file
from corpusmill.mixers.manifest import parse_manifest
from corpusmill.mixers.plan import plan_mixture
from corpusmill.pipelines.mix import CountConfig, ShardConfig, count_tokens, source_files, write_mixed_shards
from corpusmill.tokenize import ShardDataset
from corpusmill.tokenize.tokenizer import train_sentencepiece

MIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "mixing")
SOURCES = ("wiki_en", "wiki_fr", "code")


def build_corpus(root: str, repeat: int) -> dict:
    texts = {}
    for name in SOURCES:
        docs = read_output(os.path.join(MIX, name))
        out = [Document(id=f"{d.id}#{k}", text=d.text, source=name) for k in range(repeat) for d in docs]
        write_documents_file(os.path.join(root, name, "part-00000.jsonl.gz"), out, "jsonl")
        texts[name] = [d.text for d in out]
    return texts


def line(label: str, tokens: int, seconds: float, extra: str = "") -> None:
    print(f"{label:<52} {tokens:>11,} tokens {seconds:>8.2f} s {tokens / seconds:>12,.0f} tokens/s {extra}", flush=True)


PLAIN_LOOP = """
import sys
from corpusmill.core.files import read_documents_file
from corpusmill.tokenize.tokenized import encode_tokens
from corpusmill.tokenize.tokenizer import TokenizedDoc, load_tokenizer
docs_dir, model, out = sys.argv[1:]
tok = load_tokenizer(model)
docs = [TokenizedDoc(d.id, name, tok.encode(d.text), d.nbytes) for name in sorted(%r)
        for d in read_documents_file(f"{docs_dir}/{name}/part-00000.jsonl.gz")]
with open(out, "wb") as fh:
    encode_tokens(docs, fh)
"""
STAGE = """
import sys
from corpusmill.pipelines.tokens import TokensConfig, write_tokens
docs_dir, model, out = sys.argv[1:]
files = {name: [f"{docs_dir}/{name}/part-00000.jsonl.gz"] for name in %r}
write_tokens(TokensConfig(files=files, tokenizer=model, output=out, overwrite=True), [])
"""
HELPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL); r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime)"
)


def cpu_comparison(docs_dir: str, model_path: str, repeat: int, rounds: int) -> None:
    """The tokens stage (corpusmill.pipelines.tokens, one worker) and a plain loop (read every document, sp.encode
    it, write the tokens as one Arrow file), each a fresh process; CPU seconds, medians of ``rounds``."""
    import statistics
    import subprocess

    env = dict(os.environ, CORPUSMILL_PROGRESS="0", CORPUSMILL_WORKERS="1")
    out = tempfile.mkdtemp(prefix="bench-tokens-")
    runs = {"plain loop": [], "tokens stage": []}
    for r in range(rounds):
        for name, script, target in (
            ("plain loop", PLAIN_LOOP, os.path.join(out, f"loop{r}.arrow")),
            ("tokens stage", STAGE, os.path.join(out, f"stage{r}")),
        ):
            got = subprocess.run(
                [sys.executable, "-c", HELPER, sys.executable, "-c", script % (SOURCES,), docs_dir, model_path, target],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            runs[name].append(float(got.stdout))
    med = {name: statistics.median(v) for name, v in runs.items()}
    for name, v in runs.items():
        print(f"{name:<14} {med[name]:7.2f} CPU-s (rounds: {', '.join(f'{x:.2f}' for x in v)})  [{repeat} copies]")
    print(f"tokens stage / plain loop: {med['tokens stage'] / med['plain loop']:.2f}x CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="copies of the bundled documents (default: 20)")
    ap.add_argument("--vocab", type=int, default=8000, help="vocabulary size (default: 8000)")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--reads", type=int, default=200_000, help="random single-row reads (default: 200000)")
    ap.add_argument("--workdir", default=None, help="keep the files here (default: a temporary directory)")
    ap.add_argument(
        "--cpu",
        action="store_true",
        help="only: the recipe's tokens stage against a plain loop that "
        "reads, encodes and writes the same files, in CPU seconds",
    )
    ap.add_argument("--rounds", type=int, default=3, help="with --cpu: alternating rounds (the median is printed)")
    args, beam_args = ap.parse_known_args()
    beam_args = [a for a in beam_args if a != "--"]
    work = args.workdir or tempfile.mkdtemp(prefix="bench-tokenize-")
    import sentencepiece as spm

    texts = build_corpus(os.path.join(work, "docs"), args.repeat)
    all_texts = [t for name in SOURCES for t in texts[name]]
    chars = sum(map(len, all_texts))
    print(
        f"corpus: {len(all_texts):,} documents, {chars / 1e6:.1f} M characters ({args.repeat} copies); "
        f"cpus: {os.cpu_count()}",
        flush=True,
    )
    model = train_sentencepiece(
        (ln for t in all_texts[: len(all_texts) // args.repeat] for ln in t.splitlines() if ln.strip()),
        args.vocab,
        threads=2,
    )
    model_path = os.path.join(work, "tokenizer.model")
    with open(model_path, "wb") as fh:
        fh.write(model)
    if args.cpu:
        cpu_comparison(os.path.join(work, "docs"), model_path, args.repeat, args.rounds)
        return
    sp = spm.SentencePieceProcessor(model_file=model_path)

    t = time.perf_counter()
    n = sum(len(sp.encode(text)) for text in all_texts)
    line("plain loop: sp.encode(text) per document", n, time.perf_counter() - t, "(1 core)")
    for threads in (1, 2):
        t = time.perf_counter()
        n = sum(len(ids) for ids in sp.encode(all_texts, num_threads=threads))
        line(f"batched: sp.encode(all, num_threads={threads})", n, time.perf_counter() - t)

    files = {name: source_files(name, os.path.join(work, "docs", name)) for name in SOURCES}
    runs = [("count stage, DirectRunner in memory", list(beam_args))]
    if not beam_args:
        runs.append(
            (
                "count stage, DirectRunner multi_processing x2",
                ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
            )
        )
    counts = None
    for label, bargs in runs:
        t = time.perf_counter()
        counts = count_tokens(
            CountConfig(files=files, tokenizer=model_path, output=os.path.join(work, "counts"), overwrite=True), bargs
        )
        seconds = time.perf_counter() - t
        ids = sum(s["tokens"] - 2 * s["documents"] for s in counts["sources"].values())
        line(label, ids, seconds, "(ids, without BOS/EOS; includes Beam start-up)")

    manifest = parse_manifest(
        {
            "output": work,
            "seed": 1,
            "seq_len": args.seq_len,
            "budget_tokens": 10**9,
            "shards": {"rows_per_shard": 512, "batch_rows": 128, "pack_group_tokens": 4_000_000},
            "sources": {
                "wiki_en": {"weight": 0.5, "documents": os.path.join(work, "docs", "wiki_en")},
                "wiki_fr": {"weight": 0.25, "documents": os.path.join(work, "docs", "wiki_fr")},
                "code": {"weight": 0.25, "documents": os.path.join(work, "docs", "code")},
            },
        },
        os.path.join(work, "bench.yaml"),
    )
    total = sum(s["tokens"] for s in counts["sources"].values())
    manifest.budget_tokens = int(total * 1.5)
    plan = plan_mixture(manifest, counts["sources"])
    shards_dir = os.path.join(work, "shards")
    t = time.perf_counter()
    man = write_mixed_shards(
        ShardConfig(
            files=files,
            tokenizer=model_path,
            output=shards_dir,
            plan=plan,
            rows_per_shard=512,
            batch_rows=128,
            overwrite=True,
        ),
        beam_args,
    )
    line(
        "shard stage (tokenize, draw 1.5x, pack, shuffle, write)",
        man["tokens"],
        time.perf_counter() - t,
        f"({man['rows']:,} rows, {len(man['shards'])} shards)",
    )

    t = time.perf_counter()
    ds = ShardDataset(shards_dir, verify=True)
    seconds = time.perf_counter() - t
    size = sum(s["bytes"] for s in man["shards"])
    print(
        f"{'open with sha256 verification':<52} {size / 1e6:>8.1f} MB {seconds:>8.2f} s "
        f"{size / 1e6 / seconds:>9,.0f} MB/s",
        flush=True,
    )
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(ds), size=args.reads)
    width = ds.seq_len + 1
    for i in idx[:1000]:  # warm the page cache and the per-batch views
        ds[int(i)]
    t = time.perf_counter()
    acc = 0
    for i in idx:
        tokens, starts = ds[int(i)]
        acc += int(tokens[0])
    seconds = time.perf_counter() - t
    print(
        f"{'random single rows ds[i] (views)':<52} {len(idx):>11,} rows {seconds:>8.2f} s "
        f"{len(idx) / seconds:>12,.0f} rows/s {len(idx) * width / seconds:>14,.0f} tokens/s",
        flush=True,
    )
    batches = idx[: (len(idx) // 32) * 32].reshape(-1, 32)
    t = time.perf_counter()
    for b in batches:
        rows, _ = ds.get_batch(b.tolist())
        acc += int(rows[0, 0])
    seconds = time.perf_counter() - t
    print(
        f"{'random batches of 32 ds.get_batch (copied)':<52} {batches.size:>11,} rows {seconds:>8.2f} s "
        f"{batches.size / seconds:>12,.0f} rows/s {batches.size * width / seconds:>14,.0f} tokens/s",
        flush=True,
    )
    print(f"work directory: {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
