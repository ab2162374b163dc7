"""Model and training configurations: the LLaMA-1 paper sizes and small ones that train on a CPU.

No torch here (the CLI imports this to list configs). A config file (JSON or YAML) holds
``{"base": "7B" | "tiny" | ..., "model": {...}, "train": {...}}``; ``base`` is optional, and the
``model`` / ``train`` keys override the base's fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from corpusmill.core.errors import CorpusmillError

LLAMA_VOCAB = 32000
LLAMA_BATCH_TOKENS = 4 * 1024 * 1024  # "4M tokens": 2048 sequences of 2048


@dataclasses.dataclass
class ModelConfig:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: Optional[int] = None  # None: n_heads (LLaMA 1); 8 for Llama 2 70B / Llama 3
    vocab_size: Optional[int] = LLAMA_VOCAB  # None: taken from the shard manifest
    multiple_of: int = 256
    ffn_dim_multiplier: Optional[float] = None
    norm_eps: float = 1e-6  # LLaMA 1; 1e-5 in Llama 2/3
    rope_theta: float = 10000.0  # 500000 for Llama 3
    max_seq_len: int = 2048
    doc_mask: bool = False  # Llama 3: no attention across documents inside a packed row
    # how the document mask is applied: dense (a boolean (T, T) mask to SDPA, which keeps it off its fused
    # kernels), flex (FlexAttention's block mask, compiled on GPUs), auto (flex on CUDA, else dense)
    doc_mask_impl: str = "auto"

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_hidden(self) -> int:
        """SwiGLU width as in the LLaMA reference: int(2 * 4 * dim / 3), times the optional multiplier,
        rounded up to a multiple of ``multiple_of`` (7B -> 11008)."""
        hidden = int(2 * 4 * self.dim / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * math.ceil(hidden / self.multiple_of)

    def num_params(self, *, embeddings: bool = True) -> int:
        """Parameter count from the shapes (no tensors allocated)."""
        if self.vocab_size is None:
            raise ValueError("vocab_size is not set")
        d, hd = self.dim, self.head_dim
        attn = d * self.n_heads * hd + 2 * d * self.kv_heads * hd + self.n_heads * hd * d
        ffn = 3 * d * self.ffn_hidden
        per_layer = attn + ffn + 2 * d
        total = self.n_layers * per_layer + d + self.vocab_size * d  # + final norm + output layer
        return total + (self.vocab_size * d if embeddings else 0)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward): 6 N (non-embedding parameters, output layer
        included) + 12 L d T for attention scores and values (PaLM appendix B)."""
        return 6 * self.num_params(embeddings=False) + 12 * self.n_layers * self.dim * seq_len

    def validate(self, where: str = "model config") -> None:
        if self.dim % self.n_heads:
            raise CorpusmillError(f"{where}: dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.head_dim % 2:
            raise CorpusmillError(f"{where}: head_dim {self.head_dim} must be even for rotary embeddings")
        if self.n_heads % self.kv_heads:
            raise CorpusmillError(f"{where}: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.kv_heads}")


@dataclasses.dataclass
class TrainConfig:
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to 10% of the peak
    warmup_steps: int = 2000
    steps: int = 0  # 0: tokens / batch_tokens
    tokens: int = 0  # the training budget, used when steps == 0
    batch_tokens: int = LLAMA_BATCH_TOKENS
    seq_len: int = 2048
    micro_batch: int = 0  # rows per forward pass per process; 0: the whole per-process batch
    weight_decay: float = 0.1
    decay_embeddings: bool = True  # see docs/train.md: 2-D matrices incl. embedding + output are decayed
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    seed: int = 0
    init_std: float = 0.02
    precision: str = "auto"  # auto (bf16 autocast on CUDA with bf16, else fp32) | bf16 | fp32
    compile: bool = False
    activation_checkpointing: bool = False
    dist: str = "auto"  # auto (ddp when WORLD_SIZE > 1) | none | ddp | fsdp
    log_every: int = 1
    ckpt_every: int = 1000
    keep_checkpoints: int = 2
    ckpt_format: str = "full"  # full: gathered on one process; sharded: torch.distributed.checkpoint per process
    eval_every: int = 0
    eval_rows: int = 256
    eval_holdout_shards: int = 0  # the last K shards of --data are held out for evaluation
    peak_flops: float = 0.0  # per device; 0: look up from the device name
    # build on the meta device and initialise after sharding (FSDP2: each rank only its shards).
    # None: when the model has more than 2B parameters. The random numbers then differ from a full init.
    meta_init: Optional[bool] = None

    def total_steps(self) -> int:
        if self.steps:
            return self.steps
        if self.tokens:
            return math.ceil(self.tokens / self.batch_tokens)
        raise CorpusmillError("train config: set steps (--steps) or a token budget (tokens)")


def _paper(dim: int, heads: int, layers: int, lr: float, tokens: float) -> Tuple[ModelConfig, TrainConfig]:
    return (
        ModelConfig(dim=dim, n_heads=heads, n_layers=layers),
        TrainConfig(lr=lr, tokens=int(tokens), batch_tokens=LLAMA_BATCH_TOKENS, seq_len=2048, micro_batch=1),
    )


def _tiny(
    dim: int,
    heads: int,
    layers: int,
    *,
    lr: float,
    batch_tokens: int,
    seq_len: int,
    warmup: int,
    steps: int,
    multiple_of: int = 32,
) -> Tuple[ModelConfig, TrainConfig]:
    return (
        ModelConfig(
            dim=dim, n_heads=heads, n_layers=layers, vocab_size=None, multiple_of=multiple_of, max_seq_len=seq_len
        ),
        TrainConfig(
            lr=lr,
            warmup_steps=warmup,
            steps=steps,
            batch_tokens=batch_tokens,
            seq_len=seq_len,
            ckpt_every=100,
            eval_every=50,
            eval_rows=64,
        ),
    )


# The LLaMA-1 paper, table 2 (dim, heads, layers, peak LR, batch 4M tokens, training tokens).
NAMED: Dict[str, Tuple[ModelConfig, TrainConfig]] = {
    "7B": _paper(4096, 32, 32, 3.0e-4, 1.0e12),
    "13B": _paper(5120, 40, 40, 3.0e-4, 1.0e12),
    "33B": _paper(6656, 52, 60, 1.5e-4, 1.4e12),
    "65B": _paper(8192, 64, 80, 1.5e-4, 1.4e12),
    # CPU-sized: vocabulary from the shards' manifest.
    "tiny": _tiny(64, 4, 2, lr=3e-3, batch_tokens=8 * 64, seq_len=64, warmup=20, steps=300),
    "small": _tiny(256, 8, 4, lr=1e-3, batch_tokens=16 * 256, seq_len=256, warmup=100, steps=2000, multiple_of=64),
    "125M": _tiny(
        768, 12, 12, lr=6e-4, batch_tokens=256 * 1024, seq_len=1024, warmup=500, steps=20000, multiple_of=256
    ),
}


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    fields = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise CorpusmillError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    return dataclasses.replace(obj, **values)


def load_config(name_or_file: str) -> Tuple[ModelConfig, TrainConfig]:
    """A named config (``7B``, ``13B``, ``33B``, ``65B``, ``tiny``, ``small``, ``125M``) or a JSON/YAML file."""
    if name_or_file in NAMED:
        model, train = NAMED[name_or_file]
        return dataclasses.replace(model), dataclasses.replace(train)
    if not os.path.exists(name_or_file):
        raise CorpusmillError(
            f"--config {name_or_file!r}: neither a named config ({', '.join(NAMED)}) nor an existing file"
        )
    with open(name_or_file, "r", encoding="utf-8") as fh:
        text = fh.read()
    try:
        if name_or_file.endswith((".yaml", ".yml")):
            from corpusmill.core.config import load_yaml  # noqa: PLC0415

            data = load_yaml(name_or_file, text)
        else:
            data = json.loads(text)
    except CorpusmillError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        raise CorpusmillError(f"{name_or_file}: cannot parse ({exc})") from None
    if not isinstance(data, dict):
        raise CorpusmillError(f"{name_or_file}: expected a mapping with 'base', 'model', 'train'")
    unknown = sorted(set(data) - {"base", "model", "train"})
    if unknown:
        raise CorpusmillError(f"{name_or_file}: unknown key(s) {', '.join(unknown)}; use base, model, train")
    base = data.get("base")
    if base is not None and base not in NAMED:
        raise CorpusmillError(f"{name_or_file}: field 'base' is {base!r}; choose one of {', '.join(NAMED)}")
    model, train = NAMED[base] if base else (ModelConfig(), TrainConfig())
    model = _apply(model, data.get("model") or {}, f"{name_or_file}: model")
    train = _apply(train, data.get("train") or {}, f"{name_or_file}: train")
    return model, train


def to_dict(model: ModelConfig, train: TrainConfig) -> Dict[str, Any]:
    return {"model": dataclasses.asdict(model), "train": dataclasses.asdict(train)}
