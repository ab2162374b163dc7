"""Llama 3's annealing phase (issue 18): a manifest's `anneal:` mixture is written beside the main shards,
the trainer switches to it for the last steps with the learning rate decayed linearly to 0, and a run
killed before the boundary resumes across it bit for bit."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import pytest
import yaml
from helpers import DATA

torch = pytest.importorskip("torch")

from corpusmill.core.errors import CorpusmillError  # noqa: E402
from corpusmill.pipelines.recipe import run_recipe  # noqa: E402
from corpusmill.tokenize.shards import ShardDataset  # noqa: E402
from corpusmill.train.configs import load_config  # noqa: E402
from corpusmill.train.loop import phase_lr_factor, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

WIKI = os.path.join(DATA, "mixing", "wiki_en")
CODE = os.path.join(DATA, "mixing", "code")
SEQ = 64
ANNEAL_TOKENS = 3 * 8 * SEQ  # three steps of 8 rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("anneal")
    manifest = {
        "output": str(root / "run"),
        "seed": 5,
        "seq_len": SEQ,
        "budget_tokens": 60000,
        "tokenizer": {"vocab_size": 600, "sample_chars": 400000, "threads": 1},
        "sources": {
            "wiki": {"weight": 0.7, "documents": WIKI, "holdout": 0.1},
            "code": {"weight": 0.3, "documents": CODE},
        },
        "anneal": {"tokens": ANNEAL_TOKENS, "weights": {"wiki": 1.0}},
        "share_tolerance": 0.05,
    }
    path = root / "m.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return run_recipe(str(path), log=lambda *_: None), root


def _cfg(**kw):
    model, tr = load_config("tiny")
    tr = dataclasses.replace(
        tr,
        **dict(
            dict(
                steps=10, seq_len=SEQ, batch_tokens=8 * SEQ, warmup_steps=2, eval_every=0, ckpt_every=5, log_every=1000
            ),
            **kw,
        ),
    )
    return model, tr


def _log(out_dir):
    with open(os.path.join(out_dir, "train_log.jsonl")) as fh:
        return [json.loads(line) for line in fh if '"loss"' in line]


def test_the_recipe_writes_the_annealing_mixture(run):
    result, root = run
    out = result.manifest.output
    assert "anneal" in result.ran
    phases = result.shards_manifest["phases"]
    assert phases == [
        {"name": "anneal", "data": os.path.join("..", "anneal"), "tokens": ANNEAL_TOKENS, "weights": {"wiki": 1.0}}
    ]
    anneal = ShardDataset(os.path.join(out, "anneal"))
    assert set(anneal.manifest["mixture"]) == {"wiki"}
    assert anneal.manifest["tokenizer_sha256"] == result.shards_manifest["tokenizer_sha256"]
    assert anneal.manifest["rows"] * (SEQ + 1) <= ANNEAL_TOKENS
    # the same held-out documents as the main shards: they stay out of the annealing rows too
    assert anneal.manifest["held_out"] == result.shards_manifest["held_out"]


def test_the_trainer_anneals_to_zero_and_resumes_across_the_boundary(run, tmp_path):
    result, _ = run
    model, tr = _cfg()
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    train(model, tr, result.shards_dir, full, stream=None)
    log = _log(full)
    steps = math.ceil(ANNEAL_TOKENS / (8 * SEQ))
    boundary = 10 - steps
    assert [r["phase"] for r in log] == ["main"] * boundary + ["anneal"] * steps
    lrs = [r["lr"] for r in log]
    assert lrs == pytest.approx([tr.lr * phase_lr_factor(s, 2, 10, tr.min_lr_ratio, steps) for s in range(10)])
    # linear over the annealing steps, from where the main phase's cosine ended to exactly 0: the last
    # update of the run uses learning rate 0 (issue 28: it ended at 1.5e-5, reaching 0 one step too late)
    start = tr.lr * tr.min_lr_ratio
    assert lrs[boundary:] == pytest.approx([start * (9 - s) / (steps - 1) for s in range(boundary, 10)])
    assert lrs[boundary] == pytest.approx(start) and lrs[-1] == 0.0
    # killed in the main phase (checkpoint at 5, before the boundary at 7), resumed: the same run exactly
    train(model, tr, result.shards_dir, part, stop_at=5, stream=None)
    train(model, tr, result.shards_dir, part, resume=True, stream=None)
    assert [r["loss"] for r in _log(part)] == [r["loss"] for r in log]
    a = torch.load(os.path.join(full, "checkpoints", "step_00000010", "model.pt"), weights_only=True)
    b = torch.load(os.path.join(part, "checkpoints", "step_00000010", "model.pt"), weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the annealing rows are not the main phase's: the loss is computed on the anneal shards
    cfg = json.load(open(os.path.join(full, "config.json")))
    assert cfg["data"]["anneal"]["from_step"] == boundary and cfg["data"]["anneal"]["steps"] == steps


def test_an_annealing_phase_longer_than_the_run_is_refused(run, tmp_path):
    result, _ = run
    model, tr = _cfg(steps=4)
    with pytest.raises(CorpusmillError, match="annealing phase takes 3 of the 4 steps"):
        train(model, tr, result.shards_dir, str(tmp_path / "x"), stream=None)


def test_manifest_mistakes_name_their_field(tmp_path):
    from corpusmill.mixers.manifest import load_manifest

    base = {
        "output": str(tmp_path / "o"),
        "seq_len": SEQ,
        "budget_tokens": 60000,
        "sources": {"wiki": {"weight": 0.7, "documents": WIKI}, "code": {"weight": 0.3, "documents": CODE}},
    }

    def load(**changes):
        path = tmp_path / "m.yaml"
        path.write_text(yaml.safe_dump(dict(base, **changes)), encoding="utf-8")
        return load_manifest(str(path))

    assert load(anneal={"tokens": 1000, "weights": {"wiki": 1.0}}).anneal.weights == {"wiki": 1.0}
    for anneal, message in (
        ({"tokens": 1000, "weights": {"wikki": 1.0}}, "anneal.weights.wikki: not a pool.*wiki"),
        ({"tokens": 1000, "weights": {"wiki": 0.5}}, "anneal.weights: the weights sum to 0.5"),
        ({"weights": {"wiki": 1.0}}, "anneal.tokens: missing"),
        ({"tokens": 1000, "weights": {"wiki": 1.0}, "steps": 3}, "anneal.steps"),
    ):
        with pytest.raises(CorpusmillError, match=message):
            load(anneal=anneal)
    with pytest.raises(CorpusmillError, match="tokenizer.kind: 'bpee' is not a tokenizer kind.*did you mean bpe"):
        load(tokenizer={"kind": "bpee"})
