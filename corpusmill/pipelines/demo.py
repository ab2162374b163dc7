"""``corpusmill demo``: the whole recipe on bundled real data, on one machine.

1. trains the CCNet quality models (SentencePiece + 5-gram KenLM, perplexity cutoffs, and the
   Wikipedia-reference fastText classifier) on the bundled Wikipedia extracts and low-quality pages;
2. runs ``manifests/demo.yaml`` (``--recipe llama3``: ``manifests/llama3.yaml``) with ``corpusmill run``: the CCNet stage (with those models) over the
   bundled WARCs and every source processor over its bundled sample, the tokenizer, the mixer with the
   LLaMA weights, and the Arrow shard writer;
3. trains a tiny LLaMA on the shards for a few hundred CPU steps;
4. writes the HTML report of the whole run.

A source whose processor is not built is skipped with a line saying so (``corpusmill run`` does that),
never faked. ``--small`` is the reduced size the tests run (fewer training steps).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import yaml

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.stage import Stage
from corpusmill.mixers.manifest import absolute_paths

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(REPO_ROOT, "tests", "data")
MANIFEST = os.path.join(REPO_ROOT, "manifests", "demo.yaml")
MANIFESTS = {"llama1": MANIFEST, "llama3": os.path.join(REPO_ROOT, "manifests", "llama3.yaml")}


def sample_path(*parts: str) -> str:
    path = os.path.join(SAMPLES, *parts)
    if not os.path.exists(path):
        raise CorpusmillError(f"bundled sample {path} is missing: the demo runs from a corpusmill source checkout")
    return path


def demo_manifest(out: str, models: dict, recipe: str = "llama1") -> str:
    """The recipe's manifest (manifests/demo.yaml or llama3.yaml) with absolute paths and the quality models
    on the CC source, written to OUT. LLaMA 1: perplexity buckets and the Wikipedia-reference classifier
    (English kept); Llama 3: the classifier only (its model-based quality filter; every language kept)."""
    manifest = MANIFESTS[recipe]
    with open(manifest, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    absolute_paths(data, os.path.dirname(manifest))
    cc = data["sources"]["cc"].setdefault("options", {})
    cc.update(classifier=[f"en={models['classifier']}"])
    if recipe == "llama1":
        cc.update(lm_dir=models["lm_dir"], cutoffs=models["cutoffs"])
        data["sources"]["cc"]["groups"] = ["en_*"]
    data["output"] = os.path.join(out, "recipe")
    path = os.path.join(out, os.path.basename(manifest))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# written by `corpusmill demo` from manifests/{os.path.basename(manifest)}\n")
        yaml.safe_dump(data, fh, sort_keys=False)
    return path


def run_demo(
    output: str, beam_args=(), small: bool = False, train_steps: int = 0, log=print, recipe: str = "llama1"
) -> dict:
    """Run every step; returns the paths of what it wrote."""
    from corpusmill.pipelines.quality import train_demo_models
    from corpusmill.pipelines.recipe import run_recipe
    from corpusmill.report.make import make_report

    out = os.path.abspath(output)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()

    log("[demo] 1/4 quality models: SentencePiece + KenLM 5-gram, perplexity cutoffs, Wikipedia classifier")
    models = train_demo_models(
        sample_path("quality", "wiki_en.jsonl.gz"),
        [sample_path("quality", "lowq_en.jsonl.gz")],
        os.path.join(out, "models"),
        beam_args=list(beam_args),
        log=log,
    )

    log(f"[demo] 2/4 sources, CCNet stage, tokenizer, mixer and shards (corpusmill run, the {recipe} recipe)")
    manifest = demo_manifest(out, models, recipe)
    recipe = run_recipe(manifest, output=os.path.join(out, "recipe"), beam_args=list(beam_args), log=log)

    steps = train_steps or (60 if small else 300)
    log(f"[demo] 3/4 a tiny LLaMA, {steps} CPU steps on the shards")
    train_dir = os.path.join(out, "train")
    train_tiny(recipe.shards_dir, train_dir, steps)

    log("[demo] 4/4 report")
    report, data = make_report(out, quiet=True)
    log(f"[demo] done in {time.perf_counter() - t0:.0f} s")
    log(f"[demo] report: {report}")
    log(f"[demo] shards: {recipe.shards_dir} (manifest.json, *.arrow; open with corpusmill.tokenize.ShardDataset)")
    log(f"[demo] training log: {os.path.join(train_dir, 'train_log.jsonl')}")
    return {
        "report": report,
        "shards": recipe.shards_dir,
        "train": train_dir,
        "models": models,
        "skipped": dict(getattr(recipe, "skipped", {}) or {}),
    }


def train_tiny(shards_dir: str, out_dir: str, steps: int) -> None:
    import dataclasses
    import json

    from corpusmill.train.configs import load_config
    from corpusmill.train.loop import train

    with open(os.path.join(shards_dir, "manifest.json"), encoding="utf-8") as fh:
        seq_len = int(json.load(fh)["seq_len"])
    model, tcfg = load_config("tiny")
    model = dataclasses.replace(model, max_seq_len=max(model.max_seq_len, seq_len))
    tcfg = dataclasses.replace(
        tcfg,
        steps=steps,
        seq_len=seq_len,
        batch_tokens=8 * seq_len,
        warmup_steps=max(1, steps // 10),
        eval_every=max(1, steps // 4),
        ckpt_every=steps,
        eval_holdout_shards=0,
        log_every=max(1, steps // 10),
    )  # (the manifest's holdout)
    resume = os.path.isdir(os.path.join(out_dir, "checkpoints"))  # a demo killed while training goes on
    summary = train(model, tcfg, shards_dir, out_dir, resume=resume, device="auto")
    print(
        f"done: step {summary['step']}, {losses_said(out_dir)}, {summary['tokens_per_s']:.0f} tokens/s (median)",
        file=sys.stderr,
    )


def losses_said(run_dir: str) -> str:
    """ "loss 8.05 -> 4.86, held-out cc 5.19, ...": the run's first and last training loss and its last
    held-out losses, read from its train_log.jsonl (docs quote what this prints)."""
    import json

    with open(os.path.join(run_dir, "train_log.jsonl"), encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    losses = [r["loss"] for r in records if "loss" in r]
    held = next((r for r in reversed(records) if "eval_loss" in r or "eval_loss_by_source" in r), {})
    by_source = held.get("eval_loss_by_source") or ({"": held["eval_loss"]} if "eval_loss" in held else {})
    said = f"loss {losses[0]:.2f} -> {losses[-1]:.2f}" if losses else "no loss logged"
    if by_source:
        said += ", held-out " + ", ".join(f"{k} {v:.2f}".strip() for k, v in sorted(by_source.items()))
    return said


@dataclasses.dataclass(kw_only=True)
class DemoConfig:
    output: str = option("demo-out", metavar="DIR", help="output directory (finished stages are reused)")
    small: bool = option(False, help="a reduced size (what the tests run)")
    train_steps: int = option(0, min=0, help="tiny-LLaMA steps (0: 300, 60 with --small)")
    recipe: str = option(
        "llama1",
        choices=tuple(MANIFESTS),
        help="llama1: manifests/demo.yaml (LLaMA 1's sources and weights); llama3: "
        "manifests/llama3.yaml (dedup order, PII, domain mix, byte-level BPE)",
    )


def _run(cfg: DemoConfig, beam_args=()) -> dict:
    return run_demo(cfg.output, beam_args, small=cfg.small, train_steps=cfg.train_steps, recipe=cfg.recipe)


STAGE = Stage(name="demo", config=DemoConfig, run=_run, description=__doc__.split("\n\n")[0])
