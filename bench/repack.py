"""Benchmark: re-packing stored tokens (another seq_len or mixture, ``tokens_from``) against the shard stage
that tokenizes the documents again, in tokens written per second.

    .venv/bin/python bench/repack.py [--copies 40] [beam options]

Input: tests/data/mixing (English and French Wikipedia extracts, Python source), each document ``--copies``
times with new ids, through one recipe run
(tokenizer, tokens, counts, shards at seq_len 128), with weights and an epochs cap of 1 on every source
(``budget_tokens: max``), so a document is packed about once, as in pretraining. Then, timed: (a) the shard stage on the documents,
tokenizing them again (``write_mixed_shards`` without stored tokens), (b) a second manifest with
``tokens_from`` at seq_len 2048 and other weights, (c) the same at seq_len 128. Record the numbers in
docs/mixing.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MIX = os.path.join(HERE, "..", "tests", "data", "mixing")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=40, help="each document this many times, with new ids")
    args, beam_args = ap.parse_known_args()
    os.environ.setdefault("CORPUSMILL_PROGRESS", "0")
    from corpusmill.pipelines.mix import ShardConfig, source_files, write_mixed_shards
    from corpusmill.pipelines.recipe import run_recipe

    sources = {"wiki_en": 0.6, "wiki_fr": 0.15, "code": 0.25}
    with tempfile.TemporaryDirectory() as tmp:
        import dataclasses
        import gzip

        from corpusmill.core.files import read_output

        docs_root = os.path.join(tmp, "docs")
        for name in sources:
            os.makedirs(os.path.join(docs_root, name))
            with gzip.open(os.path.join(docs_root, name, "part-00000.jsonl.gz"), "wt", encoding="utf-8") as fh:
                for d in read_output(os.path.join(MIX, name)):
                    for k in range(args.copies):
                        fh.write(dataclasses.replace(d, id=f"{d.id}-{k}").to_json() + "\n")

        def manifest(name, seq_len, weights, **extra):
            data = {
                "name": name,
                "seed": 7,
                "seq_len": seq_len,
                "budget_tokens": "max",
                "tokenizer": {"vocab_size": 1000, "sample_chars": 300_000},
                "shards": {"rows_per_shard": 2000, "batch_rows": 64, "pack_group_tokens": 500_000},
                "sources": {
                    k: dict(
                        {"weight": w, "epochs": 1.0},
                        **({} if "tokens_from" in extra else {"documents": os.path.join(docs_root, k)}),
                    )
                    for k, w in weights.items()
                },
                "output": os.path.join(tmp, name),
                **extra,
            }
            path = os.path.join(tmp, f"{name}.yaml")
            with open(path, "w", encoding="utf-8") as fh:
                yaml.safe_dump(data, fh)
            return path

        first = run_recipe(manifest("first", 128, sources), beam_args=beam_args, log=lambda *_: None)
        m = first.manifest
        args.budget = first.plan.budget_tokens  # budget max, each source at most one pass: as pretraining mixes
        print(f"budget {args.budget:,} tokens (every source capped at one epoch)")
        start = time.perf_counter()
        write_mixed_shards(
            ShardConfig(
                files={s.name: source_files(s.name, s.documents) for s in m.sources},
                tokenizer=os.path.join(m.output, "tokenizer", "tokenizer.model"),
                output=os.path.join(tmp, "retokenized"),
                plan=first.plan,
                rows_per_shard=2000,
                batch_rows=64,
            ),
            beam_args,
        )
        t_tok = time.perf_counter() - start
        print(
            f"shard stage, tokenizing again: {args.budget:,} tokens in {t_tok:.2f}s = {args.budget / t_tok:,.0f} tokens/s"
        )
        from corpusmill.pipelines.mix import token_files

        start = time.perf_counter()
        write_mixed_shards(
            ShardConfig(
                files={},
                tokens=token_files(os.path.join(m.output, "tokens"), list(sources)),
                tokenizer=os.path.join(m.output, "tokenizer", "tokenizer.model"),
                output=os.path.join(tmp, "repacked"),
                plan=first.plan,
                rows_per_shard=2000,
                batch_rows=64,
            ),
            beam_args,
        )
        t_rep = time.perf_counter() - start
        same = all(
            open(os.path.join(tmp, "repacked", f), "rb").read()
            == open(os.path.join(tmp, "retokenized", f), "rb").read()
            for f in os.listdir(os.path.join(tmp, "repacked"))
            if f.endswith(".arrow")
        )
        print(
            f"shard stage, from the stored tokens: {args.budget:,} tokens in {t_rep:.2f}s = "
            f"{args.budget / t_rep:,.0f} tokens/s ({t_tok / t_rep:.2f}x); the same shard bytes: {same}"
        )
        for name, seq_len, weights in (
            ("anneal2048", 2048, {"wiki_en": 0.5, "wiki_fr": 0.2, "code": 0.3}),
            ("repack128", 128, sources),
        ):
            start = time.perf_counter()
            run_recipe(manifest(name, seq_len, weights, tokens_from=m.output), beam_args=beam_args, log=lambda *_: None)
            took = time.perf_counter() - start
            print(
                f"re-pack from stored tokens (counts + shards), seq_len {seq_len}: {args.budget:,} tokens in "
                f"{took:.2f}s = {args.budget / took:,.0f} tokens/s"
            )


if __name__ == "__main__":
    sys.exit(main())
