"""The training loop on real shards: loss falls, exact resume, bad input, the CLI.

The shards are built here from real text (the stdlib's docstrings) with a SentencePiece BPE model
trained in the fixture (corpusmill.train.sample), packed and written by corpusmill.tokenize.shards.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from corpusmill.cli.main import main as cli_main  # noqa: E402
from corpusmill.core.errors import CorpusmillError  # noqa: E402
from corpusmill.tokenize import ShardDataset  # noqa: E402
from corpusmill.tokenize.shards import mark_complete  # noqa: E402
from corpusmill.train.configs import load_config  # noqa: E402
from corpusmill.train.loop import train  # noqa: E402
from corpusmill.train.sample import build_sample_shards  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    info = build_sample_shards(str(out), seq_len=64, vocab_size=1024, rows_per_shard=256, max_chars=300_000)
    assert info["rows"] > 1000 and info["shards"] >= 4
    return str(out)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _cfg(**train_kw):
    model, tr = load_config("tiny")
    tr = dataclasses.replace(tr, **dict(dict(eval_every=0, ckpt_every=0, log_every=1000), **train_kw))
    return model, tr


def _log(out_dir):
    with open(os.path.join(out_dir, "train_log.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def _losses(out_dir):
    return [r["loss"] for r in _log(out_dir) if "loss" in r]


def test_loss_falls_on_real_text(shards, tmp_path):
    model, tr = _cfg(
        steps=100, warmup_steps=10, lr=1e-2, batch_tokens=8 * 64, eval_every=100, eval_holdout_shards=1, eval_rows=128
    )
    summary = train(model, tr, shards, str(tmp_path), stream=io.StringIO())
    assert summary["step"] == 100
    losses = _losses(tmp_path)
    evals = [r["eval_loss"] for r in _log(tmp_path) if "eval_loss" in r]
    uniform = math.log(1024)
    first = sum(losses[:5]) / 5
    last = sum(losses[-10:]) / 10
    assert first > uniform - 0.1  # starts at chance
    assert last < first - 1.5, (first, last)  # clearly learns
    assert len(evals) == 1 and evals[0] < uniform - 1.4, evals  # and generalises to the held-out shard


def test_resume_continues_exactly(shards, tmp_path):
    model, tr = _cfg(steps=8, ckpt_every=4, micro_batch=4)
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    train(model, tr, shards, full, stream=None)
    train(model, tr, shards, part, stop_at=4, stream=None)
    assert len(_losses(part)) == 4
    # a killed run may have logged past its last checkpoint: resume drops those lines
    with open(os.path.join(part, "train_log.jsonl"), "a") as fh:
        fh.write(json.dumps({"step": 5, "loss": 123.0}) + "\n")
    train(model, tr, shards, part, resume=True, stream=None)
    assert [r["step"] for r in _log(part)] == list(range(1, 9))
    assert _losses(part) == _losses(full)  # bit-identical on the same machine
    assert [r["lr"] for r in _log(part)] == [r["lr"] for r in _log(full)]
    a = torch.load(os.path.join(full, "checkpoints", "step_00000008", "model.pt"), weights_only=True)
    b = torch.load(os.path.join(part, "checkpoints", "step_00000008", "model.pt"), weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # checkpoints are complete directories; no temp dirs left behind
    names = sorted(os.listdir(os.path.join(part, "checkpoints")))
    assert names == ["latest", "step_00000004", "step_00000008"]
    assert sorted(os.listdir(os.path.join(part, "checkpoints", "step_00000008"))) == [
        "meta.json",
        "model.pt",
        "optim.pt",
        "rng",
    ]
    meta = json.load(open(os.path.join(part, "checkpoints", "step_00000008", "meta.json")))
    assert meta["step"] == 8 and meta["consumed_rows"] == 8 * 8


def test_bad_input_is_caught_before_training(shards, tmp_path):
    model, tr = _cfg(steps=2)
    # vocabulary mismatch: a 32000-token model on 1024-token shards
    with pytest.raises(CorpusmillError, match=r"vocab_size\).*another tokenizer.*--vocab-size 1024"):
        train(dataclasses.replace(model, vocab_size=32000), tr, shards, str(tmp_path / "a"), stream=None)
    with pytest.raises(CorpusmillError, match="packed for seq_len 64.*--seq-len 64"):
        train(model, dataclasses.replace(tr, seq_len=128, batch_tokens=1024), shards, str(tmp_path / "b"), stream=None)
    # a corrupt shard
    bad = tmp_path / "bad"
    shutil.copytree(shards, bad)
    target = bad / "shard-00001.arrow"
    data = bytearray(target.read_bytes())
    data[-200] ^= 0x55
    target.write_bytes(bytes(data))
    with pytest.raises(CorpusmillError, match=r"shard-00001.arrow: sha256.*re-run the shard writer"):
        train(model, tr, str(bad), str(tmp_path / "c"), stream=None)
    assert not os.path.exists(tmp_path / "c" / "train_log.jsonl")
    # a checkpoint of another config
    run = str(tmp_path / "run")
    train(model, tr, shards, run, stream=None)
    with pytest.raises(CorpusmillError, match=r"another model config \(model.dim: checkpoint 64, now 96"):
        train(dataclasses.replace(model, dim=96), tr, shards, run, resume=True, stream=None)
    with pytest.raises(CorpusmillError, match="already holds checkpoints.*--resume"):
        train(model, tr, shards, run, stream=None)
    with pytest.raises(CorpusmillError, match="seed"):
        train(model, dataclasses.replace(tr, seed=1), shards, run, resume=True, stream=None)
    # resuming on shards of another tokenizer with the same vocabulary size: caught by its sha256
    other = tmp_path / "other_tokenizer"
    shutil.copytree(shards, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["tokenizer_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    mark_complete(str(other))  # a consistent directory, so the tokenizer check is what refuses it
    with pytest.raises(CorpusmillError, match=r"trained on data with tokenizer_sha256=.*--data has '0000"):
        train(model, tr, str(other), run, resume=True, stream=None)
    assert [r["step"] for r in _log(run) if "loss" in r] == [1, 2]  # nothing trained by the refused runs


def test_cli_options_logs_and_doc_mask(shards, tmp_path, capsys):
    """`corpusmill train` as every command: --model names the model, --config is a YAML of the options
    (flags override it), a mistyped option is one line; `--config tiny` (the old spelling) still works."""
    out = str(tmp_path / "run")
    options = tmp_path / "train.yaml"
    options.write_text(
        "model: tiny\nsteps: 3\nbatch_tokens: 256\nmicro_batch: 2\ndoc_mask: true\neval_every: 3\n"
        "eval_holdout: 1\neval_rows: 8\nlr: 0.1\nwarmup: 1\nverify: false\n"
    )
    assert cli_main(["train", "--config", str(options), "--data", shards, "--output", out, "--lr", "1e-3"]) == 0
    log = _log(out)
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert set(steps[0]) >= {"loss", "lr", "grad_norm", "tokens_per_s", "mfu", "tokens"}
    assert steps[0]["mfu"] is None  # CPU: no known peak
    assert steps[0]["lr"] == pytest.approx(1e-3) and steps[-1]["tokens"] == 3 * 256  # the flag won
    assert [r["step"] for r in log if "eval_loss" in r] == [3]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["model"]["doc_mask"] is True and config["train"]["micro_batch"] == 2
    held_out = ShardDataset(shards, verify=False).manifest["shards"][-1]["rows"]
    assert config["data"]["num_rows"] == len(ShardDataset(shards, verify=False)) - held_out
    assert open(os.path.join(out, "checkpoints", "latest")).read().strip() == "step_00000003"
    # --resume on a finished run: nothing left to do, no error; the old `--config tiny` maps to --model
    capsys.readouterr()
    argv = [
        "train",
        "--config",
        "tiny",
        "--data",
        shards,
        "--output",
        out,
        "--steps",
        "3",
        "--batch-tokens",
        "256",
        "--micro-batch",
        "2",
        "--doc-mask",
        "--resume",
        "--no-verify",
        "--eval-holdout",
        "1",
    ]
    assert cli_main(argv) == 0
    assert "--config tiny names a model: use --model tiny" in capsys.readouterr().err
    # the global batch must split into micro-batches; a mistyped option is one line with close matches
    argv = ["train", "--model", "tiny", "--data", shards, "--output", str(tmp_path / "x"), "--micro-batch", "3"]
    assert cli_main(argv) == 2 and "--micro-batch 3 does not divide" in capsys.readouterr().err
    options.write_text("model: tiny\nstepz: 3\n")
    assert cli_main(["train", "--config", str(options), "--data", shards, "--output", str(tmp_path / "y")]) == 2
    assert "stepz" in capsys.readouterr().err


def test_bf16_autocast_mfu_and_progress_lines(shards, tmp_path):
    model, tr = _cfg(
        steps=3, warmup_steps=1, eval_every=3, eval_holdout_shards=1, eval_rows=16, log_every=1, peak_flops=1e12
    )
    runs = {}
    for precision in ("fp32", "bf16"):
        stream = io.StringIO()
        out = str(tmp_path / precision)
        train(model, dataclasses.replace(tr, precision=precision), shards, out, stream=stream, verify_data=False)
        runs[precision] = ([r for r in _log(out) if "loss" in r], stream.getvalue())
    fp32, text = runs["fp32"]
    # a progress line per step (loss, lr, grad norm, tokens/s, MFU) and one per evaluation
    for r in fp32:
        assert f"step {r['step']}/3 | loss {r['loss']:.4f} | lr {r['lr']:.2e} | gnorm " in text
    assert text.count(" tok/s | mfu ") == 3 and "step 3 | eval loss " in text
    # MFU when the peak is known (--peak-flops): (6 N + 12 L d T) x tokens/s / peak
    model_cfg = dataclasses.replace(model, vocab_size=1024)
    for r in fp32:
        assert r["mfu"] == pytest.approx(model_cfg.flops_per_token(64) * r["tokens_per_s"] / 1e12, rel=1e-9)
    # --precision bf16 autocasts the forward pass (here on the CPU): close to fp32, not bit-equal
    bf16, text16 = runs["bf16"]
    assert "| bf16 |" in text16 and "| fp32 |" in text
    diffs = [abs(a["loss"] - b["loss"]) for a, b in zip(fp32, bf16)]
    assert max(diffs) < 0.05 and max(diffs) > 0, diffs


@pytest.mark.skipif(
    not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile on the CPU needs a C++ compiler"
)
def test_compile_gives_the_eager_losses(shards, tmp_path):
    model, tr = _cfg(steps=2, warmup_steps=1)
    train(model, tr, shards, str(tmp_path / "eager"), stream=None, verify_data=False)
    from torch._dynamo.utils import counters  # noqa: PLC0415

    counters.clear()
    train(
        model, dataclasses.replace(tr, compile=True), shards, str(tmp_path / "compiled"), stream=None, verify_data=False
    )
    assert counters["stats"]["unique_graphs"] > 0  # the blocks really went through torch.compile
    assert json.load(open(tmp_path / "compiled" / "config.json"))["train"]["compile"] is True
    eager, compiled = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(compiled) == 2 and compiled == pytest.approx(eager, rel=1e-4, abs=1e-4)


def test_one_train_step_alone_accumulates_exactly(shards):
    """corpusmill.train.step.train_step on real rows: 2 micro-batches of 4 rows give the loss and the weights
    of one batch of 8 (gradient accumulation is a mean over rows), and the step lowers the loss."""
    from corpusmill.train.data import load_rows
    from corpusmill.train.model import Transformer
    from corpusmill.train.step import held_out_loss, train_step

    ds = ShardDataset(shards)
    model_cfg = dataclasses.replace(_cfg()[0], vocab_size=ds.vocab_size)
    tokens, flags = load_rows(ds, np.arange(8), False)
    dev = torch.device("cpu")
    results, weights = [], []
    for micro in (8, 4):
        torch.manual_seed(0)
        model = Transformer(model_cfg)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        before = held_out_loss(model, lambda idx: load_rows(ds, idx, False), np.arange(8), micro=8, dev=dev)
        results.append(train_step(model, opt, sched, tokens, flags, micro=micro, grad_clip=1e9, dev=dev))
        after = held_out_loss(model, lambda idx: load_rows(ds, idx, False), np.arange(8), micro=8, dev=dev)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        assert results[-1].loss == pytest.approx(before, rel=1e-5) and after < before
    assert results[0].loss == pytest.approx(results[1].loss, rel=1e-5)
    assert results[0].grad_norm == pytest.approx(results[1].grad_norm, rel=1e-4)
    assert torch.allclose(weights[0], weights[1], atol=1e-6)
