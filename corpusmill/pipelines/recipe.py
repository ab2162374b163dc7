"""``corpusmill run MANIFEST``: the whole recipe, from raw inputs to training shards, resumable.

Stages, each with its own output directory under the manifest's ``output``::

    sources/<name>/   one per source with a ``processor`` (the CCNet stage, the source processors)
    tokenizer/        unless the manifest names a model: trained on a sample in mixture proportion
    counts/           tokens per source (the plan is computed from it; the budget is checked here)
    shards/           the mixed, packed, shuffled Arrow shards and manifest.json

A stage is skipped when its directory holds ``_SUCCESS`` (written last) and a ``_STAGE.json`` whose
configuration equals this run's; otherwise it is (re)built from scratch. So a killed run resumes at the
first unfinished stage, and a changed manifest rebuilds only what it changes.

A processor source runs the registered stage of that name (corpusmill/pipelines/registry.py) or a
stage of your own named ``module:STAGE``, its typed config built from ``input``, ``output``,
``overwrite=True`` and the manifest's ``options``. An unknown processor is an error naming the
registered ones; nothing is skipped or faked. A source whose output was written over its failure budget
is refused unless its manifest entry says ``allow_failed: true``.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import shutil
from typing import Callable, Dict, List, Optional, Sequence

from corpusmill.core.config import config_fields, from_mapping, option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join, sha256_file
from corpusmill.core.stage import Stage
from corpusmill.mixers.manifest import (
    MixManifest,
    load_manifest,
)
from corpusmill.mixers.plan import MixPlan, plan_mixture
from corpusmill.pipelines.registry import load_processor

STAGE_FILE = "_STAGE.json"


def _fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def stage_done(out_dir: str, config: dict) -> bool:
    """Whether ``out_dir`` holds a finished stage made with ``config``."""
    from corpusmill.engine.run import DONE_FILE

    try:
        with open(join(out_dir, STAGE_FILE), encoding="utf-8") as fh:
            recorded = json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return os.path.exists(join(out_dir, DONE_FILE)) and recorded.get("fingerprint") == _fingerprint(config)


def run_stage_once(label: str, out_dir: str, config: dict, fn: Callable[[], object], log=print) -> bool:
    """Run ``fn`` unless ``out_dir`` is already done with ``config``; returns True when it ran."""
    from corpusmill.engine.run import DONE_FILE, mark_done
    from corpusmill.io.files import write_text_atomic

    if stage_done(out_dir, config):
        log(f"[run] {label}: done already ({out_dir}), skipped")
        return False
    if os.path.exists(join(out_dir, DONE_FILE)):
        log(f"[run] {label}: {out_dir} was made with another configuration; rebuilding")
    elif os.path.isdir(out_dir) and os.listdir(out_dir):
        log(f"[run] {label}: {out_dir} is incomplete (no {DONE_FILE}); rebuilding")
    else:
        log(f"[run] {label} -> {out_dir}")
    if "://" not in out_dir and os.path.isdir(out_dir) and not os.path.exists(join(out_dir, DONE_FILE)):
        shutil.rmtree(out_dir)  # an unfinished stage output: start it from scratch
    # an outdated complete one stays until the stage (run with overwrite) has built its replacement beside it
    fn()
    if not os.path.exists(join(out_dir, DONE_FILE)):
        mark_done(out_dir)
    write_text_atomic(
        join(out_dir, STAGE_FILE),
        json.dumps({"fingerprint": _fingerprint(config), "config": config}, indent=2, sort_keys=True, default=str)
        + "\n",
    )
    return True


# ---------------------------------------------------------------------------------------------------
# processors
# ---------------------------------------------------------------------------------------------------
def _matches_something(pattern: str) -> bool:
    """Whether a processor input (file, directory or glob; local or object store) exists."""
    from corpusmill.io.files import expand_inputs

    if "://" not in pattern:
        return bool(glob.glob(pattern, recursive=True))
    try:
        return bool(expand_inputs([pattern]))
    except CorpusmillError:
        return False


def processor_config(spec, out_dir: str, manifest_path: str):
    """The processor's Stage and its config from the manifest's ``input`` and ``options`` (strictly typed)."""
    where = f"{manifest_path}: sources.{spec.name}"
    stage = load_processor(spec.processor, f"{where}.processor")
    fields = config_fields(stage.config)
    for required in ("input", "output"):
        if required not in fields:
            raise CorpusmillError(
                f"{where}.processor: {stage.config.__name__} has no '{required}' field; "
                f"`corpusmill run` cannot drive it"
            )
    for key in ("input", "output"):
        if key in spec.options:
            raise CorpusmillError(
                f"{where}.options.{key}: set by the manifest (sources.{spec.name}.input and the "
                f"run's output), not an option"
            )
    data = dict(spec.options, input=list(spec.inputs), output=out_dir)
    if "overwrite" in fields:
        data["overwrite"] = True
    cfg = from_mapping(stage.config, data, lambda key: f"{where}.options.{key}", context=f"processor {spec.processor}")
    return stage, cfg


def run_processor(spec, out_dir: str, beam_args: Sequence[str], manifest_path: str) -> None:
    stage, cfg = processor_config(spec, out_dir, manifest_path)
    try:
        stage.run(cfg, list(beam_args))
    except CorpusmillError as exc:
        if exc.code == 3 and spec.allow_failed:  # written over its failure budget, and the manifest allows it
            return
        if exc.code == 3:
            raise CorpusmillError(
                f"{manifest_path}: sources.{spec.name}: {exc}; set {spec.field('allow_failed')}: true to use it anyway",
                code=3,
            ) from None
        raise


def check_not_over_budget(spec, location: str, manifest_path: str) -> None:
    """A source's documents written over their run's failure budget are refused unless the manifest says
    ``allow_failed: true`` for it."""
    from corpusmill.core.files import output_root
    from corpusmill.engine.run import read_breach

    root = output_root(location) if "://" not in location else None
    breach = read_breach(root) if root else None
    if breach is not None and not spec.allow_failed:
        raise CorpusmillError(
            f"{manifest_path}: {spec.field('documents' if spec.documents else 'processor')}: {root} was written over "
            f"its failure budget ({breach['failed']:,} of {breach['read']:,} records failed; most common error: "
            f"{breach['most_common_error']}); fix its inputs and rerun it, or set {spec.field('allow_failed')}: true",
            code=3,
        )


# ---------------------------------------------------------------------------------------------------
# the recipe
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RecipeResult:
    manifest: MixManifest
    plan: MixPlan
    shards_dir: str
    shards_manifest: dict
    ran: List[str]  # stages that ran (the others were done already)


def run_recipe(
    manifest_path: str, *, output: Optional[str] = None, beam_args: Sequence[str] = (), log=print
) -> RecipeResult:
    """Run every stage of the manifest that is not done yet; returns where the shards are."""
    from corpusmill.pipelines.mix import (
        TokensConfig,
        read_tokens_summary,
        source_files,
        token_files,
        write_tokens,
    )
    from corpusmill.pipelines.tokenizer import TokenizerConfig, train_tokenizer
    from corpusmill.tokenize.tokenizer import MODEL_FILE, describe_model

    m = load_manifest(manifest_path, output=output)
    root = m.output
    if "://" not in root and os.path.exists(root) and not os.path.isdir(root):
        raise CorpusmillError(f"--output {root}: is a file, not a directory; choose a directory for the run")
    beam_args = list(beam_args)
    ran: List[str] = []

    if m.tokens_from:  # another run's tokenized documents: no source, tokenizer or tokenization here
        return _mix_tokens_from(m, root, beam_args, log)

    # 1. sources made by a processor (inputs checked for all of them before the first one runs)
    for spec in m.sources:
        if not spec.processor:
            continue
        processor_config(spec, join(root, "sources", spec.name), m.path)  # every option checked before any runs
        for pattern in spec.inputs:
            if not _matches_something(pattern):
                raise CorpusmillError(f"{m.path}: sources.{spec.name}.input: {pattern} matches no files")
    locations: Dict[str, str] = {}
    for spec in m.sources:
        if not spec.processor:
            locations[spec.name] = spec.documents
            continue
        out = join(root, "sources", spec.name)
        config = {"processor": spec.processor, "inputs": spec.inputs, "options": spec.options}
        if run_stage_once(
            f"source {spec.name} ({spec.processor})",
            out,
            config,
            lambda spec=spec, out=out: run_processor(spec, out, beam_args, m.path),
            log,
        ):
            ran.append(f"sources/{spec.name}")
        locations[spec.name] = out
    for spec in m.sources:
        if spec.name in locations:
            check_not_over_budget(spec, locations[spec.name], m.path)
    try:
        files = {s.name: source_files(s.name, locations[s.name], s.groups) for s in m.sources}
    except CorpusmillError as exc:
        raise CorpusmillError(f"{m.path}: {exc}") from None

    # 2. tokenizer
    if m.tokenizer.model:
        model = m.tokenizer.model
        log(f"[run] tokenizer: {model} (given)")
    else:
        tok_dir = join(root, "tokenizer")
        tcfg = TokenizerConfig(
            files=files,
            output=tok_dir,
            overwrite=True,
            vocab_size=m.tokenizer.vocab_size,
            sample_chars=m.tokenizer.sample_chars,
            seed=m.seed,
            threads=m.tokenizer.threads,
            kind=m.tokenizer.kind,
            weights={s.name: s.weight for s in m.sources} if m.mode == "weights" and m.mix_by == "source" else None,
            epochs={s.name: s.epochs for s in m.sources} if m.mode == "epochs" and m.mix_by == "source" else None,
        )
        config = {k: v for k, v in dataclasses.asdict(tcfg).items() if k not in ("output", "overwrite")}
        if run_stage_once("tokenizer", tok_dir, config, lambda: train_tokenizer(tcfg, beam_args), log):
            ran.append("tokenizer")
        model = join(tok_dir, MODEL_FILE)
    tok = describe_model(model)

    # 3. every document tokenized once (counts, mixtures and packings read these); by domain: into the pool
    #    the domain classifier (trained here from the labelled sources, unless the manifest names one) gives it
    tokens_dir = join(root, "tokens")
    tokens_config = {"files": files, "tokenizer_sha256": tok["sha256"]}
    tkcfg = TokensConfig(files=files, tokenizer=model, output=tokens_dir, overwrite=True)
    if m.mix_by == "domain":
        domain_model = _domain_classifier(m, root, files, ran, log)
        tkcfg = dataclasses.replace(tkcfg, domain_model=domain_model, pools=[d.name for d in m.domains])
        tokens_config.update(
            domain_model=sha256_file(domain_model) if "://" not in domain_model else domain_model, pools=tkcfg.pools
        )
    if run_stage_once("tokens", tokens_dir, tokens_config, lambda: write_tokens(tkcfg, beam_args), log):
        ran.append("tokens")
    mixed = holdout_shares(m.by_pools(), read_tokens_summary(tokens_dir), log)
    tokens = token_files(
        tokens_dir, [s.name for s in mixed.sources], what="domain" if m.mix_by == "domain" else "source"
    )
    return _count_and_shard(mixed, root, model, tok, tokens, files, ran, beam_args, log)


def _domain_classifier(m, root: str, files: Dict[str, List[str]], ran: List[str], log) -> str:
    """The domain classifier's path: the manifest's, or one trained under ``domains/`` from the labelled
    documents: ``domain_classifier.examples`` and the sources labelled with a ``domain``."""
    from corpusmill.quality.domain import train_domain_classifier

    if m.domain_model:
        log(f"[run] domain classifier: {m.domain_model} (given)")
        return m.domain_model
    labelled: Dict[str, List[str]] = {label: list(paths) for label, paths in m.domain_examples.items()}
    for spec in m.sources:
        if spec.domain and spec.name in files:
            labelled.setdefault(spec.domain, []).extend(files[spec.name])
    out = join(root, "domains")
    path = join(out, "domain.bin")
    config = {"labelled": labelled}
    if run_stage_once("domain classifier", out, config, lambda: train_domain_classifier(labelled, path, log=log), log):
        ran.append("domains")
    return path


def _mix_tokens_from(m, root: str, beam_args, log) -> "RecipeResult":
    """A manifest with ``tokens_from``: the counts and the shards from another run's tokenized documents."""
    from corpusmill.pipelines.mix import read_tokens_summary, token_files
    from corpusmill.tokenize.tokenizer import MODEL_FILE, describe_model

    tokens_dir = join(m.tokens_from, "tokens")
    summary = read_tokens_summary(tokens_dir)
    model = m.tokenizer.model or join(m.tokens_from, "tokenizer", MODEL_FILE)
    if not os.path.isfile(model):
        raise CorpusmillError(
            f"{m.path}: tokens_from {m.tokens_from}: no tokenizer/{MODEL_FILE} there; name the "
            f"model its documents were tokenized with in tokenizer.model"
        )
    tok = describe_model(model)
    if tok["sha256"] != summary.get("tokenizer_sha256"):
        raise CorpusmillError(
            f"{m.path}: tokenizer.model {model} is not the tokenizer of {tokens_dir} (sha256 differs)"
        )
    tokens = token_files(tokens_dir, [s.name for s in m.sources])
    log(f"[run] tokens: {tokens_dir} (from another run; nothing is tokenized)")
    return _count_and_shard(holdout_shares(m, summary, log), root, model, tok, tokens, {}, [], beam_args, log)


def holdout_shares(m, summary: dict, log) -> "MixManifest":
    """Each ``holdout_tokens`` as the share of its pool's tokens (tokens.json) it is: documents are then
    held out by hash at that share, so the held-out tokens land near the count (docs/mixing.md)."""
    specs = []
    for spec in m.sources:
        if spec.holdout_tokens:
            total = int(summary.get("sources", {}).get(spec.name, {}).get("tokens", 0))
            share = spec.holdout_tokens / total if total else 1.0
            if share >= 0.5:
                raise CorpusmillError(
                    f"{m.path}: {spec.field('holdout_tokens')}: {spec.holdout_tokens:,} tokens is "
                    f"half or more of the {total:,} it has; hold out fewer"
                )
            spec = dataclasses.replace(spec, holdout=round(share, 12))
            log(
                f"[run] {spec.field('holdout_tokens')} {spec.holdout_tokens:,}: a share {share:.6f} of its "
                f"{total:,} tokens"
            )
        specs.append(spec)
    return dataclasses.replace(m, sources=specs)


def _count_and_shard(
    m, root: str, model: str, tok: dict, tokens: Dict[str, List[str]], files, ran: List[str], beam_args, log
) -> "RecipeResult":
    from corpusmill.pipelines.mix import CountConfig, ShardConfig, count_tokens, read_counts, write_mixed_shards

    # 4. token counts, then the plan (the budget is checked here, before anything is drawn)
    counts_dir = join(root, "counts")
    holdout = {s.name: s.holdout for s in m.sources if s.holdout}
    ccfg = CountConfig(
        files=files, tokenizer=model, output=counts_dir, overwrite=True, holdout=holdout, seed=m.seed, tokens=tokens
    )
    count_config = {"tokens": tokens, "tokenizer_sha256": tok["sha256"]}
    if holdout:  # (a run without holdout keeps the config, and so the counts, it had)
        count_config.update(holdout=holdout, seed=m.seed)
    if run_stage_once("token counts", counts_dir, count_config, lambda: count_tokens(ccfg, beam_args), log):
        ran.append("counts")
    counts = read_counts(counts_dir)
    plan = plan_mixture(m, counts["sources"])
    log(format_plan(plan))
    for line in plan.few_documents:  # loud: a share met by repeating a handful of documents
        log(f"[run] warning: {line}")

    # 5. shards (a re-pack of the tokenized documents: no SentencePiece); with an annealing phase, its
    #    mixture too (RUN/anneal/, from the same counts: the held-out documents stay out of it)
    shards_dir = join(root, "shards")
    extra = {"recipe": m.name}
    if plan.few_documents:
        extra["repetition_warnings"] = plan.few_documents
    anneal_plan = None
    if m.anneal is not None:
        anneal_plan = plan_mixture(anneal_manifest(m), counts["sources"])
        log("[run] annealing phase:\n" + format_plan(anneal_plan))
        for line in anneal_plan.few_documents:
            log(f"[run] warning: annealing phase: {line}")
        extra["phases"] = [
            {
                "name": "anneal",
                "data": join("..", ANNEAL_DIR),
                "tokens": m.anneal.tokens,
                "weights": dict(sorted(m.anneal.weights.items())),
            }
        ]
    scfg = ShardConfig(
        files=files,
        tokenizer=model,
        output=shards_dir,
        plan=plan,
        tokens=tokens,
        rows_per_shard=m.shards.rows_per_shard,
        batch_rows=m.shards.batch_rows,
        overwrite=True,
        extra=extra,
    )
    config = {
        "tokens": tokens,
        "tokenizer_sha256": tok["sha256"],
        "plan": plan.to_dict(),
        "rows_per_shard": scfg.rows_per_shard,
        "batch_rows": scfg.batch_rows,
        "extra": scfg.extra,
    }
    if run_stage_once("shards", shards_dir, config, lambda: write_mixed_shards(scfg, beam_args), log):
        ran.append("shards")
    if anneal_plan is not None:
        anneal_dir = join(root, ANNEAL_DIR)
        acfg = dataclasses.replace(
            scfg,
            output=anneal_dir,
            plan=anneal_plan,
            tokens={k: v for k, v in tokens.items() if k in m.anneal.weights},
            extra={"recipe": m.name, "phase": "anneal"},
        )
        config = {
            "tokens": acfg.tokens,
            "tokenizer_sha256": tok["sha256"],
            "plan": anneal_plan.to_dict(),
            "rows_per_shard": acfg.rows_per_shard,
            "batch_rows": acfg.batch_rows,
            "extra": acfg.extra,
        }
        if run_stage_once("anneal shards", anneal_dir, config, lambda: write_mixed_shards(acfg, beam_args), log):
            ran.append("anneal")
    with open(join(shards_dir, "manifest.json"), encoding="utf-8") as fh:
        shards_manifest = json.load(fh)
    return RecipeResult(m, plan, shards_dir, shards_manifest, ran)


ANNEAL_DIR = "anneal"


def anneal_manifest(m) -> "MixManifest":
    """The manifest of the annealing mixture: its weights over the same pools (their holdout kept), its
    tokens as the budget, no epoch caps."""
    by_name = {s.name: s for s in m.sources}
    sources = [
        dataclasses.replace(by_name[name], weight=w, epochs=None) for name, w in sorted(m.anneal.weights.items())
    ]
    tolerance = m.anneal.share_tolerance if m.anneal.share_tolerance is not None else m.share_tolerance
    return dataclasses.replace(
        m, sources=sources, budget_tokens=m.anneal.tokens, anneal=None, share_tolerance=tolerance
    )


def format_plan(plan: MixPlan) -> str:
    lines = [
        f"[run] plan ({plan.mode}): budget {plan.budget_tokens:,} tokens, seq_len {plan.seq_len}, "
        f"{plan.pack_groups} packing group(s)",
        f"      {'source':<16} {'weight':>7} {'tokens':>15} {'epochs':>7} {'source tokens':>15}",
    ]
    for name, sp in sorted(plan.sources.items()):
        lines.append(
            f"      {name:<16} {sp.weight:>7.4f} {sp.target_tokens:>15,} {sp.epochs:>7.3f} {sp.source_tokens:>15,}"
        )
    return "\n".join(lines)


def format_mixture(shards_manifest: dict) -> str:
    lines = [
        f"{'source':<16} {'target':>7} {'share':>7} {'tokens':>15} {'epochs':>7} {'target ep':>9} {'documents':>10}"
    ]
    for name, s in sorted(shards_manifest["mixture"].items()):
        lines.append(
            f"{name:<16} {s['weight']:>7.4f} {s['share']:>7.4f} {s['tokens']:>15,} {s['epochs']:>7.3f} "
            f"{s['epochs_target']:>9.3f} {s['documents']:>10,}"
        )
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class RunConfig:
    manifest: str = option(required=True, metavar="MANIFEST", help="the YAML manifest")
    output: Optional[str] = option(None, metavar="DIR", help="output directory (default: the manifest's 'output')")


def _run(cfg: RunConfig, beam_args: Sequence[str] = ()) -> RecipeResult:
    return run_recipe(cfg.manifest, output=cfg.output, beam_args=beam_args)


def _show(cfg: RunConfig, result: RecipeResult) -> None:
    print(format_mixture(result.shards_manifest))
    sm = result.shards_manifest
    print(
        f"shards: {result.shards_dir}  ({len(sm['shards'])} shards, {sm['rows']:,} rows of {sm['seq_len'] + 1} "
        f"tokens, tokenizer sha256 {sm['tokenizer_sha256'][:12]}...)"
    )


STAGE = Stage(
    name="run",
    config=RunConfig,
    run=_run,
    show=_show,
    positional=("manifest",),
    description="Run every stage of a mixing manifest (see manifests/llama1.yaml and docs/mixing.md): each source's "
    "processor, tokenizer training if the manifest names no model, token counts, and the mixed Arrow "
    "shards. A stage whose output is complete (_SUCCESS, same configuration) is skipped, so a killed run "
    "resumes. Other options must be Beam pipeline options.",
)
