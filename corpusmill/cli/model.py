"""``corpusmill export`` and ``corpusmill sample``: a trained checkpoint out to other tools, and text from it.

    corpusmill export RUN --to hf --output MODEL_DIR      # transformers' from_pretrained loads it
    corpusmill export RUN --to meta --output MODEL_DIR    # consolidated.00.pth + params.json + tokenizer.model
    corpusmill sample RUN --prompt "The history of" [--max-new-tokens 64] [--temperature 0.8 --top-p 0.95]

``RUN`` is a training run directory (its newest checkpoint) or ``RUN/checkpoints/step_N``. The tokenizer
is the one of the checkpoint's shards (checked by sha256), or ``--tokenizer PATH``. Cheap to import:
torch only when the command runs.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.stage import Stage


def _parser(prog: str, doc: str):
    from corpusmill.cli.main import StrictParser

    p = StrictParser(prog=prog, description=doc)
    p.add_argument("checkpoint", help="a run directory (its newest checkpoint) or RUN/checkpoints/step_N")
    p.add_argument("--tokenizer", default=None, help="the SentencePiece model (default: the checkpoint's shards')")
    return p


def _run(prog: str, parser, argv, fn) -> int:
    from corpusmill.cli.main import refuse_extra

    try:
        args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
        refuse_extra(parser, extra)
        return fn(args)
    except CorpusmillError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def export_main(argv: Optional[List[str]] = None) -> int:
    p = _parser("corpusmill export", "write a checkpoint as a Hugging Face Llama directory or in Meta's layout")
    p.add_argument(
        "--to",
        required=True,
        choices=("hf", "meta"),
        help="hf: transformers' LlamaForCausalLM (safetensors); meta: consolidated.00.pth",
    )
    p.add_argument("--output", required=True, help="the model directory to write (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    p.add_argument(
        "--meta-release",
        type=int,
        choices=(1, 2, 3),
        default=None,
        help="--to meta: the release whose code loads it (LLaMA 1, Llama 2, Llama 3): params.json holds only the "
        "keys its ModelArgs takes (default: the oldest that runs the model)",
    )

    p.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="the weights' type in the files (corpusmill trains in fp32; Meta ships bf16)",
    )
    p.add_argument(
        "--max-shard-size",
        default="5GB",
        metavar="SIZE",
        help="--to hf: safetensors files of at most this size, with model.safetensors.index.json "
        "(save_pretrained's default 5GB)",
    )
    p.add_argument(
        "--mp",
        type=int,
        default=1,
        metavar="N",
        help="--to meta: one consolidated.NN.pth per model-parallel rank, split as Meta's fairscale layers are",
    )

    def run(args) -> int:
        from corpusmill.train.export import export_hf, export_meta, load_trained
        from corpusmill.train.export_weights import parse_size

        if args.meta_release is not None and args.to != "meta":
            raise CorpusmillError("--meta-release applies to --to meta")
        if args.mp != 1 and args.to != "meta":
            raise CorpusmillError("--mp applies to --to meta (Hugging Face shards by size: --max-shard-size)")
        max_shard = parse_size(args.max_shard_size)
        model, cfg, tokenizer, meta = load_trained(args.checkpoint, args.tokenizer)
        if args.to == "hf":
            out = export_hf(
                model,
                cfg,
                tokenizer,
                args.output,
                overwrite=args.overwrite,
                inputs=[args.checkpoint],
                dtype=args.dtype,
                max_shard_bytes=max_shard,
            )
        else:
            out = export_meta(
                model,
                cfg,
                tokenizer,
                args.output,
                overwrite=args.overwrite,
                inputs=[args.checkpoint],
                release=args.meta_release,
                dtype=args.dtype,
                mp=args.mp,
            )
        print(f"exported step {meta.get('step')} ({cfg.num_params():,} parameters) to {out}")
        return 0

    return _run("corpusmill export", p, argv, run)


def sample_main(argv: Optional[List[str]] = None) -> int:
    p = _parser("corpusmill sample", "generate text from a checkpoint (greedy, or temperature and top-p)")
    p.add_argument("--prompt", action="append", required=True, help="a prompt (repeat for several)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the default)")
    p.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        help="nucleus sampling: the smallest set of tokens holding this much probability",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")

    def run(args) -> int:
        from corpusmill.tokenize.tokenizer import load_tokenizer
        from corpusmill.train.export import load_trained
        from corpusmill.train.generate import generate

        if args.max_new_tokens < 1 or args.temperature < 0 or not 0 < args.top_p <= 1:
            raise CorpusmillError("--max-new-tokens must be >= 1, --temperature >= 0, --top-p in (0, 1]")
        model, cfg, tokenizer, _meta = load_trained(args.checkpoint, args.tokenizer)
        model.to(args.device)
        tok = load_tokenizer(tokenizer)  # SentencePiece or byte-level BPE
        context = int(model.rope.shape[0])
        for prompt in args.prompt:
            ids = [tok.bos_id] + tok.encode(prompt).tolist()
            if len(ids) + args.max_new_tokens > context:
                print(
                    f"sample: the prompt ({len(ids)} tokens) and {args.max_new_tokens} new tokens pass the model's "
                    f"context of {context}: past it each token sees the last {context - 1}",
                    file=sys.stderr,
                )
            out = generate(
                model,
                ids,
                args.max_new_tokens,
                temperature=args.temperature,
                top_p=args.top_p,
                seed=args.seed,
                eos_id=tok.eos_id,
            )
            print(tok.decode([i for i in out if i not in (tok.bos_id, tok.eos_id)]))
        return 0

    return _run("corpusmill sample", p, argv, run)


def export_shards_main(argv: Optional[List[str]] = None) -> int:
    from corpusmill.cli.main import StrictParser

    p = StrictParser(
        prog="corpusmill export-shards",
        description="write packed shards as Megatron-LM's indexed dataset (PREFIX.bin + PREFIX.idx)",
    )
    p.add_argument("shards", help="a complete shard directory (manifest.json, *.arrow, _SUCCESS)")
    p.add_argument("--to", required=True, choices=("megatron",), help="megatron: GPTDataset's .bin/.idx")
    p.add_argument("--output", required=True, metavar="PREFIX", help="writes PREFIX.bin and PREFIX.idx")
    p.add_argument("--overwrite", action="store_true")

    def run(args) -> int:
        from corpusmill.tokenize.megatron import export_megatron

        got = export_megatron(args.shards, args.output, overwrite=args.overwrite)
        print(
            f"{got['rows']:,} rows -> {got['sequences']:,} documents, {got['tokens']:,} tokens: "
            f"{args.output}.bin, {args.output}.idx"
        )
        return 0

    return _run("corpusmill export-shards", p, argv, run)


EXPORT = Stage(
    name="export",
    config=None,
    run=None,
    main=export_main,
    beam=False,
)
SAMPLE = Stage(
    name="sample",
    config=None,
    run=None,
    main=sample_main,
    beam=False,
)
EXPORT_SHARDS = Stage(
    name="export-shards",
    config=None,
    run=None,
    main=export_shards_main,
    beam=False,
)
