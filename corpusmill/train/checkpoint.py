"""Atomic, resumable checkpoints.

Layout under ``OUT/checkpoints``::

    step_00001000/model.pt         full (unsharded) model state dict, keys = parameter names
    step_00001000/dcp/             or, with --ckpt-format sharded: torch.distributed.checkpoint's files
                                   (each process's shards of the model and optimizer; loads on any world size)
    step_00001000/optim.pt         optimizer state (keyed by parameter name) + LR scheduler state
    step_00001000/rng/rank_00000.pt  torch / CUDA / numpy / python RNG states of each process
    step_00001000/meta.json        step, consumed rows (the data position), the full config, the data
    latest                         the name of the newest complete checkpoint

A checkpoint is written into ``step_XXXXXXXX.tmp`` and renamed when complete (``meta.json`` last), and
``latest`` is replaced atomically after that, so a killed job leaves either the old or the new
checkpoint, never half of one. The state dicts are "full" (gathered through
``torch.distributed.checkpoint.state_dict`` with ``full_state_dict=True``), so a checkpoint written by
N processes with DDP or FSDP2 loads into any number of processes and either wrapping.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
from typing import Any, Dict, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_state_dict,
    set_state_dict,
)

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import fsync_dir

_STEP_DIR = re.compile(r"^step_(\d{8})$")


def ckpt_root(out_dir: str) -> str:
    return os.path.join(out_dir, "checkpoints")


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _save(obj: Any, path: str) -> None:
    with open(path, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def rng_state() -> Dict[str, Any]:
    """Every generator's state as tensors, numbers and lists only, so that it loads with
    ``torch.load(weights_only=True)`` (no pickled object, so no code, can come back from a checkpoint)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


DCP_DIR = "dcp"  # a sharded checkpoint: torch.distributed.checkpoint's files, one per process


class _MetadataOnly(pickle.Unpickler):
    """torch.distributed.checkpoint pickles its ``.metadata``; before it is loaded, it is read here with
    only the classes such a file holds (DCP's metadata classes, torch.Size, dtypes, layouts, paths), so a
    pickle planted in a checkpoint names something else and is refused before DCP unpickles it."""

    def find_class(self, module: str, name: str):
        if not (
            module in ("torch", "torch.serialization", "pathlib", "collections")
            or module.startswith("torch.distributed.checkpoint.")
        ):  # checked before anything is imported
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a checkpoint's metadata")
        value = super().find_class(module, name)
        if module.startswith("torch.distributed.checkpoint.") and isinstance(value, type):
            return value
        if module == "torch" and (
            name == "Size" or isinstance(value, (torch.dtype, torch.layout, torch.memory_format))
        ):
            return value
        if (module, name) in (
            ("torch.serialization", "_get_layout"),
            ("pathlib", "PosixPath"),
            ("pathlib", "WindowsPath"),
            ("pathlib", "Path"),
            ("collections", "OrderedDict"),
        ):
            return value
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a checkpoint's metadata")


def check_dcp_metadata(ckpt_dir: str) -> None:
    path = os.path.join(ckpt_dir, DCP_DIR, ".metadata")
    try:
        with open(path, "rb") as fh:
            _MetadataOnly(fh).load()
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError) as exc:
        raise CorpusmillError(
            f"{path}: not a checkpoint's metadata ({exc}); the checkpoint is damaged or was not "
            f"written by corpusmill: delete {ckpt_dir} to resume from an older one"
        ) from None


def save_checkpoint(
    out_dir: str,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    meta: Dict[str, Any],
    keep: int = 0,
    sharded: bool = False,
) -> Optional[str]:
    """Collective: every process calls it. Returns the checkpoint directory (on every rank).

    ``sharded``: each process writes its own shards of the model and optimizer state with
    ``torch.distributed.checkpoint`` (``step_N/dcp/``, no gather on one process: what a model too large
    for one host needs); it loads on any number of processes. Otherwise the full state is gathered."""
    rank = _rank()
    root = ckpt_root(out_dir)
    name = f"step_{step:08d}"
    final, tmp = os.path.join(root, name), os.path.join(root, name + ".tmp")
    if sharded:
        model_sd, optim_sd = get_state_dict(model, optimizer)
    else:  # gathering the full state is collective under FSDP; only rank 0 keeps it (cpu_offload)
        model_sd, optim_sd = get_state_dict(
            model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
    if rank == 0:
        os.makedirs(root, exist_ok=True)
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(os.path.join(tmp, "rng"))
    _barrier()
    _save(rng_state(), os.path.join(tmp, "rng", f"rank_{rank:05d}.pt"))
    if sharded:
        import torch.distributed.checkpoint as dcp  # noqa: PLC0415

        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=os.path.join(tmp, DCP_DIR))
    _barrier()
    if rank == 0:
        if sharded:
            _save({"scheduler": scheduler.state_dict()}, os.path.join(tmp, "optim.pt"))
        else:
            _save(model_sd, os.path.join(tmp, "model.pt"))
            _save({"optimizer": optim_sd, "scheduler": scheduler.state_dict()}, os.path.join(tmp, "optim.pt"))
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as fh:
            json.dump(dict(meta, step=step), fh, sort_keys=True, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        if os.path.exists(final):  # re-saving the same step (e.g. after a resume): replace it
            old = final + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        latest_tmp = os.path.join(root, f"latest.tmp-{os.getpid()}")
        with open(latest_tmp, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(latest_tmp, os.path.join(root, "latest"))
        fsync_dir(root)
        if keep > 0:
            done = sorted(d for d in os.listdir(root) if _STEP_DIR.match(d))
            for old in done[:-keep]:
                shutil.rmtree(os.path.join(root, old), ignore_errors=True)
    _barrier()
    return final


def latest_checkpoint(out_dir: str) -> Optional[str]:
    """The newest complete checkpoint directory under ``out_dir``, or None."""
    root = ckpt_root(out_dir)
    if not os.path.isdir(root):
        return None
    pointer = os.path.join(root, "latest")
    if os.path.exists(pointer):
        with open(pointer, encoding="utf-8") as fh:
            name = fh.read().strip()
        if _STEP_DIR.match(name) and os.path.exists(os.path.join(root, name, "meta.json")):
            return os.path.join(root, name)
    done = sorted(
        d for d in os.listdir(root) if _STEP_DIR.match(d) and os.path.exists(os.path.join(root, d, "meta.json"))
    )
    return os.path.join(root, done[-1]) if done else None


def read_meta(ckpt_dir: str) -> Dict[str, Any]:
    path = os.path.join(ckpt_dir, "meta.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise CorpusmillError(
            f"{path}: cannot read the checkpoint's metadata ({exc}); delete "
            f"{ckpt_dir} to resume from an older checkpoint"
        ) from None


def load_checkpoint(ckpt_dir: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    """Collective. Loads the full state into the (possibly DDP/FSDP-wrapped) model and optimizer."""
    # Every rank reads the full state memory-mapped: processes on a node share the page cache, and
    # under FSDP2 each rank copies out only its own shards. (broadcast_from_rank0 hung under gloo with
    # torch 2.13 in our tests, for DDP and for FSDP2.)
    sharded = os.path.isdir(os.path.join(ckpt_dir, DCP_DIR))
    try:
        rest = torch.load(os.path.join(ckpt_dir, "optim.pt"), map_location="cpu", weights_only=True, mmap=True)
        if sharded:  # each process reads the parts of the shards it holds now (any number of processes)
            import torch.distributed.checkpoint as dcp  # noqa: PLC0415

            check_dcp_metadata(ckpt_dir)
            model_sd, optim_sd = get_state_dict(model, optimizer)
            state = {"model": model_sd, "optim": optim_sd}
            dcp.load(state, checkpoint_id=os.path.join(ckpt_dir, DCP_DIR))
            model_sd, optim_sd = state["model"], state["optim"]
        else:
            model_sd = torch.load(os.path.join(ckpt_dir, "model.pt"), map_location="cpu", weights_only=True, mmap=True)
            optim_sd = rest["optimizer"]
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError) as exc:
        raise CorpusmillError(
            f"{ckpt_dir}: cannot load the checkpoint ({exc}); delete it to resume from an older one"
        ) from None
    try:
        set_state_dict(
            model,
            optimizer,
            model_state_dict=model_sd,
            optim_state_dict=optim_sd,
            options=StateDictOptions(full_state_dict=not sharded, strict=True),
        )
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CorpusmillError(
            f"{ckpt_dir}: the checkpoint does not fit this model ({exc}); resume with the "
            f"config it was written with, or use a new --out"
        ) from None
    scheduler.load_state_dict(rest["scheduler"])
    rng = os.path.join(ckpt_dir, "rng", f"rank_{_rank():05d}.pt")
    if os.path.exists(rng):
        try:  # tensors, numbers and lists only: a pickled object planted here is refused, never run
            state = torch.load(rng, map_location="cpu", weights_only=True)
            set_rng_state(state)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
            raise CorpusmillError(
                f"{rng}: not a corpusmill random-number state ({str(exc).splitlines()[0]}); "
                f"the checkpoint is damaged or was not written by corpusmill: delete "
                f"{ckpt_dir} to resume from an older one"
            ) from None


def load_model_state(ckpt_dir: str, model: torch.nn.Module) -> None:
    """The model weights of a checkpoint, full or sharded, into a plain (unwrapped, one-process) model."""
    if os.path.isdir(os.path.join(ckpt_dir, DCP_DIR)):
        import torch.distributed.checkpoint as dcp  # noqa: PLC0415

        check_dcp_metadata(ckpt_dir)
        state = {"model": model.state_dict()}
        dcp.load(state, checkpoint_id=os.path.join(ckpt_dir, DCP_DIR))
        model.load_state_dict(state["model"], strict=True)
        return
    model.load_state_dict(
        torch.load(os.path.join(ckpt_dir, "model.pt"), map_location="cpu", weights_only=True), strict=True
    )
