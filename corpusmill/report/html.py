"""Render a run as one self-contained HTML file (inline CSS and SVG plots, no scripts, no network)."""

from __future__ import annotations

import html
import os
from typing import Dict, List

from corpusmill.core.stats import NON_DOCUMENT_REASONS
from corpusmill.report.collect import RunData, StageData
from corpusmill.report.plots import (  # noqa: F401 (moved; imported from here elsewhere)
    SCORE_TITLES,
    _figure,
    _svg,
    bar_plot,
    binned_plot,
    funnel_plot,
    loss_plot,
    mixture_plot,
)

SAMPLES_PER_REASON = 5
EXCERPT_CHARS = 600

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.pass{color:#fff;background:#2e7d32;padding:.1em .5em;border-radius:3px;font-weight:bold}
.fail{color:#fff;background:#c62828;padding:.1em .5em;border-radius:3px;font-weight:bold}
.sample{border:1px solid #ddd;border-left:4px solid #c62828;margin:.4em 0;padding:.3em .6em;background:#fafafa}
.sample.kept{border-left-color:#1976d2}.sample pre{white-space:pre-wrap;word-break:break-word;margin:.3em 0;font-size:.85em;max-height:12em;overflow:auto}
.meta{color:#666;font-size:.85em}.plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{margin:0}
details>summary{cursor:pointer;font-weight:bold;margin:.3em 0}
nav{display:flex;flex-wrap:wrap;gap:.3em 1em}
code{font-size:.85em}del.removed{color:#c62828;background:#fdecea}td.breakdown{max-width:52em;line-height:1.6}
.count{display:inline-block;background:#eef3fb;border-radius:3px;padding:0 .35em;margin:0 .1em;white-space:nowrap}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


SCORE_TITLES.update(
    {
        "sentences": "sentences (C4's count)",
        "words": "words",
        "page_chars": "page length (characters)",
        "terminal_punct_share": "share of lines ending in terminal punctuation",
        "max_line_length": "longest line (characters)",
        "mean_line_length": "mean line length (characters)",
        "alnum_share": "alphanumeric share of characters",
        "alpha_per_token": "alphabetic characters per token",
    }
)


def _stats_table(stage: StageData) -> str:
    rows = []
    for s in stage.stats:
        total = s["kept"] + sum(s["dropped"].values()) + s["failed"]
        ok = total == s["read"]
        detail = "" if ok else f" read {s['read']} != {total}"
        reasons = (
            "<br>".join(
                f'<span data-stage="{_e(stage.name)}" data-step="{_e(s["step"])}" data-reason="{_e(r)}">{_e(r)}: {n}</span>'
                + (' <span class="meta">(a WARC record, not a page)</span>' if r in NON_DOCUMENT_REASONS else "")
                for r, n in s["dropped"].items()
            )
            or "&ndash;"
        )
        cells = "".join(
            f'<td data-stage="{_e(stage.name)}" data-step="{_e(s["step"])}" data-field="{f}">{s[f]}</td>'
            for f in ("read", "kept")
        )
        rows.append(
            f'<tr><td class="l">{_e(s["step"])}</td>{cells}'
            f'<td>{sum(s["dropped"].values())}</td><td class="l">{reasons}</td>'
            f'<td data-stage="{_e(stage.name)}" data-step="{_e(s["step"])}" data-field="failed">{s["failed"]}</td>'
            f'<td>{s["bytes_read"] / 1e6:.2f}</td><td>{s["bytes_kept"] / 1e6:.2f}</td>'
            f'<td class="l"><span class="{"pass" if ok else "fail"}" data-check="{_e(stage.name)}/{_e(s["step"])}">'
            f'{"pass" if ok else "FAIL"}</span>'
            f"{detail}</td></tr>"
        )
    head = (
        '<tr><th class="l">step</th><th>read</th><th>kept</th><th>dropped</th><th class="l">by reason</th>'
        '<th>failed</th><th>MB read</th><th>MB kept</th><th class="l">read = kept + dropped + failed</th></tr>'
    )
    counters = "".join(
        f'<li>{_e(s["step"])}: '
        + ", ".join(
            f'<span data-stage="{_e(stage.name)}" data-step="{_e(s["step"])}" data-counter="{_e(k)}">{_e(k)} {v}</span>'
            for k, v in s["counters"].items()
        )
        + "</li>"
        for s in stage.stats
        if s.get("counters")
    )
    extra = f"<p>Step totals:</p><ul>{counters}</ul>" if counters else ""
    return f"<table>{head}{''.join(rows)}</table>{extra}"


def _doc_excerpt(record: dict, kept: bool = False) -> str:
    doc = record.get("document") or {}
    text = doc.get("text") or ""
    meta = doc.get("metadata") or {}
    extra = ", ".join(
        f"{k}={meta[k]}"
        for k in (
            "language",
            "language_score",
            "perplexity",
            "bucket",
            "wiki_prob",
            "length",
            "title",
            "kept_book",
            "duplicate_of",
            "duplicate_of_location",
        )
        if k in meta
    )
    where = doc.get("url") or record.get("location") or doc.get("location") or ""
    more = "…" if len(text) > EXCERPT_CHARS else ""
    body = (
        f"<pre>{_e(text[:EXCERPT_CHARS])}{more}</pre>"
        if text
        else '<p class="meta">(no text: not a document record)</p>'
    )
    if isinstance(meta.get("removed_lines"), list) and text:  # line dedup: the text as it came, removals marked
        body = _marked_lines(text, set(meta["removed_lines"]))
    return (
        f'<div class="sample{" kept" if kept else ""}"><div class="meta">{_e(doc.get("id", ""))} {_e(where)}'
        f'{" — " + _e(extra) if extra else ""}</div>{body}</div>'
    )


def _marked_lines(text: str, removed: set) -> str:
    """The lines of a document, the ones line dedup removed struck through (at most EXCERPT_CHARS * 3)."""
    out, used = [], 0
    for i, line in enumerate(text.split("\n")):
        if used > EXCERPT_CHARS * 3:
            out.append("…")
            break
        used += len(line) + 1
        out.append(f'<del class="removed">{_e(line)}</del>' if i in removed else _e(line))
    note = (
        f"{len(removed)} line(s) removed by line dedup (struck through): each also occurs in another document "
        f"of the dedup scope"
        if removed
        else "no line removed: the document was shorter than --min-length as it came"
    )
    return f'<p class="meta">{note}</p><pre>{chr(10).join(out)}</pre>'


def _dropped_section(stage: StageData) -> str:
    if not stage.dropped:
        return "<p>No documents were dropped.</p>"
    parts = []
    totals = {s["step"]: s["dropped"] for s in stage.stats}
    for step, reasons in stage.dropped.items():
        for reason, records in reasons.items():
            total = totals.get(step, {}).get(reason, len(records))
            shown = min(len(records), SAMPLES_PER_REASON)
            parts.append(
                f"<details><summary>{_e(step)} / {_e(reason)}: {total} dropped; {shown} shown of "
                f"{len(records)} sampled evenly (by hash) from all of them</summary>"
                + "".join(_doc_excerpt(r) for r in records[:SAMPLES_PER_REASON])
                + "</details>"
            )
    return "".join(parts)


def _failed_section(stage: StageData) -> str:
    if not stage.failed:
        return "<p>No dead letters.</p>"
    rows = "".join(
        f'<tr><td class="l">{_e(f.get("step"))}</td><td class="l">{_e(f.get("location"))}</td>'
        f'<td class="l">{_e(f.get("error"))}</td></tr>'
        for f in stage.failed[:200]
    )
    more = f"<p>… and {len(stage.failed) - 200} more in _failed/</p>" if len(stage.failed) > 200 else ""
    return (
        f'<table><tr><th class="l">step</th><th class="l">input location</th><th class="l">error</th></tr>'
        f"{rows}</table>{more}"
    )


def _count_table(counts: Dict[str, int], what: str, stage: StageData, attr: str, limit: int = 40) -> str:
    total = sum(counts.values()) or 1
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = "".join(
        f'<tr><td class="l">{_e(k)}</td><td data-stage="{_e(stage.name)}" data-{attr}="{_e(k)}">{n}</td>'
        f"<td>{100 * n / total:.1f}%</td></tr>"
        for k, n in items[:limit]
    )
    more = f'<p class="meta">… and {len(items) - limit} more</p>' if len(items) > limit else ""
    return f'<table><tr><th class="l">{what}</th><th>documents</th><th>share</th></tr>{rows}</table>{more}'


def _groups_section(stage: StageData) -> str:
    if not stage.profile:
        return (
            '<p class="fail">No profile.json: this output was written before corpusmill computed exact counts '
            "and distributions in the pipeline. Rerun the stage to see them.</p>"
        )
    out = stage.profile.get("output", {})
    if not stage.groups:
        return "<p>No documents were written.</p>"
    tables = [_count_table(stage.groups, "output group", stage, "group")]
    if len(out.get("languages", {})) > 1 or len(stage.groups) == 1:
        tables.append(_count_table(out.get("languages", {}), "language", stage, "language"))
    tables.append(_count_table(out.get("sources", {}), "source", stage, "source"))
    edges = stage.profile["bins"]
    plots = [
        bar_plot(list(stage.groups)[:25], list(stage.groups.values())[:25], "documents per output group", "documents")
    ]
    for score, per_lang in out.get("histograms", {}).items():
        top = dict(sorted(per_lang.items(), key=lambda kv: -sum(kv[1]))[:6])
        plots.append(
            binned_plot(edges[score], top, f"written documents: {SCORE_TITLES.get(score, score)}, by language", score)
        )
    figures = "".join(f"<figure>{p}</figure>" for p in plots)
    samples = "".join(
        f'<details><summary data-sample-group="{_e(group)}">{_e(group)}: {len(docs)} written documents, drawn evenly '
        f"(by hash) from all {stage.groups.get(group, len(docs))}</summary>"
        + "".join(_doc_excerpt({"document": d}, kept=True) for d in docs)
        + "</details>"
        for group, docs in stage.samples.items()
    )
    return (
        f'<p class="meta">Exact: counted by the pipeline over every written document (profile.json).</p>'
        f'<div class="plots">{"".join(f"<div>{t}</div>" for t in tables)}</div><div class="plots">{figures}</div>'
        f"{samples}"
    )


def _threshold_values(value) -> Dict[str, List[float]]:
    """A step's threshold for one score: {"": [t]} or, per language, {lang: [t1, t2]}."""
    if isinstance(value, (int, float)):
        return {"": [float(value)]}
    if isinstance(value, list):  # a range: [min, max]
        return {"": [float(x) for x in value if isinstance(x, (int, float))]}
    if isinstance(value, dict):
        return {k: [float(x) for x in (v if isinstance(v, list) else [v])] for k, v in value.items()}
    return {}


def _sum_langs(per_lang: Dict[str, List[int]]) -> List[int]:
    counts = None
    for c in per_lang.values():
        counts = list(c) if counts is None else [a + b for a, b in zip(counts, c)]
    return counts or []


def _step_filters(stage: StageData, step: str, entry: dict) -> str:
    edges = stage.profile["bins"]
    parts = []
    for reason, per in entry.get("dropped", {}).items():
        for key, what in (("languages", "language"), ("sources", "source")):
            counts = per.get(key, {})
            if key == "languages" and set(counts) == {"-"}:  # "-": before language ID
                parts.append(
                    f'<tr><td class="l">{_e(reason)}</td><td class="l">by {what}</td><td class="l meta">'
                    f'{counts["-"]}, no language known at this step (before language ID, or none in this '
                    f'stage)</td></tr>'
                )
            elif len(counts) > 1 or key == "languages":
                items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                cells = " ".join(
                    f'<span class="count" data-stage="{_e(stage.name)}" data-step="{_e(step)}" '
                    f'data-reason="{_e(reason)}" data-{what}="{_e(k)}">{_e(k)}: {n}</span>'
                    for k, n in items
                )
                parts.append(
                    f'<tr><td class="l">{_e(reason)}</td><td class="l">by {what}</td>'
                    f'<td class="l breakdown">{cells}</td></tr>'
                )
    table = f"<table>{''.join(parts)}</table>" if parts else ""
    thresholds = entry.get("thresholds", {})
    plots = []
    for score, verdicts in entry.get("histograms", {}).items():
        if score == "length" and "length" not in thresholds and "too_short" not in entry.get("dropped", {}):
            continue
        limits = _threshold_values(thresholds.get(score))
        if set(limits) - {""}:  # per-language thresholds: one plot per language (the largest four)
            sizes = {lang: sum(sum(v.get(lang, [])) for v in verdicts.values()) for lang in limits}
            for lang in sorted(sizes, key=lambda k: -sizes[k])[:4]:
                series = {v: counts[lang] for v, counts in sorted(verdicts.items(), reverse=True) if lang in counts}
                plots.append(binned_plot(edges[score], series, f"{step}: {score}, {lang}", score, limits[lang]))
        else:
            series = {v: _sum_langs(per_lang) for v, per_lang in sorted(verdicts.items(), reverse=True)}
            plots.append(
                binned_plot(edges[score], series, f"{step}: {score}, kept and dropped", score, limits.get("", []))
            )
    if step == "line_dedup" and stage.repeated_lines:
        rows = "".join(
            f'<tr><td data-repeated="{i}">{e["documents"]}</td><td class="l"><code>{_e(e["text"][:200])}'
            f"</code></td></tr>"
            for i, e in enumerate(stage.repeated_lines[:30])
        )
        table += (
            f"<details><summary>the {min(30, len(stage.repeated_lines))} lines removed from the most documents"
            f"</summary><table><tr><th>documents</th><th class='l'>line</th></tr>{rows}</table>"
            f"<p class='meta'>exact counts, within each dedup scope (repeated_lines.json lists "
            f"{len(stage.repeated_lines)})</p></details>"
        )
    shown = ", ".join(f"{k} = {_e(v)}" for k, v in thresholds.items())
    head = f'<p class="meta">thresholds: {shown}</p>' if shown else ""
    figures = "".join(f"<figure>{p}</figure>" for p in plots)
    return f"<h4>{_e(step)}</h4>{head}{table}<div class='plots'>{figures}</div>"


def _filters_section(stage: StageData) -> str:
    """Per step: what it removed, in which language and source, and its scores against its threshold."""
    if not stage.profile:
        return ""
    parts = [
        _step_filters(stage, step, entry)
        for step, entry in stage.profile.get("steps", {}).items()
        if entry.get("dropped") or (set(entry.get("histograms", {})) - {"length"})
    ]
    return "".join(parts) or "<p>No step dropped documents.</p>"


def _provenance_section(stage: StageData) -> str:
    prov = stage.provenance
    if not prov:
        return "<p class='meta'>No _provenance.json (written before corpusmill recorded how a run was made).</p>"
    rows = []
    for step in prov.get("steps", []):
        models = "<br>".join(
            f'{_e(os.path.basename(m["path"]))} <code>{_e((m.get("sha256") or "remote")[:12])}</code>'
            for m in step.get("models", [])
        )
        seconds = "" if step.get("seconds") is None else f'{step["seconds"]:.2f}'
        rows.append(
            f'<tr><td class="l">{_e(step["step"])}</td><td class="l"><code>{_e(step.get("filter") or "")}'
            f'</code></td><td class="l">{_e(json_short(step.get("thresholds") or {}))}</td>'
            f'<td class="l">{models}</td><td>{seconds}</td></tr>'
        )
    rows = "".join(rows)
    config = "".join(
        f'<tr><td class="l">{_e(k)}</td><td class="l">{_e(json_short(v))}</td></tr>'
        for k, v in prov.get("config", {}).items()
    )
    return (
        f'<p>corpusmill {_e(prov.get("corpusmill"))}, Apache Beam {_e(prov.get("apache_beam"))}, Python '
        f'{_e(prov.get("python"))}; started {_e(prov.get("started"))}, finished {_e(prov.get("finished"))}, '
        f'{prov.get("wall_seconds", 0):.1f} s wall; runner options {_e(json_short(prov.get("beam_options", {})))}</p>'
        '<table><tr><th class="l">step</th><th class="l">filter</th><th class="l">thresholds</th>'
        f'<th class="l">models (sha256)</th><th>seconds</th></tr>{rows}</table>'
        f"<details><summary>effective configuration</summary><table>{config}</table></details>"
    )


def _compared_section(stage: StageData, data: RunData) -> str:
    from corpusmill.report.collect import stage_differences

    if data.compared is None:
        return ""
    from corpusmill.report.collect import matching_stage

    other = matching_stage(stage, data.stages, data.compared.stages)
    head = f"<h3>Compared with {_e(data.compared.root)}</h3>"
    if other is None:
        return head + "<p>That run has no stage of this name, nor one stage of this kind.</p>"
    if other.name != stage.name:
        head += f"<p class='meta'>matched by kind: its {_e(other.name)}</p>"
    rows = stage_differences(stage, other)
    if not rows:
        return head + "<p>The same configuration, thresholds, models and counts.</p>"
    body = "".join(
        f'<tr><td class="l">{_e(what)}</td><td class="l" data-diff="{_e(what)}" data-run="this">'
        f'{_e(json_short(a))}</td><td class="l" data-diff="{_e(what)}" data-run="other">{_e(json_short(b))}'
        f"</td></tr>"
        for what, a, b in rows
    )
    return (
        head + '<table><tr><th class="l">what</th><th class="l">this run</th><th class="l">the other run</th></tr>'
        f"{body}</table>"
    )


def json_short(value) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:300] + "…"


def _mixture_section(data: RunData) -> str:
    if not data.mixtures:
        return "<p>No mixer output (manifest.json) in this run.</p>"
    parts = []
    for manifest in sorted(data.mixtures, key=lambda m: m.get("phase") == "anneal"):  # the main mixture first
        mixture = manifest["mixture"]
        phase = _e(manifest.get("phase", "main"))
        rows = "".join(
            f'<tr><td class="l">{_e(name)}</td><td>{100 * m.get("weight", 0):.2f}%</td>'
            f'<td data-mixture="{_e(name)}" data-phase="{phase}" data-field="share">{100 * m.get("share", 0):.2f}%</td>'
            f'<td>{m.get("target_tokens", "")}</td>'
            f'<td data-mixture="{_e(name)}" data-phase="{phase}" data-field="tokens">{m.get("tokens", "")}</td>'
            f'<td>{_num(m.get("epochs_target"))}</td><td>{m.get("epochs", 0):.3f}</td><td>{m.get("documents", "")}</td></tr>'
            for name, m in mixture.items()
        )
        shards = manifest.get("shards") or []
        seq = int(manifest.get("seq_len", 0)) + 1
        shard_plot = (
            bar_plot(
                [s.get("file", str(i)) for i, s in enumerate(shards)][:40],
                [int(s.get("rows", 0)) * seq for s in shards][:40],
                "tokens per shard",
                "tokens",
            )
            if shards
            else ""
        )
        title = (
            "annealing phase (the last tokens of training; the learning rate decays to 0)" if phase == "anneal" else ""
        )
        phases = "".join(
            f"; then {_e(p.get('name'))}: {int(p.get('tokens', 0)):,} tokens from {_e(p.get('data'))}"
            for p in manifest.get("phases") or []
        )
        parts.append(
            f"<h3>{_e(manifest['_path'])}{(' — ' + title) if title else ''}</h3>"
            f"<p>{manifest.get('rows', 0)} rows of {seq} tokens in {len(shards)} shards; "
            f"tokenizer sha256 <code>{_e(str(manifest.get('tokenizer_sha256', ''))[:16])}…</code>; seed {_e(manifest.get('seed'))}"
            f"{phases}</p>"
            '<table><tr><th class="l">source</th><th>target share</th><th>achieved share</th><th>target tokens</th>'
            f"<th>tokens</th><th>target epochs</th><th>epochs</th><th>documents</th></tr>{rows}</table>"
            f'<div class="plots"><figure>{mixture_plot(mixture)}</figure><figure>{shard_plot}</figure></div>'
        )
    return "".join(parts)


def _num(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else _e(value if value is not None else "")


def _training_section(data: RunData) -> str:
    if not data.training:
        return "<p>No training run (train_log.jsonl) in this run directory.</p>"
    parts = []
    for log in data.training:
        if not log.steps:
            continue
        speed = sorted(log.tokens_per_s)[len(log.tokens_per_s) // 2]
        last_eval = f", eval loss {log.eval_loss[-1]:.3f} at step {log.eval_steps[-1]}" if log.eval_loss else ""
        if log.eval_by_source:
            last_eval += (
                "; held-out loss per source (documents set aside before mixing) at the last eval: "
                + ", ".join(
                    f'<span data-heldout="{_e(k)}">{_e(k)} {v[-1][1]:.3f}</span>'
                    for k, v in sorted(log.eval_by_source.items())
                )
            )
        parts.append(
            f"<h3>{_e(log.name)}</h3><p>{len(log.steps)} steps, loss {log.loss[0]:.3f} → {log.loss[-1]:.3f}"
            f"{last_eval}; median {speed:,.0f} tokens/s</p><div class='plots'><figure>{loss_plot(log)}</figure></div>"
        )
    return "".join(parts)


def render(data: RunData) -> str:
    from corpusmill.report.ablate import ablate_section
    from corpusmill.report.recipe_view import bucket_section, is_source, recipe_order, summary_section

    all_ok = not any(stage.problems for stage in data.stages)
    ordered = recipe_order(data.stages)  # the recipe's sources first (CCNet first), helper stages last
    nav = "".join(f'<a href="#stage-{_e(s.name)}">{_e(s.name)}</a>' for s in ordered)
    summary_rows = "".join(
        f'<tr><td class="l"><a href="#stage-{_e(s.name)}">{_e(s.name)}</a></td><td data-summary="{_e(s.name)}" '
        f'data-field="read">{s.read}</td><td data-summary="{_e(s.name)}" data-field="written">{s.written}</td>'
        f'<td class="l meta">{"documents written" if s.groups or is_source(s) else "documents read through"}</td>'
        f'<td>{sum(x["failed"] for x in s.stats)}</td>'
        f'<td class="l"><span class="{"fail" if s.problems else "pass"}">{"FAIL" if s.problems else "pass"}</span></td></tr>'
        for s in ordered
    )
    stages = []
    for stage in ordered:
        stages.append(
            f'<h2 id="stage-{_e(stage.name)}">{_e(stage.name)}</h2>'
            f"<h3>Funnel</h3>{_stats_table(stage)}<div class='plots'><figure>{funnel_plot(stage)}</figure></div>"
            f"{bucket_section(stage)}"
            f"<h3>What each filter removed, where, and its threshold</h3>{_filters_section(stage)}"
            f"<h3>Written documents: groups, languages, sources, scores</h3>{_groups_section(stage)}"
            f"<h3>Dropped documents, samples by reason</h3>{_dropped_section(stage)}"
            f"<h3>Dead letters</h3>{_failed_section(stage)}"
            f"<h3>How this output was made</h3>{_provenance_section(stage)}{_compared_section(stage, data)}"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>corpusmill report: {_e(data.root)}</title><style>{CSS}</style></head><body>"
        f"<h1>corpusmill report</h1><p class='meta'>run directory: {_e(data.root)}</p>"
        f"<p>Accounting across all stages: <span class='{'pass' if all_ok else 'fail'}' id='accounting'>"
        f"{'pass' if all_ok else 'FAIL'}</span></p><nav><a href='#recipe'>recipe</a>{nav}<a href='#mixture'>mixture</a>"
        "<a href='#training'>training</a></nav>"
        + (f"<h2 id='ablate'>Ablation (corpusmill ablate)</h2>{ablate_section(data.ablation)}" if data.ablation else "")
        + summary_section(data)
        + '<h2>Stages</h2><table><tr><th class="l">stage</th><th>read</th><th>kept</th><th class="l"></th>'
        f'<th>failed</th><th class="l">accounting</th></tr>{summary_rows}</table>'
        + "".join(stages)
        + f"<h2 id='mixture'>Mixture and shards</h2>{_mixture_section(data)}"
        + f"<h2 id='training'>Training</h2>{_training_section(data)}</body></html>\n"
    )


def terminal_summary(data: RunData) -> str:
    from corpusmill.core.stats import format_stats

    lines = []
    for stage in data.stages:
        lines.append(f"== {stage.name}  [{'FAIL' if stage.problems else 'accounting ok'}]")
        lines.append(format_stats(stage.stats))
        lines.extend(f"   !! {p}" for p in stage.problems)
        if stage.failed:
            lines.append(f"   {len(stage.failed)} dead letters in {stage.name}/_failed/")
    if data.compared is not None:
        from corpusmill.report.collect import matching_stage, stage_differences

        for stage in data.stages:
            other = matching_stage(stage, data.stages, data.compared.stages)
            if other is not None:
                rows = stage_differences(stage, other)
                lines.append(f"== {stage.name} against {data.compared.root}: {len(rows) or 'no'} difference(s)")
                lines.extend(f"   {what}: {json_short(a)} -> {json_short(b)}" for what, a, b in rows[:40])
    for manifest in data.mixtures:
        lines.append(f"== mixture {manifest['_path']}")
        for name, m in manifest["mixture"].items():
            lines.append(
                f"   {name:<16} target {100 * m.get('weight', 0):6.2f}%  achieved {100 * m.get('share', 0):6.2f}%"
                f"  epochs {m.get('epochs', 0):.3f} (target {_num(m.get('epochs_target'))})"
            )
    return "\n".join(lines)
