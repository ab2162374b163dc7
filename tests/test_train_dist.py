"""Distributed training on CPU (gloo, 2 processes under torchrun): DDP and FSDP2 match one process on
the same global batch, step by step, and a checkpoint written by 2 FSDP2 processes resumes in 1."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

from corpusmill.train.configs import load_config  # noqa: E402
from corpusmill.train.loop import train  # noqa: E402
from corpusmill.train.sample import build_sample_shards  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch build has no gloo backend"
)

STEPS = 6
ARGS = [
    "--model",
    "tiny",
    "--steps",
    str(STEPS),
    "--batch-tokens",
    str(8 * 64),
    "--micro-batch",
    "2",
    "--warmup",
    "2",
    "--lr",
    "3e-3",
    "--ckpt-every",
    "3",
    "--log-every",
    "1000",
    "--no-verify",
]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    build_sample_shards(str(out), seq_len=64, vocab_size=512, rows_per_shard=256, max_chars=120_000)
    return str(out)


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):
    """One process, the same global batch (8 rows = 4 micro-batches of 2)."""
    out = str(tmp_path_factory.mktemp("one"))
    model, tr = load_config("tiny")
    tr = dataclasses.replace(
        tr,
        steps=STEPS,
        batch_tokens=8 * 64,
        micro_batch=2,
        warmup_steps=2,
        lr=3e-3,
        ckpt_every=3,
        log_every=1000,
        eval_every=0,
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(model, tr, shards, out, stream=None, verify_data=False)
    finally:
        torch.set_num_threads(before)
    return out


def _log(out_dir):
    with open(os.path.join(out_dir, "train_log.jsonl")) as fh:
        return [json.loads(line) for line in fh if "loss" in line]


def _torchrun(shards, out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "corpusmill.cli.train",
        "--data",
        shards,
        "--output",
        out,
        *ARGS,
        *extra,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _assert_same_run(got, ref, steps):
    assert [r["step"] for r in got] == steps
    ref = {r["step"]: r for r in ref}
    for r in got:
        assert r["loss"] == pytest.approx(ref[r["step"]]["loss"], rel=1e-5, abs=1e-5), r["step"]
        assert r["grad_norm"] == pytest.approx(ref[r["step"]]["grad_norm"], rel=1e-4, abs=1e-6), r["step"]
        assert r["lr"] == pytest.approx(ref[r["step"]]["lr"], rel=1e-12)


def _final_weights(out_dir):
    return torch.load(os.path.join(out_dir, "checkpoints", f"step_{STEPS:08d}", "model.pt"), weights_only=True)


def test_ddp_two_processes_match_one(shards, reference, tmp_path):
    out = str(tmp_path / "ddp")
    _torchrun(shards, out, "--dist", "ddp")
    _assert_same_run(_log(out), _log(reference), list(range(1, STEPS + 1)))
    a, b = _final_weights(out), _final_weights(reference)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    assert json.load(open(os.path.join(out, "config.json")))["world_size"] == 2


def test_fsdp2_two_processes_then_resume_in_one(shards, reference, tmp_path):
    """FSDP2 (fully_shard) on 2 gloo processes for half the run, then resume in 1 process."""
    out = str(tmp_path / "fsdp")
    _torchrun(shards, out, "--dist", "fsdp", "--stop-at", str(STEPS // 2))
    meta = json.load(open(os.path.join(out, "checkpoints", f"step_{STEPS // 2:08d}", "meta.json")))
    assert meta["world_size"] == 2 and meta["dist"] == "fsdp"
    assert sorted(os.listdir(os.path.join(out, "checkpoints", f"step_{STEPS // 2:08d}", "rng"))) == [
        "rank_00000.pt",
        "rank_00001.pt",
    ]
    model, tr = load_config("tiny")
    tr = dataclasses.replace(
        tr,
        steps=STEPS,
        batch_tokens=8 * 64,
        micro_batch=4,
        warmup_steps=2,
        lr=3e-3,
        ckpt_every=3,
        log_every=1000,
        eval_every=0,
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(model, tr, shards, out, resume=True, stream=None, verify_data=False)
    finally:
        torch.set_num_threads(before)
    _assert_same_run(_log(out), _log(reference), list(range(1, STEPS + 1)))
    a, b = _final_weights(out), _final_weights(reference)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def _weights_any(out_dir):
    """The final weights of a run, from a full or a sharded (torch.distributed.checkpoint) checkpoint."""
    from corpusmill.train.export import load_trained

    model, _cfg, _tok, _meta = load_trained(os.path.join(out_dir, "checkpoints", f"step_{STEPS:08d}"))
    return model.state_dict()


def test_sharded_checkpoints_resume_on_another_world_size(shards, reference, tmp_path):
    """Issue 17: --ckpt-format sharded: 2 FSDP2 processes each write their shards (no gather); the run
    resumes on 1 process and on 2, each the same as the uninterrupted run."""
    import shutil

    out = str(tmp_path / "dcp")
    _torchrun(shards, out, "--dist", "fsdp", "--ckpt-format", "sharded", "--stop-at", str(STEPS // 2))
    step_dir = os.path.join(out, "checkpoints", f"step_{STEPS // 2:08d}")
    files = sorted(os.listdir(os.path.join(step_dir, "dcp")))
    assert "model.pt" not in os.listdir(step_dir) and sum(f.endswith(".distcp") for f in files) == 2
    two = str(tmp_path / "dcp-two")
    shutil.copytree(out, two)
    # resume on 1 process
    model, tr = load_config("tiny")
    tr = dataclasses.replace(
        tr,
        steps=STEPS,
        batch_tokens=8 * 64,
        micro_batch=4,
        warmup_steps=2,
        lr=3e-3,
        ckpt_every=3,
        log_every=1000,
        eval_every=0,
        ckpt_format="sharded",
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(model, tr, shards, out, resume=True, stream=None, verify_data=False)
    finally:
        torch.set_num_threads(before)
    _assert_same_run(_log(out), _log(reference), list(range(1, STEPS + 1)))
    # resume on 2 processes
    _torchrun(shards, two, "--dist", "fsdp", "--ckpt-format", "sharded", "--resume")
    _assert_same_run(_log(two), _log(reference), list(range(1, STEPS + 1)))
    ref = _final_weights(reference)
    for got in (_weights_any(out), _weights_any(two)):
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-5)
