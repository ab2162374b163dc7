"""``_provenance.json``: how an output was made, written by every stage beside its stats.json.

- ``corpusmill``: the version; ``stage``: the pipeline's label; ``python``, ``apache_beam``: versions;
- ``config``: the stage's effective options, after defaults (what the CLI or a manifest resolved);
- ``beam_options``: the pipeline options that differ from Beam's defaults (runner, workers, ...);
- ``steps``: per step, in order, the filter's class, its thresholds, its model files (path, bytes and
  sha256 for local files), and the seconds spent in the filter, summed over workers (Beam counters);
- ``started``, ``finished`` (UTC) and ``wall_seconds``.

It is not part of the output's bytes (times differ between runs), so ``_SUCCESS`` does not list it;
``corpusmill report`` shows it per stage and ``corpusmill report --diff A B`` compares two.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import time
from typing import Dict, List, Optional

from corpusmill.core.files import PROVENANCE_NAME, join, read_provenance, sha256_file

SECONDS_NOTE = "seconds in the step's filter, summed over workers (null: the runner reports no counters)"


class Clock:
    def __init__(self):
        self.started = time.time()
        self.t0 = time.perf_counter()


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def model_entries(filt) -> List[dict]:
    """The model files a filter loads: path, bytes and sha256 (local files; a remote path is named only)."""
    out = []
    for attr in getattr(filt, "model_files", ()) or ():
        value = filt.model_in_use(attr)
        paths = sorted(value.values()) if isinstance(value, dict) else [value] if value else []
        subset = filt.model_subset(attr)
        for path in paths:
            path = str(path)
            if "://" in path:
                out.append({"attr": attr, "path": path, "bytes": None, "sha256": None})
                continue
            files = (
                [os.path.join(path, n) for n in sorted(os.listdir(path)) if subset is None or n in subset]
                if os.path.isdir(path)
                else [path]
            )
            for f in files:
                if os.path.isfile(f):
                    out.append(
                        {
                            "attr": attr,
                            "path": os.path.abspath(f),
                            "bytes": os.path.getsize(f),
                            "sha256": sha256_file(f),
                        }
                    )
    return out


def step_seconds(result) -> Optional[Dict[str, float]]:
    """Seconds per step from the run's Beam counters, or None when the runner gives none."""
    from apache_beam.metrics.metric import MetricsFilter

    from corpusmill.engine.step import MICROSECONDS

    try:
        found = result.metrics().query(MetricsFilter().with_name(MICROSECONDS))["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics (a Dataflow dry run): no times
        return None
    seconds: Dict[str, float] = {}
    for c in found:
        step = c.key.metric.namespace[len("corpusmill.") :]
        value = c.committed if c.committed is not None else c.attempted
        seconds[step] = seconds.get(step, 0.0) + (value or 0) / 1e6
    return seconds


def shuffle_bytes(result, name: str) -> Optional[int]:
    """A ``corpusmill.shuffle`` counter: ``key_bytes``, the key files the streaming passes wrote for the keyed
    steps (read back by their range tasks), or ``mark_bytes``, the marks those tasks sent back through
    Beam's shuffle (corpusmill.engine.keyed); None when the runner gives no counters."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        found = result.metrics().query(MetricsFilter().with_namespace("corpusmill.shuffle").with_name(name))
    except Exception:  # noqa: BLE001
        return None
    return sum((c.committed if c.committed is not None else c.attempted) or 0 for c in found["counters"])


def _config_of(out) -> dict:
    if dataclasses.is_dataclass(out):
        return json.loads(json.dumps(dataclasses.asdict(out), default=str))
    return {}


def build_provenance(label: str, out, options, run, result, clock: Clock) -> dict:
    import apache_beam

    from corpusmill import __version__

    seconds = step_seconds(result) if result is not None else None
    steps = []
    for name in run.steps:
        filt = run.filters.get(name)
        filt = getattr(filt, "inner", filt)  # a wrapper (the CCNet stage's Placed): the filter it runs
        entry = {
            "step": name,
            "filter": f"{type(filt).__module__}.{type(filt).__qualname__}" if filt else None,
            "thresholds": run.thresholds.get(name, {}),
            "models": model_entries(filt) if filt is not None else [],
            "seconds": None if seconds is None else round(seconds.get(name, 0.0), 3),
        }
        steps.append(entry)
    now = time.time()
    return {
        "corpusmill": __version__,
        "stage": label,
        "python": platform.python_version(),
        "apache_beam": apache_beam.__version__,
        "config": _config_of(out),
        "beam_options": json.loads(json.dumps(options.get_all_options(drop_default=True), default=str)),
        "steps": steps,
        "seconds_note": SECONDS_NOTE,
        "key_bytes": shuffle_bytes(result, "key_bytes") if result is not None else None,
        "mark_bytes": shuffle_bytes(result, "mark_bytes") if result is not None else None,
        "started": _iso(clock.started),
        "finished": _iso(now),
        "wall_seconds": round(time.perf_counter() - clock.t0, 3),
    }


def write_provenance(out_dir: str, label: str, out, options, run, result, clock: Clock) -> None:
    from apache_beam.options.pipeline_options import TestOptions

    from corpusmill.io.files import write_text_atomic

    if options.view_as(TestOptions).dry_run:
        return  # a Dataflow job graph built without running it: nothing was made
    record = build_provenance(label, out, options, run, result, clock)
    write_text_atomic(join(out_dir, PROVENANCE_NAME), json.dumps(record, indent=1) + "\n")


def merge_units(out_dir: str, unit_dirs: List[str]) -> None:
    """The CCNet stage's final pass: its provenance takes in its units' (the steps they ran, with their
    filters, models and seconds summed over the units, and each unit's times)."""
    from corpusmill.io.files import write_text_atomic

    final = read_provenance(out_dir)
    units = [(d, read_provenance(d)) for d in unit_dirs]
    if final is None:
        return
    by_name = {e["step"]: e for e in final["steps"]}
    for _d, unit in units:
        for entry in (unit or {}).get("steps", []):
            mine = by_name.get(entry["step"])
            if mine is None:
                continue
            if mine["filter"] is None:  # a step the final pass only took the accounting of
                mine.update({k: entry[k] for k in ("filter", "thresholds", "models")}, seconds=entry["seconds"])
            elif entry["seconds"] is not None and mine["seconds"] is not None:
                mine["seconds"] = round(mine["seconds"] + entry["seconds"], 3)
    final["units"] = [
        {
            "unit": os.path.basename(d),
            **{k: (u or {}).get(k) for k in ("started", "finished", "wall_seconds", "key_bytes", "mark_bytes")},
        }
        for d, u in units
    ]
    for name in ("key_bytes", "mark_bytes"):  # the run's: its units' and the final pass's
        counts = [(u or {}).get(name) for _d, u in units]
        if final.get(name) is not None and all(k is not None for k in counts):
            final[name] += sum(counts)
    write_text_atomic(join(out_dir, PROVENANCE_NAME), json.dumps(final, indent=1) + "\n")
