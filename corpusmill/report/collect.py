"""Gather what a run wrote: every stage's stats.json, dropped samples, dead letters, documents, mixture.

A *run directory* holds stage output directories (each with a stats.json) at any depth, and perhaps
a shards directory with a manifest.json from the mixer. Everything is read from files, so a report can
be made for a run from any runner, long after it finished.

Documents are read for the histograms up to ``max_docs`` per stage (files in name order, so the
sample is the same every time); the counts per group come from the whole output when it is small
enough, else from the sample (the report says which).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import sys
from typing import Dict, List, Optional

from corpusmill.core.files import list_output_files, read_documents_file, read_dropped, read_failed
from corpusmill.core.stats import check_accounting

ANNOTATIONS = ("language_score", "perplexity", "wiki_prob")


@dataclasses.dataclass
class StageData:
    name: str  # path relative to the run directory
    path: str
    stats: List[dict]
    problems: List[str]  # accounting identity violations
    groups: Dict[str, int]  # output group (language, lang_bucket, ...) -> documents
    groups_complete: bool  # counted over every document (else over the sample)
    values: Dict[str, Dict[str, List[float]]]  # annotation -> group -> values (sampled documents)
    lengths: Dict[str, List[int]]  # group -> document lengths in characters (sampled documents)
    dropped: Dict[str, Dict[str, List[dict]]]  # step -> reason -> sample records
    failed: List[dict]


@dataclasses.dataclass
class TrainingLog:
    name: str  # the run directory, relative to the report's root
    steps: List[int]
    loss: List[float]
    eval_steps: List[int]
    eval_loss: List[float]
    tokens_per_s: List[float]


@dataclasses.dataclass
class RunData:
    root: str
    stages: List[StageData]
    mixtures: List[dict]  # manifest.json contents that carry a mixture
    training: List[TrainingLog] = dataclasses.field(default_factory=list)


def _progress(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"[report] {message}", file=sys.stderr, flush=True)


def find_stage_dirs(root: str) -> List[str]:
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if "stats.json" in files:
            found.append(dirpath)
    return sorted(found)


def find_manifests(root: str) -> List[str]:
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if "manifest.json" in files:
            found.append(os.path.join(dirpath, "manifest.json"))
    return sorted(found)


def _read_jsonl_gz(path: str) -> List[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _group_of(stage_dir: str, path: str) -> str:
    rel = os.path.relpath(os.path.dirname(path), stage_dir)
    return "(all)" if rel == "." else rel


def read_stage(root: str, stage_dir: str, max_docs: int, quiet: bool = True) -> StageData:
    with open(os.path.join(stage_dir, "stats.json"), encoding="utf-8") as fh:
        stats = json.load(fh)
    files = list_output_files(stage_dir)
    groups: Dict[str, int] = {}
    values: Dict[str, Dict[str, List[float]]] = {k: {} for k in ANNOTATIONS}
    lengths: Dict[str, List[int]] = {}
    seen = 0
    complete = True
    for i, path in enumerate(files):
        if seen >= max_docs:
            complete = False
            break
        _progress(f"{os.path.relpath(stage_dir, root) or '.'}: file {i + 1}/{len(files)}", quiet or len(files) < 20)
        group = _group_of(stage_dir, path)
        for doc in read_documents_file(path):
            groups[group] = groups.get(group, 0) + 1
            lengths.setdefault(group, []).append(len(doc.text))
            for key in ANNOTATIONS:
                value = doc.metadata.get(key)
                if isinstance(value, (int, float)):
                    values[key].setdefault(group, []).append(float(value))
            seen += 1
            if seen >= max_docs:
                break
    dropped = read_dropped(stage_dir)
    failed = read_failed(stage_dir)
    return StageData(
        name=os.path.relpath(stage_dir, root), path=stage_dir, stats=stats, problems=check_accounting(stats),
        groups=dict(sorted(groups.items())), groups_complete=complete,
        values={k: v for k, v in values.items() if v}, lengths=lengths, dropped=dropped, failed=failed)


def collect(root: str, max_docs: int = 20_000, quiet: bool = False) -> RunData:
    if not os.path.isdir(root):
        from corpusmill.core.errors import CorpusmillError

        raise CorpusmillError(f"run directory {root} does not exist")
    stage_dirs = find_stage_dirs(root)
    stages = []
    for n, stage_dir in enumerate(stage_dirs, 1):
        _progress(f"stage {n}/{len(stage_dirs)}: {os.path.relpath(stage_dir, root)}", quiet)
        stages.append(read_stage(root, stage_dir, max_docs, quiet))
    mixtures = []
    for path in find_manifests(root):
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        if isinstance(manifest, dict) and "mixture" in manifest:
            manifest["_path"] = os.path.relpath(path, root)
            mixtures.append(manifest)
    return RunData(root=root, stages=stages, mixtures=mixtures, training=read_training_logs(root))


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
                if "eval_loss" in entry:
                    log.eval_steps.append(entry["step"])
                    log.eval_loss.append(entry["eval_loss"])
                elif "loss" in entry:
                    log.steps.append(entry["step"])
                    log.loss.append(entry["loss"])
                    log.tokens_per_s.append(entry.get("tokens_per_s") or 0.0)
        logs.append(log)
    return logs


def first_failure(data: RunData) -> Optional[str]:
    for stage in data.stages:
        if stage.problems:
            return f"{stage.name}: {stage.problems[0]}"
    return None
