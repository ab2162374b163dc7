"""A stage as one list of steps, compiled into streaming passes (cc_net's ``steps`` dict and
``conf.pipeline``; datatrove's pipeline list).

A stage declares its steps in order, once (:class:`Step`): a name, a kind and how to make its filter.
That one list builds the pipeline and answers ``--add-filter X --after STEP``, the step listing, the
provenance and the docs. The kinds:

- ``read``: a reading step, first in its phase (``extract`` / ``read`` of the input files; ``collect``,
  the final phase reading back what the units wrote);
- ``doc``: a filter applied to each document as it streams by (normalize, lid, quality, your filters);
- keyed steps, which need every document's keys before any verdict: ``lines`` (line dedup), ``url``,
  ``content`` and ``near`` (URL, text and near-duplicate dedup), ``tokens`` (the token-distribution
  outliers: :mod:`corpusmill.engine.token_keys`).

:func:`compile_passes` cuts a phase's list into passes (:class:`PassPlan`): a pass begins with its
keyed steps, decided on the keys the pass before wrote, and goes on with document steps; a keyed step
after a document step starts a new pass, and so does any keyed step after line dedup (its keys would be
those of the changed text). URL, text and near-duplicate dedup only drop, so they chain on keys in one
pass, and line dedup after them counts only the lines of the documents they keep. A ``tokens`` step
has a pass of its own (its scores are of the text the pass before wrote).
:func:`build_phase` builds the passes on Beam (:mod:`corpusmill.engine.passes`, :mod:`corpusmill.engine.keyed`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam

from corpusmill.core.files import join
from corpusmill.core.steps import (  # noqa: F401
    CONTENT,
    DOC,
    KEYED,
    LINES,
    NEAR,
    READ,
    TOKENS,
    URL,
    Step,
    user_step,
    with_user_filters,
)


@dataclasses.dataclass
class PassPlan:
    reading: List[Step] = dataclasses.field(default_factory=list)
    keyed: List[Step] = dataclasses.field(default_factory=list)
    doc: List[Step] = dataclasses.field(default_factory=list)

    @property
    def steps(self) -> List[Step]:
        return self.reading + self.keyed + self.doc


def split_phases(steps: Sequence[Step], boundary: str) -> Tuple[List[Step], List[Step]]:
    """The unit phase (before the step named ``boundary``) and the final phase (from it on)."""
    names = [s.name for s in steps]
    i = names.index(boundary) if boundary in names else len(steps)
    return list(steps[:i]), list(steps[i:])


def compile_passes(steps: Sequence[Step]) -> List[PassPlan]:
    """A phase's steps cut into passes (see the module docstring)."""
    passes: List[PassPlan] = []
    cur = PassPlan()
    for step in steps:
        if step.kind == READ:
            if cur.keyed or cur.doc:
                raise ValueError(f"reading step {step.name!r} must come first in its phase")
            cur.reading.append(step)
        elif step.kind in KEYED:
            alone = cur.keyed and (step.kind == TOKENS or cur.keyed[-1].kind in (LINES, TOKENS))
            if cur.doc or alone:
                passes.append(cur)
                cur = PassPlan()
            cur.keyed.append(step)
        else:
            cur.doc.append(step)
    passes.append(cur)
    if passes[0].keyed and not passes[0].reading:
        raise ValueError("a phase cannot start with a keyed step: its keys come from a pass before it")
    return passes


@dataclasses.dataclass
class Knobs:
    """What a stage tells the passes beyond its steps."""

    partitions: int
    scopes: Sequence[int] = ()  # the line-dedup scope of each piece (index = piece)
    scope_names: Sequence[str] = ()
    min_docs: int = 2
    bucket_docs: int = 0  # line dedup within buckets of about this many documents of a scope (0: the scope)
    keep_first: bool = False
    normalize: str = "ccnet"
    fuzzy: object = None  # corpusmill.engine.fuzzy_dedup.FuzzyParams
    fmt: str = "jsonl"
    docs_per_shard: int = 10_000
    write_dropped: bool = False
    dropped_sample: int = 100
    group_fn: Optional[Callable] = None
    readers: Dict[str, tuple] = dataclasses.field(default_factory=dict)  # reading step -> (suffixes, read function)
    placement: Optional[Dict[int, dict]] = None
    skipped: Sequence[object] = ()
    skipped_piece: int = -1


def keys_for(plan: Optional[PassPlan], knobs: Knobs):
    """The key specs a pass writes so that ``plan`` (the next pass) can decide its keyed steps."""
    from corpusmill.engine.keyed import DocKeys, LineKeys

    if plan is None or not plan.keyed:
        return [], None
    kinds = [s.kind for s in plan.keyed]
    specs = []
    chain = [k for k in kinds if k not in (LINES, TOKENS)]
    if chain:
        specs.append(DocKeys(chain[0], knobs.fuzzy if NEAR in chain else None, knobs.partitions))
    if LINES in kinds:
        specs.append(LineKeys(knobs.partitions))
    if TOKENS in kinds:
        from corpusmill.engine.token_keys import TokenKeys

        rule = next(s for s in plan.keyed if s.kind == TOKENS).make()  # corpusmill.filters.token_dist
        specs.append(TokenKeys(rule.unspaced))
    return specs, (knobs.normalize if LINES in kinds else None)


def build_phase(
    run,
    passes: Sequence[PassPlan],
    pieces: beam.PCollection,
    work_dir: str,
    knobs: Knobs,
    final: bool,
    label: str,
    following: Optional[PassPlan] = None,
):
    """Add a phase's passes to the pipeline: ``pieces`` are the first pass's input :class:`Piece` s.
    Returns the last pass's pieces and the repeated-lines entries (PCollections of lists) of its line
    dedups. ``final``: the last pass writes the stage's output (else work files under ``work_dir``);
    ``following``: the first pass of the next phase, whose keys the last pass writes."""
    from corpusmill.engine.keyed import FindDocDuplicates, FindRepeatedLines, PieceMarks, repeated_entries
    from corpusmill.engine.passes import Marked, PassSpec

    entries = []
    for k, plan in enumerate(passes):
        tag = f"{label}Pass{k + 1}"
        last = k == len(passes) - 1
        marks = []
        chain = [(s.name, s.kind) for s in plan.keyed if s.kind not in (LINES, TOKENS)]
        doc_marks = None
        keyed_dir = join(work_dir, f"keyed-{k + 1}")
        if chain:
            doc_marks = pieces | f"{tag}Docs" >> FindDocDuplicates(chain, knobs.partitions, keyed_dir, knobs.fuzzy)
            marks.append(doc_marks)
        repeated = None
        if any(s.kind == LINES for s in plan.keyed):
            lines = FindRepeatedLines(
                knobs.scopes,
                knobs.min_docs,
                knobs.keep_first,
                knobs.partitions,
                keyed_dir,
                drop=doc_marks,
                bucket_docs=knobs.bucket_docs,
            )
            marks.append(pieces | f"{tag}Lines" >> lines)
            repeated = lines.repeated
        for step in (s for s in plan.keyed if s.kind == TOKENS):
            from corpusmill.engine.token_keys import FindTokenOutliers

            outliers = FindTokenOutliers(step.make(), keyed_dir, run.out_dir)
            marks.append(pieces | f"{tag}Tokens" >> outliers)
        # every piece's marks, looked up by piece (a multimap side input: the runner fetches one piece's
        # at a time, where a GroupByKey would hold several copies of all of them)
        side = (
            beam.pvalue.AsMultiMap(marks[0] if len(marks) == 1 else tuple(marks) | f"{tag}Marks" >> beam.Flatten())
            if marks
            else None
        )
        key_specs, hashes = keys_for(following if last else passes[k + 1], knobs)
        reads_input = k == 0 and bool(knobs.readers)
        spec = PassSpec(
            label=tag,
            out_dir=run.out_dir if (final and last) else join(work_dir, f"pass-{k + 1}"),
            run_dir=run.out_dir,
            readers={knobs.readers[s.name][0]: (s.name, s.make(), knobs.readers[s.name][1]) for s in plan.reading}
            if reads_input
            else {},
            reading=(plan.reading[0].name, plan.reading[0].make()) if plan.reading and not reads_input else None,
            marked=[
                Marked(s.name, s.make(), s.kind if s.kind in (LINES, TOKENS) else ("near" if s.kind == NEAR else "dup"))
                for s in plan.keyed
            ],
            steps=[(s.name, s.make()) for s in plan.doc],
            keys=key_specs,
            hashes=hashes,
            group_fn=knobs.group_fn if (final and last) else None,
            fmt=knobs.fmt,
            docs_per_shard=knobs.docs_per_shard,
            write_dropped=knobs.write_dropped,
            dropped_sample=knobs.dropped_sample,
            placement=knobs.placement if reads_input else None,
            skipped=knobs.skipped if reads_input else (),
            skipped_piece=knobs.skipped_piece if reads_input else -1,
        )
        pieces, texts = run.stream(pieces, spec, PieceMarks, f"{tag}Stream", side)
        if repeated is not None:
            entries.append(
                repeated
                | f"{tag}Repeated" >> beam.Map(repeated_entries, beam.pvalue.AsList(texts), list(knobs.scope_names))
            )
    return pieces, entries
