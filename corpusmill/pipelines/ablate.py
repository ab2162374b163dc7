"""``corpusmill ablate SPEC.yaml --output DIR``: prove a data choice by training (docs/ablate.md).

DCLM's idea, in one command: a fixed model, budget and schedule; only the data changes. The spec names a
base manifest and variants of it; for each variant the recipe runs (a source whose processor, inputs and
options are unchanged is not run again: source outputs are kept under ``DIR/cache/`` by the fingerprint of
their configuration), the shards are tokenized with ONE tokenizer (the base's), and ``--seeds`` tiny LLaMAs
are trained per variant with the same budget and schedule (a seed fixes the initialisation and the data
order, so the same seed pairs the variants). Every model is evaluated on ONE held-out set: the base run's
held-out documents (set aside by a hash of their id, which no variant trains on; checked by content
against the base's training rows). Results: ``DIR/ablate.json`` and ``DIR/ablate.html`` (a table per
variant: held-out loss and bits per byte, per source and pooled, mean +- std over seeds, the difference to
the base with a paired t-test, and the loss curves).

Spec::

    base: ../manifests/demo.yaml      # a manifest, or demo:llama1 (the demo's, with its quality models)
    set: {sources.wikipedia.holdout: 0.3}   # changes of the base itself (every variant starts from them)
    budget_tokens: 300000             # the recipe's budget for every variant (optional)
    model: tiny                       # a named model config (corpusmill/train/configs.py)
    steps: 150                        # training steps, the same for every run
    batch_rows: 8                     # rows of seq_len + 1 tokens per step
    seeds: [1, 2, 3]
    variants:
      no_line_dedup:
        set: {sources.cc.options.line_max_docs: 1000000000}     # dotted keys of the manifest
      tail_only:
        set: {sources.cc.options.keep_buckets: [tail]}
      shuffled_wikipedia:
        corrupt: {wikipedia: shuffle_words}                       # the source's words shuffled per document

A run resumes after a kill: the recipe's stages, each training run's checkpoints and each finished run's
``result.json`` are kept; the same spec and seeds give the same numbers to the last digit on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.stage import Stage
from corpusmill.pipelines.ablate_variants import (  # noqa: F401 (the spec's names, read here too)
    ALPHA,
    BASE,
    CORRUPTIONS,
    SPEC_KEYS,
    Spec,
    base_manifest,
    check_variants,
    load_spec,
    set_dotted,
    shuffle_words,
    variant_manifest,
)


@dataclasses.dataclass
class AblateConfig:
    spec: str = option(required=True, metavar="SPEC", help="the ablation spec (YAML; docs/ablate.md)")
    output: str = option(required=True, metavar="DIR", help="where the variants, runs and results go")
    seeds: Optional[List[int]] = option(None, metavar="N", help="override the spec's seeds")
    mix_search: int = option(
        0,
        min=0,
        metavar="K",
        help="also fit a mixture law: K mixtures drawn around the base's weights, one model each, a linear fit of "
        "held-out loss on the shares, the best predicted mixture trained once more (docs/ablate.md)",
    )
    mix_target: str = option("pooled", metavar="SET", help="--mix-search minimizes this held-out set's loss")
    anneal: Optional[str] = option(
        None,
        metavar="CHECKPOINT",
        help="also value a candidate dataset Llama 3's way: anneal this checkpoint on the base mix with and without "
        "--candidate at --share of --anneal-tokens, the learning rate to 0, and compare on the held-out set",
    )
    candidate: Optional[str] = option(
        None, metavar="DOCS", help="--anneal: the candidate documents (a corpusmill output)"
    )
    share: float = option(0.3, min=0.0, max=1.0, help="--anneal: the candidate's share of the anneal's tokens")
    anneal_tokens: int = option(50_000, min=1, metavar="T", help="--anneal: tokens of each annealing run")
    device: str = option(
        "cpu",
        metavar="DEVICE",
        help="where the models train: cpu (the same numbers to the last digit), cuda, or auto (the trainer's --device)",
    )
    jobs: int = option(
        0,
        min=0,
        metavar="N",
        help="training runs at once, one process each (0: one per core); the numbers do not change",
    )


# -- training and evaluation ------------------------------------------------------------------------------
def train_one(spec: Spec, shards_dir: str, out_dir: str, seed: int, eval_sets: Dict[str, str], tokenizer: str) -> dict:
    """One tiny LLaMA on a variant's shards, evaluated on the shared held-out sets; ``result.json`` marks
    it finished (a rerun reads it; a killed run resumes from its checkpoint)."""
    from corpusmill.train.configs import load_config
    from corpusmill.train.evaluate import evaluate_run
    from corpusmill.train.loop import train

    result_path = os.path.join(out_dir, "result.json")
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as fh:
            return json.load(fh)
    with open(os.path.join(shards_dir, "manifest.json"), encoding="utf-8") as fh:
        seq_len = int(json.load(fh)["seq_len"])
    model, tcfg = load_config(spec.model)
    model = dataclasses.replace(model, max_seq_len=max(model.max_seq_len, seq_len))
    tcfg = dataclasses.replace(
        tcfg,
        steps=spec.steps,
        seq_len=seq_len,
        batch_tokens=spec.batch_rows * seq_len,
        warmup_steps=spec.warmup if spec.warmup is not None else max(1, spec.steps // 10),
        lr=spec.lr if spec.lr is not None else tcfg.lr,
        seed=seed,
        eval_every=0,
        eval_holdout_shards=0,
        ckpt_every=max(10, spec.steps // 3),
        log_every=max(1, spec.steps // 30),
    )
    import torch

    torch.set_num_threads(1)  # one thread per run: the same numbers however many runs go at once
    train(model, tcfg, shards_dir, out_dir, resume=True, device=spec.device, stream=None)
    evaluation = evaluate_run(out_dir, eval_sets, tokenizer)
    curve = []
    with open(os.path.join(out_dir, "train_log.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            entry = json.loads(line)
            if "loss" in entry and "step" in entry:
                curve.append([entry["step"], entry["loss"]])
    result = {"seed": seed, "held_out": evaluation, "train_curve": curve}
    with open(result_path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
    os.replace(result_path + ".tmp", result_path)
    return result


def eval_seen_in(eval_sets: Dict[str, str], shards_dir: str) -> float:
    """The share of the shared held-out tokens that sit in a 32-token window found in a variant's training
    rows (corpusmill.mixers.contamination): the check that no variant trains on what everyone is measured on."""
    import numpy as np

    from corpusmill.mixers import contamination as cm
    from corpusmill.tokenize import ShardDataset

    rows = [ShardDataset(p) for p in eval_sets.values()]
    table = cm.union(cm.window_hashes(ds[i][0]) for ds in rows for i in range(len(ds)))
    train = ShardDataset(shards_dir)
    seen = cm.union(h[cm.found_in(h, table)] for h in (cm.window_hashes(train[i][0]) for i in range(len(train))))
    tokens = covered = 0
    for ds in rows:
        for i in range(len(ds)):
            toks = np.asarray(ds[i][0])
            tokens += len(toks)
            covered += cm.seen_share(toks, seen) * len(toks)
    return covered / tokens if tokens else 0.0


def summarize(results: Dict[str, List[dict]], alpha: float) -> Dict[str, dict]:
    """Per variant: mean +- std over seeds of the pooled and per-source loss and bits per byte, and the
    paired difference to the base (t-test over the seeds)."""
    from corpusmill.core.significance import mean_std, paired_t

    table: Dict[str, dict] = {}
    base = {r["seed"]: r for r in results.get(BASE, [])}
    for name, runs in results.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        sets = sorted({k for r in runs for k in r["held_out"]})
        row = {"seeds": [r["seed"] for r in runs], "sets": {}}
        for s in sets:
            for metric in ("loss", "bits_per_byte"):
                values = [r["held_out"][s][metric] for r in runs if s in r["held_out"]]
                mean, std = mean_std(values)
                entry = row["sets"].setdefault(s, {})
                entry[metric] = {"mean": mean, "std": std, "values": values}
                if name != BASE and base:
                    paired = [base[r["seed"]]["held_out"][s][metric] for r in runs if r["seed"] in base]
                    test = paired_t(paired, values) if len(paired) == len(values) else None
                    if test is not None:
                        test["outside_seed_noise"] = test["p"] < alpha
                    entry[metric]["vs_base"] = test
        table[name] = row
    return table


def run_ablation(cfg: AblateConfig, beam_args: Sequence[str] = (), log=None) -> dict:
    from corpusmill.pipelines.recipe import run_recipe

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    spec = load_spec(cfg.spec)
    if cfg.seeds:
        spec = dataclasses.replace(spec, seeds=list(cfg.seeds))
    spec = dataclasses.replace(spec, device=cfg.device)
    out = os.path.abspath(cfg.output)
    os.makedirs(out, exist_ok=True)
    base = base_manifest(spec, out, log)
    names = [BASE] + list(spec.variants)
    check_variants(spec, base, names, out)  # every variant's changes checked before anything runs
    runs: Dict[str, object] = {}
    tokenizer = None
    for name in names:  # the base first: its tokenizer and held-out sets are everyone's
        log(f"[ablate] variant {name}: the recipe")
        path = variant_manifest(spec, base, name, out, tokenizer, beam_args, log)
        runs[name] = run_recipe(path, beam_args=beam_args, log=lambda *_: None)
        if name == BASE:
            tokenizer = os.path.join(runs[name].shards_dir, "tokenizer.model")
    base_run = runs[BASE]
    eval_root = os.path.join(base_run.shards_dir, "eval")
    if not os.path.isdir(eval_root):
        raise CorpusmillError(
            f"{spec.path}: base: its manifest holds nothing out; give sources a holdout (the shared held-out set)"
        )
    eval_sets = {s: os.path.join(eval_root, s) for s in sorted(os.listdir(eval_root))}
    jobs = [(name, seed) for name in names for seed in spec.seeds]
    workers = max(1, min(cfg.jobs or (os.cpu_count() or 1), len(jobs)))
    log(f"[ablate] {len(jobs)} training runs ({len(names)} variants x {len(spec.seeds)} seeds), {workers} at once")
    args = {
        (name, seed): (
            spec,
            runs[name].shards_dir,
            os.path.join(out, "variants", name, f"seed-{seed}"),
            seed,
            eval_sets,
            tokenizer,
        )
        for name, seed in jobs
    }
    done: Dict[tuple, dict] = {}
    if workers == 1:
        for job in jobs:
            log(f"[ablate] variant {job[0]}, seed {job[1]}: {spec.steps} steps of the {spec.model} model")
            done[job] = train_one(*args[job])
    else:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(train_one, *args[job]): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                done[job] = future.result()
                log(f"[ablate] variant {job[0]}, seed {job[1]}: done ({len(done)} of {len(jobs)})")
    results: Dict[str, List[dict]] = {}
    for job in jobs:  # in the spec's order, whichever finished first
        results.setdefault(job[0], []).append(done[job])
    searched = None
    if cfg.mix_search:
        from corpusmill.pipelines.mix_search import search

        log(f"[ablate] mixture search: {cfg.mix_search} mixtures around the base's weights")
        searched = search(
            spec, base, runs[BASE], cfg.mix_search, cfg.mix_target, out, eval_sets, tokenizer, beam_args, log
        )
    annealed = None
    if cfg.anneal:
        from corpusmill.pipelines.anneal_test import anneal_test

        if not cfg.candidate:
            raise CorpusmillError("--anneal needs --candidate DOCS (the documents whose value is measured)")
        annealed = anneal_test(
            spec, out, cfg.anneal, cfg.candidate, cfg.share, cfg.anneal_tokens, eval_sets, tokenizer, beam_args, log
        )
    table = summarize(results, spec.alpha)
    for name in names:
        table[name]["eval_seen_in_training"] = round(eval_seen_in(eval_sets, runs[name].shards_dir), 6)
    report = {
        "spec": os.path.abspath(spec.path),
        "model": spec.model,
        "steps": spec.steps,
        "batch_rows": spec.batch_rows,
        "seeds": spec.seeds,
        "alpha": spec.alpha,
        "held_out": {s: os.path.relpath(p, out) for s, p in eval_sets.items()},
        "variants": {n: {"change": spec.variants.get(n, {}) if n != BASE else {}} for n in names},
        "table": table,
        "runs": results,
    }
    if searched is not None:
        report["mix_search"] = searched
    if annealed is not None:
        report["anneal"] = annealed
    with open(os.path.join(out, "ablate.json.tmp"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, sort_keys=True)
    os.replace(os.path.join(out, "ablate.json.tmp"), os.path.join(out, "ablate.json"))
    from corpusmill.report.ablate import write_ablate_html

    write_ablate_html(report, os.path.join(out, "ablate.html"))
    return report


def format_table(report: dict) -> str:
    lines = [
        f"held-out (the base's held-out documents, every model), {len(report['seeds'])} seeds, "
        f"{report['steps']} steps of {report['model']}:"
    ]
    for name, row in report["table"].items():
        pooled = row["sets"].get("pooled", {})
        loss, bpb = pooled.get("loss", {}), pooled.get("bits_per_byte", {})
        line = f"  {name:<22} loss {loss.get('mean', 0):.4f} +- {loss.get('std', 0):.4f}   bits/byte {bpb.get('mean', 0):.4f} +- {bpb.get('std', 0):.4f}"
        test = loss.get("vs_base")
        if test:
            noise = "outside the seed noise" if test["outside_seed_noise"] else "inside the seed noise"
            line += f"   vs base {test['mean_diff']:+.4f} (paired t {test['t']:.2f}, p {test['p']:.3f}: {noise})"
        line += f"   held-out tokens seen in its training {100 * row.get('eval_seen_in_training', 0):.1f}%"
        lines.append(line)
    return "\n".join(lines)


def _show(cfg: AblateConfig, report: dict) -> None:
    print(format_table(report))
    s = report.get("mix_search")
    if s:
        print(
            f"mixture law ({s['k']} mixtures, {s['target']} loss): R^2 {s['fit']['r2']:.3f}, leave-one-out error "
            f"{s['fit']['loo_rmse']:.4f}; best predicted mixture "
            + ", ".join(f"{n} {w:.3f}" for n, w in s["best"]["weights"].items())
            + f": predicted {s['best']['predicted']:.4f}, measured {s['best']['measured']:.4f}"
        )
    a = report.get("anneal")
    if a:
        pooled = a["table"].get("pooled", {})
        test = pooled.get("with_minus_without") or {}
        noise = "outside the seed noise" if test.get("outside_seed_noise") else "inside the seed noise"
        print(
            f"annealing test ({a['tokens']:,} tokens, the candidate at {a['candidate_share_achieved']:.3f}): held-out "
            f"loss without {pooled['without'][0]:.4f}, with {pooled['with'][0]:.4f}, difference "
            f"{test.get('mean_diff', 0):+.4f} (p {test.get('p', 1):.3f}: {noise})"
        )
    print(f"table: {os.path.join(os.path.abspath(cfg.output), 'ablate.json')}, report: ablate.html")


STAGE = Stage(
    name="ablate",
    config=AblateConfig,
    run=lambda cfg, beam_args: run_ablation(cfg, beam_args),
    show=_show,
    positional=("spec",),
    description="Train tiny LLaMAs on variants of a manifest (a threshold, a step, a source's weight, a "
    "corrupted source) with the same model, budget and seeds, evaluate each on one shared held-out set, "
    "and write the table (mean +- std over seeds, the paired difference to the base): docs/ablate.md.",
)
