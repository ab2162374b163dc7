"""The mixing manifest: a YAML file that says what goes into the training data, and in what proportion.

See docs/mixing.md for the format. Everything that can be checked without reading the data is checked
when the file is loaded (unknown keys, weights that do not sum to 1, a missing documents directory, a
bad number); every error names the file and the field (``sources.wikipedia.weight``) and the fix.
What needs token counts (a budget a source cannot fill within its epoch cap) is checked by
:func:`corpusmill.mixers.plan.plan_mixture` after counting, before anything is sampled or written.

Relative paths are resolved against the manifest file's directory, so a manifest works from any
working directory.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import math
import os
import re
from typing import Any, Dict, List, Optional, Union

from corpusmill.core.config import load_yaml
from corpusmill.core.errors import CorpusmillError
from corpusmill.mixers.plan import MAX_EPOCHS

WEIGHT_TOLERANCE = 1e-6
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

TOP_KEYS = {
    "name",
    "output",
    "seed",
    "seq_len",
    "budget_tokens",
    "tokenizer",
    "shards",
    "sources",
    "share_tolerance",
    "allow_off_target",
    "allow_empty_holdout",
    "min_distinct_documents",
    "tokens_from",
    "mix_by",
    "domains",
    "domain_classifier",
    "anneal",
}
ANNEAL_KEYS = {"tokens", "weights", "share_tolerance"}
MIX_BY = ("source", "domain")
DOMAINS = ("general", "math", "code", "multilingual")  # Llama 3's mix (corpusmill.filters.domain)
DOMAIN_LABELS = ("code", "general", "math")  # what a source may stand for when the classifier trains
POOL_KEYS = {"weight", "epochs", "holdout", "holdout_tokens"}
DOMAIN_CLASSIFIER_KEYS = {"model", "examples"}
DEFAULT_SHARE_TOLERANCE = 0.01  # an achieved share may be off its weight by one percentage point
TOKENIZER_KEYS = {"model", "kind", "vocab_size", "sample_chars", "threads"}
TOKENIZER_KINDS = ("sentencepiece", "bpe")
SHARD_KEYS = {"rows_per_shard", "batch_rows", "pack_group_tokens"}
SOURCE_KEYS = {
    "weight",
    "epochs",
    "documents",
    "processor",
    "input",
    "options",
    "groups",
    "holdout",
    "allow_failed",
    "holdout_tokens",
    "domain",
}


@dataclasses.dataclass
class TokenizerSpec:
    model: Optional[str] = None  # an existing SentencePiece or BPE model; trained when None
    kind: str = "sentencepiece"  # what is trained: LLaMA's SentencePiece BPE, or Llama 3's byte-level BPE
    vocab_size: int = 32000
    sample_chars: int = 100_000_000  # characters in the training sample, split by mixture weight
    threads: int = 8


@dataclasses.dataclass
class ShardSpec:
    rows_per_shard: int = 32768
    batch_rows: int = 1024
    pack_group_tokens: int = 16_000_000  # tokens packed together in one worker (each drops < one row)


@dataclasses.dataclass
class SourceSpec:
    name: str
    weight: Optional[float] = None  # share of the budget (weights mode)
    epochs: Optional[float] = None  # with a weight: the cap on passes; alone: the exact passes
    documents: Optional[str] = None  # an existing directory (or glob) of corpusmill documents
    processor: Optional[str] = None  # or: a registered stage that makes them, or module:STAGE
    inputs: List[str] = dataclasses.field(default_factory=list)
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)
    groups: Optional[List[str]] = None  # sub-directories to use (e.g. ["en"] of the CCNet output); globs
    holdout: float = 0.0  # share of the source's documents set aside, before any repetition,
    # as its held-out set (shards/eval/<source>/): never in a training row
    holdout_tokens: Optional[int] = None  # or: about this many tokens held out (turned into a share once the
    # source's tokens are known: corpusmill.pipelines.recipe)
    domain: Optional[str] = None  # mix_by domain: the label this source teaches the domain classifier
    section: str = "sources"  # where it is in the manifest: sources, or domains (a domain pool)
    allow_failed: bool = False  # use the source's output even when it was written over its failure
    # budget (corpusmill.engine.run.failure_budget)

    def field(self, key: str) -> str:
        return f"{self.section}.{self.name}.{key}"


@dataclasses.dataclass
class AnnealSpec:
    """Llama 3's annealing phase: the last ``tokens`` of training drawn from ``weights`` (pools: sources, or
    domains), written to RUN/anneal/; the trainer switches to them and decays the learning rate to 0."""

    tokens: int
    weights: Dict[str, float]
    share_tolerance: Optional[float] = None  # the annealing mixture's own (a short phase is few documents)


@dataclasses.dataclass
class MixManifest:
    path: str
    name: str
    output: str
    seed: int
    seq_len: int
    budget_tokens: Union[int, str, None]  # an int, "max", or None (epochs mode: the sum of the sources)
    tokenizer: TokenizerSpec
    shards: ShardSpec
    sources: List[SourceSpec]
    share_tolerance: float = DEFAULT_SHARE_TOLERANCE  # |achieved share - weight| allowed (weights mode)
    allow_off_target: bool = False  # a source off its weight (or at 0 tokens) is a warning, not an error
    # a source whose holdout sets aside less than a row is warned about, its held-out documents still kept out
    # of training, and gets no eval set (corpusmill ablate's variants: the base's held-out documents stay out)
    allow_empty_holdout: bool = False
    min_distinct_documents: int = 100  # a pool whose share is met by repeating fewer documents is said loudly
    tokens_from: Optional[str] = None  # another run's directory: mix its tokenized documents, tokenize nothing
    mix_by: str = "source"  # or "domain": the weights are on domain pools (Llama 3's mix)
    domains: List[SourceSpec] = dataclasses.field(default_factory=list)  # mix_by domain: the pools
    domain_model: Optional[str] = None  # mix_by domain: a trained classifier; trained from the sources when None
    # mix_by domain: labelled documents the classifier is trained on ({label: [document files]}), with the
    # documents of the sources labelled with a domain
    domain_examples: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    anneal: Optional[AnnealSpec] = None  # an annealing phase after the main mixture

    @property
    def pools(self) -> List[SourceSpec]:
        """What the weights, epochs and holdout are on: the sources, or the domain pools."""
        return self.domains if self.mix_by == "domain" else self.sources

    @property
    def mode(self) -> str:
        """``weights`` (every pool has a weight) or ``epochs`` (none has: each gives its passes)."""
        pools = self.pools
        return "weights" if pools and pools[0].weight is not None else "epochs"

    def by_pools(self) -> "MixManifest":
        """The manifest as the mixer sees it: its pools as sources (the domains, in domain mode)."""
        return dataclasses.replace(self, sources=list(self.pools), mix_by="source", domains=[])

    def source(self, name: str) -> SourceSpec:
        for spec in self.sources:
            if spec.name == name:
                return spec
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------------------------------
def _err(path: str, field: str, msg: str) -> CorpusmillError:
    return CorpusmillError(f"{path}: {field}: {msg}")


def _check_keys(path: str, where: str, data: dict, allowed: set) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _err(
            path,
            f"{where}{unknown[0]}" if where else unknown[0],
            f"unknown key; allowed here: {', '.join(sorted(allowed))}",
        )


# What any data set can hold: a bound on each number, so that a typo (1e30) is one line, not an attempt
# to write 5e25 passes of a source until memory runs out. Llama 3 trained on 15.6T tokens.
MAX_TOKENS = 10**15
MAX_SEQ_LEN = 1 << 20
MAX_ROWS = 1 << 24


def _int(path: str, field: str, value: Any, minimum: int = 1, maximum: int = MAX_TOKENS) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(path, field, f"expected a whole number, got {value!r}")
    if value < minimum:
        raise _err(path, field, f"must be at least {minimum}, got {value}")
    if value > maximum:
        raise _err(path, field, f"must be at most {maximum:,}, got {value:.3g}")
    return value


def _positive(path: str, field: str, value: Any, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _err(path, field, f"expected a number above 0, got {value!r}")
    if value > maximum:
        raise _err(path, field, f"must be at most {maximum:g}, got {value:.3g}")
    return float(value)


def _resolve(base: str, value: str) -> str:
    if "://" in value or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def load_manifest(path: str, *, output: Optional[str] = None) -> MixManifest:
    """Read and validate a manifest; ``output`` overrides its ``output`` field."""
    if not os.path.exists(path):
        raise CorpusmillError(f"manifest {path} does not exist")
    data = load_yaml(path)  # a key given twice is an error
    if not isinstance(data, dict):
        raise CorpusmillError(
            f"{path}: expected a mapping of fields (name, output, seed, seq_len, budget_tokens, "
            f"tokenizer, shards, sources); see docs/mixing.md"
        )
    return parse_manifest(data, path, output=output)


def parse_manifest(data: dict, path: str, *, output: Optional[str] = None) -> MixManifest:
    base = os.path.dirname(os.path.abspath(path))
    _check_keys(path, "", data, TOP_KEYS)
    name = str(data.get("name") or os.path.splitext(os.path.basename(path))[0])
    if output is None:
        if not data.get("output"):
            raise _err(path, "output", "missing: the run's output directory (or pass --output)")
        output = _resolve(base, str(data["output"]))
    seed = _int(path, "seed", data.get("seed", 0), minimum=0)
    seq_len = _int(path, "seq_len", data.get("seq_len", 2048), maximum=MAX_SEQ_LEN)

    tok_data = data.get("tokenizer") or {}
    if not isinstance(tok_data, dict):
        raise _err(path, "tokenizer", "expected a mapping (model, kind, vocab_size, sample_chars, threads)")
    _check_keys(path, "tokenizer.", tok_data, TOKENIZER_KEYS)
    kind = str(tok_data.get("kind", "sentencepiece"))
    if kind not in TOKENIZER_KINDS:
        from corpusmill.core.config import close_matches

        raise _err(
            path,
            "tokenizer.kind",
            f"{kind!r} is not a tokenizer kind; expected one of "
            f"{', '.join(TOKENIZER_KINDS)}{close_matches(kind, TOKENIZER_KINDS)}",
        )
    tokenizer = TokenizerSpec(
        model=_resolve(base, str(tok_data["model"])) if tok_data.get("model") else None,
        kind=kind,
        vocab_size=_int(
            path,
            "tokenizer.vocab_size",
            tok_data.get("vocab_size", 32000),
            minimum=260 if kind == "sentencepiece" else 513,
        ),
        sample_chars=_int(path, "tokenizer.sample_chars", tok_data.get("sample_chars", 100_000_000)),
        threads=_int(path, "tokenizer.threads", tok_data.get("threads", 8)),
    )
    if tokenizer.model and "://" not in tokenizer.model and not os.path.isfile(tokenizer.model):
        raise _err(path, "tokenizer.model", f"{tokenizer.model} does not exist; remove the field to train one")

    shard_data = data.get("shards") or {}
    if not isinstance(shard_data, dict):
        raise _err(path, "shards", "expected a mapping (rows_per_shard, batch_rows, pack_group_tokens)")
    _check_keys(path, "shards.", shard_data, SHARD_KEYS)
    shards = ShardSpec(
        rows_per_shard=_int(path, "shards.rows_per_shard", shard_data.get("rows_per_shard", 32768), maximum=MAX_ROWS),
        batch_rows=_int(path, "shards.batch_rows", shard_data.get("batch_rows", 1024), maximum=MAX_ROWS),
        pack_group_tokens=_int(path, "shards.pack_group_tokens", shard_data.get("pack_group_tokens", 16_000_000)),
    )

    src_data = data.get("sources")
    if not isinstance(src_data, dict) or not src_data:
        raise _err(path, "sources", "expected a mapping of source name -> {weight, epochs, documents | processor}")
    tokens_from = _resolve(base, str(data["tokens_from"])) if data.get("tokens_from") else None
    if tokens_from and "://" not in tokens_from and not os.path.isdir(os.path.join(tokens_from, "tokens")):
        raise _err(
            path,
            "tokens_from",
            f"{tokens_from} has no tokens/ directory: name the output directory of a "
            f"corpusmill run whose documents were tokenized",
        )
    sources = [_parse_source(path, base, str(key), value, tokens_from is not None) for key, value in src_data.items()]
    from corpusmill.mixers.domain_manifest import parse_domains  # (it uses this module's helpers)

    mix_by, domains, domain_model, domain_examples = parse_domains(path, base, data, sources, tokens_from is not None)
    pools = domains if mix_by == "domain" else sources
    what = "domains" if mix_by == "domain" else "sources"

    with_weight = [s for s in pools if s.weight is not None]
    budget = data.get("budget_tokens")
    if with_weight and len(with_weight) != len(pools):
        missing = next(s for s in pools if s.weight is None)
        raise _err(
            path,
            missing.field("weight"),
            "missing: give every source a weight (shares of budget_tokens), or none (each source's "
            "epochs then fix its tokens)",
        )
    if with_weight:
        total = sum(s.weight for s in pools)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise _err(
                path,
                f"{what}.*.weight",
                f"the weights sum to {total:.10g}, not 1 (" + ", ".join(f"{s.name}={s.weight:g}" for s in pools) + ")",
            )
        if budget is None:
            raise _err(
                path,
                "budget_tokens",
                "missing: the number of tokens to write, or 'max' (the most that every "
                "source can fill within its epochs cap)",
            )
        if isinstance(budget, str):
            if budget.strip().lower() != "max":
                raise _err(path, "budget_tokens", f"expected a number of tokens or 'max', got {budget!r}")
            budget = "max"
            if not any(s.epochs is not None for s in pools):
                raise _err(path, "budget_tokens", "'max' needs an epochs cap on at least one source")
        else:
            budget = _int(path, "budget_tokens", budget, minimum=seq_len + 1)
    else:
        no_epochs = [s for s in pools if s.epochs is None]
        if no_epochs:
            raise _err(
                path,
                no_epochs[0].field("epochs"),
                "missing: without weights every source needs its epochs (passes over its documents)",
            )
        if budget is not None:
            raise _err(
                path,
                "budget_tokens",
                "remove it, or give every source a weight: without weights the budget "
                "is the sum of epochs x tokens over the sources",
            )
    tolerance = data.get("share_tolerance", DEFAULT_SHARE_TOLERANCE)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance <= 1:
        raise _err(
            path, "share_tolerance", f"expected a share in (0, 1] (0.01: one percentage point), got {tolerance!r}"
        )
    allow = data.get("allow_off_target", False)
    if not isinstance(allow, bool):
        raise _err(path, "allow_off_target", f"expected true or false, got {allow!r}")
    allow_empty = data.get("allow_empty_holdout", False)
    if not isinstance(allow_empty, bool):
        raise _err(path, "allow_empty_holdout", f"expected true or false, got {allow_empty!r}")
    min_distinct = _int(path, "min_distinct_documents", data.get("min_distinct_documents", 100), minimum=1)
    return MixManifest(
        path=path,
        name=name,
        output=output,
        seed=seed,
        seq_len=seq_len,
        budget_tokens=budget,
        tokenizer=tokenizer,
        shards=shards,
        sources=sources,
        share_tolerance=float(tolerance),
        allow_off_target=allow,
        allow_empty_holdout=allow_empty,
        min_distinct_documents=min_distinct,
        tokens_from=tokens_from,
        mix_by=mix_by,
        domains=domains,
        domain_model=domain_model,
        domain_examples=domain_examples,
        anneal=_parse_anneal(path, data, pools, seq_len),
    )


def _parse_anneal(path: str, data: dict, pools: List[SourceSpec], seq_len: int) -> Optional[AnnealSpec]:
    raw = data.get("anneal")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _err(path, "anneal", "expected a mapping: {tokens: N, weights: {pool: share, ...}}")
    _check_keys(path, "anneal.", raw, ANNEAL_KEYS)
    if raw.get("tokens") is None:
        raise _err(path, "anneal.tokens", "missing: the tokens of the annealing phase (the last N of training)")
    tokens = _int(path, "anneal.tokens", raw["tokens"], minimum=seq_len + 1)
    weights = raw.get("weights")
    names = [s.name for s in pools]
    if not isinstance(weights, dict) or not weights:
        raise _err(path, "anneal.weights", f"expected a mapping of {', '.join(names)} -> share")
    out = {}
    for name, w in weights.items():
        if name not in names:
            from corpusmill.core.config import close_matches

            raise _err(
                path,
                f"anneal.weights.{name}",
                f"not a pool of this mixture ({', '.join(names)}){close_matches(str(name), names)}",
            )
        out[str(name)] = _positive(path, f"anneal.weights.{name}", w)
    total = sum(out.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise _err(path, "anneal.weights", f"the weights sum to {total:.10g}, not 1")
    tol = raw.get("share_tolerance")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol <= 1):
        raise _err(path, "anneal.share_tolerance", f"expected a share in (0, 1], got {tol!r}")
    return AnnealSpec(tokens=tokens, weights=out, share_tolerance=float(tol) if tol is not None else None)


def absolute_paths(data: dict, base: str) -> dict:
    """A manifest's mapping with every path it names made absolute against ``base`` (the manifest's folder):
    for a copy written elsewhere (the demo's, a test's). Changes and returns ``data``."""

    def resolve(p):
        return _resolve(base, str(p))

    for spec in (data.get("sources") or {}).values():
        if "input" in spec:
            spec["input"] = [resolve(p) for p in spec["input"]]
        if "documents" in spec:
            spec["documents"] = resolve(spec["documents"])
    cls = data.get("domain_classifier") or {}
    if cls.get("model"):
        cls["model"] = resolve(cls["model"])
    for label, paths in (cls.get("examples") or {}).items():
        cls["examples"][label] = [resolve(p) for p in ([paths] if isinstance(paths, str) else paths)]
    return data


def _parse_source(path: str, base: str, name: str, value: Any, tokenized: bool = False) -> SourceSpec:
    field = f"sources.{name}"
    if not _NAME.match(name):
        raise _err(path, field, "a source name is lower-case letters, digits and _, starting with a letter")
    if not isinstance(value, dict):
        raise _err(path, field, "expected a mapping: {weight, epochs, documents | processor + input}")
    _check_keys(path, f"{field}.", value, SOURCE_KEYS)
    spec = SourceSpec(name=name)
    if value.get("domain") is not None:
        if value["domain"] not in DOMAIN_LABELS:
            raise _err(
                path,
                f"{field}.domain",
                f"expected one of {', '.join(DOMAIN_LABELS)} (multilingual comes from "
                f"the language), got {value['domain']!r}",
            )
        spec.domain = value["domain"]
    if value.get("weight") is not None:
        spec.weight = _positive(path, f"{field}.weight", value["weight"])
    if value.get("epochs") is not None:
        spec.epochs = _positive(path, f"{field}.epochs", value["epochs"], maximum=MAX_EPOCHS)
    if value.get("allow_failed") is not None:
        if not isinstance(value["allow_failed"], bool):
            raise _err(path, f"{field}.allow_failed", f"expected true or false, got {value['allow_failed']!r}")
        spec.allow_failed = value["allow_failed"]
    if value.get("holdout") is not None:
        h = value["holdout"]
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < 0.5:
            raise _err(
                path,
                f"{field}.holdout",
                f"expected the share of its documents held out, in [0, 0.5), e.g. 0.01; got {h!r}",
            )
        spec.holdout = float(h)
    if value.get("holdout_tokens") is not None:
        if value.get("holdout") is not None:
            raise _err(
                path,
                f"{field}.holdout_tokens",
                "give 'holdout' (a share of the documents) or 'holdout_tokens' (about so many tokens), not both",
            )
        spec.holdout_tokens = _int(path, f"{field}.holdout_tokens", value["holdout_tokens"], minimum=1)
    has_docs, has_proc = value.get("documents") is not None, value.get("processor") is not None
    if tokenized:  # tokens_from: the documents are already tokenized there
        if has_docs or has_proc:
            raise _err(
                path,
                field,
                "with tokens_from, a source is the tokenized documents of that run's source of "
                "the same name: drop 'documents' / 'processor'",
            )
        return spec
    if has_docs == has_proc:
        raise _err(
            path,
            field,
            "give exactly one of 'documents' (an existing directory of documents) and "
            "'processor' (+ 'input': a stage that makes them)",
        )
    groups = value.get("groups")
    if groups is not None:
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g for g in groups):
            raise _err(path, f"{field}.groups", "expected a list of sub-directory names or globs, e.g. [en]")
        spec.groups = list(groups)
    if has_docs:
        if value.get("input") is not None or value.get("options"):
            raise _err(path, f"{field}.input", "'input' and 'options' belong to a processor source, not 'documents'")
        spec.documents = _resolve(base, str(value["documents"]))
        if "://" not in spec.documents and not (os.path.isdir(spec.documents) or glob.glob(spec.documents)):
            raise _err(path, f"{field}.documents", f"{spec.documents} does not exist")
    else:
        if not isinstance(value["processor"], str):
            raise _err(path, f"{field}.processor", f"expected a processor name, got {value['processor']!r}")
        spec.processor = value["processor"]
        inputs = value.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        listed = isinstance(value.get("options"), dict) and any(value["options"].get(k) for k in ("dump", "input_list"))
        if inputs is None and listed:  # the CCNet stage names its files by snapshot or listing
            inputs = []
        elif not isinstance(inputs, list) or not inputs:
            raise _err(
                path,
                f"{field}.input",
                "missing: the processor's input files or globs (or, for ccnet, options.dump / options.input_list)",
            )
        spec.inputs = [_resolve(base, str(i)) for i in inputs]
        options = value.get("options") or {}
        if not isinstance(options, dict):
            raise _err(path, f"{field}.options", "expected a mapping of the processor's config fields")
        spec.options = dict(options)
    return spec


def matches_groups(rel_path: str, groups: Optional[List[str]]) -> bool:
    """Whether a document file (path relative to its output directory) is in one of ``groups``."""
    if groups is None:
        return True
    parts = rel_path.replace(os.sep, "/").split("/")
    return len(parts) > 1 and any(fnmatch.fnmatchcase(parts[0], g) for g in groups)
