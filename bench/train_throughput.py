"""Training throughput (tokens/s) of a small LLaMA config on CPU, three ways, on the same real shards:

1. ``corpusmill``: the trainer itself (``corpusmill.train.loop.train``: data order, shard reads,
   accumulation, clipping, schedule, JSONL logging, a checkpoint at the end);
2. ``reference loop``: the same model in a minimal PyTorch loop (batches pre-loaded, AdamW, clip);
3. ``HF transformers``: ``LlamaForCausalLM`` of the same shape (SDPA attention) in that minimal loop,
   if ``transformers`` is installed.

Steady-state tokens/s = median over the steps after the first ``--warmup`` of each run; the three
run in turns, ``--rounds`` times, so load from other jobs on the machine hits them alike. Usage::

    .venv/bin/python bench/train_throughput.py [--config small] [--steps 12] [--rounds 3] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from corpusmill.tokenize import ShardDataset
from corpusmill.train.configs import load_config
from corpusmill.train.data import DataOrder, load_rows
from corpusmill.train.loop import param_groups, train
from corpusmill.train.model import Transformer
from corpusmill.train.sample import build_sample_shards


def _batches(ds, rows, n_steps, seed=0):
    order = DataOrder(len(ds), seed)
    out = []
    for s in range(n_steps):
        tokens, _ = load_rows(ds, order.rows(s * rows, rows), False)
        t = torch.from_numpy(tokens)
        out.append((t[:, :-1].contiguous(), t[:, 1:].contiguous()))
    return out


def _loop(model, logits_fn, batches, lr, warmup):
    """tokens/s of each step after ``warmup``."""
    opt = torch.optim.AdamW(param_groups(model, 0.1, True), lr=lr, betas=(0.9, 0.95))
    times = []
    for x, y in batches:
        t0 = time.perf_counter()
        logits = logits_fn(model, x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    tokens = batches[0][0].numel()
    return [tokens / t for t in times[warmup:]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="small")
    ap.add_argument("--steps", type=int, default=12, help="steps per run")
    ap.add_argument("--warmup", type=int, default=3, help="first steps of each run not counted")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each of the three, in turns")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--data", default=None, help="shards (default: stdlib-docstring sample shards, built here)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model_cfg, train_cfg = load_config(a.config)
    work = tempfile.mkdtemp(prefix="corpusmill-bench-")
    data = a.data or os.path.join(work, "shards")
    if not a.data:
        build_sample_shards(data, seq_len=train_cfg.seq_len, vocab_size=1024, rows_per_shard=256)
    ds = ShardDataset(data, verify=False)
    model_cfg = dataclasses.replace(
        model_cfg, vocab_size=model_cfg.vocab_size or ds.vocab_size, max_seq_len=max(model_cfg.max_seq_len, ds.seq_len)
    )
    rows = train_cfg.batch_tokens // train_cfg.seq_len
    results = {
        "config": a.config,
        "params": model_cfg.num_params(),
        "seq_len": ds.seq_len,
        "batch_rows": rows,
        "tokens_per_step": rows * ds.seq_len,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "loadavg_before": os.getloadavg()[0],
    }

    # The three are run in turns (--rounds), so a machine shared with other jobs slows them alike.
    batches = _batches(ds, rows, a.steps)
    tc = dataclasses.replace(
        train_cfg,
        steps=a.steps,
        warmup_steps=max(1, a.steps // 5),
        ckpt_every=0,
        eval_every=0,
        log_every=10**9,
        micro_batch=0,
    )
    samples = {"corpusmill_tokens_per_s": [], "reference_loop_tokens_per_s": [], "hf_transformers_tokens_per_s": []}
    try:
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        transformers = None
        results["hf_note"] = "transformers is not installed"
    for rnd in range(a.rounds):
        # 1. the trainer
        out = os.path.join(work, f"run{rnd}")
        train(model_cfg, tc, data, out, stream=None, verify_data=False)
        with open(os.path.join(out, "train_log.jsonl")) as fh:
            recs = [json.loads(line) for line in fh if '"loss"' in line]
        samples["corpusmill_tokens_per_s"] += [r["tokens_per_s"] for r in recs[a.warmup :]]
        # 2. the same model in a minimal loop
        torch.manual_seed(0)
        model = Transformer(model_cfg)
        model.init_weights(generator=torch.Generator().manual_seed(0))
        samples["reference_loop_tokens_per_s"] += _loop(model, lambda m, x: m(x), batches, tc.lr, a.warmup)
        # 3. Hugging Face transformers' LLaMA of the same shape
        if transformers is not None:
            hf_cfg = LlamaConfig(
                vocab_size=model_cfg.vocab_size,
                hidden_size=model_cfg.dim,
                intermediate_size=model_cfg.ffn_hidden,
                num_hidden_layers=model_cfg.n_layers,
                num_attention_heads=model_cfg.n_heads,
                num_key_value_heads=model_cfg.kv_heads,
                max_position_embeddings=model_cfg.max_seq_len,
                rms_norm_eps=model_cfg.norm_eps,
                rope_theta=model_cfg.rope_theta,
                tie_word_embeddings=False,
                attention_bias=False,
                mlp_bias=False,
                attn_implementation="sdpa",
            )
            torch.manual_seed(0)
            hf = LlamaForCausalLM(hf_cfg)
            assert sum(p.numel() for p in hf.parameters()) == model_cfg.num_params()
            hf.train()
            samples["hf_transformers_tokens_per_s"] += _loop(
                hf, lambda m, x: m(input_ids=x, use_cache=False).logits, batches, tc.lr, a.warmup
            )
            results["hf_transformers_version"] = transformers.__version__
    for key, vals in samples.items():
        results[key] = statistics.median(vals) if vals else None
        results[key.replace("_tokens_per_s", "_best_tokens_per_s")] = max(vals) if vals else None
    results["loadavg_after"] = os.getloadavg()[0]

    print(
        f"config {a.config}: {results['params'] / 1e6:.2f}M params, {rows} x {ds.seq_len} = "
        f"{results['tokens_per_step']} tokens/step, {results['threads']} threads, torch {torch.__version__}"
    )
    for key, name in (
        ("corpusmill_tokens_per_s", "corpusmill trainer"),
        ("reference_loop_tokens_per_s", "same model, minimal loop"),
        ("hf_transformers_tokens_per_s", "HF LlamaForCausalLM, minimal loop"),
    ):
        v, best = results[key], results[key.replace("_tokens_per_s", "_best_tokens_per_s")]
        print(f"  {name:36s} " + (f"{v:8.0f} tokens/s median, {best:8.0f} best" if v else results.get("hf_note", "-")))
    print(
        f"  load average {results['loadavg_before']:.2f} before, {results['loadavg_after']:.2f} after "
        f"({results['cpu_count']} CPUs)"
    )
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
