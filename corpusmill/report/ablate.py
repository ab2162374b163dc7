"""``DIR/ablate.html``: the ablation table and the loss curves, one self-contained page (inline SVG)."""

from __future__ import annotations

import html
import math
from typing import Dict, List


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _pm(entry: dict, digits: int = 4) -> str:
    mean, std = entry.get("mean", math.nan), entry.get("std", math.nan)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f}"


def _vs(entry: dict) -> str:
    test = entry.get("vs_base")
    if not test:
        return ""
    noise = "outside the seed noise" if test["outside_seed_noise"] else "inside the seed noise"
    return (
        f"{test['mean_diff']:+.4f} (t {test['t']:.2f}, df {test['df']}, p {test['p']:.3f}: "
        f"<span class='{'fail' if test['outside_seed_noise'] else 'meta'}'>{noise}</span>)"
    )


def curves_plot(runs: Dict[str, List[dict]]) -> str:
    from corpusmill.report.plots import _figure, _svg

    fig, ax = _figure(6.5, 3.4)
    for i, (name, results) in enumerate(runs.items()):
        for k, r in enumerate(sorted(results, key=lambda r: r["seed"])):
            curve = r.get("train_curve") or []
            if curve:
                ax.plot(
                    [c[0] for c in curve],
                    [c[1] for c in curve],
                    color=f"C{i}",
                    linewidth=1,
                    alpha=0.8,
                    label=name if k == 0 else None,
                )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/token)")
    ax.legend(fontsize=8)
    ax.set_title("training loss, every seed of every variant", fontsize=10)
    return _svg(fig)


def _mix_search(s) -> str:
    if not s:
        return ""
    names = s["sources"]
    rows = "".join(
        "<tr>" + "".join(f"<td>{x:.3f}</td>" for x in p["shares"]) + f"<td>{p['loss']:.4f}</td></tr>"
        for p in s["points"]
    )
    best = s["best"]
    return (
        f"<h2 id='mix-search'>Mixture law: {s['k']} mixtures, {_e(s['target'])} held-out loss</h2>"
        f"<p>{_e(s['model'])}: R² {s['fit']['r2']:.3f}, leave-one-out error {s['fit']['loo_rmse']:.4f}; "
        f"coefficients {_e(dict(zip(names, [round(c, 4) for c in s['fit']['coefficients']])))}.</p>"
        f"<table><tr>{''.join(f'<th>{_e(n)} share</th>' for n in names)}<th>loss</th></tr>{rows}</table>"
        f"<p data-mix-best>the best of 20,000 predicted mixtures: "
        + ", ".join(f"{_e(n)} {best['weights'][n]:.3f}" for n in names)
        + f"; predicted {best['predicted']:.4f}, measured {best['measured']:.4f}</p>"
    )


def _anneal(a) -> str:
    if not a:
        return ""
    rows = "".join(
        f"<tr><td class='l'>{_e(s)}</td><td>{v['without'][0]:.4f}</td><td>{v['with'][0]:.4f}</td>"
        f"<td class='l'>{_vs({'vs_base': v['with_minus_without']})}</td></tr>"
        for s, v in a["table"].items()
    )
    return (
        f"<h2 id='anneal'>Annealing test: {_e(a['candidate'])} at {a['candidate_share_achieved']:.3f} of "
        f"{a['tokens']:,} tokens</h2><p class='meta'>from {_e(a['checkpoint'])}, the learning rate to 0; "
        f"mean over seeds</p><table><tr><th class='l'>held-out set</th><th>without</th><th>with</th>"
        f"<th class='l'>with - without (paired t-test over seeds)</th></tr>{rows}</table>"
    )


def ablate_section(report: dict) -> str:
    """The ablation: the table, the loss curves, the mixture law and the annealing test (also a section of
    ``corpusmill report DIR`` on an ablation's output)."""
    table = report["table"]
    sets = sorted({s for row in table.values() for s in row["sets"]} - {"pooled"}) + ["pooled"]
    head = "".join(f"<th>{_e(s)} loss</th>" for s in sets)
    rows = []
    for name, row in table.items():
        cells = "".join(
            f'<td data-variant="{_e(name)}" data-set="{_e(s)}" data-field="loss">{_pm(row["sets"].get(s, {}).get("loss", {}))}</td>'
            for s in sets
        )
        pooled = row["sets"].get("pooled", {})
        change = report["variants"].get(name, {}).get("change") or {}
        rows.append(
            f'<tr><td class="l">{_e(name)}</td><td class="l meta">{_e(change) if change else "the manifest as it is"}</td>'
            f"{cells}<td data-variant='{_e(name)}' data-field='bpb'>{_pm(pooled.get('bits_per_byte', {}))}</td>"
            f"<td class='l' data-variant='{_e(name)}' data-field='vs_base'>{_vs(pooled.get('loss', {}))}</td>"
            f"<td data-variant='{_e(name)}' data-field='seen'>{100 * row.get('eval_seen_in_training', 0):.1f}%</td></tr>"
        )
    return (
        f"<p class='meta'>spec {_e(report['spec'])}; model {_e(report['model'])}, {report['steps']} steps of "
        f"{report['batch_rows']} rows; seeds {_e(report['seeds'])} (a seed fixes the initialisation and the data "
        f"order, so the variants are paired by seed); every model evaluated on the base's held-out documents "
        f"({_e(', '.join(report['held_out']))}), which no variant trains on.</p>"
        f"<h2 id='ablation'>Held-out loss (nats/token), mean ± std over seeds</h2>"
        f"<table><tr><th class='l'>variant</th><th class='l'>change</th>{head}<th>pooled bits/byte</th>"
        f"<th class='l'>pooled loss vs base (paired t-test over seeds, alpha {report['alpha']})</th>"
        f"<th>held-out tokens seen in its training (32-token windows)</th></tr>"
        f"{''.join(rows)}</table>"
        f"<div class='plots'><figure>{curves_plot(report['runs'])}</figure></div>"
        f"{_mix_search(report.get('mix_search'))}{_anneal(report.get('anneal'))}"
    )


def write_ablate_html(report: dict, path: str) -> None:
    import os

    from corpusmill.report.html import CSS

    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>corpusmill ablate</title>"
        f"<style>{CSS}</style></head><body><h1>corpusmill ablate</h1>{ablate_section(report)}</body></html>\n"
    )
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(path + ".tmp", path)
