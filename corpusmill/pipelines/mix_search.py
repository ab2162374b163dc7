"""``corpusmill ablate SPEC --mix-search K``: a mixture law fitted on small models (docs/ablate.md).

RegMix's recipe (Liu et al. 2024, "RegMix: Data Mixture as Regression for Language Model Pre-training"),
with its simplest regression:

1. K mixtures (at least twice the number of sources: a linear fit needs more points than shares) are drawn around the manifest's weights from a Dirichlet with concentration ``alpha`` times
   the weights (seeded); each re-packs the base run's tokenized documents (``tokens_from``: nothing is
   tokenized again) with those weights, and one model (the spec's first seed) is trained on it;
2. the held-out loss (pooled, or one set with ``--mix-target``) is fitted as a linear function of the
   achieved shares, ``L = sum_i b_i s_i`` (shares sum to 1, so no intercept), by least squares; the fit's
   R^2 and its leave-one-out error are reported;
3. 20,000 more mixtures drawn the same way are scored by the fit, the lowest predicted loss is trained
   once more, and its predicted loss is set against the measured one.

The log-linear data-mixing law (Ye et al. 2024) fits ``L = c + k exp(sum_i t_i s_i)`` instead; the
linear fit is what RegMix found to rank mixtures as well on small budgets, and it needs no optimizer.
"""

from __future__ import annotations

import copy
import os
from typing import Dict, List, Sequence

import numpy as np
import yaml

from corpusmill.core.errors import CorpusmillError

ALPHA = 20.0  # Dirichlet concentration: mixtures within a few points of the manifest's weights
CANDIDATES = 20_000


def draw_mixtures(weights: Dict[str, float], k: int, seed: int, alpha: float = ALPHA) -> List[Dict[str, float]]:
    names = sorted(weights)
    w = np.array([weights[n] for n in names], dtype=float)
    w = w / w.sum()
    rng = np.random.default_rng(seed)
    draws = rng.dirichlet(alpha * w + 1e-3, size=k)
    out = []
    for row in draws:  # rounded to 6 digits, the largest takes the rest: the weights sum to 1 as written
        mix = {n: round(float(x), 6) for n, x in zip(names, row)}
        top = max(mix, key=mix.get)
        mix[top] = round(1.0 - sum(v for n, v in mix.items() if n != top), 6)
        out.append(mix)
    return out


def fit_linear(shares: np.ndarray, losses: np.ndarray) -> dict:
    """``L = shares @ b`` by least squares; R^2 and the leave-one-out root mean squared error."""
    b, *_ = np.linalg.lstsq(shares, losses, rcond=None)
    pred = shares @ b
    ss_res = float(np.sum((losses - pred) ** 2))
    ss_tot = float(np.sum((losses - losses.mean()) ** 2)) or 1e-30
    loo = []
    for i in range(len(losses)):
        keep = np.arange(len(losses)) != i
        bi, *_ = np.linalg.lstsq(shares[keep], losses[keep], rcond=None)
        loo.append(float(shares[i] @ bi - losses[i]))
    return {"coefficients": b.tolist(), "r2": 1 - ss_res / ss_tot, "loo_rmse": float(np.sqrt(np.mean(np.square(loo))))}


def mix_manifest(base: dict, base_run: str, weights: Dict[str, float], out_dir: str) -> str:
    """The base manifest re-packing the base run's tokens with ``weights`` (no annealing phase)."""
    data = copy.deepcopy(base)
    keep = ("holdout", "holdout_tokens")
    data["sources"] = {
        name: dict({k: v for k, v in spec.items() if k in keep}, weight=weights[name])
        for name, spec in base["sources"].items()
    }
    data.pop("anneal", None)
    data["tokens_from"] = base_run
    data["output"] = os.path.join(out_dir, "run")
    data["allow_off_target"] = True  # the fit reads the shares the shards got
    data["allow_empty_holdout"] = True
    data.setdefault("tokenizer", {})
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "manifest.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return path


def achieved(shards_manifest: dict, names: Sequence[str]) -> np.ndarray:
    mixture = shards_manifest["mixture"]
    return np.array([mixture[n]["share"] for n in names], dtype=float)


def search(spec, base: dict, base_run, k: int, target: str, out: str, eval_sets, tokenizer, beam_args, log) -> dict:
    """Run the search (see the module docstring); returns its record for ablate.json."""
    from corpusmill.pipelines.ablate import train_one
    from corpusmill.pipelines.recipe import run_recipe

    if base.get("mix_by", "source") != "source" or any("weight" not in s for s in base["sources"].values()):
        raise CorpusmillError(f"{spec.path}: --mix-search needs a manifest mixed by source weights")
    weights = {n: float(s["weight"]) for n, s in base["sources"].items()}
    names = sorted(weights)
    if k < 2 * len(names):
        raise CorpusmillError(
            f"--mix-search {k}: a linear fit of {len(names)} shares needs more mixtures than shares to mean "
            f"anything (with {len(names)} or fewer it passes through every point and predicts nothing); use at "
            f"least {2 * len(names)}"
        )
    root = os.path.dirname(base_run.shards_dir)
    seed = spec.seeds[0]
    points = []
    for i, mix in enumerate(draw_mixtures(weights, k, seed=1000 + seed), 1):
        d = os.path.join(out, "mix", f"mix-{i:02d}")
        run = run_recipe(mix_manifest(base, root, mix, d), beam_args=beam_args, log=lambda *_: None)
        log(f"[ablate] mixture {i}/{k}: " + ", ".join(f"{n} {mix[n]:.3f}" for n in names))
        result = train_one(spec, run.shards_dir, os.path.join(d, f"seed-{seed}"), seed, eval_sets, tokenizer)
        if target not in result["held_out"]:
            raise CorpusmillError(f"--mix-target {target}: the held-out sets are {', '.join(result['held_out'])}")
        points.append(
            {
                "weights": mix,
                "shares": achieved(run.shards_manifest, names).tolist(),
                "loss": result["held_out"][target]["loss"],
            }
        )
    X = np.array([p["shares"] for p in points])
    y = np.array([p["loss"] for p in points])
    fit = fit_linear(X, y)
    candidates = draw_mixtures(weights, CANDIDATES, seed=2000 + seed)
    scores = np.array([[c[n] for n in names] for c in candidates]) @ np.array(fit["coefficients"])
    best = candidates[int(np.argmin(scores))]
    d = os.path.join(out, "mix", "best")
    run = run_recipe(mix_manifest(base, root, best, d), beam_args=beam_args, log=lambda *_: None)
    predicted = float(achieved(run.shards_manifest, names) @ np.array(fit["coefficients"]))
    if predicted < y.min() - 3 * fit["loo_rmse"]:
        log(
            f"[ablate] warning: the fit predicts {predicted:.4f} for its best mixture, below every measured loss "
            f"({y.min():.4f}) by more than 3 leave-one-out errors: it extrapolates; draw more mixtures"
        )
    measured = train_one(spec, run.shards_dir, os.path.join(d, f"seed-{seed}"), seed, eval_sets, tokenizer)
    return {
        "k": k,
        "target": target,
        "seed": seed,
        "sources": names,
        "model": "L = sum_i b_i * share_i (least squares; RegMix's linear regression)",
        "fit": fit,
        "points": points,
        "best": {
            "weights": best,
            "shares": achieved(run.shards_manifest, names).tolist(),
            "predicted": predicted,
            "measured": measured["held_out"][target]["loss"],
        },
        "manifest_weights": weights,
    }
