"""The report's opening: the recipe in one view (sources -> documents kept -> tokens -> the mix, target vs
achieved, held-out sets and their contamination), the order the stages are shown in, and the perplexity
buckets (LLaMA 1's core filter) drawn so both cutoffs can be judged."""

from __future__ import annotations

import html
from typing import Dict, List

from corpusmill.report.collect import RunData, StageData

# the recipe's sources in the paper's order (the CCNet stage: 67% of LLaMA's mix), then the helper stages
SOURCE_KINDS = ("ccnet", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange", "source")
HELPER_KINDS = ("tokenizer", "tokens", "counts", "shards", "anneal")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def stage_kind(stage: StageData) -> str:
    return str((stage.provenance or {}).get("stage") or stage.name.rsplit("/", 1)[-1])


def is_source(stage: StageData) -> bool:
    return stage.name.startswith("sources/") or stage_kind(stage) in SOURCE_KINDS


def recipe_order(stages: List[StageData]) -> List[StageData]:
    """Sources first (CCNet first, then the paper's order), then other stages, then the helper stages in
    the order they run (tokenizer, tokens, counts, shards, anneal)."""

    def key(stage: StageData):
        kind = stage_kind(stage)
        if is_source(stage):
            return (0, SOURCE_KINDS.index(kind) if kind in SOURCE_KINDS else len(SOURCE_KINDS), stage.name)
        if kind in HELPER_KINDS:
            return (2, HELPER_KINDS.index(kind), stage.name)
        return (1, 0, stage.name)

    return sorted(stages, key=key)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def summary_section(data: RunData) -> str:
    """The recipe at a glance: what each source read and kept, its tokens, and the mix."""
    sources = [s for s in recipe_order(data.stages) if is_source(s)]
    main = next((m for m in data.mixtures if m.get("phase", "main") != "anneal"), None)
    if not sources and main is None:
        return ""
    tokens = (data.tokens or {}).get("sources", {})
    rows = "".join(
        f'<tr><td class="l"><a href="#stage-{_e(s.name)}">{_e(s.name.rsplit("/", 1)[-1])}</a></td>'
        f'<td class="l">{_e(stage_kind(s))}</td><td data-recipe="{_e(s.name)}" data-field="read">{s.read:,}</td>'
        f'<td data-recipe="{_e(s.name)}" data-field="kept">{s.written:,}</td><td>{_pct(s.written, s.read)}</td>'
        f"<td>{_e(tokens.get(s.name.rsplit('/', 1)[-1], {}).get('tokens', '')) if tokens else ''}</td></tr>"
        for s in sources
    )
    parts = []
    if sources:
        parts.append(
            "<h3>Sources: documents read and kept</h3>"
            '<table><tr><th class="l">source</th><th class="l">stage</th><th>read</th><th>kept</th><th>kept %</th>'
            f"<th>tokens</th></tr>{rows}</table>"
        )
    for manifest in sorted(data.mixtures, key=lambda m: m.get("phase") == "anneal"):
        parts.append(_mix_table(manifest, data.held_out))
    parts.append(domain_section(data))
    return "<h2 id='recipe'>The recipe</h2>" + "".join(parts)


def domain_section(data: RunData) -> str:
    """Llama 3's domain classifier: how it did on its held-out documents, and where the documents went."""
    m = data.domain_metrics
    if not m:
        return ""
    labels = sorted(m.get("labels", {}))
    rows = "".join(
        f'<tr><td class="l">{_e(k)}</td><td data-domain-label="{_e(k)}" data-field="held_out">{v.get("held_out")}</td>'
        f"<td>{v.get('precision')}</td><td>{v.get('recall')}</td>"
        + "".join(f"<td>{m.get('confusion', {}).get(k, {}).get(p, 0)}</td>" for p in labels)
        + "</tr>"
        for k, v in sorted(m.get("labels", {}).items())
    )
    pools = ""
    tokens_stage = next((s for s in data.stages if stage_kind(s) == "tokens"), None)
    counters = next(
        (e.get("counters", {}) for e in (tokens_stage.stats if tokens_stage else []) if e["step"] == "domain"), {}
    )
    if counters:
        pools = (
            "<p>Documents per pool (the domain step): "
            + ", ".join(
                f'<span data-domain-pool="{_e(k[len("domain_") :])}">{_e(k[len("domain_") :])} {n:,}</span>'
                for k, n in sorted(counters.items())
            )
            + "</p>"
        )
    head = "".join(f"<th>as {_e(p)}</th>" for p in labels)
    return (
        "<h3>The domain classifier (held-out documents, never trained on)</h3>"
        f'<table><tr><th class="l">label</th><th>held out</th><th>precision</th><th>recall</th>{head}</tr>{rows}</table>'
        f"<p class='meta'>code or math only at a probability of 0.9 or more; the rest by language "
        f"(training windows: {_e(m.get('training_windows', {}))})</p>{pools}"
    )


def _mix_table(manifest: dict, held_out: Dict[str, dict]) -> str:
    phase = manifest.get("phase", "main")
    tolerance = manifest.get("share_tolerance")
    rows = []
    for name, m in sorted(manifest.get("mixture", {}).items(), key=lambda kv: (-kv[1].get("weight", 0), kv[0])):
        off = abs(m.get("share", 0) - m.get("weight", 0))
        flag = tolerance is not None and off > tolerance
        held = held_out.get(name) if phase != "anneal" else None
        cont = (held or {}).get("contamination", {})
        dirty = cont.get("contaminated", 0)
        held_cell = (
            f"{held.get('documents', '')} documents, {held.get('rows', '')} rows"
            + (f" ({dirty} more left out: seen in training)" if dirty else " (none seen in training)" if cont else "")
            if held
            else ""
        )
        rows.append(
            f'<tr><td class="l">{_e(name)}</td><td>{100 * m.get("weight", 0):.2f}%</td>'
            f'<td class="{"fail" if flag else ""}" data-recipe-mix="{_e(name)}" data-phase="{_e(phase)}">'
            f"{100 * m.get('share', 0):.2f}%{' off target' if flag else ''}</td>"
            f"<td>{m.get('tokens', 0):,}</td><td>{m.get('epochs', 0):.2f}</td>"
            f'<td class="l" data-heldout-summary="{_e(name)}">{_e(held_cell)}</td></tr>'
        )
    title = "The mix" if phase != "anneal" else "The annealing mix (the last tokens, learning rate to 0)"
    tol = f" Shares may be off their weight by {tolerance:g} (share_tolerance)." if tolerance is not None else ""
    warnings = "".join(f'<p class="fail">{_e(w)}</p>' for w in manifest.get("mixture_warnings", []))
    return (
        f"<h3>{title}: {manifest.get('tokens', 0):,} tokens in {manifest.get('rows', 0):,} rows</h3>"
        f"<p class='meta'>{_e(manifest.get('_path', ''))}.{tol}</p>{warnings}"
        '<table><tr><th class="l">pool</th><th>target</th><th>achieved</th><th>tokens</th><th>epochs</th>'
        f'<th class="l">held out</th></tr>{"".join(rows)}</table>'
    )


# -- the perplexity buckets -------------------------------------------------------------------------
def bucket_section(stage: StageData) -> str:
    """Head / middle / tail per language: the documents of each, the perplexity histogram around both
    cutoffs on the profile's fine bins, and samples of each bucket."""
    steps = stage.profile.get("steps", {}) if stage.profile else {}
    entry = steps.get("bucket")
    if not entry:
        return ""
    cutoffs = (entry.get("thresholds") or {}).get("perplexity") or {}
    hist = entry.get("histograms", {}).get("perplexity", {})
    edges = stage.profile.get("bins", {}).get("perplexity", [])
    counters = next((s.get("counters", {}) for s in stage.stats if s["step"] == "bucket"), {})
    parts = []
    for lang in sorted(cutoffs, key=lambda k: -sum(counters.get(f"{k}_{b}", 0) for b in ("head", "middle", "tail"))):
        cut = cutoffs[lang]
        if not isinstance(cut, list) or len(cut) != 2:
            continue
        counts = [0] * max(0, len(edges) - 1)
        for per_lang in hist.values():
            for i, n in enumerate(per_lang.get(lang, [])):
                counts[i] += n
        buckets = {b: counters.get(f"{lang}_{b}", 0) for b in ("head", "middle", "tail")}  # as the step judged
        cells = "".join(f'<td data-bucket="{_e(lang)}_{b}">{n:,}</td>' for b, n in buckets.items())
        from corpusmill.report.plots import bucket_plot

        samples = "".join(
            f"<details><summary>{_e(lang)}_{b}: samples</summary>"
            + "".join(
                f"<p class='meta'>{_e(d.get('metadata', {}).get('perplexity', ''))}: {_e(d.get('text', '')[:300])}</p>"
                for d in stage.samples.get(f"{lang}_{b}", [])[:3]
            )
            + "</details>"
            for b in buckets
            if stage.samples.get(f"{lang}_{b}")
        )
        parts.append(
            f"<h4>{_e(lang)}: head below {cut[0]:g}, middle to {cut[1]:g}, tail above</h4>"
            f"<table><tr><th>head</th><th>middle</th><th>tail</th></tr><tr>{cells}</tr></table>"
            f"<p class='meta'>documents of each bucket as the bucket step judged them (its counters; a bucket "
            f"not kept is dropped there as bucket_NAME); the chart's bins are the profile's fine log bins, so "
            f"the two cutoffs fall between different bars</p>"
            f"<div class='plots'><figure data-bucket-chart='{_e(lang)}'>{bucket_plot(edges, counts, cut, lang)}</figure></div>"
            f"{samples}"
        )
    if not parts:
        return ""
    return "<h3>Perplexity buckets (head, middle, tail)</h3>" + "".join(parts)


def held_out_by_source(manifests: List[dict]) -> Dict[str, dict]:
    return {m["source"]: m for m in manifests if "source" in m}


__all__ = ["recipe_order", "summary_section", "bucket_section", "held_out_by_source", "stage_kind"]
