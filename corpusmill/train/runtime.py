"""What a training run sets up around its loop: processes and devices, the data and held-out sets, peak
FLOP/s for MFU, the log, the checks a resumed run passes and the weights it starts from (corpusmill.train.loop
runs the steps)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Any, Dict, List, Optional, TextIO

import torch
import torch.distributed as dist

from corpusmill.core.errors import CorpusmillError
from corpusmill.tokenize.bpe import is_bpe, same_bpe
from corpusmill.tokenize.shards import ShardDataset
from corpusmill.train.configs import ModelConfig, TrainConfig

# Dense bf16 peak per device (FLOP/s), for MFU. Matched against torch.cuda.get_device_name().
PEAK_BF16_FLOPS = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
]


def open_phases(data_dir: str, manifest: Dict[str, Any], train_ds, verify: bool) -> List[Dict[str, Any]]:
    """The phases after the main mixture that the shards' manifest names (``corpusmill run`` with
    ``anneal:``), each with its ShardDataset, checked against the main shards."""
    out = []
    for phase in manifest.get("phases") or []:
        path = (
            phase["data"] if os.path.isabs(phase["data"]) else os.path.normpath(os.path.join(data_dir, phase["data"]))
        )
        try:
            ds = ShardDataset(path, verify=verify)
        except (OSError, ValueError, CorpusmillError) as exc:
            raise CorpusmillError(
                f"{data_dir}/manifest.json: phase {phase['name']!r}: cannot open its shards {path}: {exc}"
            ) from None
        if ds.manifest.get("tokenizer_sha256") != manifest.get("tokenizer_sha256"):
            raise CorpusmillError(f"{path}: phase {phase['name']!r} was made with another tokenizer than {data_dir}")
        if ds.seq_len != train_ds.seq_len or ds.vocab_size != train_ds.vocab_size:
            raise CorpusmillError(f"{path}: phase {phase['name']!r} differs from {data_dir} in seq_len or vocab_size")
        out.append(dict(phase, dir=path, dataset=ds))
    return out


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    mode: str = "none"  # none | ddp | fsdp
    initialized_here: bool = False


def setup_distributed(mode: str, device: Optional[str]) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device in (None, "", "auto"):
        dev = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if mode == "auto":
        mode = "ddp" if world > 1 else "none"
    if mode not in ("none", "ddp", "fsdp"):
        raise CorpusmillError(f"--dist {mode!r}: choose auto, none, ddp or fsdp")
    if world > 1 and mode == "none":
        raise CorpusmillError(f"WORLD_SIZE is {world} but --dist none; use --dist ddp or fsdp under torchrun")
    info = DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev, mode=mode)
    if (world > 1 or mode == "fsdp") and not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:  # fsdp in a single plain process
            import socket  # noqa: PLC0415

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(port))
            os.environ.setdefault("RANK", "0")
            os.environ.setdefault("WORLD_SIZE", "1")
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        info.initialized_here = True
    return info


def _all_ok(info: DistInfo, error: Optional[str]) -> None:
    """Raise the same CorpusmillError on every rank if any rank hit one (avoids hangs)."""
    if info.world > 1:
        errors: List[Optional[str]] = [None] * info.world
        dist.all_gather_object(errors, error)
        error = next((e for e in errors if e), None)
    if error:
        raise CorpusmillError(error)


def open_data(data_dir: str, holdout: int, eval_dir: Optional[str], info: DistInfo, verify: bool = True):
    """Train and eval ShardDatasets. Checksums are verified once, by rank 0 (that reads every byte);
    an error on any rank is raised on every rank."""
    error = None
    if verify and info.rank == 0:
        try:
            ShardDataset(data_dir, verify=True).close()
            if eval_dir:
                ShardDataset(eval_dir, verify=True).close()
            elif not holdout:
                for ds in held_out_sets(data_dir, verify=True).values():
                    ds.close()
        except CorpusmillError as exc:
            error = str(exc)
    _all_ok(info, error)
    error, train_ds, eval_ds = None, None, None
    try:
        train_ds = ShardDataset(data_dir, verify=False)
        n = len(train_ds.manifest["shards"])
        if holdout:
            if holdout >= n:
                raise CorpusmillError(
                    f"--eval-holdout {holdout}: {data_dir} has only {n} shard(s); hold out fewer, or give --eval-data"
                )
            train_ds.close()
            train_ds = ShardDataset(data_dir, verify=False, shards=range(n - holdout))
            eval_ds = ShardDataset(data_dir, verify=False, shards=range(n - holdout, n))
        if eval_dir:
            eval_ds = ShardDataset(eval_dir, verify=False)
        elif not holdout:  # the mixer's held-out documents, one set per source (shards/eval/<source>/)
            sets = held_out_sets(data_dir, verify=False)
            eval_ds = sets or None
    except CorpusmillError as exc:
        error = str(exc)
    _all_ok(info, error)
    return train_ds, eval_ds


def held_out_sets(data_dir: str, verify: bool = False) -> Dict[str, ShardDataset]:
    """``{source: ShardDataset}`` of the held-out documents the mixer set aside (``DATA/eval/<source>``)."""
    root = os.path.join(data_dir, "eval")
    if not os.path.isdir(root):
        return {}
    return {
        name: ShardDataset(os.path.join(root, name), verify=verify)
        for name in sorted(os.listdir(root))
        if os.path.exists(os.path.join(root, name, "manifest.json"))
    }


def peak_flops(device: torch.device, bf16: bool, override: float) -> float:
    if override:
        return override
    if device.type != "cuda" or not bf16:
        return 0.0
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in name:
            return flops
    return 0.0


class Logger:
    """Rank 0: JSONL per logged step in ``OUT/train_log.jsonl`` and a progress line on ``stream``."""

    def __init__(self, out_dir: str, rank: int, stream: Optional[TextIO], resume_step: int):
        self.rank = rank
        self.stream = stream
        self.path = os.path.join(out_dir, "train_log.jsonl")
        self.fh = None
        if rank == 0:
            kept: List[str] = []
            if resume_step and os.path.exists(self.path):  # drop lines past the checkpoint we resume from
                with open(self.path, encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            rec = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        if rec.get("step", 0) <= resume_step:
                            kept.append(line if line.endswith("\n") else line + "\n")
            with open(self.path, "w", encoding="utf-8") as fh:
                fh.writelines(kept)
            self.fh = open(self.path, "a", encoding="utf-8")

    def log(self, record: Dict[str, Any], line: Optional[str] = None) -> None:
        if self.rank != 0:
            return
        self.fh.write(json.dumps(record, sort_keys=True) + "\n")
        self.fh.flush()
        if line and self.stream is not None:
            print(line, file=self.stream, flush=True)

    def say(self, text: str) -> None:
        if self.rank == 0 and self.stream is not None:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.fh:
            self.fh.close()


def _fmt_tokens(x: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.1f}{unit}"
    return f"{x:.0f}"


def _fmt_time(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def check_compat(
    model_cfg: ModelConfig, train_cfg: TrainConfig, meta: Dict[str, Any], data_meta: Dict[str, Any], ckpt_dir: str
) -> List[str]:
    """Raise if the checkpoint is of another model, tokenizer or data order; return notes on changed
    training settings (allowed: e.g. more steps)."""
    saved_model = meta["config"]["model"]
    now = dataclasses.asdict(model_cfg)
    # (max_seq_len and how the document mask is computed do not change the weights)
    diffs = [
        f"model.{k}: checkpoint {saved_model.get(k)!r}, now {v!r}"
        for k, v in now.items()
        if k not in ("max_seq_len", "doc_mask_impl") and saved_model.get(k) != v
    ]
    if diffs:
        raise CorpusmillError(
            f"{ckpt_dir} is a checkpoint of another model config ({'; '.join(diffs)}); "
            f"resume with the config it was written with, or use a new --out"
        )
    saved_data = meta.get("data", {})
    for key in ("tokenizer_sha256", "vocab_size", "seq_len", "num_rows"):
        if key in saved_data and saved_data[key] != data_meta[key]:
            raise CorpusmillError(
                f"{ckpt_dir}: the checkpoint was trained on data with {key}={saved_data[key]!r}, --data has "
                f"{data_meta[key]!r}; resuming on other data would not continue the same run (use a new --out)"
            )
    saved_train = meta["config"]["train"]
    if saved_train.get("seed") != train_cfg.seed:
        raise CorpusmillError(
            f"{ckpt_dir}: checkpoint seed {saved_train.get('seed')}, now {train_cfg.seed}; "
            f"the data order depends on the seed: resume with --seed {saved_train.get('seed')}"
        )
    return [
        f"train.{k}: {saved_train.get(k)!r} -> {v!r}"
        for k, v in dataclasses.asdict(train_cfg).items()
        if k in saved_train and saved_train[k] != v
    ]


def _initial_weights(init_from: str, model_cfg: ModelConfig, manifest: Dict[str, Any], data_dir: str):
    """The corpusmill state dict of a Hugging Face Llama directory, after checking it is this model on this
    tokenizer."""
    from corpusmill.core.files import sha256_file  # noqa: PLC0415
    from corpusmill.train.export import load_hf  # noqa: PLC0415

    hf_cfg, state = load_hf(init_from)
    for field in ("dim", "n_layers", "n_heads", "kv_heads", "vocab_size", "ffn_hidden", "norm_eps", "rope_theta"):
        if getattr(hf_cfg, field) != getattr(model_cfg, field):
            raise CorpusmillError(
                f"--init-from {init_from}: its {field} is {getattr(hf_cfg, field)}, the model "
                f"config's {getattr(model_cfg, field)}; leave the model options to the checkpoint"
            )
    tok = os.path.join(init_from, "tokenizer.model")
    want = manifest.get("tokenizer_sha256")
    shards_tok = os.path.join(data_dir, "tokenizer.model")
    if (
        not os.path.isfile(tok)
        and os.path.isfile(os.path.join(init_from, "tokenizer.json"))
        and os.path.isfile(shards_tok)
        and is_bpe(shards_tok)
    ):
        # a byte-level BPE export (Llama 3's layout) has only tokenizer.json, with a BOS template added:
        # the same tokenizer when its model (vocabulary, merges) and added tokens are the shards'
        if not same_bpe(os.path.join(init_from, "tokenizer.json"), shards_tok):
            raise CorpusmillError(
                f"--init-from {init_from}: its tokenizer.json is not the BPE {data_dir} was made "
                f"with (vocabulary, merges or special tokens differ)"
            )
        return state
    if not os.path.isfile(tok):
        raise CorpusmillError(
            f"--init-from {init_from}: no tokenizer.model; the shards must be made with the "
            f"checkpoint's tokenizer, and corpusmill checks that by its sha256"
        )
    if want and sha256_file(tok) != want:
        raise CorpusmillError(
            f"--init-from {init_from}: its tokenizer.model is not the one {data_dir} was made "
            f"with (sha256 differs); tokenize the data with the checkpoint's tokenizer"
        )
    return state
