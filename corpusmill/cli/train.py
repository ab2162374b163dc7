"""``corpusmill train``: train a LLaMA model on corpusmill shards.

Cheap to import (no torch): the handler imports the trainer. Under torchrun::

    torchrun --nproc_per_node 8 -m corpusmill.cli train --config 7B --data SHARDS --output RUN --dist fsdp

``python -m corpusmill.cli.train ...`` takes the same options as ``corpusmill train``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import List, Optional

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        help="a named config (7B, 13B, 33B, 65B, tiny, small, 125M) or a JSON/YAML file "
        "{base, model: {...}, train: {...}}",
    )
    p.add_argument("--data", required=True, help="shard directory (manifest.json + *.arrow)")
    p.add_argument("--output", required=True, help="run directory: checkpoints, train_log.jsonl, config.json")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --output (start fresh if there is none)",
    )
    p.add_argument("--eval-data", default=None, help="a separate shard directory for the held-out loss")
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="stop (with a checkpoint) after this step, keeping the schedule of --steps",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (auto: cuda:LOCAL_RANK if available)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile each block")
    p.add_argument(
        "--activation-checkpointing",
        action="store_true",
        default=None,
        help="recompute each block's activations in the backward pass",
    )
    p.add_argument(
        "--doc-mask",
        action="store_true",
        default=None,
        help="Llama 3 document masking: no attention across documents in a packed row",
    )
    p.add_argument(
        "--no-decay-embeddings", action="store_true", default=None, help="exclude the token embedding from weight decay"
    )
    p.add_argument("--no-verify", action="store_true", help="skip the shards' sha256 check on open")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="HF_DIR",
        help="start from a Hugging Face Llama checkpoint (its config is the model's; its tokenizer "
        "must be the shards'): continued pretraining",
    )
    p.add_argument(
        "--meta-init",
        action="store_true",
        default=None,
        help="build the model on the meta device and initialise it after sharding (automatic above 2B parameters)",
    )
    for flag, _section, _field, typ, text in OVERRIDES:
        p.add_argument(flag, type=typ, default=None, help=text)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a LLaMA model on corpusmill shards (PyTorch; torchrun for DDP / FSDP2)",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(p)
    p.set_defaults(func=handler)


def resolve(args: argparse.Namespace):
    """ModelConfig and TrainConfig from --config plus the command-line overrides."""
    from corpusmill.train.configs import load_config  # noqa: PLC0415

    model, train = load_config(args.config)
    changes = {"model": {}, "train": {}}
    for flag, section, field, typ, _ in OVERRIDES:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            changes[section][field] = int(value) if field == "tokens" else value
    for name, section, field, value in (
        ("compile", "train", "compile", True),
        ("activation_checkpointing", "train", "activation_checkpointing", True),
        ("doc_mask", "model", "doc_mask", True),
        ("meta_init", "train", "meta_init", True),
        ("no_decay_embeddings", "train", "decay_embeddings", False),
    ):
        if getattr(args, name):
            changes[section][field] = value
    if changes["train"].get("seq_len"):
        model = dataclasses.replace(model, max_seq_len=max(model.max_seq_len, changes["train"]["seq_len"]))
    return dataclasses.replace(model, **changes["model"]), dataclasses.replace(train, **changes["train"])


def handler(args: argparse.Namespace, beam_args: Optional[List[str]] = None) -> int:
    if beam_args:
        raise CorpusmillError(f"unknown option(s) for train: {' '.join(beam_args)}")
    model_cfg, train_cfg = resolve(args)
    from corpusmill.train.loop import train  # noqa: PLC0415 - torch only when training

    if args.init_from:  # the model is the checkpoint's; --config gives the training schedule
        from corpusmill.train.export import hf_model_config  # noqa: PLC0415

        given = [
            flag
            for flag, section, *_ in OVERRIDES
            if section == "model" and getattr(args, flag.lstrip("-").replace("-", "_")) is not None
        ]
        if given:
            raise CorpusmillError(
                f"--init-from takes the model from the checkpoint's config.json; drop {', '.join(given)}"
            )
        hf_cfg = hf_model_config(args.init_from)
        model_cfg = dataclasses.replace(
            hf_cfg, doc_mask=model_cfg.doc_mask, max_seq_len=max(hf_cfg.max_seq_len, train_cfg.seq_len)
        )
    summary = train(
        model_cfg,
        train_cfg,
        args.data,
        args.output,
        resume=args.resume,
        eval_data=args.eval_data,
        stop_at=args.stop_at,
        device=args.device,
        verify_data=not args.no_verify,
        init_from=args.init_from,
    )
    if summary.get("rank", 0) == 0:
        print(
            f"done: step {summary['step']}, loss {summary['loss']:.4f}, "
            f"{summary['tokens_per_s']:.0f} tokens/s (median)",
            file=sys.stderr,
        )
    return 0


def _deprecated_out(argv: List[str]) -> List[str]:
    """``--out`` is the old name of ``--output``: still accepted, with a line saying so."""
    out = []
    for arg in argv:
        if arg == "--out" or arg.startswith("--out="):
            print("corpusmill train: --out is deprecated; use --output", file=sys.stderr)
            arg = "--output" + arg[len("--out") :]
        out.append(arg)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    from corpusmill.cli.main import StrictParser, refuse_extra

    parser = StrictParser(prog="corpusmill train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    argv = _deprecated_out(list(sys.argv[1:] if argv is None else argv))
    try:
        args, extra = parser.parse_known_args(argv)
        refuse_extra(parser, extra)
        return handler(args, [])
    except CorpusmillError as exc:
        print(f"corpusmill train: error: {exc}", file=sys.stderr)
        return 2


STAGE = Stage(
    name="train",
    config=None,
    run=None,
    main=main,
    beam=False,
)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
