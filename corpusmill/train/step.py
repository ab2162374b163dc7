"""One optimizer step and one held-out loss, apart from the loop (as torchtitan keeps its train_step), so
each can be tested alone: the loop (corpusmill.train.loop) orders the data, schedules, logs and saves.
"""

from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F


def to_device(tokens: np.ndarray, flags: Optional[np.ndarray], dev: torch.device):
    """Rows of ``seq_len + 1`` tokens -> (inputs, targets, document-start flags of the inputs)."""
    t = torch.from_numpy(tokens)
    fl = torch.from_numpy(flags[:, :-1]) if flags is not None else None
    if dev.type == "cuda":
        t = t.pin_memory().to(dev, non_blocking=True)
        fl = fl.to(dev, non_blocking=True) if fl is not None else None
    return t[:, :-1], t[:, 1:], fl


def compute_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    flags: Optional[torch.Tensor],
    autocast: Callable = contextlib.nullcontext,
) -> torch.Tensor:
    """The mean next-token cross-entropy of a batch (logits in float32 for the loss)."""
    with autocast():
        logits = model(x, flags)
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))


class StepResult(NamedTuple):
    loss: float  # the batch's mean loss (averaged over processes)
    grad_norm: float  # before clipping
    lr: float  # the learning rate this step used


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    tokens: np.ndarray,
    flags: Optional[np.ndarray],
    *,
    micro: int,
    grad_clip: float,
    dev: torch.device,
    autocast: Callable = contextlib.nullcontext,
    ddp: bool = False,
    world: int = 1,
) -> StepResult:
    """One optimizer step over this process's rows (``tokens``: ``micro * accum`` rows of ``seq_len + 1``):
    gradients accumulated over micro-batches (DDP synchronizes on the last one only), clipped, one
    optimizer and scheduler step. The loss is the mean over every row of every process."""
    accum = len(tokens) // micro
    loss_sum = torch.zeros((), device=dev)
    for m in range(accum):
        sl = slice(m * micro, (m + 1) * micro)
        x, y, f = to_device(tokens[sl], flags[sl] if flags is not None else None, dev)
        last = m == accum - 1
        with model.no_sync() if (ddp and not last) else contextlib.nullcontext():
            loss = compute_loss(model, x, y, f, autocast) / accum
            loss.backward()
        loss_sum += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
        grad_norm = grad_norm.full_tensor()
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if world > 1:
        dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
        loss_sum /= world
    return StepResult(float(loss_sum), float(grad_norm), lr)


def held_out_loss(
    model: torch.nn.Module,
    rows: Callable[[np.ndarray], Tuple[np.ndarray, Optional[np.ndarray]]],
    mine: np.ndarray,
    *,
    micro: int,
    dev: torch.device,
    autocast: Callable = contextlib.nullcontext,
    world: int = 1,
    pads: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> float:
    """The token-weighted mean loss over the rows ``mine`` of this process (``rows(indices)`` loads them),
    summed over every process. ``pads(indices)``: the padding tokens at the end of each row (a held-out
    set's last row, filled up so no document is cut), left out of the loss."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=dev)
    with torch.no_grad():
        for a in range(0, len(mine), micro):
            idx = mine[a : a + micro]
            tokens, flags = rows(idx)
            x, y, f = to_device(tokens, flags, dev)
            if pads is not None and (k := pads(idx)).any():
                y = y.clone()
                for r, n in enumerate(k.tolist()):
                    if n:
                        y[r, -n:] = -100  # F.cross_entropy's ignore_index: the mean is over the others
            n = int((y != -100).sum())
            if n == 0:
                continue
            loss = compute_loss(model, x, y, f, autocast)
            total[0] += loss.double() * n
            total[1] += n
    model.train()
    if world > 1:
        dist.all_reduce(total)
    return float(total[0] / total[1])
