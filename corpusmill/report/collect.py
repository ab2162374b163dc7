"""Gather what a run wrote: every stage's stats.json, profile.json, provenance, dropped samples, dead
letters, the mixing manifests and training logs.

A *run directory* holds stage output directories (each with a stats.json) at any depth, and perhaps
a shards directory with a manifest.json from the mixer. Everything is read from files, so a report can
be made for a run from any runner, long after it finished. No document is read: the counts per
output group, language and source and every histogram come from profile.json, which the pipeline
computed over all documents (corpusmill.core.profile).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

from corpusmill.core.files import (
    PROFILE_NAME,
    REPEATED_LINES_NAME,
    STATS_NAME,
    read_dropped,
    read_failed,
    read_provenance,
)
from corpusmill.core.stats import NON_DOCUMENT_REASONS, check_accounting


@dataclasses.dataclass
class StageData:
    name: str  # path relative to the run directory
    path: str
    stats: List[dict]
    problems: List[str]  # accounting identity violations
    profile: dict  # profile.json ({} for an output written before corpusmill wrote one)
    provenance: Optional[dict]  # _provenance.json
    dropped: Dict[str, Dict[str, List[dict]]]  # step -> reason -> sample records
    failed: List[dict]
    repeated_lines: List[dict] = dataclasses.field(default_factory=list)  # the CCNet stage's repeated_lines.json
    samples: Dict[str, List[dict]] = dataclasses.field(default_factory=dict)  # _samples/: group -> documents

    @property
    def groups(self) -> Dict[str, int]:
        """Output group (language, lang_bucket, ...) -> documents written, exact."""
        return self.profile.get("output", {}).get("groups", {})

    @property
    def read(self) -> int:
        """Documents read by the stage: its reading steps summed (one per source), else its first step;
        WARC records that are not pages (requests, revisits, ...) are not documents."""
        reading = [
            s["read"] - sum(n for r, n in s["dropped"].items() if r in NON_DOCUMENT_REASONS)
            for s in self.stats
            if s["step"].startswith(("read", "extract"))
        ]
        return sum(reading) if reading else (self.stats[0]["read"] if self.stats else 0)

    @property
    def written(self) -> int:
        """Documents written (exact, from profile.json); a stage that writes no documents (the tokenizer's
        sample, the mixer's counts): what its reading steps kept (one per source: the tokenizer reads them
        all), else its last step's kept."""
        if self.groups:
            return sum(self.groups.values())
        reading = [s["kept"] for s in self.stats if s["step"].startswith(("read", "extract"))]
        if len(reading) > 1:
            return sum(reading)
        return self.stats[-1]["kept"] if self.stats else 0


@dataclasses.dataclass
class TrainingLog:
    name: str  # the run directory, relative to the report's root
    steps: List[int]
    loss: List[float]
    eval_steps: List[int]
    eval_loss: List[float]
    tokens_per_s: List[float]
    # the mixer's held-out documents: {source: [(step, loss)]}; and what the eval loss measures
    eval_by_source: Dict[str, List[Tuple[int, float]]] = dataclasses.field(default_factory=dict)
    eval_kind: str = ""


@dataclasses.dataclass
class RunData:
    root: str
    stages: List[StageData]
    mixtures: List[dict]  # manifest.json contents that carry a mixture
    training: List[TrainingLog] = dataclasses.field(default_factory=list)
    compared: Optional["RunData"] = None  # another run to compare with (report --diff)
    tokens: Optional[dict] = None  # the recipe's tokens/tokens.json: documents and tokens per source (or pool)
    held_out: Dict[str, dict] = dataclasses.field(default_factory=dict)  # source -> its eval set's manifest
    domain_metrics: Optional[dict] = None  # the recipe's domains/domain.bin.json: held-out precision/recall
    ablation: Optional[dict] = None  # DIR/ablate.json of `corpusmill ablate`


def _flat(prefix: str, value) -> Dict[str, object]:
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def matching_stage(stage: StageData, this: List[StageData], others: List[StageData]) -> Optional[StageData]:
    """The other run's output of the same stage: the same name; else the one stage of the same kind (the
    command that made it, from its provenance: ``ccnet``, ``c4``, ...) when each run has exactly one."""
    same = next((s for s in others if s.name == stage.name), None)
    if same is not None:
        return same

    def kind(s: StageData) -> str:
        return str((s.provenance or {}).get("stage") or "")

    k = kind(stage)
    mine = [s for s in this if kind(s) == k]
    theirs = [s for s in others if kind(s) == k]
    return theirs[0] if k and len(mine) == 1 and len(theirs) == 1 else None


def stage_differences(a: StageData, b: StageData) -> List[tuple]:
    """``(what, in a, in b)`` for everything that differs between two outputs of one stage: the effective
    configuration, each step's thresholds, filter and model files (by sha256), and the counts of stats.json."""
    rows = []
    prov_a, prov_b = a.provenance or {}, b.provenance or {}
    skip = ("output", "input")  # where, not how
    conf_a = {k: v for k, v in _flat("", prov_a.get("config", {})).items() if k.split(".")[0] not in skip}
    conf_b = {k: v for k, v in _flat("", prov_b.get("config", {})).items() if k.split(".")[0] not in skip}
    for key in sorted(set(conf_a) | set(conf_b)):
        if conf_a.get(key) != conf_b.get(key):
            rows.append((f"config {key}", conf_a.get(key), conf_b.get(key)))
    for key in ("corpusmill", "apache_beam"):
        if prov_a.get(key) != prov_b.get(key):
            rows.append((key, prov_a.get(key), prov_b.get(key)))
    steps_a = {s["step"]: s for s in prov_a.get("steps", [])}
    steps_b = {s["step"]: s for s in prov_b.get("steps", [])}
    for step in [s for s in steps_a if s in steps_b]:
        for field in ("filter", "thresholds"):
            if steps_a[step].get(field) != steps_b[step].get(field):
                rows.append((f"{step} {field}", steps_a[step].get(field), steps_b[step].get(field)))
        models_a = sorted((m.get("sha256") or m["path"]) for m in steps_a[step].get("models", []))
        models_b = sorted((m.get("sha256") or m["path"]) for m in steps_b[step].get("models", []))
        if models_a != models_b:
            rows.append(
                (f"{step} models (sha256)", ", ".join(x[:12] for x in models_a), ", ".join(x[:12] for x in models_b))
            )
    stats_a = {s["step"]: s for s in a.stats}
    stats_b = {s["step"]: s for s in b.stats}
    for step in list(stats_a) + [s for s in stats_b if s not in stats_a]:
        sa, sb = stats_a.get(step), stats_b.get(step)
        if sa is None or sb is None:
            rows.append((f"{step}", "ran" if sa else "-", "ran" if sb else "-"))
            continue
        for field in ("read", "kept", "failed"):
            if sa[field] != sb[field]:
                rows.append((f"{step} {field}", sa[field], sb[field]))
        for reason in sorted(set(sa["dropped"]) | set(sb["dropped"])):
            if sa["dropped"].get(reason, 0) != sb["dropped"].get(reason, 0):
                rows.append((f"{step} dropped {reason}", sa["dropped"].get(reason, 0), sb["dropped"].get(reason, 0)))
    groups_a, groups_b = a.groups, b.groups
    for group in sorted(set(groups_a) | set(groups_b)):
        if groups_a.get(group, 0) != groups_b.get(group, 0):
            rows.append((f"written {group}", groups_a.get(group, 0), groups_b.get(group, 0)))
    return rows


def _progress(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"[report] {message}", file=sys.stderr, flush=True)


def find_stage_dirs(root: str) -> List[str]:
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if os.path.isfile(os.path.join(dirpath, STATS_NAME)):
            found.append(dirpath)
    return sorted(found)


def find_manifests(root: str) -> List[str]:
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if "manifest.json" in files:
            found.append(os.path.join(dirpath, "manifest.json"))
    return sorted(found)


def read_stage(root: str, stage_dir: str) -> StageData:
    with open(os.path.join(stage_dir, STATS_NAME), encoding="utf-8") as fh:
        stats = json.load(fh)
    profile = {}
    if os.path.isfile(os.path.join(stage_dir, PROFILE_NAME)):
        with open(os.path.join(stage_dir, PROFILE_NAME), encoding="utf-8") as fh:
            profile = json.load(fh)
    name = os.path.relpath(stage_dir, root)
    if name == ".":  # the run directory is the stage itself
        name = os.path.basename(os.path.abspath(stage_dir))
    repeated = []
    if os.path.isfile(os.path.join(stage_dir, REPEATED_LINES_NAME)):
        with open(os.path.join(stage_dir, REPEATED_LINES_NAME), encoding="utf-8") as fh:
            repeated = json.load(fh)["lines"]
    samples = {}
    sample_dir = os.path.join(stage_dir, "_samples")
    if os.path.isdir(sample_dir):
        import gzip

        for name_ in sorted(os.listdir(sample_dir)):
            if name_.endswith(".jsonl.gz"):
                with gzip.open(os.path.join(sample_dir, name_), "rt", encoding="utf-8") as fh:
                    samples[name_[: -len(".jsonl.gz")].replace("__", "/")] = [json.loads(l) for l in fh if l.strip()]
    return StageData(
        name=name,
        path=stage_dir,
        stats=stats,
        problems=check_accounting(stats),
        profile=profile,
        provenance=read_provenance(stage_dir),
        dropped=read_dropped(stage_dir),
        failed=read_failed(stage_dir),
        repeated_lines=repeated,
        samples=samples,
    )


def collect(root: str, quiet: bool = False) -> RunData:
    if not os.path.isdir(root):
        from corpusmill.core.errors import CorpusmillError

        raise CorpusmillError(f"run directory {root} does not exist")
    stage_dirs = find_stage_dirs(root)
    stages = []
    for n, stage_dir in enumerate(stage_dirs, 1):
        name = os.path.relpath(stage_dir, root)
        _progress(
            f"stage {n}/{len(stage_dirs)}: {name if name != '.' else os.path.basename(os.path.abspath(root))}", quiet
        )
        stages.append(read_stage(root, stage_dir))
    mixtures, held_out = [], {}
    for path in find_manifests(root):
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        if isinstance(manifest, dict) and "mixture" in manifest:
            manifest["_path"] = os.path.relpath(path, root)
            mixtures.append(manifest)
        elif isinstance(manifest, dict) and "source" in manifest and os.sep + "anneal" + os.sep not in path:
            held_out.setdefault(manifest["source"], manifest)  # an eval set of the main shards
    tokens = domain_metrics = None
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if "tokens.json" in files and tokens is None:
            with open(os.path.join(dirpath, "tokens.json"), encoding="utf-8") as fh:
                tokens = json.load(fh)
        if "domain.bin.json" in files and domain_metrics is None:
            with open(os.path.join(dirpath, "domain.bin.json"), encoding="utf-8") as fh:
                domain_metrics = json.load(fh)
    ablation = None
    if os.path.isfile(os.path.join(root, "ablate.json")):
        with open(os.path.join(root, "ablate.json"), encoding="utf-8") as fh:
            ablation = json.load(fh)
    return RunData(
        ablation=ablation,
        root=root,
        stages=stages,
        mixtures=mixtures,
        training=read_training_logs(root),
        tokens=tokens,
        held_out=held_out,
        domain_metrics=domain_metrics,
    )


def read_training_logs(root: str) -> List[TrainingLog]:
    """Every train_log.jsonl (the trainer's per-step log) under the run directory."""
    logs = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if "train_log.jsonl" not in files:
            continue
        log = TrainingLog(os.path.relpath(dirpath, root), [], [], [], [], [])
        with open(os.path.join(dirpath, "train_log.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                entry = json.loads(line)
                if "eval_loss_by_source" in entry:
                    for source, loss in entry["eval_loss_by_source"].items():
                        log.eval_by_source.setdefault(source, []).append((entry["step"], loss))
                    log.eval_kind = entry.get("eval_kind", log.eval_kind)
                elif "eval_loss" in entry:
                    log.eval_steps.append(entry["step"])
                    log.eval_loss.append(entry["eval_loss"])
                    log.eval_kind = entry.get("eval_kind", log.eval_kind)
                elif "loss" in entry:
                    log.steps.append(entry["step"])
                    log.loss.append(entry["loss"])
                    log.tokens_per_s.append(entry.get("tokens_per_s") or 0.0)
        logs.append(log)
    return logs
