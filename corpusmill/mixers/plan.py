"""How many tokens each source gives, which documents make them up, and where every row lands.

No Beam here: these are the pure decisions the mix pipeline (:mod:`corpusmill.pipelines.mix`) applies.

**Targets.** With weights, source ``s`` gets ``T_s = weight_s * budget`` tokens; its ``epochs`` field, if
given, caps ``T_s / S_s`` (``S_s``: the source's tokens, BOS and EOS included). ``budget_tokens: max``
is the largest budget every capped source can fill. Without weights, ``T_s = epochs_s * S_s`` and the
budget is their sum.

**Passes.** ``T_s = full * S_s + F_s`` with ``full = T_s // S_s``: every document appears in passes
``0 .. full-1``, and pass ``full`` takes a deterministic fraction worth ``F_s`` tokens: documents are
ordered by ``h = hash(seed, doc id, pass)`` (then id) and the shortest prefix of that order whose tokens
are closest to ``F_s`` is taken. So the achieved tokens are within half a document of the target,
whatever the data size, and the choice never depends on bundle order. On Beam the prefix is found
without sorting everything: a token histogram over the top 16 bits of ``h`` gives the boundary bucket,
and only the documents of that bucket (1/65536 of the source) are sorted.

**Rows.** Every copy goes to packing group ``h % G``; a group is sorted by ``(h, id, pass)`` and packed
into rows of ``seq_len + 1``. Rows are numbered group by group, then permuted by a keyed bijection
(:class:`corpusmill.train.data.FeistelPermutation`, key from the seed): global position ``pos`` goes
to shard ``pos // rows_per_shard``. So every shard has ``rows_per_shard`` rows (the last one the rest),
and :func:`original_row_order` recovers the packing order (to unpack documents across rows).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Dict, Iterable, List, Optional, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.hashing import stable_hash
from corpusmill.core.shuffle import FeistelPermutation, original_row_order, row_positions, shuffle_key  # noqa: F401

MAX_EPOCHS = 1000.0  # passes over one source's documents (corpusmill.mixers.manifest checks the caps given)

BUCKET_BITS = 16
_BUCKET_SHIFT = 64 - BUCKET_BITS


def doc_hash(seed: int, doc_id: str, pass_: int) -> int:
    """The 64-bit hash that orders documents within a pass (and copies within a packing group)."""
    return stable_hash(f"{seed}\x00{doc_id}\x00{pass_}")


def held_out(seed: int, doc_id: str, fraction: float) -> bool:
    """Whether a document is in its source's held-out set: a hash of (seed, id) below ``fraction`` of the
    range, independent of every pass's hash, so the choice never depends on the budget or the order."""
    if fraction <= 0:
        return False
    return stable_hash(f"holdout\x00{seed}\x00{doc_id}") < fraction * 2.0**64


def bucket_of(h: int) -> int:
    return h >> _BUCKET_SHIFT


@dataclasses.dataclass
class SourcePlan:
    name: str
    source_documents: int
    source_tokens: int  # BOS + ids + EOS over every document of the source
    weight: float  # target share of the budget
    target_tokens: int
    epochs: float  # target passes: target_tokens / source_tokens
    epochs_cap: Optional[float]
    full_passes: int
    fraction_tokens: int  # tokens drawn in pass ``full_passes``
    holdout: float = 0.0  # share of the documents set aside before any pass (its held-out set)
    holdout_documents: int = 0
    holdout_tokens: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class MixPlan:
    mode: str
    seed: int
    seq_len: int
    budget_tokens: int
    pack_groups: int
    sources: Dict[str, SourcePlan]
    share_tolerance: float = 0.01
    allow_off_target: bool = False
    allow_empty_holdout: bool = False  # a holdout under one row: no eval set (its documents still out)
    # pools whose share is met by repeating fewer than the manifest's min_distinct_documents documents
    few_documents: List[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["sources"] = {k: v.to_dict() for k, v in sorted(self.sources.items())}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "MixPlan":
        data = dict(data)
        data["sources"] = {k: SourcePlan(**v) for k, v in data["sources"].items()}
        return cls(**data)


def plan_mixture(manifest, counts: Dict[str, Dict[str, int]]) -> MixPlan:
    """Targets and passes per source from the token ``counts`` (``{source: {documents, tokens}}``).

    Raises a :class:`CorpusmillError` naming the field when a source has no tokens or when the budget
    asks more of a source than its ``epochs`` cap allows (the message gives the largest budget that fits).
    """
    path = manifest.path
    tokens: Dict[str, int] = {}
    for spec in manifest.sources:
        if getattr(spec, "holdout", 0.0) and counts.get(spec.name, {}).get("holdout", 0.0) != spec.holdout:
            raise CorpusmillError(
                f"{path}: sources.{spec.name}.holdout: the token counts were made with holdout "
                f"{counts.get(spec.name, {}).get('holdout', 0.0)}; count again"
            )
        n = int(counts.get(spec.name, {}).get("tokens", 0))
        if n <= 0:
            raise CorpusmillError(
                f"{path}: sources.{spec.name}: no tokens: its documents are missing or empty; "
                f"check sources.{spec.name}.documents / groups or the processor's output"
            )
        tokens[spec.name] = n

    targets: Dict[str, int] = {}
    if manifest.mode == "weights":
        budget = manifest.budget_tokens
        capped = [s for s in manifest.sources if s.epochs is not None]
        fits = min((s.epochs * tokens[s.name] / s.weight for s in capped), default=math.inf)
        if budget == "max":
            budget = int(math.floor(fits))
        for spec in manifest.sources:
            targets[spec.name] = int(round(spec.weight * budget))
            if spec.epochs is not None and targets[spec.name] > spec.epochs * tokens[spec.name] + 1:
                raise CorpusmillError(
                    f"{path}: sources.{spec.name}.epochs: weight {spec.weight:g} of budget_tokens {budget:,} is "
                    f"{targets[spec.name]:,} tokens = {targets[spec.name] / tokens[spec.name]:.3f} passes over its "
                    f"{tokens[spec.name]:,} tokens, above its cap of {spec.epochs:g}; lower budget_tokens to at "
                    f"most {int(fits):,} (or 'max'), raise the cap, or add documents to the source"
                )
    else:
        for spec in manifest.sources:
            targets[spec.name] = int(round(spec.epochs * tokens[spec.name]))
        budget = sum(targets.values())
    if budget < manifest.seq_len + 1:
        raise CorpusmillError(
            f"{path}: budget_tokens: {budget} tokens do not fill one row of seq_len + 1 = {manifest.seq_len + 1}"
        )

    for spec in manifest.sources:  # a budget no data can hold (budget_tokens: 1e15 of a 26-document source)
        if targets[spec.name] > MAX_EPOCHS * tokens[spec.name]:
            most = (
                int(min(MAX_EPOCHS * tokens[s.name] / (s.weight or 1) for s in manifest.sources))
                if manifest.mode == "weights"
                else None
            )
            raise CorpusmillError(
                f"{path}: sources.{spec.name}: {targets[spec.name]:,} tokens are {targets[spec.name] / tokens[spec.name]:.3g} "
                f"passes over its {tokens[spec.name]:,} tokens, above the {MAX_EPOCHS:g} any mix writes"
                + (f"; lower budget_tokens to at most {most:,}" if most else "")
                + ", or add documents to the source"
            )
        h = getattr(spec, "holdout", 0.0)
        held = int(counts[spec.name].get("holdout_tokens", 0))
        if h and held < manifest.seq_len + 1 and getattr(manifest, "allow_empty_holdout", False):
            print(
                f"mix: warning: sources.{spec.name}.holdout {h:g} sets aside {held:,} tokens, under one row: its "
                f"held-out documents stay out of training, and it has no eval set (allow_empty_holdout)",
                file=sys.stderr,
            )
        elif h and held < manifest.seq_len + 1:
            raise CorpusmillError(
                f"{path}: sources.{spec.name}.holdout: {h:g} of its {int(counts[spec.name].get('documents', 0)) + int(counts[spec.name].get('holdout_documents', 0))} "
                f"documents held out {int(counts[spec.name].get('holdout_documents', 0))} document(s), {held:,} tokens, "
                f"under one row of seq_len + 1 = {manifest.seq_len + 1}; hold out more, or none"
            )

    plans = {}
    for spec in manifest.sources:
        s, t = tokens[spec.name], targets[spec.name]
        full = t // s
        plans[spec.name] = SourcePlan(
            name=spec.name,
            source_documents=int(counts[spec.name].get("documents", 0)),
            source_tokens=s,
            weight=t / budget if manifest.mode == "epochs" else spec.weight,
            target_tokens=t,
            epochs=t / s,
            epochs_cap=spec.epochs if manifest.mode == "weights" else None,
            full_passes=int(full),
            fraction_tokens=int(t - full * s),
            holdout=getattr(spec, "holdout", 0.0),
            holdout_documents=int(counts[spec.name].get("holdout_documents", 0)),
            holdout_tokens=int(counts[spec.name].get("holdout_tokens", 0)),
        )
    groups = max(1, math.ceil(sum(targets.values()) / manifest.shards.pack_group_tokens))
    few = getattr(manifest, "min_distinct_documents", 0)
    few_documents = [
        f"sources.{p.name}: its {p.weight:.1%} share is met by repeating {p.source_documents} distinct documents "
        f"{p.epochs:.2f} times, under min_distinct_documents {few}: the model sees the same few documents again; "
        f"add documents to it or lower its weight"
        for p in plans.values()
        if p.target_tokens > 0 and p.source_documents < few and p.epochs > 1.0
    ]
    return MixPlan(
        mode=manifest.mode,
        seed=manifest.seed,
        seq_len=manifest.seq_len,
        budget_tokens=int(budget),
        pack_groups=groups,
        sources=plans,
        share_tolerance=getattr(manifest, "share_tolerance", 0.01),
        allow_off_target=getattr(manifest, "allow_off_target", False),
        allow_empty_holdout=getattr(manifest, "allow_empty_holdout", False),
        few_documents=few_documents,
    )


def check_mixture(plan: MixPlan, mixture: Dict[str, dict]) -> List[str]:
    """What is wrong with the mixture the shards hold (their manifest's ``mixture``): a source with a
    weight that got no tokens, or (weights mode) one whose achieved share is off its weight by more than
    ``plan.share_tolerance``. Each line says what budget would fix it."""
    problems = []
    budget = plan.budget_tokens
    for name, sp in sorted(plan.sources.items()):
        got = mixture.get(name, {})
        tokens, share = int(got.get("tokens", 0)), float(got.get("share", 0.0))
        avg_doc = sp.source_tokens / max(1, sp.source_documents)
        if sp.weight > 0 and tokens == 0:
            need = math.ceil(avg_doc / sp.weight) if plan.mode == "weights" else None
            fix = (
                (
                    f"a budget_tokens of at least {need:,} gives it about one document"
                    + (
                        " (with budget_tokens: max, the budget is set by the epochs caps: raise them)"
                        if plan.mode == "weights"
                        else ""
                    )
                )
                if need
                else "raise its epochs"
            )
            problems.append(
                f"sources.{name}: weight {sp.weight:g} but 0 tokens in the shards: its target of "
                f"{sp.target_tokens:,} tokens is under half of its average document ({avg_doc:,.0f} "
                f"tokens); {fix}"
            )
        elif plan.mode == "weights" and abs(share - sp.weight) > plan.share_tolerance:
            need = math.ceil(avg_doc / (plan.share_tolerance * max(sp.weight, 1e-12)) / max(sp.weight, 1e-12))
            problems.append(
                f"sources.{name}: share {share:.4f} is off its weight {sp.weight:g} by "
                f"{abs(share - sp.weight):.4f}, more than share_tolerance {plan.share_tolerance:g} "
                f"({tokens:,} of {budget:,} tokens, its documents average {avg_doc:,.0f}); a larger "
                f"budget_tokens (about {need:,}) evens it out, or raise share_tolerance"
            )
    return problems


# ---------------------------------------------------------------------------------------------------
# the fractional pass: an exact prefix of the hash order, found with a histogram
# ---------------------------------------------------------------------------------------------------
Boundary = Tuple[int, int]  # (bucket, tokens still needed inside it)


def find_boundaries(histogram: Iterable[Tuple[Tuple[str, int], int]], fractions: Dict[str, int]) -> Dict[str, Boundary]:
    """Per source: the first bucket where the cumulative tokens reach ``fractions[source]``.

    ``histogram`` holds ``((source, bucket), tokens)``. A source whose fraction is 0 (a whole number of
    passes) gets no entry; one whose fraction exceeds its histogram (cannot happen when the fraction is
    below the source's tokens) takes everything.
    """
    per: Dict[str, List[Tuple[int, int]]] = {}
    for (source, bucket), n in histogram:
        per.setdefault(source, []).append((bucket, n))
    out: Dict[str, Boundary] = {}
    for source, need in fractions.items():
        if need <= 0:
            continue
        cum = 0
        rows = sorted(per.get(source, []))
        for bucket, n in rows:
            if cum + n >= need:
                out[source] = (bucket, need - cum)
                break
            cum += n
        else:
            out[source] = (1 << BUCKET_BITS, 0)  # beyond the last bucket: all documents
    return out


def cut_in_bucket(entries: Iterable[Tuple[int, str, int]], need: int) -> Optional[Tuple[int, str]]:
    """The last ``(h, id)`` of the prefix (in ``(h, id)`` order) whose tokens are closest to ``need``.

    ``entries``: ``(h, doc id, tokens)`` of the boundary bucket. None: take none of the bucket. Ties go
    to the shorter prefix.
    """
    best_k, best_err, cum = 0, need, 0
    ordered = sorted(entries)
    for k, (_, _, n) in enumerate(ordered, 1):
        cum += n
        err = abs(cum - need)
        if err < best_err:
            best_k, best_err = k, err
        if cum >= need:
            break
    if best_k == 0:
        return None
    h, doc_id, _ = ordered[best_k - 1]
    return h, doc_id


def in_fraction(h: int, doc_id: str, boundary: Optional[Boundary], cut: Optional[Tuple[int, str]]) -> bool:
    """Whether a document (hash ``h`` in the fractional pass) is drawn."""
    if boundary is None:
        return False
    b = bucket_of(h)
    if b != boundary[0]:
        return b < boundary[0]
    return cut is not None and (h, doc_id) <= cut


# ---------------------------------------------------------------------------------------------------
# rows: groups -> global numbering -> permuted positions -> shards
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RowLayout:
    width: int
    rows_per_shard: int
    group_rows: Dict[int, int]
    offsets: Dict[int, int]
    total_rows: int

    @property
    def num_shards(self) -> int:
        return max(1, math.ceil(self.total_rows / self.rows_per_shard))

    def shard_name(self, shard: int) -> str:
        return f"shard-{shard:05d}-of-{self.num_shards:05d}.arrow"


def row_layout(group_tokens: Dict[int, int], width: int, rows_per_shard: int) -> RowLayout:
    """Rows per packing group (the tail under one row is dropped) and each group's first global row."""
    rows = {g: int(t) // width for g, t in group_tokens.items()}
    offsets, acc = {}, 0
    for g in sorted(rows):
        offsets[g] = acc
        acc += rows[g]
    return RowLayout(width, rows_per_shard, rows, offsets, acc)


# the row shuffle lives in core.shuffle (the shard readers undo it without the mixer)
__all__ = ["original_row_order", "row_positions", "shuffle_key"]
