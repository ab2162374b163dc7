"""Reading back what a stage wrote besides its documents (dropped samples, dead letters, step stats)."""

from __future__ import annotations

import gzip
import json
import os
from typing import List


def step_stats(stats: List[dict], step: str) -> dict:
    return next(s for s in stats if s["step"] == step)


def dropped_records(out: str, step: str, reason: str) -> List[dict]:
    """The records of ``OUT/_dropped/<step>/<reason>.jsonl.gz`` ([] when the file is not there)."""
    path = os.path.join(out, "_dropped", step, f"{reason}.jsonl.gz")
    if not os.path.exists(path):
        return []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def failed_records(out: str) -> List[dict]:
    """The dead letters of ``OUT/_failed/`` ([] when there were none)."""
    from corpusmill.core.files import read_failed

    return read_failed(out)
