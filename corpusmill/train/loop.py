"""The training loop: data order, optimizer and schedule, accumulation, DDP / FSDP2, eval, logs, checkpoints.

Entry point: :func:`train`. Works in one process, or under ``torchrun`` (DDP or FSDP2; NCCL on GPUs,
gloo on CPUs). See docs/train.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional, TextIO

import numpy as np
import torch
import torch.distributed as dist

from corpusmill.core.errors import CorpusmillError
from corpusmill.tokenize.shards import ShardDataset
from corpusmill.train import checkpoint as ckpt
from corpusmill.train.configs import ModelConfig, TrainConfig, to_dict
from corpusmill.train.data import DataOrder, load_rows, rank_slice
from corpusmill.train.model import Transformer
from corpusmill.train.runtime import (  # noqa: F401 (moved; imported from here elsewhere)
    PEAK_BF16_FLOPS,
    DistInfo,
    Logger,
    _all_ok,
    _fmt_time,
    _fmt_tokens,
    _initial_weights,
    check_compat,
    held_out_sets,
    open_data,
    open_phases,
    peak_flops,
    setup_distributed,
)
from corpusmill.train.step import held_out_loss, train_step


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def phase_lr_factor(step: int, warmup: int, total: int, min_ratio: float, anneal_steps: int) -> float:
    """:func:`lr_factor` over the main phase (cosine ending at the annealing boundary), then Llama 3's
    annealing: linear from the main phase's last value at the first annealing step to exactly 0 at the
    last step of the run (step ``total - 1``: the last update uses learning rate 0)."""
    if anneal_steps <= 0:
        return lr_factor(step, warmup, total, min_ratio)
    boundary = total - anneal_steps
    if step < boundary:
        return lr_factor(step, warmup, boundary, min_ratio)
    start = lr_factor(boundary, warmup, boundary, min_ratio)
    return start * max(0.0, (total - 1 - step) / max(1, anneal_steps - 1))


def param_groups(model: torch.nn.Module, weight_decay: float, decay_embeddings: bool) -> List[Dict[str, Any]]:
    """Weight decay on matrices (every 2-D weight: attention, FFN, output layer and, unless
    ``decay_embeddings`` is False, the token embedding); none on the RMSNorm gains (1-D)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_embedding = "tok_embeddings" in name
        if p.ndim >= 2 and (decay_embeddings or not is_embedding):
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_dir: str,
    out_dir: str,
    *,
    resume: bool = False,
    eval_data: Optional[str] = None,
    stop_at: Optional[int] = None,
    device: Optional[str] = None,
    stream: Any = "stderr",
    verify_data: bool = True,
    init_from: Optional[str] = None,
) -> Dict[str, Any]:
    """Train; returns a summary (final step, last loss, tokens/s). Collective under torchrun.

    ``init_from``: a Hugging Face Llama directory whose weights the model starts from (continued
    pretraining); its tokenizer must be the shards' (checked by sha256).

    ``stream``: where progress lines go ("stderr": sys.stderr at call time; None: nowhere)."""
    if stream == "stderr":
        stream = sys.stderr
    info = setup_distributed(train_cfg.dist, device)
    try:
        return _train(
            model_cfg,
            train_cfg,
            data_dir,
            out_dir,
            info,
            resume=resume,
            eval_data=eval_data,
            stop_at=stop_at,
            stream=stream,
            verify_data=verify_data,
            init_from=init_from,
        )
    finally:
        if info.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_dir: str,
    out_dir: str,
    info: DistInfo,
    *,
    resume: bool,
    eval_data: Optional[str],
    stop_at: Optional[int],
    stream: Optional[TextIO],
    verify_data: bool,
    init_from: Optional[str] = None,
) -> Dict[str, Any]:
    rank, world, dev = info.rank, info.world, info.device
    model_cfg = dataclasses.replace(model_cfg)
    train_cfg = dataclasses.replace(train_cfg)

    # ---- data and the checks that must pass before anything trains ------------------------------
    train_ds, eval_ds = open_data(data_dir, train_cfg.eval_holdout_shards, eval_data, info, verify_data)
    manifest = train_ds.manifest
    if model_cfg.vocab_size is None:
        model_cfg.vocab_size = train_ds.vocab_size
    elif model_cfg.vocab_size != train_ds.vocab_size:
        raise CorpusmillError(
            f"{data_dir}: the shards' vocabulary has {train_ds.vocab_size} tokens (manifest.json vocab_size), "
            f"the model config {model_cfg.vocab_size}: shards from another tokenizer. Use shards made with the "
            f"model's tokenizer, or set --vocab-size {train_ds.vocab_size} for a new model"
        )
    if train_cfg.seq_len != train_ds.seq_len:
        raise CorpusmillError(
            f"{data_dir}: shards are packed for seq_len {train_ds.seq_len}, the config trains with "
            f"{train_cfg.seq_len}; pass --seq-len {train_ds.seq_len} or re-pack the shards"
        )
    eval_sets = eval_ds if isinstance(eval_ds, dict) else ({"": eval_ds} if eval_ds is not None else {})
    for ds in eval_sets.values():
        if ds.vocab_size != train_ds.vocab_size or ds.seq_len != train_ds.seq_len:
            raise CorpusmillError(f"{ds.out_dir}: eval shards differ from --data in vocab_size or seq_len")
    seq_len = train_cfg.seq_len
    model_cfg.max_seq_len = max(model_cfg.max_seq_len, seq_len)
    model_cfg.validate()
    if train_cfg.batch_tokens % seq_len:
        raise CorpusmillError(f"--batch-tokens {train_cfg.batch_tokens} is not a multiple of seq_len {seq_len}")
    global_rows = train_cfg.batch_tokens // seq_len
    if global_rows % world:
        raise CorpusmillError(f"the global batch ({global_rows} rows) does not split over {world} processes")
    per_rank = global_rows // world
    micro = train_cfg.micro_batch or per_rank
    if per_rank % micro:
        raise CorpusmillError(
            f"--micro-batch {micro} does not divide the {per_rank} rows per process "
            f"({global_rows} rows / {world} processes)"
        )
    accum = per_rank // micro
    total_steps = train_cfg.total_steps()
    # an annealing phase (the shards' manifest names it): its tokens are the last steps of the run
    phases = open_phases(data_dir, manifest, train_ds, verify_data)
    if len(phases) > 1:
        raise CorpusmillError(f"{data_dir}/manifest.json: {len(phases)} phases after the main one; one is supported")
    anneal = phases[0] if phases else None
    anneal_steps = math.ceil(anneal["tokens"] / (global_rows * seq_len)) if anneal else 0
    if anneal and total_steps - anneal_steps <= train_cfg.warmup_steps:
        raise CorpusmillError(
            f"the annealing phase takes {anneal_steps} of the {total_steps} steps ({anneal['tokens']:,} tokens at "
            f"{global_rows * seq_len:,} per step), leaving none after the {train_cfg.warmup_steps} warmup steps; "
            f"train more steps or anneal over fewer tokens"
        )
    boundary = total_steps - anneal_steps
    data_meta = {
        "dir": os.path.abspath(data_dir),
        "num_rows": len(train_ds),
        "tokenizer_sha256": manifest.get("tokenizer_sha256"),
        "vocab_size": train_ds.vocab_size,
        "seq_len": seq_len,
        "holdout_shards": train_cfg.eval_holdout_shards,
    }
    if anneal:
        data_meta["anneal"] = {
            "dir": anneal["dir"],
            "num_rows": len(anneal["dataset"]),
            "tokens": anneal["tokens"],
            "steps": anneal_steps,
            "from_step": boundary,
        }

    # ---- resume point ---------------------------------------------------------------------------
    os.makedirs(out_dir, exist_ok=True)
    latest = ckpt.latest_checkpoint(out_dir)
    if latest and not resume:
        raise CorpusmillError(
            f"{out_dir} already holds checkpoints ({os.path.basename(latest)}); pass --resume "
            f"to continue that run, or choose a new --out"
        )
    init_state = None
    if init_from:
        init_state = _initial_weights(init_from, model_cfg, manifest, data_dir)
        data_meta["init_from"] = os.path.abspath(init_from)
    meta = ckpt.read_meta(latest) if (latest and resume) else None
    notes = check_compat(model_cfg, train_cfg, meta, data_meta, latest) if meta else []

    # ---- model ------------------------------------------------------------------------------------
    bf16 = train_cfg.precision == "bf16" or (
        train_cfg.precision == "auto" and dev.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    if train_cfg.ckpt_format not in ("full", "sharded"):
        raise CorpusmillError(f"--ckpt-format {train_cfg.ckpt_format!r}: choose full or sharded")
    if train_cfg.precision not in ("auto", "bf16", "fp32"):
        raise CorpusmillError(f"--precision {train_cfg.precision!r}: choose auto, bf16 or fp32")
    torch.manual_seed(train_cfg.seed)
    # a large model is not materialised in full on every rank's host memory
    big = train_cfg.meta_init if train_cfg.meta_init is not None else model_cfg.num_params() > 2e9
    if big and init_state is not None:
        raise CorpusmillError(
            "--init-from loads the whole model in host memory, which is not done with "
            "--meta-init (on by default above 2B parameters; set train.meta_init: false in "
            "the config if the model fits)"
        )
    if big:
        with torch.device("meta"):
            model = Transformer(model_cfg)
    else:
        model = Transformer(model_cfg)
        gen = torch.Generator().manual_seed(train_cfg.seed)
        model.init_weights(train_cfg.init_std, generator=gen)
        if init_state is not None:  # (a resume then loads its checkpoint over it)
            model.load_state_dict(init_state, strict=True)
        model.to(dev)
    model.activation_checkpointing = train_cfg.activation_checkpointing
    if train_cfg.compile:
        for layer in model.layers:
            layer.compile()
    wrapped: torch.nn.Module = model
    if info.mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: PLC0415

        if big:
            model.to_empty(device=dev)
            model.init_weights(train_cfg.init_std)
        wrapped = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    elif info.mode == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard  # noqa: PLC0415

        mesh = torch.distributed.device_mesh.init_device_mesh(dev.type, (world,))
        # bf16: all-gather bf16 parameters (half the traffic), reduce-scatter gradients in float32
        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if bf16
            else MixedPrecisionPolicy()
        )
        for layer in model.layers:
            fully_shard(layer, mesh=mesh, mp_policy=mp)
        fully_shard(model, mesh=mesh, mp_policy=mp)
        if big:  # shard first, then allocate and initialise only this rank's shards
            model.to_empty(device=dev)
            model.init_weights(train_cfg.init_std)
    elif big:
        model.to_empty(device=dev)
        model.init_weights(train_cfg.init_std)

    optimizer = torch.optim.AdamW(
        param_groups(model, train_cfg.weight_decay, train_cfg.decay_embeddings),
        lr=train_cfg.lr,
        betas=(train_cfg.beta1, train_cfg.beta2),
        eps=train_cfg.adam_eps,
        fused=(dev.type == "cuda"),
    )

    def schedule(s: int) -> float:
        return phase_lr_factor(s, train_cfg.warmup_steps, total_steps, train_cfg.min_lr_ratio, anneal_steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    step, consumed_rows = 0, 0
    log = Logger(out_dir, rank, stream, resume_step=int(meta["step"]) if meta else 0)
    if meta:
        ckpt.load_checkpoint(latest, wrapped, optimizer, scheduler)
        step, consumed_rows = int(meta["step"]), int(meta["consumed_rows"])
        # the schedule may have been changed (--lr, --steps, --warmup): this step's lr from the new one
        scheduler.base_lrs = [train_cfg.lr for _ in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["initial_lr"] = train_cfg.lr
            group["lr"] = train_cfg.lr * schedule(step)
        log.say(f"resumed from {latest} at step {step}" + (f" ({'; '.join(notes)})" if notes else ""))
    elif resume:
        log.say(f"no checkpoint in {out_dir} to resume from: starting at step 0")
    if rank == 0:
        with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as fh:
            json.dump(
                dict(to_dict(model_cfg, train_cfg), data=data_meta, world_size=world, dist=info.mode),
                fh,
                sort_keys=True,
                indent=2,
            )

    # what the eval loss measures: held-out documents (the mixer's holdout), or other shards of the mixture
    eval_kind = (
        "held-out documents"
        if isinstance(eval_ds, dict)
        else "held-out shards (not documents: the mixture's repeated documents are in training rows too)"
        if train_cfg.eval_holdout_shards
        else "--eval-data"
    )
    if train_cfg.eval_every and isinstance(eval_ds, ShardDataset) and train_cfg.eval_holdout_shards:
        log.say(
            "--eval-holdout holds out shards, not documents: a document the mixture repeats is also in "
            "training rows; give sources a holdout in the manifest for a held-out set"
        )
    if train_cfg.eval_every and eval_ds is None:
        log.say(
            f"--eval-every {train_cfg.eval_every} but no held-out data: give --eval-holdout K or "
            f"--eval-data DIR; evaluation is off"
        )
    order = DataOrder(len(train_ds), train_cfg.seed)
    anneal_order = DataOrder(len(anneal["dataset"]), train_cfg.seed) if anneal else None
    lo, hi = rank_slice(global_rows, rank, world)
    if anneal:
        log.say(
            f"annealing phase: steps {boundary + 1}-{total_steps} on {anneal['dir']} ({len(anneal['dataset'])} "
            f"rows, {anneal['tokens']:,} tokens), learning rate decayed linearly to 0"
        )
    flops_tok = model_cfg.flops_per_token(seq_len)
    peak = peak_flops(dev, bf16, train_cfg.peak_flops)
    n_params = model_cfg.num_params()
    log.say(
        f"model {n_params / 1e6:.2f}M params | {world} x {dev.type} ({info.mode}) | batch {global_rows} x "
        f"{seq_len} = {global_rows * seq_len} tokens ({accum} micro-batches of {micro} per process) | "
        f"steps {step}->{total_steps} | {'bf16' if bf16 else 'fp32'} | data {len(train_ds)} rows"
    )

    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    doc_mask = model_cfg.doc_mask

    def evaluate() -> Dict[str, float]:
        """Held-out loss per set: ``{"": loss}`` for --eval-data / --eval-holdout, ``{source: loss}`` for the
        mixer's held-out documents (each set's first --eval-rows rows)."""
        out = {}
        for name, ds in eval_sets.items():
            loss = evaluate_one(ds)
            if loss is not None:
                out[name] = loss
        return out

    def evaluate_one(eval_ds) -> Optional[float]:
        n = (min(train_cfg.eval_rows, len(eval_ds)) // world) * world
        if n == 0:
            return None
        per = n // world
        return held_out_loss(
            wrapped,
            lambda idx: load_rows(eval_ds, idx, doc_mask),
            np.arange(rank * per, (rank + 1) * per),
            micro=micro,
            dev=dev,
            autocast=autocast,
            world=world,
            pads=eval_ds.padding,
        )

    def save(at_step: int) -> None:
        meta_out = {
            "consumed_rows": consumed_rows,
            "config": to_dict(model_cfg, train_cfg),
            "data": data_meta,
            "world_size": world,
            "dist": info.mode,
            "global_batch_rows": global_rows,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        path = ckpt.save_checkpoint(
            out_dir,
            at_step,
            wrapped,
            optimizer,
            scheduler,
            meta_out,
            keep=train_cfg.keep_checkpoints,
            sharded=train_cfg.ckpt_format == "sharded",
        )
        log.say(f"checkpoint {path}")

    last_loss = float("nan")
    tokens_per_s: List[float] = []
    run_start = time.perf_counter()
    end = min(total_steps, stop_at) if stop_at else total_steps
    wrapped.train()
    while step < end:
        t0 = time.perf_counter()
        phase = "anneal" if anneal and step >= boundary else "main"
        if phase == "main":
            rows = order.rows(consumed_rows, global_rows)[lo:hi]
            tokens, flags = load_rows(train_ds, rows, doc_mask)
        else:  # its own order from its first row: the position is the steps since the boundary
            rows = anneal_order.rows((step - boundary) * global_rows, global_rows)[lo:hi]
            tokens, flags = load_rows(anneal["dataset"], rows, doc_mask)
        result = train_step(
            wrapped,
            optimizer,
            scheduler,
            tokens,
            flags,
            micro=micro,
            grad_clip=train_cfg.grad_clip,
            dev=dev,
            autocast=autocast,
            ddp=info.mode == "ddp",
            world=world,
        )
        lr, grad_norm = result.lr, result.grad_norm
        step += 1
        consumed_rows += global_rows
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        last_loss = result.loss
        tps = global_rows * seq_len / dt
        tokens_per_s.append(tps)
        record: Dict[str, Any] = {
            "step": step,
            "loss": last_loss,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "tokens": consumed_rows * seq_len,
            "tokens_per_s": tps,
            "step_time_s": dt,
        }
        if anneal:
            record["phase"] = phase
        mfu = flops_tok * tps / (peak * world) if peak else None
        record["mfu"] = mfu
        line = None
        if step % train_cfg.log_every == 0 or step == end:
            eta = (end - step) * (time.perf_counter() - run_start) / max(1, len(tokens_per_s))
            line = (
                f"step {step}/{total_steps} | loss {last_loss:.4f} | lr {lr:.2e} | gnorm {float(grad_norm):.3f}"
                f" | {_fmt_tokens(tps)} tok/s"
                + (f" | mfu {100 * mfu:.1f}%" if mfu else "")
                + f" | eta {_fmt_time(eta)}"
            )
        log.log(record, line)  # every step in the JSONL, a progress line every log_every
        if train_cfg.eval_every and step % train_cfg.eval_every == 0:
            ev = evaluate()
            if "" in ev:
                log.log(
                    {"step": step, "eval_loss": ev[""], "eval_kind": eval_kind}, f"step {step} | eval loss {ev['']:.4f}"
                )
            elif ev:
                log.log(
                    {"step": step, "eval_loss_by_source": ev, "eval_kind": eval_kind},
                    f"step {step} | held-out loss " + ", ".join(f"{k} {v:.4f}" for k, v in ev.items()),
                )
        if (train_cfg.ckpt_every and step % train_cfg.ckpt_every == 0) or step == end:
            save(step)
    log.close()
    steady = tokens_per_s[min(2, len(tokens_per_s) - 1) :] if tokens_per_s else []
    return {
        "step": step,
        "loss": last_loss,
        "tokens_per_s": float(np.median(steady)) if steady else 0.0,
        "params": n_params,
        "world": world,
        "rank": rank,
    }
