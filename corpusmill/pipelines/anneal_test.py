"""``corpusmill ablate SPEC --anneal CHECKPOINT --candidate DOCS --share 0.3 --anneal-tokens T``: Llama 3's way
to value a small dataset (docs/ablate.md). A trained checkpoint is annealed twice on T tokens: on the base
mix, and on the base mix with the candidate documents at ``share`` of the tokens (the others scaled by
1 - share); the learning rate goes from where the checkpoint's schedule ended (its peak times
``min_lr_ratio``) to 0 (a cosine over the anneal, no warmup). Both are scored on the shared held-out set,
once per seed (a seed fixes the anneal's data order), and the difference is tested as the variants are.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Dict, List

import yaml

from corpusmill.core.errors import CorpusmillError


def anneal_manifest(
    base_manifest: str, out_dir: str, tokens: int, tokenizer: str, candidate: str = "", share: float = 0.0
) -> str:
    """The base variant's manifest (its sources already documents) for ``tokens`` tokens, with the
    candidate at ``share`` when given."""
    with open(base_manifest, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    data = copy.deepcopy(data)
    data.pop("anneal", None)
    data["budget_tokens"] = int(tokens)
    data["allow_off_target"] = True  # a few thousand tokens hold few documents: the shares are whole documents
    data["allow_empty_holdout"] = True
    data["output"] = os.path.join(out_dir, "run")
    data["tokenizer"] = dict(data.get("tokenizer") or {}, model=tokenizer)  # the checkpoint's, not a new one
    if candidate:
        if "candidate" in data["sources"]:
            raise CorpusmillError("--candidate: the base manifest already has a source named candidate")
        total = sum(float(s.get("weight", 0)) for s in data["sources"].values())
        for spec in data["sources"].values():
            spec["weight"] = float(spec.get("weight", 0)) / total * (1 - share)
        data["sources"]["candidate"] = {"documents": os.path.abspath(candidate), "weight": share}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "manifest.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return path


def anneal_one(
    spec, checkpoint: str, shards_dir: str, out_dir: str, seed: int, tokens: int, eval_sets, tokenizer
) -> dict:
    """Continue ``checkpoint`` on ``shards_dir`` for ``tokens`` tokens, the learning rate to 0; scored."""
    import torch

    from corpusmill.train.configs import load_config
    from corpusmill.train.evaluate import evaluate_run
    from corpusmill.train.export import export_hf, load_trained
    from corpusmill.train.loop import train

    result_path = os.path.join(out_dir, "result.json")
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as fh:
            return json.load(fh)
    torch.set_num_threads(1)
    model, cfg, tok, meta = load_trained(checkpoint, tokenizer)
    hf = os.path.join(out_dir, "start")
    if not os.path.exists(os.path.join(hf, "config.json")):
        export_hf(model, cfg, tok, hf, overwrite=True)
    with open(os.path.join(shards_dir, "manifest.json"), encoding="utf-8") as fh:
        seq_len = int(json.load(fh)["seq_len"])
    trained = (meta.get("config") or {}).get("train", {})
    _m, tcfg = load_config(spec.model)
    peak = float(trained.get("lr", tcfg.lr))
    end = peak * float(trained.get("min_lr_ratio", tcfg.min_lr_ratio))
    steps = max(1, tokens // (spec.batch_rows * seq_len))
    tcfg = dataclasses.replace(
        tcfg,
        lr=end,
        min_lr_ratio=0.0,
        warmup_steps=0,
        steps=steps,
        seq_len=seq_len,
        batch_tokens=spec.batch_rows * seq_len,
        seed=seed,
        eval_every=0,
        eval_holdout_shards=0,
        ckpt_every=steps,
        log_every=max(1, steps // 10),
    )
    train(
        cfg, tcfg, shards_dir, os.path.join(out_dir, "run"), init_from=hf, device=spec.device, stream=None, resume=True
    )
    result = {
        "seed": seed,
        "steps": steps,
        "lr_from": end,
        "held_out": evaluate_run(os.path.join(out_dir, "run"), eval_sets, tokenizer),
    }
    with open(result_path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
    os.replace(result_path + ".tmp", result_path)
    return result


def anneal_test(
    spec, out: str, checkpoint: str, candidate: str, share: float, tokens: int, eval_sets, tokenizer, beam_args, log
) -> dict:
    from corpusmill.core.significance import mean_std, paired_t
    from corpusmill.pipelines.recipe import run_recipe

    if not 0 < share < 1:
        raise CorpusmillError(f"--share {share}: expected a share of the anneal's tokens in (0, 1)")
    base_manifest = os.path.join(out, "variants", "base", "manifest.yaml")
    runs = {}
    for name, cand in (("without", ""), ("with", candidate)):
        d = os.path.join(out, "anneal", name)
        runs[name] = run_recipe(
            anneal_manifest(base_manifest, d, tokens, tokenizer, cand, share), beam_args=beam_args, log=lambda *_: None
        )
    results: Dict[str, List[dict]] = {}
    for name, run in runs.items():
        for seed in spec.seeds:
            log(f"[ablate] anneal {name} the candidate, seed {seed}")
            d = os.path.join(out, "anneal", name, f"seed-{seed}")
            results.setdefault(name, []).append(
                anneal_one(spec, checkpoint, run.shards_dir, d, seed, tokens, eval_sets, tokenizer)
            )
    table = {}
    for s in sorted({k for r in results["without"] for k in r["held_out"]}):
        a = [r["held_out"][s]["loss"] for r in results["without"]]
        b = [r["held_out"][s]["loss"] for r in results["with"]]
        test = paired_t(a, b)
        if test is not None:
            test["outside_seed_noise"] = test["p"] < spec.alpha
        table[s] = {"without": mean_std(a), "with": mean_std(b), "with_minus_without": test}
    share_got = runs["with"].shards_manifest["mixture"]["candidate"]["share"]
    return {
        "checkpoint": os.path.abspath(checkpoint),
        "candidate": os.path.abspath(candidate),
        "share": share,
        "candidate_share_achieved": share_got,
        "tokens": tokens,
        "table": table,
        "runs": results,
    }
