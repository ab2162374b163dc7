"""A stage's profile (``profile.json``): exact counts and score distributions, computed by the pipeline.

Beside the per-step totals of stats.json, every step counts, for each document it sees:

- a drop reason by the document's language and by its source (``by_language``, ``by_source``);
- for each score the step judges by (``Filter.scores``: ``language_score``, ``perplexity``,
  ``wiki_prob`` from the document's metadata; a rule's measures, such as C4's sentence count or code's
  line lengths, from ``Verdict.measures``) and for every document's length in characters: a histogram of the kept and of the
  dropped documents, per language, on fixed bin edges (:data:`BINS`), so the bins of every group,
  step and run are the same and never run past the score's possible range;

and the write step counts the documents it writes by output group, language and source, with the
same histograms. Rows travel like stats.json's (``((step, kind, name), (n, 0, 0))``), summed per
bundle and once per stage, so the counts are exact at any size and never need the documents again.
The thresholds each step applies (``Filter.thresholds()``) are written beside the histograms.
"""

from __future__ import annotations

import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

BY_LANGUAGE = "by_language"  # name: reason \t language
BY_SOURCE = "by_source"  # name: reason \t source
HIST = "hist"  # name: score \t kept|dropped \t language \t bin
OUTPUT = "output"  # name: group|language|source \t value (n documents, bytes in: characters)
KINDS = (BY_LANGUAGE, BY_SOURCE, HIST, OUTPUT)
OUTPUT_STEP = "(written)"  # the step name of the write step's rows
NO_LANGUAGE = "-"  # a document with no language annotation (yet)

# score -> (low, high, bins, log scale). Values outside are counted in the first or last bin.
BINS: Dict[str, Tuple[float, float, int, bool]] = {
    "language_score": (0.0, 1.0, 20, False),
    "wiki_prob": (0.0, 1.0, 20, False),
    # cc_net's perplexities run from about 10 to a few 10^4; bins of x1.047 (4.7%) resolve the bucket
    # cutoffs, which sit about 1.4x apart (head/middle at p30, middle/tail at p60)
    "perplexity": (1.0, 100_000.0, 250, True),
    "length": (1.0, 10_000_000.0, 28, True),  # characters
    # rule measures (Verdict.measures: computed by a rule filter for every document it judges)
    "sentences": (0.0, 50.0, 50, False),  # C4: one bin per sentence count, 50 and more in the last
    "words": (1.0, 1_000_000.0, 24, True),  # C4 --from released: white-space separated words
    "terminal_punct_share": (0.0, 1.0, 20, False),  # C4 --from released: lines ending in . ! ? "
    "page_chars": (1.0, 10_000_000.0, 28, True),  # C4: clean_page's too_long
    "max_line_length": (1.0, 1_000_000.0, 24, True),  # code (RedPajama's GitHub thresholds)
    "mean_line_length": (1.0, 10_000.0, 20, True),
    "alnum_share": (0.0, 1.0, 20, False),
    "alpha_per_token": (0.0, 10.0, 20, False),
}

# the model scores a written document may carry (the write step histograms them)
SCORES = ("language_score", "wiki_prob", "perplexity")


def log_scale(score: str) -> bool:
    return score in BINS and BINS[score][3]


def label(value) -> str:
    """A language, source or group as a profile key (never empty, no tab)."""
    text = str(value) if value not in (None, "") else NO_LANGUAGE
    return text.replace("\t", " ").replace("\x1f", " ")


def edges(score: str, bins: Optional[Dict[str, tuple]] = None) -> List[float]:
    lo, hi, n, log = (bins or BINS)[score]
    if log:
        a, b = math.log10(lo), math.log10(hi)
        return [round(10 ** (a + (b - a) * i / n), 6) for i in range(n + 1)]
    return [round(lo + (hi - lo) * i / n, 6) for i in range(n + 1)]


def bin_of(score: str, value: float, bins: Optional[Dict[str, tuple]] = None) -> int:
    lo, hi, n, log = (bins or BINS)[score]
    if log:
        value = math.log10(max(value, lo))
        lo, hi = math.log10(lo), math.log10(hi)
    i = int((value - lo) / (hi - lo) * n)
    return min(max(i, 0), n - 1)


def check_bins(name: str, bins: Dict[str, tuple]) -> Dict[str, tuple]:
    """A filter's own score bins (``Filter.bins``): ``{score: (low, high, bins, log scale)}``, checked."""
    out = {}
    for score, spec in (bins or {}).items():
        ok = isinstance(spec, (tuple, list)) and len(spec) == 4 and isinstance(spec[2], int) and spec[2] > 0
        if ok:
            lo, hi, n, log = spec
            ok = isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo < hi and (not log or lo > 0)
        if not ok:
            raise ValueError(
                f"filter {name!r}: bins[{score!r}] = {spec!r}; expected (low, high, number of bins, "
                f"log scale), low < high, low > 0 on a log scale"
            )
        out[score] = (float(spec[0]), float(spec[1]), int(spec[2]), bool(spec[3]))
    return out


def number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def build_profile(
    rows, step_order: Sequence[str], thresholds: Dict[str, dict], extra_edges: Optional[Dict[str, List[float]]] = None
) -> dict:
    """profile.json's content from the summed rows (kinds of :data:`KINDS`). ``extra_edges``: the bin
    edges of scores that filters declared themselves (``Filter.bins``), beside :data:`BINS`."""
    all_edges = {s: edges(s) for s in BINS}
    all_edges.update(extra_edges or {})

    def size(score: str) -> int:
        return len(all_edges[score]) - 1

    steps: Dict[str, dict] = {}
    output = {"groups": {}, "languages": {}, "sources": {}, "characters": {}, "histograms": {}}

    def step_entry(step: str) -> dict:
        return steps.setdefault(step, {"dropped": {}, "histograms": {}})

    for (step, kind, name), (n, chars, _) in rows:
        parts = name.split("\t")
        if kind == OUTPUT:
            what, value = parts
            if what == HIST:  # value: score \x1f language \x1f bin
                score, lang, b = value.split("\x1f")
                hist = output["histograms"].setdefault(score, {}).setdefault(lang, [0] * size(score))
                hist[int(b)] += n
                continue
            output[what][value] = output[what].get(value, 0) + n
            if what == "groups":
                output["characters"][value] = output["characters"].get(value, 0) + chars
        elif kind in (BY_LANGUAGE, BY_SOURCE):
            reason, value = parts
            key = "languages" if kind == BY_LANGUAGE else "sources"
            per = step_entry(step)["dropped"].setdefault(reason, {"languages": {}, "sources": {}})[key]
            per[value] = per.get(value, 0) + n
        elif kind == HIST:
            score, verdict, lang, b = parts
            hist = (
                step_entry(step)["histograms"]
                .setdefault(score, {})
                .setdefault(verdict, {})
                .setdefault(lang, [0] * size(score))
            )
            hist[int(b)] += n
    order = {s: i for i, s in enumerate(step_order)}
    out_steps = {}
    for step in sorted(set(steps) | set(thresholds), key=lambda s: (order.get(s, len(order)), s)):
        entry = steps.get(step, {"dropped": {}, "histograms": {}})
        out_steps[step] = {
            "thresholds": thresholds.get(step, {}),
            "dropped": _sorted(entry["dropped"]),
            "histograms": _sorted(entry["histograms"]),
        }
    return {"bins": _sorted(all_edges), "steps": out_steps, "output": _sorted(output)}


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in sorted(value.items())}
    return value


def profile_rows(profile: dict, with_output: bool = False) -> List[tuple]:
    """profile.json back into rows (so the profiles of several runs add up: the CCNet stage's units)."""
    rows = []
    for step, entry in profile.get("steps", {}).items():
        for reason, per in entry["dropped"].items():
            rows += [((step, BY_LANGUAGE, f"{reason}\t{k}"), (n, 0, 0)) for k, n in per["languages"].items()]
            rows += [((step, BY_SOURCE, f"{reason}\t{k}"), (n, 0, 0)) for k, n in per["sources"].items()]
        for score, verdicts in entry["histograms"].items():
            for verdict, langs in verdicts.items():
                for lang, counts in langs.items():
                    rows += [
                        ((step, HIST, f"{score}\t{verdict}\t{lang}\t{b}"), (n, 0, 0)) for b, n in enumerate(counts) if n
                    ]
    if with_output:
        out = profile.get("output", {})
        for what in ("groups", "languages", "sources"):
            for value, n in out.get(what, {}).items():
                chars = out["characters"].get(value, 0) if what == "groups" else 0
                rows.append(((OUTPUT_STEP, OUTPUT, f"{what}\t{value}"), (n, chars, 0)))
        for score, langs in out.get("histograms", {}).items():
            for lang, counts in langs.items():
                rows += [
                    ((OUTPUT_STEP, OUTPUT, f"{HIST}\t{score}\x1f{lang}\x1f{b}"), (n, 0, 0))
                    for b, n in enumerate(counts)
                    if n
                ]
    return rows


def profile_json(profile: dict) -> str:
    return json.dumps(profile, indent=1, sort_keys=False) + "\n"
