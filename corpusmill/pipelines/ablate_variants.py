"""``corpusmill ablate``'s spec and variants (docs/ablate.md): the spec read strictly, the base manifest
(a demo base with its quality models trained once), and each variant's manifest: the base with its
changes, every processor source run once per configuration under ``OUT/cache/sources/``, a corrupted
source copied once under ``OUT/cache/corrupt/``."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import yaml

from corpusmill.core.config import close_matches, load_yaml
from corpusmill.core.errors import CorpusmillError

SPEC_KEYS = {
    "base",
    "set",
    "budget_tokens",
    "model",
    "steps",
    "batch_rows",
    "lr",
    "warmup",
    "seeds",
    "variants",
    "alpha",
}
VARIANT_KEYS = {"set", "corrupt", "description"}
CORRUPTIONS = ("shuffle_words",)
BASE = "base"
ALPHA = 0.05  # a difference with p under this is said to be outside the seed noise
DOCUMENT_SOURCE_KEYS = ("weight", "epochs", "holdout", "holdout_tokens", "groups", "domain")


@dataclasses.dataclass
class Spec:
    path: str
    base: str
    budget_tokens: Optional[int]
    model: str
    steps: int
    batch_rows: int
    lr: Optional[float]
    warmup: Optional[int]
    seeds: List[int]
    alpha: float
    variants: Dict[str, dict]
    common: Dict[str, Any] = dataclasses.field(default_factory=dict)  # `set:` changes of the base itself
    device: str = "cpu"  # (--device)


def _err(path: str, field: str, what: str) -> CorpusmillError:
    return CorpusmillError(f"{path}: {field}: {what}")


def load_spec(path: str) -> Spec:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise CorpusmillError(f"{path}: expected a mapping (base, model, steps, seeds, variants)")
    for key in data:
        if key not in SPEC_KEYS:
            raise _err(
                path, key, f"unknown key{close_matches(str(key), SPEC_KEYS)}; known: {', '.join(sorted(SPEC_KEYS))}"
            )
    if not data.get("base"):
        raise _err(path, "base", "missing: the manifest the variants change (or demo:llama1)")
    base = str(data["base"])
    if not base.startswith("demo:"):
        base = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), base))
        if not os.path.isfile(base):
            raise _err(path, "base", f"{base} does not exist")
    elif base not in ("demo:llama1", "demo:llama3"):
        raise _err(path, "base", f"{base!r}: the demo bases are demo:llama1 and demo:llama3")
    variants = data.get("variants") or {}
    if not isinstance(variants, dict):
        raise _err(path, "variants", "expected a mapping of name -> {set, corrupt}")
    if BASE in variants:
        raise _err(path, "variants.base", "'base' is the unchanged manifest; name the variant otherwise")
    for name, v in variants.items():
        v = v or {}
        if not isinstance(v, dict):
            raise _err(path, f"variants.{name}", "expected a mapping: {set: {KEY: VALUE}, corrupt: {SOURCE: KIND}}")
        for key in v:
            if key not in VARIANT_KEYS:
                raise _err(path, f"variants.{name}.{key}", f"unknown key{close_matches(str(key), VARIANT_KEYS)}")
        for src, kind in (v.get("corrupt") or {}).items():
            if kind not in CORRUPTIONS:
                raise _err(path, f"variants.{name}.corrupt.{src}", f"expected one of {', '.join(CORRUPTIONS)}")
        variants[name] = v
    seeds = data.get("seeds", [1, 2, 3])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise _err(path, "seeds", f"expected a list of distinct integers, got {seeds!r}")
    steps = data.get("steps", 150)
    if not isinstance(steps, int) or steps < 1:
        raise _err(path, "steps", f"expected a positive integer, got {steps!r}")
    return Spec(
        path=path,
        base=base,
        budget_tokens=data.get("budget_tokens"),
        model=str(data.get("model", "tiny")),
        steps=steps,
        batch_rows=int(data.get("batch_rows", 8)),
        lr=data.get("lr"),
        warmup=data.get("warmup"),
        seeds=seeds,
        alpha=float(data.get("alpha", ALPHA)),
        variants=variants,
        common=dict(data.get("set") or {}),
    )


# -- the variants' manifests -----------------------------------------------------------------------------
def set_dotted(data: dict, key: str, value: Any, where: str) -> None:
    """``sources.cc.options.line_max_docs`` = value; every part but the last must exist (a typo is refused)."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            if isinstance(node, dict) and part == "options" and i == 2:  # a source without options yet
                node[part] = {}
            else:
                known = sorted(node) if isinstance(node, dict) else []
                raise CorpusmillError(
                    f"{where}: {key}: the manifest has no {'.'.join(parts[: i + 1])}{close_matches(part, known)}"
                )
        node = node[part]
    if not isinstance(node, dict):
        raise CorpusmillError(f"{where}: {key}: {'.'.join(parts[:-1])} is not a mapping")
    node[parts[-1]] = value


def shuffle_words(text: str, key: str) -> str:
    """The document's words in a shuffled order (by a hash of its id): the words stay, the language goes."""
    import random

    from corpusmill.core.hashing import stable_hash

    words = text.split()
    random.Random(stable_hash("ablate-shuffle:" + key)).shuffle(words)
    return " ".join(words)


def _corrupted(location: str, groups, out_dir: str, kind: str) -> str:
    """A copy of a source's documents with ``kind`` applied (once: kept by the source's location)."""
    from corpusmill.core.files import read_documents_file
    from corpusmill.engine.run import mark_done
    from corpusmill.io.documents import write_documents_file
    from corpusmill.pipelines.mix import source_files

    if os.path.exists(os.path.join(out_dir, "_SUCCESS")):
        return out_dir
    docs = []
    for f in source_files("corrupt", location, groups):
        for d in read_documents_file(f):
            docs.append(dataclasses.replace(d, text=shuffle_words(d.text, d.id)))
    os.makedirs(out_dir, exist_ok=True)
    write_documents_file(os.path.join(out_dir, "part-00000.jsonl.gz"), docs, "jsonl")
    mark_done(out_dir)
    return out_dir


def _fingerprint(value) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def base_manifest(spec: Spec, out: str, log) -> dict:
    """The base manifest's mapping with absolute paths (a demo base: its quality models trained once)."""
    from corpusmill.mixers.manifest import absolute_paths

    if spec.base.startswith("demo:"):
        from corpusmill.pipelines.demo import demo_manifest, sample_path
        from corpusmill.pipelines.quality import train_demo_models

        recipe = spec.base.split(":", 1)[1]
        done = os.path.join(out, "cache", "models.json")
        if os.path.exists(done):  # trained once: a rerun (or a resumed one) uses them
            with open(done, encoding="utf-8") as fh:
                models = json.load(fh)
        else:
            log("[ablate] the demo's quality models (SentencePiece + KenLM, cutoffs, Wikipedia classifier)")
            models = train_demo_models(
                sample_path("quality", "wiki_en.jsonl.gz"),
                [sample_path("quality", "lowq_en.jsonl.gz")],
                os.path.join(out, "cache", "models"),
                log=lambda *_: None,
            )
            with open(done + ".tmp", "w", encoding="utf-8") as fh:
                json.dump(models, fh, default=str)
            os.replace(done + ".tmp", done)
        path = demo_manifest(os.path.join(out, "cache"), models, recipe)
    else:
        path = spec.base
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    absolute_paths(data, os.path.dirname(path))
    if spec.budget_tokens is not None:
        data["budget_tokens"] = spec.budget_tokens
    for key, value in spec.common.items():  # the base's own changes: every variant starts from them
        set_dotted(data, str(key), value, f"{spec.path}: set")
    return data


def check_variants(spec: Spec, base: dict, names: Sequence[str], out: str) -> None:
    """Each variant's manifest built and checked as a manifest is (a mistyped key, an unknown source),
    so a typo in the last variant stops the run before the first recipe starts."""
    import tempfile

    from corpusmill.mixers.manifest import load_manifest

    for name in names:
        where = f"{spec.path}: variants.{name}"
        data = copy.deepcopy(base)
        change = spec.variants.get(name, {}) if name != BASE else {}
        for key, value in (change.get("set") or {}).items():
            set_dotted(data, str(key), value, where + ".set")
        for source in change.get("corrupt") or {}:
            if source not in data.get("sources", {}):
                known = list(data.get("sources", {}))
                raise CorpusmillError(
                    f"{where}.corrupt.{source}: the manifest has no source {source}{close_matches(source, known)}"
                )
        data["output"] = os.path.join(out, "variants", name, "run")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=out, delete=False) as fh:
            yaml.safe_dump(data, fh, sort_keys=False)
        try:
            load_manifest(fh.name)
        except CorpusmillError as exc:
            raise CorpusmillError(f"{where}: {str(exc).replace(fh.name + ': ', '')}") from None
        finally:
            os.remove(fh.name)


def variant_manifest(spec: Spec, base: dict, name: str, out: str, tokenizer: Optional[str], beam_args, log) -> str:
    """Write ``out/variants/NAME/manifest.yaml``: the base with the variant's changes, every processor
    source pointed at its output under ``out/cache/sources/`` (run there once per configuration)."""
    from corpusmill.mixers.manifest import load_manifest
    from corpusmill.pipelines.recipe import run_processor, run_stage_once

    where = f"{spec.path}: variants.{name}"
    data = copy.deepcopy(base)
    change = spec.variants.get(name, {}) if name != BASE else {}
    for key, value in (change.get("set") or {}).items():
        set_dotted(data, str(key), value, where + ".set")
    vdir = os.path.join(out, "variants", name)
    os.makedirs(vdir, exist_ok=True)
    data["output"] = os.path.join(vdir, "run")
    if name != BASE:  # the base's holdout rule keeps its held-out documents out of every variant's training
        data["allow_empty_holdout"] = True
    if tokenizer and not any(str(k).startswith("tokenizer.") for k in (change.get("set") or {})):
        data["tokenizer"] = dict(data.get("tokenizer") or {}, model=tokenizer)
    draft = os.path.join(vdir, "manifest.draft.yaml")
    with open(draft, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    m = load_manifest(draft)  # the variant checked as any manifest is, before anything runs
    for spec_s in m.sources:
        raw = data["sources"][spec_s.name]
        location = spec_s.documents
        if spec_s.processor:
            config = {"processor": spec_s.processor, "inputs": spec_s.inputs, "options": spec_s.options}
            cache = os.path.join(out, "cache", "sources", f"{spec_s.name}-{_fingerprint(config)}")
            run_stage_once(
                f"source {spec_s.name} ({spec_s.processor})",
                cache,
                config,
                lambda s=spec_s, c=cache: run_processor(s, c, beam_args, draft),
                log,
            )
            location = cache
        kind = (change.get("corrupt") or {}).get(spec_s.name)
        if kind:
            key = _fingerprint({"location": location, "groups": spec_s.groups, "kind": kind})
            location = _corrupted(
                location, spec_s.groups, os.path.join(out, "cache", "corrupt", f"{spec_s.name}-{key}"), kind
            )
        data["sources"][spec_s.name] = {k: raw[k] for k in DOCUMENT_SOURCE_KEYS if k in raw}
        data["sources"][spec_s.name]["documents"] = location
        if kind:
            data["sources"][spec_s.name].pop("groups", None)  # the corrupted copy is one folder
    path = os.path.join(vdir, "manifest.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.remove(draft)
    return path
