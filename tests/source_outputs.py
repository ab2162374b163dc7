"""Reading back what a stage wrote besides its documents (dropped samples, dead letters, step stats)."""

from __future__ import annotations

from typing import List


def step_stats(stats: List[dict], step: str) -> dict:
    return next(s for s in stats if s["step"] == step)


def dropped_records(out: str, step: str, reason: str) -> List[dict]:
    """The records of ``OUT/_dropped/<step>/<reason>[-NNNNN].jsonl.gz`` ([] when there are none)."""
    from corpusmill.core.files import read_dropped

    return read_dropped(out).get(step, {}).get(reason, [])


def failed_records(out: str) -> List[dict]:
    """The dead letters of ``OUT/_failed/`` ([] when there were none)."""
    from corpusmill.core.files import read_failed

    return read_failed(out)


def score_histogram(out: str, step: str, score: str, verdict: str) -> List[int]:
    """profile.json's ``verdict`` ("kept"/"dropped") histogram of ``score`` at ``step``, summed over
    languages ([] when the step histogrammed none)."""
    import json
    import os

    with open(os.path.join(out, "_meta/profile.json"), encoding="utf-8") as fh:
        per_lang = json.load(fh)["steps"][step]["histograms"].get(score, {}).get(verdict, {})
    counts: List[int] = []
    for c in per_lang.values():
        counts = list(c) if not counts else [a + b for a, b in zip(counts, c)]
    return counts
