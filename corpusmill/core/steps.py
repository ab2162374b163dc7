"""A pipeline's steps as a value (no Beam): each step its name, its kind and how to make its filter.

A pipeline module's ``steps(cfg)`` returns a list of :class:`Step`; corpusmill.engine.pipeline compiles it
into streaming passes, and the same list answers ``--add-filter X --after STEP``, ``--steps``, the
provenance and the docs. Kinds: ``read`` (a reading step), ``doc`` (one document at a time), and the
keyed kinds that decide on keys across documents (``lines``, ``url``, ``content``, ``near``,
``tokens``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from corpusmill.core.config import close_matches
from corpusmill.core.errors import CorpusmillError

READ, DOC, LINES, URL, CONTENT, NEAR = "read", "doc", "lines", "url", "content", "near"
TOKENS = "tokens"  # the token-distribution step: a score against the whole run's word counts
KEYED = (LINES, URL, CONTENT, NEAR, TOKENS)


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a stage: its name (stats.json, ``--after``), its kind, and how to make its filter."""

    name: str
    kind: str
    make: Callable[[], Any]  # -> a corpusmill.filters.base.Filter
    summary: str = ""
    # a source stage's keyed step: ``prepare() -> (label, Beam transform)`` its input goes through first
    # (the marks of a dedup: corpusmill.engine.stage.apply_steps); the CCNet stage compiles keyed kinds
    prepare: Optional[Callable[[], Any]] = None


def table(steps: Sequence[Step], extra: Sequence[Tuple[Any, Optional[str]]] = ()) -> List[Tuple[str, str, str]]:
    """``corpusmill NAME --steps``: (name, kind, what it does) of each step, the user's filters in place."""
    return [(s.name, s.kind, s.summary) for s in with_user_filters(steps, extra)]


def user_step(filt) -> Step:
    return Step(filt.name, DOC, lambda: filt, f"your filter {type(filt).__module__}.{type(filt).__qualname__}")


def with_user_filters(steps: Sequence[Step], extra: Sequence[Tuple[Any, Optional[str]]]) -> List[Step]:
    """The stage's steps with the user's filters (``--add-filter``) placed: after the step ``--after``
    names (several after one step run in the order given), or last. A step the stage does not have is
    refused, naming its steps."""
    out = list(steps)
    names = [s.name for s in steps]
    last_after: Dict[str, str] = {}
    for filt, after in extra:
        if after is None:
            out.append(user_step(filt))
            continue
        if after not in names:
            raise CorpusmillError(
                f"--after {after}: this stage has no step {after!r}{close_matches(after, names)}; "
                f"its steps: {', '.join(names)}"
            )
        anchor = last_after.get(after, after)
        i = [s.name for s in out].index(anchor)
        out.insert(i + 1, user_step(filt))
        last_after[after] = filt.name
    seen = set()
    for s in out:
        if s.name in seen:
            raise CorpusmillError(
                f"step name {s.name!r} is used twice in this stage (steps: "
                f"{', '.join(x.name for x in out)}); give your filter another name"
            )
        seen.add(s.name)
    return out
