"""The report's figures: matplotlib charts written as inline SVG (the page fetches nothing)."""

from __future__ import annotations

import io
from typing import Dict, Sequence

from corpusmill.core.profile import log_scale
from corpusmill.report.collect import StageData


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(width=6.0, height=3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "corpusmill"  # stable element ids
    return plt.subplots(figsize=(width, height))


def funnel_plot(stage: StageData) -> str:
    fig, ax = _figure(6.5, 0.5 + 0.45 * len(stage.stats))
    steps = [s["step"] for s in stage.stats][::-1]
    read = [s["read"] for s in stage.stats][::-1]
    kept = [s["kept"] for s in stage.stats][::-1]
    ax.barh(steps, read, color="#ddd", label="read")
    ax.barh(steps, kept, color="#1976d2", label="kept")
    ax.set_xlabel("documents")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{stage.name}: documents per step", fontsize=10)
    return _svg(fig)


def bar_plot(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> str:
    fig, ax = _figure(6.5, 0.6 + 0.3 * len(labels))
    ax.barh(list(labels)[::-1], list(values)[::-1], color="#1976d2")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    return _svg(fig)


SCORE_TITLES = {
    "language_score": "language score (lid.176)",
    "perplexity": "perplexity (KenLM)",
    "wiki_prob": "Wikipedia-classifier probability",
    "length": "length (characters)",
}


def binned_plot(
    edges: Sequence[float], series: Dict[str, Sequence[int]], title: str, score: str, thresholds: Sequence[float] = ()
) -> str:
    """Counts on the profile's fixed bin edges (the same for every group, step and run), the x axis
    clamped to the score's possible range, each threshold drawn as a dashed line."""
    fig, ax = _figure()
    colors = {"kept": "#1976d2", "dropped": "#c62828"}
    for i, (name, counts) in enumerate(series.items()):
        color = colors.get(name, f"C{i}")
        ax.stairs(
            list(counts),
            list(edges),
            label=f"{name} ({sum(counts)})",
            color=color,
            fill=len(series) <= 2,
            alpha=0.45 if len(series) <= 2 else 0.9,
            linewidth=1.2,
        )
    if log_scale(score):
        ax.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])
    for t in thresholds:
        ax.axvline(t, color="#333", linestyle="--", linewidth=1)
        ax.annotate(f"{t:g}", (t, 1), xycoords=("data", "axes fraction"), fontsize=7, ha="left", va="top")
    if series:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(SCORE_TITLES.get(score, score))
    ax.set_ylabel("documents")
    return _svg(fig)


def bucket_plot(edges: Sequence[float], counts: Sequence[int], cutoffs: Sequence[float], lang: str) -> str:
    """Documents per perplexity bin around the two cutoffs (the profile's fine log bins), each bin colored
    by its bucket (head, middle, tail), the cutoffs drawn and labelled at two heights so they never overlap."""
    import math

    lo, hi = cutoffs[0], cutoffs[1]
    left = max(edges[0], lo / 4)
    right = min(edges[-1], hi * 4)
    idx = [i for i in range(len(counts)) if edges[i + 1] > left and edges[i] < right]
    fig, ax = _figure(6.5, 3.2)
    colors = {"head": "#1976d2", "middle": "#7cb342", "tail": "#c62828"}
    for name, keep in (  # a bin by its (geometric) center: the one a cutoff falls in goes to one side
        ("head", lambda c: c < lo),
        ("middle", lambda c: lo <= c < hi),
        ("tail", lambda c: c >= hi),
    ):
        sel = [i for i in idx if keep(math.sqrt(edges[i] * edges[i + 1]))]
        if sel:
            ax.bar(
                [edges[i] for i in sel],
                [counts[i] for i in sel],
                width=[edges[i + 1] - edges[i] for i in sel],
                align="edge",
                color=colors[name],
                label=f"{name} ({sum(counts[i] for i in sel)})",
            )
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    for k, (t, name) in enumerate(((lo, "head | middle"), (hi, "middle | tail"))):
        ax.axvline(t, color="#333", linestyle="--", linewidth=1)
        ax.annotate(
            f"{name}: {t:g}", (t, 0.97 - 0.1 * k), xycoords=("data", "axes fraction"), fontsize=7, ha="left", va="top"
        )
    ax.legend(fontsize=7, loc="center right")
    step = edges[1] / edges[0] if len(edges) > 1 and edges[0] > 0 else math.e
    ax.set_title(f"{lang}: documents by perplexity (bins of x{step:.3f}) around the cutoffs", fontsize=10)
    ax.set_xlabel(SCORE_TITLES["perplexity"])
    ax.set_ylabel("documents")
    return _svg(fig)


def mixture_plot(mixture: Dict[str, dict]) -> str:
    fig, ax = _figure(6.5, 3.2)
    names = list(mixture)
    xs = range(len(names))
    ax.bar(
        [x - 0.2 for x in xs],
        [100 * mixture[n].get("weight", 0) for n in names],
        width=0.4,
        label="target",
        color="#bbb",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [100 * mixture[n].get("share", 0) for n in names],
        width=0.4,
        label="achieved",
        color="#1976d2",
    )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("% of tokens")
    ax.legend(fontsize=8)
    ax.set_title("mixture: target vs achieved share", fontsize=10)
    return _svg(fig)


def loss_plot(log) -> str:
    fig, ax = _figure(6.5, 3.2)
    ax.plot(log.steps, log.loss, label="training loss", color="#1976d2", linewidth=1)
    if log.eval_steps:
        label = (
            "loss on held-out shards (documents repeat across shards)"
            if log.eval_kind.startswith("held-out shards")
            else "eval loss (--eval-data)"
        )
        ax.plot(log.eval_steps, log.eval_loss, "o-", label=label, color="#c62828")
    for i, (source, points) in enumerate(sorted(log.eval_by_source.items())):
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            "o-",
            markersize=3,
            linewidth=1,
            label=f"held-out loss ({source})",
            color=f"C{(i + 1) % 10}",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.legend(fontsize=8)
    ax.set_title(f"{log.name}: loss", fontsize=10)
    return _svg(fig)
