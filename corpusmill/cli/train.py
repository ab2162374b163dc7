"""``corpusmill train``: train a LLaMA model on corpusmill shards.

Cheap to import (no torch): the handler imports the trainer. Under torchrun::

    torchrun --nproc_per_node 8 -m corpusmill.cli.train --model 7B --data SHARDS --output RUN --dist fsdp

``python -m corpusmill.cli.train ...`` takes the same options as ``corpusmill train``.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.stage import Stage

# CLI option -> (section, field, type)
OVERRIDES = [
    ("--steps", "train", "steps", int, "total optimizer steps (the cosine schedule's length)"),
    ("--tokens", "train", "tokens", float, "token budget, used when --steps is not given"),
    ("--lr", "train", "lr", float, "peak learning rate"),
    ("--warmup", "train", "warmup_steps", int, "linear warmup steps (LLaMA: 2000)"),
    ("--min-lr-ratio", "train", "min_lr_ratio", float, "cosine floor as a fraction of the peak (0.1)"),
    (
        "--batch-tokens",
        "train",
        "batch_tokens",
        int,
        "global batch in tokens (LLaMA: 4M); reached by gradient accumulation",
    ),
    ("--seq-len", "train", "seq_len", int, "context length; must match the shards"),
    ("--micro-batch", "train", "micro_batch", int, "rows per forward pass per process (0: all at once)"),
    ("--weight-decay", "train", "weight_decay", float, "AdamW weight decay on matrices (0.1)"),
    ("--grad-clip", "train", "grad_clip", float, "gradient norm clipping (1.0)"),
    ("--seed", "train", "seed", int, "seed of the initialisation and of the data order"),
    ("--precision", "train", "precision", str, "auto | bf16 | fp32 (auto: bf16 autocast on GPUs with bf16)"),
    ("--dist", "train", "dist", str, "auto | none | ddp | fsdp (auto: ddp under torchrun)"),
    ("--log-every", "train", "log_every", int, "progress line every N steps (JSONL gets every step logged)"),
    ("--ckpt-every", "train", "ckpt_every", int, "checkpoint every N steps (and at the end)"),
    ("--keep-checkpoints", "train", "keep_checkpoints", int, "checkpoints kept (0: all)"),
    (
        "--ckpt-format",
        "train",
        "ckpt_format",
        str,
        "full (gathered on one process) | sharded (each process writes "
        "its shards with torch.distributed.checkpoint; any world size "
        "resumes it)",
    ),
    ("--eval-every", "train", "eval_every", int, "held-out loss every N steps (0: never)"),
    ("--eval-rows", "train", "eval_rows", int, "rows of the held-out set evaluated"),
    ("--eval-holdout", "train", "eval_holdout_shards", int, "hold out the last K shards of --data for eval"),
    ("--peak-flops", "train", "peak_flops", float, "device peak FLOP/s for MFU (default: known GPUs)"),
    ("--vocab-size", "model", "vocab_size", int, "model vocabulary (default: the config's, or the shards')"),
    ("--rope-theta", "model", "rope_theta", float, "RoPE base (10000; Llama 3: 500000)"),
    ("--n-kv-heads", "model", "n_kv_heads", int, "key/value heads for grouped-query attention"),
    ("--norm-eps", "model", "norm_eps", float, "RMSNorm epsilon (LLaMA 1: 1e-6)"),
    (
        "--doc-mask-impl",
        "model",
        "doc_mask_impl",
        str,
        "auto | dense | flex: the document mask as a dense SDPA "
        "mask or FlexAttention's block mask (auto: flex on CUDA)",
    ),
]


_CHOICES = {
    "precision": ("auto", "bf16", "fp32"),
    "dist": ("auto", "none", "ddp", "fsdp"),
    "ckpt_format": ("full", "sharded"),
    "doc_mask_impl": ("auto", "dense", "flex"),
}


def _override_fields():
    """The OVERRIDES as config fields: None (the named config's value) unless given."""
    fields = []
    for flag, _section, _field, typ, text in OVERRIDES:
        name = flag.lstrip("-").replace("-", "_")
        kw = {"choices": _CHOICES[name]} if name in _CHOICES else {}
        fields.append((name, Optional[typ], option(None, metavar=name.upper(), help=text, **kw)))
    return fields


# The command's typed config, as every other command's: its fields are the flags, the keys of
# `--config FILE.yaml` (flags override it) and the keyword arguments of corpusmill.run_stage("train", ...).
TrainCommand = dataclasses.make_dataclass(
    "TrainCommand",
    [
        (
            "model",
            str,
            option(
                required=True,
                metavar="NAME|FILE",
                help="a named model and schedule (7B, 13B, 33B, "
                "65B, tiny, small, 125M) or a JSON/YAML file {base, model: {...}, train: {...}}",
            ),
        ),
        ("data", str, option(required=True, metavar="DIR", help="shard directory (manifest.json + *.arrow)")),
        (
            "output",
            str,
            option(required=True, metavar="DIR", help="run directory: checkpoints, train_log.jsonl, config.json"),
        ),
        (
            "resume",
            bool,
            option(False, help="continue from the newest checkpoint in --output (start fresh if there is none)"),
        ),
        (
            "eval_data",
            Optional[str],
            option(None, metavar="DIR", help="a separate shard directory for the held-out loss"),
        ),
        (
            "stop_at",
            Optional[int],
            option(
                None,
                min=1,
                metavar="STEP",
                help="stop (with a checkpoint) after this step, keeping the schedule of --steps",
            ),
        ),
        ("device", str, option("auto", help="auto | cpu | cuda (auto: cuda:LOCAL_RANK if available)")),
        ("compile", bool, option(False, help="torch.compile each block")),
        (
            "activation_checkpointing",
            bool,
            option(False, help="recompute each block's activations in the backward pass"),
        ),
        (
            "doc_mask",
            bool,
            option(False, help="Llama 3 document masking: no attention across documents in a packed row"),
        ),
        (
            "decay_embeddings",
            bool,
            option(True, help="weight decay on the token embedding (--no-decay-embeddings: none)"),
        ),
        ("verify", bool, option(True, help="check the shards' sha256 on open (--no-verify: skip)")),
        (
            "init_from",
            Optional[str],
            option(
                None,
                metavar="HF_DIR",
                help="start from a Hugging Face Llama "
                "checkpoint (its config is the model's; its tokenizer must be the "
                "shards'): continued pretraining",
            ),
        ),
        (
            "meta_init",
            bool,
            option(
                False,
                help="build the model on the meta device and initialise it after "
                "sharding (automatic above 2B parameters)",
            ),
        ),
        *_override_fields(),
    ],
    kw_only=True,
)
TrainCommand.__module__ = __name__
TrainCommand.__doc__ = "``corpusmill train``'s options."


def resolve(cmd):
    """ModelConfig and TrainConfig from --model plus the options given."""
    from corpusmill.train.configs import load_config  # noqa: PLC0415

    model, train = load_config(cmd.model)
    changes = {"model": {}, "train": {}}
    for flag, section, field, _typ, _ in OVERRIDES:
        value = getattr(cmd, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            changes[section][field] = int(value) if field == "tokens" else value
    for name, section, field, value in (
        ("compile", "train", "compile", True),
        ("activation_checkpointing", "train", "activation_checkpointing", True),
        ("doc_mask", "model", "doc_mask", True),
        ("meta_init", "train", "meta_init", True),
    ):
        if getattr(cmd, name):
            changes[section][field] = value
    if not cmd.decay_embeddings:
        changes["train"]["decay_embeddings"] = False
    if changes["train"].get("seq_len"):
        model = dataclasses.replace(model, max_seq_len=max(model.max_seq_len, changes["train"]["seq_len"]))
    return dataclasses.replace(model, **changes["model"]), dataclasses.replace(train, **changes["train"])


def run_train(cmd, beam_args: Sequence[str] = ()) -> dict:
    if beam_args:
        raise CorpusmillError(f"unknown option(s) for train: {' '.join(beam_args)}")
    model_cfg, train_cfg = resolve(cmd)
    from corpusmill.train.loop import train  # noqa: PLC0415 - torch only when training

    if cmd.init_from:  # the model is the checkpoint's; --model gives the training schedule
        from corpusmill.train.export import hf_model_config  # noqa: PLC0415

        given = [
            flag
            for flag, section, *_ in OVERRIDES
            if section == "model" and getattr(cmd, flag.lstrip("-").replace("-", "_")) is not None
        ]
        if given:
            raise CorpusmillError(
                f"--init-from takes the model from the checkpoint's config.json; drop {', '.join(given)}"
            )
        hf_cfg = hf_model_config(cmd.init_from)
        model_cfg = dataclasses.replace(
            hf_cfg, doc_mask=model_cfg.doc_mask, max_seq_len=max(hf_cfg.max_seq_len, train_cfg.seq_len)
        )
    return train(
        model_cfg,
        train_cfg,
        cmd.data,
        cmd.output,
        resume=cmd.resume,
        eval_data=cmd.eval_data,
        stop_at=cmd.stop_at,
        device=cmd.device,
        verify_data=cmd.verify,
        init_from=cmd.init_from,
    )


def _show(cmd, summary: dict) -> None:
    if summary.get("rank", 0) == 0:
        print(
            f"done: step {summary['step']}, loss {summary['loss']:.4f}, "
            f"{summary['tokens_per_s']:.0f} tokens/s (median)",
            file=sys.stderr,
        )


def _old_names(argv: List[str]) -> List[str]:
    """The old spellings, still accepted with a line saying so: ``--out`` (now ``--output``) and
    ``--config NAME`` naming a model (now ``--model NAME``; ``--config`` is a YAML of the options, as for
    every command)."""
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--out" or arg.startswith("--out="):
            print("corpusmill train: --out is deprecated; use --output", file=sys.stderr)
            arg = "--output" + arg[len("--out") :]
        elif arg == "--config" and i + 1 < len(argv) and _names_a_model(argv[i + 1]):
            print(f"corpusmill train: --config {argv[i + 1]} names a model: use --model {argv[i + 1]}", file=sys.stderr)
            arg = "--model"
        out.append(arg)
        i += 1
    return out


def _names_a_model(value: str) -> bool:
    """A named config, or a model file ({base, model: {...}, train: {...}}), not a YAML of options."""
    import os

    from corpusmill.train.configs import NAMED  # noqa: PLC0415 (no torch)

    if value in NAMED:
        return True
    if not os.path.isfile(value):
        return False
    try:
        from corpusmill.core.config import load_yaml

        data = load_yaml(value)
    except CorpusmillError:
        return False
    return isinstance(data, dict) and (
        isinstance(data.get("model"), dict) or isinstance(data.get("train"), dict) or "base" in data
    )


def main(argv: Optional[List[str]] = None) -> int:
    """``corpusmill train`` (and ``python -m corpusmill.cli.train`` under torchrun): the common command
    path (corpusmill.cli.main.run_parsed) after the old spellings are mapped."""
    from corpusmill.cli.main import run_parsed

    argv = _old_names(list(sys.argv[1:] if argv is None else argv))
    try:
        return run_parsed("train", STAGE, argv)
    except CorpusmillError as exc:
        print(f"corpusmill train: error: {exc}", file=sys.stderr)
        return exc.code


STAGE = Stage(name="train", config=TrainCommand, run=run_train, show=_show, beam=False, main=main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
