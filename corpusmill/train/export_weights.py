"""Writing exported weights at real sizes: a dtype, Hugging Face's sharded safetensors with an index, Meta's
one ``consolidated.NN.pth`` per model-parallel rank, and the files' mode.

- ``--dtype``: fp32 (what corpusmill trains), bf16 (what Meta and most Hugging Face checkpoints ship) or
  fp16; each tensor is cast as it is written.
- Hugging Face: shards of at most ``max_shard_bytes`` (5 GB, ``save_pretrained``'s default), named
  ``model-00001-of-0000N.safetensors`` with ``model.safetensors.index.json`` (``metadata.total_size``,
  ``weight_map``); one shard is ``model.safetensors``, as ``save_pretrained`` names it. Tensors are made
  one at a time, so memory holds the model and one shard, never a second full copy.
- Meta: ``--mp N`` writes N files as fairscale's model-parallel layers split them (Meta's ``Llama.build``
  loads ``consolidated.{rank:02d}.pth`` on rank ``rank`` of N): the column-parallel weights (wq, wk, wv,
  w1, w3, output) cut by output rows, the row-parallel ones (wo, w2) and the parallel embedding by
  columns, norms whole in each.
- Every file is written with the mode a new file gets (0644 under the usual umask), safetensors included.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, Iterator, List, Tuple

import torch

from corpusmill.core.errors import CorpusmillError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
HF_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
MAX_SHARD_BYTES = 5 * 10**9  # save_pretrained's max_shard_size="5GB"


def parse_size(text: str) -> int:
    """``5GB``, ``500MB``, ``2000000`` -> bytes (decimal units, as transformers reads them)."""
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "B": 1}
    t = str(text).strip().upper()
    for unit, factor in units.items():
        if t.endswith(unit) and t[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(t[: -len(unit)]) * factor)
    if t.isdigit():
        return int(t)
    raise CorpusmillError(f"--max-shard-size {text!r}: give a size such as 5GB, 500MB or a number of bytes")


def write_hf_weights(
    names: List[str], make: Callable[[str], torch.Tensor], out_dir: str, dtype: str, max_shard_bytes: int
) -> List[str]:
    """``make(name)`` -> the tensor (fp32); written cast to ``dtype`` in shards of at most
    ``max_shard_bytes`` (a tensor larger than that is a shard of its own). Returns the files written."""
    from safetensors.torch import save_file

    target = DTYPES[dtype]
    size = torch.tensor([], dtype=target).element_size()
    plan: List[List[str]] = [[]]
    used = 0
    sizes = {}
    for name in names:
        t = make(name)
        sizes[name] = t.numel() * size
        del t
        if plan[-1] and used + sizes[name] > max_shard_bytes:
            plan.append([])
            used = 0
        plan[-1].append(name)
        used += sizes[name]
    files = (
        ["model.safetensors"]
        if len(plan) == 1
        else [f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))]
    )
    weight_map = {}
    for file, group in zip(files, plan):
        shard = {name: make(name).to(target).contiguous() for name in group}
        save_file(shard, os.path.join(out_dir, file), metadata={"format": "pt"})
        del shard
        weight_map.update({name: file for name in group})
    if len(files) > 1:
        index = {"metadata": {"total_size": sum(sizes.values())}, "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as fh:
            json.dump(index, fh, indent=2, sort_keys=True)
            fh.write("\n")
    return files


# -- Meta's model parallelism ---------------------------------------------------------------------------
_COLUMN = ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "feed_forward.w1.weight")
_COLUMN += ("feed_forward.w3.weight", "output.weight")
_ROW = ("attention.wo.weight", "feed_forward.w2.weight", "tok_embeddings.weight")


def split_dim(name: str):
    """The dimension fairscale splits ``name`` on across model-parallel ranks (None: whole on each)."""
    if name.endswith(_COLUMN):
        return 0
    if name.endswith(_ROW):
        return 1
    return None


def check_mp(cfg, mp: int) -> None:
    """Refuse an ``--mp`` that does not divide what fairscale splits."""
    if mp < 1:
        raise CorpusmillError("--mp must be at least 1")
    parts = {
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.kv_heads,
        "dim": cfg.dim,
        "ffn hidden size": cfg.ffn_hidden,
        "vocab_size": cfg.vocab_size,
    }
    bad = {k: v for k, v in parts.items() if v % mp}
    if bad:
        raise CorpusmillError(
            f"--mp {mp}: Meta's model-parallel layers split {', '.join(f'{k} {v}' for k, v in bad.items())}, "
            f"which {mp} does not divide; choose a divisor"
        )


def meta_rank_states(state: Dict[str, torch.Tensor], mp: int, dtype: str) -> Iterator[Tuple[int, Dict]]:
    """(rank, that rank's state dict) for each model-parallel rank, cast to ``dtype``, one rank at a time."""
    target = DTYPES[dtype]
    for rank in range(mp):
        out = {}
        for name, tensor in state.items():
            dim = split_dim(name)
            part = tensor if dim is None else tensor.chunk(mp, dim=dim)[rank]
            out[name] = part.detach().to("cpu", target).clone()
        yield rank, out


def merge_meta_ranks(parts: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """The ranks' state dicts joined back (what Meta's checkpoint converters do): for tests and reading."""
    out = {}
    for name in parts[0]:
        dim = split_dim(name)
        out[name] = parts[0][name] if dim is None else torch.cat([p[name] for p in parts], dim=dim)
    return out


def usual_mode(out_dir: str) -> None:
    """Every file under ``out_dir`` with the mode a new file gets (0666 less the umask: 0644 usually)."""
    mask = os.umask(0)
    os.umask(mask)
    for root, _dirs, files in os.walk(out_dir):
        for f in files:
            os.chmod(os.path.join(root, f), 0o666 & ~mask)
