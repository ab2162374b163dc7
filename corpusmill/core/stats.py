"""stats.json: per step, in pipeline order, ``read``, ``kept``, ``dropped`` by reason, ``failed``, bytes and
optional ``counters``; the accounting check ``read = kept + sum(dropped) + failed``; the terminal table.

Pure functions (no Beam): the engine builds the rows, the report and the CLI read them.
"""

from __future__ import annotations

import json
from typing import Dict, List, Tuple

KEPT, DROPPED, FAILED = "kept", "dropped", "failed"
COUNTER = "counter"  # a stats row that is not a document outcome: a filter's extra total
# WARC records that are bookkeeping, not pages: the extract step accounts for them as drops
# (``warc_<type>``), and the report does not count them as documents read
NON_DOCUMENT_WARC_TYPES = ("request", "metadata", "warcinfo", "revisit", "continuation")
NON_DOCUMENT_REASONS = frozenset(f"warc_{t}" for t in NON_DOCUMENT_WARC_TYPES)


def build_stats(rows: List[Tuple[Tuple[str, str, str], Tuple[int, int, int]]], step_order: List[str]) -> List[dict]:
    """Turn the combined ``((step, outcome, reason), (n, bytes_in, bytes_out))`` rows into stats.json."""
    by_step: Dict[str, dict] = {
        s: {"step": s, "read": 0, "kept": 0, "dropped": {}, "failed": 0, "bytes_read": 0, "bytes_kept": 0}
        for s in step_order
    }
    for (step, outcome, reason), (n, b_in, b_out) in rows:
        entry = by_step.setdefault(
            step, {"step": step, "read": 0, "kept": 0, "dropped": {}, "failed": 0, "bytes_read": 0, "bytes_kept": 0}
        )
        if outcome == COUNTER:
            entry.setdefault("counters", {})[reason] = entry.get("counters", {}).get(reason, 0) + n
            continue
        entry["read"] += n
        entry["bytes_read"] += b_in
        if outcome == KEPT:
            entry["kept"] += n
            entry["bytes_kept"] += b_out
        elif outcome == DROPPED:
            entry["dropped"][reason] = entry["dropped"].get(reason, 0) + n
        else:
            entry["failed"] += n
    ordered = [by_step[s] for s in step_order] + [v for k, v in sorted(by_step.items()) if k not in step_order]
    for entry in ordered:
        entry["dropped"] = dict(sorted(entry["dropped"].items()))
        if "counters" in entry:
            entry["counters"] = dict(sorted(entry.pop("counters").items()))
    return ordered


def check_accounting(stats: List[dict]) -> List[str]:
    """Problems with the accounting identity (empty when every document is accounted for)."""
    problems = []
    for entry in stats:
        total = entry["kept"] + sum(entry["dropped"].values()) + entry["failed"]
        if total != entry["read"]:
            problems.append(
                f"step {entry['step']}: read {entry['read']} != kept {entry['kept']} + "
                f"dropped {sum(entry['dropped'].values())} + failed {entry['failed']}"
            )
    return problems


def stats_json(stats: List[dict]) -> str:
    return json.dumps(stats, indent=2, sort_keys=False) + "\n"


def format_stats(stats: List[dict]) -> str:
    """stats.json as a table for the terminal."""
    width = max([12] + [len(s["step"]) for s in stats])
    lines = [
        f"{'step':<{width}} {'read':>8} {'kept':>8} {'dropped':>8} {'failed':>7} {'MB read':>9} "
        f"{'MB kept':>9}  drop reasons"
    ]
    for s in stats:
        reasons = ", ".join(f"{k}={v}" for k, v in s["dropped"].items())
        lines.append(
            f"{s['step']:<{width}} {s['read']:>8} {s['kept']:>8} {sum(s['dropped'].values()):>8} "
            f"{s['failed']:>7} {s['bytes_read'] / 1e6:>9.2f} {s['bytes_kept'] / 1e6:>9.2f}  {reasons}"
        )
        if s.get("counters"):
            lines.append(f"{'':<{width}}   totals: " + ", ".join(f"{k}={v}" for k, v in s["counters"].items()))
    return "\n".join(lines)
