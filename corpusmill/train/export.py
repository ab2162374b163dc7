"""A trained model out of corpusmill, and an existing one in.

- :func:`load_trained`: a checkpoint (``RUN/checkpoints/step_N``, ``RUN`` itself for its newest) as a
  :class:`Transformer` in eval mode, with its config and the SentencePiece model of its shards (found by
  the manifest and checked against the sha256 the checkpoint recorded).
- :func:`export_hf`: a Hugging Face Llama directory: ``config.json`` (``LlamaForCausalLM``: hidden size,
  layers, heads and key/value heads, ``intermediate_size``, ``rms_norm_eps``, ``rope_theta``,
  untied embeddings), ``model.safetensors``, ``generation_config.json``, and the tokenizer
  (``tokenizer.model`` with ``tokenizer_config.json`` and ``special_tokens_map.json``), so
  ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained`` load both.
  corpusmill rotates adjacent pairs of q/k features (Meta's layout); Hugging Face rotates the two
  halves of each head, so ``wq``/``wk`` rows are permuted as Meta's own conversion script does.
- :func:`export_meta`: Meta's layout: ``consolidated.00.pth`` (corpusmill's parameter names are the
  reference code's), ``params.json`` and ``tokenizer.model``.
- :func:`load_hf`: the other way, a Hugging Face Llama directory into a corpusmill model
  (``corpusmill train --init-from``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

import torch

from corpusmill.core.errors import CorpusmillError
from corpusmill.tokenize.bpe import is_bpe
from corpusmill.tokenize.hf import (
    _special_tokens,
    _write_json,
    tiktoken_ranks,
    write_hf_tokenizer,  # noqa: F401 (moved; imported from here elsewhere)
)
from corpusmill.train import checkpoint as ckpt
from corpusmill.train.configs import ModelConfig
from corpusmill.train.export_weights import (
    HF_DTYPE_NAMES,
    MAX_SHARD_BYTES,
    check_mp,
    meta_rank_states,
    usual_mode,
    write_hf_weights,
)
from corpusmill.train.model import Transformer


# -- a checkpoint in -------------------------------------------------------------------------------
def resolve_checkpoint(path: str) -> str:
    """``RUN`` (its newest checkpoint), ``RUN/checkpoints`` or ``RUN/checkpoints/step_N``."""
    if os.path.exists(os.path.join(path, "meta.json")) and (
        os.path.exists(os.path.join(path, "model.pt")) or os.path.isdir(os.path.join(path, ckpt.DCP_DIR))
    ):
        return path
    for run in (path, os.path.dirname(path.rstrip("/"))):
        latest = ckpt.latest_checkpoint(run)
        if latest:
            return latest
    raise CorpusmillError(
        f"{path}: no checkpoint (a run directory, or RUN/checkpoints/step_N with meta.json and model.pt)"
    )


def tokenizer_of(meta: Dict[str, Any], override: Optional[str] = None) -> str:
    """The SentencePiece model the checkpoint's shards were made with (their manifest names it; the
    sha256 must be the one the checkpoint recorded)."""
    from corpusmill.core.files import sha256_file

    data = meta.get("data") or {}
    want = data.get("tokenizer_sha256")
    if override:
        path = override
    else:
        directory = data.get("dir") or ""
        name = "tokenizer.model"
        try:
            with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as fh:
                name = (json.load(fh).get("tokenizer") or {}).get("file") or name
        except (OSError, ValueError):
            pass
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise CorpusmillError(
                f"the checkpoint's shards ({directory}) have no {name}; pass --tokenizer "
                f"PATH (the SentencePiece model the shards were made with)"
            )
    if want and sha256_file(path) != want:
        raise CorpusmillError(
            f"{path}: not the tokenizer the model was trained with (sha256 differs from the "
            f"checkpoint's tokenizer_sha256 {want[:12]}...)"
        )
    return path


def load_trained(path: str, tokenizer: Optional[str] = None) -> Tuple[Transformer, ModelConfig, str, Dict]:
    """(model in eval mode on the CPU, its config, its tokenizer path, the checkpoint's meta)."""
    directory = resolve_checkpoint(path)
    meta = ckpt.read_meta(directory)
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    cfg = ModelConfig(**{k: v for k, v in (meta.get("config") or {}).get("model", {}).items() if k in fields})
    model = Transformer(cfg)
    try:
        ckpt.load_model_state(directory, model)
    except (OSError, RuntimeError) as exc:
        raise CorpusmillError(f"{directory}: cannot load the model ({exc})") from None
    model.eval()
    return model, cfg, tokenizer_of(meta, tokenizer), meta


# -- Hugging Face ----------------------------------------------------------------------------------
def _to_halves(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of each head from adjacent pairs (x0, x1, x2, x3, ...) to halves (x0, x2, ..., x1, x3, ...)."""
    out, cols = w.shape
    return w.view(heads, out // heads // 2, 2, cols).transpose(1, 2).reshape(out, cols)


def _to_pairs(w: torch.Tensor, heads: int) -> torch.Tensor:
    out, cols = w.shape
    return w.view(heads, 2, out // heads // 2, cols).transpose(1, 2).reshape(out, cols)


_LAYER = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_TOP = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def hf_state_dict(state: Dict[str, torch.Tensor], cfg: ModelConfig) -> Dict[str, torch.Tensor]:
    out = {}
    for name, tensor in state.items():
        if name in _TOP:
            out[_TOP[name]] = tensor
            continue
        _, layer, rest = name.split(".", 2)
        if rest == "attention.wq.weight":
            tensor = _to_halves(tensor, cfg.n_heads)
        elif rest == "attention.wk.weight":
            tensor = _to_halves(tensor, cfg.kv_heads)
        out[f"model.layers.{layer}.{_LAYER[rest]}"] = tensor
    return {k: v.contiguous() for k, v in out.items()}


def hf_config(cfg: ModelConfig, bos_id: int, eos_id: int) -> Dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
        "use_cache": True,
    }


EXPORT_MARKERS = ("model.safetensors", "model.safetensors.index.json", "consolidated.00.pth")


def _exported(out_dir: str, overwrite: bool, inputs, write) -> str:
    """Run ``write(directory)`` so that the export is complete or absent, and never destructive: an output
    that is, holds or lies inside the checkpoint or tokenizer it exports is refused before anything is
    touched; a non-empty output is replaced (``overwrite``) only when it is an earlier export, and the new
    one is built beside it and swapped in when complete, under the output's lock."""
    from corpusmill.core.outputs import OutputLock, beside, check_output_apart, check_replaceable, mark_created

    check_output_apart(out_dir, [i for i in inputs if i], what="checkpoint or tokenizer being exported")
    with OutputLock(out_dir):
        work = out_dir
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise CorpusmillError(f"--output {out_dir}: is a file, not a directory; choose a directory")
        if os.path.isdir(out_dir) and os.listdir(out_dir):
            if not overwrite:
                raise CorpusmillError(f"{out_dir} is not empty; choose a new --output or pass --overwrite")
            check_replaceable(out_dir, EXPORT_MARKERS)
            work = beside(out_dir, f"new-{os.getpid()}")
            shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work, exist_ok=True)
        try:
            mark_created(work)
            write(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True) if work != out_dir else None
            raise
        if work != out_dir:
            old = beside(out_dir, "old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out_dir, old)
            os.rename(work, out_dir)
            shutil.rmtree(old)
    return out_dir


def export_hf(
    model: Transformer,
    cfg: ModelConfig,
    tokenizer: str,
    out_dir: str,
    overwrite: bool = False,
    inputs=(),
    dtype: str = "fp32",
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> str:
    """``inputs``: the checkpoint (and tokenizer) exported, which the output must stay apart from;
    ``dtype`` and ``max_shard_bytes``: corpusmill.train.export_weights."""
    special = _special_tokens(tokenizer)
    return _exported(
        out_dir,
        overwrite,
        [*inputs, tokenizer],
        lambda d: _write_hf(model, cfg, tokenizer, d, special, dtype, max_shard_bytes),
    )


def _write_hf(
    model: Transformer, cfg: ModelConfig, tokenizer: str, out_dir: str, special, dtype: str, max_shard_bytes: int
) -> str:
    bos, eos = special["bos"][0], special["eos"][0]
    config = hf_config(cfg, bos, eos)
    config["torch_dtype"] = HF_DTYPE_NAMES[dtype]
    _write_json(os.path.join(out_dir, "config.json"), config)
    _write_json(os.path.join(out_dir, "generation_config.json"), {"bos_token_id": bos, "eos_token_id": eos})
    state = model.state_dict()
    names = {hf: ours for ours, hf in _hf_names(state)}

    def make(hf_name: str) -> torch.Tensor:  # one tensor at a time: never a second copy of the model
        ours = names[hf_name]
        return hf_state_dict({ours: state[ours].detach().float().cpu()}, cfg)[hf_name]

    write_hf_weights(list(names), make, out_dir, dtype, max_shard_bytes)
    write_hf_tokenizer(tokenizer, out_dir, cfg.max_seq_len, special)
    usual_mode(out_dir)
    return out_dir


def _hf_names(state) -> List[Tuple[str, str]]:
    """(corpusmill name, Hugging Face name) of every weight, in the model's order."""
    out = []
    for name in state:
        if name in _TOP:
            out.append((name, _TOP[name]))
        else:
            _, layer, rest = name.split(".", 2)
            out.append((name, f"model.layers.{layer}.{_LAYER[rest]}"))
    return out


def _rope_theta(hf: dict, hf_dir: str) -> float:
    """RoPE's base from either layout: transformers 4's top-level ``rope_theta``, or transformers 5's
    ``rope_parameters: {rope_theta, rope_type}``; a ``rope_type`` other than plain RoPE is refused (the model
    implements plain RoPE only), never read as 10000 silently."""
    params = hf.get("rope_parameters") or {}
    if params and not isinstance(params, dict):
        raise CorpusmillError(f"--init-from {hf_dir}: rope_parameters {params!r} is not a mapping")
    kind = params.get("rope_type", "default")
    if kind not in ("default", None):
        raise CorpusmillError(
            f"--init-from {hf_dir}: rope_parameters.rope_type {kind!r} is not supported (plain RoPE, rope_type "
            f"'default', only)"
        )
    theta = params.get("rope_theta", hf.get("rope_theta"))
    if theta is None:
        return 10000.0  # neither layout names it: the Llama default, as transformers reads it
    if params.get("rope_theta") is not None and hf.get("rope_theta") not in (None, params["rope_theta"]):
        raise CorpusmillError(
            f"--init-from {hf_dir}: rope_theta {hf['rope_theta']} and rope_parameters.rope_theta "
            f"{params['rope_theta']} differ"
        )
    return float(theta)


def hf_model_config(hf_dir: str) -> ModelConfig:
    """The corpusmill ModelConfig of a Hugging Face Llama directory's config.json."""
    try:
        with open(os.path.join(hf_dir, "config.json"), encoding="utf-8") as fh:
            hf = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CorpusmillError(f"--init-from {hf_dir}: no readable config.json ({exc})") from None
    if hf.get("model_type") != "llama":
        raise CorpusmillError(
            f"--init-from {hf_dir}: model_type {hf.get('model_type')!r}; a Llama checkpoint "
            f"(model_type llama) is expected"
        )
    if hf.get("tie_word_embeddings"):
        raise CorpusmillError(f"--init-from {hf_dir}: tied input and output embeddings; LLaMA's are untied")
    if hf.get("rope_scaling"):
        raise CorpusmillError(f"--init-from {hf_dir}: rope_scaling {hf['rope_scaling']} is not supported (plain RoPE)")
    rope_theta = _rope_theta(hf, hf_dir)
    dim, heads = hf["hidden_size"], hf["num_attention_heads"]
    cfg = ModelConfig(
        dim=dim,
        n_layers=hf["num_hidden_layers"],
        n_heads=heads,
        n_kv_heads=hf.get("num_key_value_heads") or heads,
        vocab_size=hf["vocab_size"],
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        rope_theta=rope_theta,
        max_seq_len=hf.get("max_position_embeddings", 2048),
    )
    if cfg.ffn_hidden != hf["intermediate_size"]:  # express the width through multiple_of
        cfg = dataclasses.replace(cfg, multiple_of=hf["intermediate_size"], ffn_dim_multiplier=None)
        if cfg.ffn_hidden != hf["intermediate_size"]:
            raise CorpusmillError(
                f"--init-from {hf_dir}: intermediate_size {hf['intermediate_size']} cannot be "
                f"expressed as corpusmill's SwiGLU width"
            )
    if hf.get("head_dim") not in (None, dim // heads):
        raise CorpusmillError(f"--init-from {hf_dir}: head_dim {hf['head_dim']} is not hidden_size / heads")
    return cfg


def load_hf(hf_dir: str) -> Tuple[ModelConfig, Dict[str, torch.Tensor]]:
    """A Hugging Face Llama directory (config.json + safetensors or .bin weights) -> (config, corpusmill
    state dict)."""
    cfg = hf_model_config(hf_dir)
    weights = _read_hf_weights(hf_dir)
    inverse = {v: k for k, v in _TOP.items()}
    layer_inverse = {v: k for k, v in _LAYER.items()}
    state = {}
    for name, tensor in weights.items():
        if name in inverse:
            state[inverse[name]] = tensor
            continue
        if not name.startswith("model.layers."):
            if name.endswith("rotary_emb.inv_freq"):
                continue
            raise CorpusmillError(f"--init-from {hf_dir}: unexpected weight {name}")
        _, _, layer, rest = name.split(".", 3)
        if rest not in layer_inverse:
            if rest.endswith("rotary_emb.inv_freq"):
                continue
            raise CorpusmillError(f"--init-from {hf_dir}: unexpected weight {name}")
        ours = layer_inverse[rest]
        if ours == "attention.wq.weight":
            tensor = _to_pairs(tensor, cfg.n_heads)
        elif ours == "attention.wk.weight":
            tensor = _to_pairs(tensor, cfg.kv_heads)
        state[f"layers.{layer}.{ours}"] = tensor
    return cfg, state


def _read_hf_weights(hf_dir: str) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    names = sorted(os.listdir(hf_dir))
    out: Dict[str, torch.Tensor] = {}
    shards = [n for n in names if n.endswith(".safetensors")]
    if shards:
        for n in shards:
            out.update(load_file(os.path.join(hf_dir, n)))
        return out
    bins = [n for n in names if n.startswith("pytorch_model") and n.endswith(".bin")]
    for n in bins:
        out.update(torch.load(os.path.join(hf_dir, n), map_location="cpu", weights_only=True))
    if not out:
        raise CorpusmillError(f"--init-from {hf_dir}: no model.safetensors or pytorch_model*.bin")
    return out


# -- Meta ------------------------------------------------------------------------------------------
# The keys each release's ModelArgs takes besides max_seq_len and max_batch_size (which Meta's Llama.build
# passes itself): LLaMA 1 (facebookresearch/llama, v1), Llama 2 (meta-llama/llama), Llama 3 (meta-llama/llama3)
META_PARAMS = {
    1: ("dim", "n_layers", "n_heads", "vocab_size", "multiple_of", "norm_eps"),
    2: ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "ffn_dim_multiplier", "norm_eps"),
    3: (
        "dim",
        "n_layers",
        "n_heads",
        "n_kv_heads",
        "vocab_size",
        "multiple_of",
        "ffn_dim_multiplier",
        "norm_eps",
        "rope_theta",
    ),
}


def meta_release_of(cfg: ModelConfig, tokenizer: Optional[str] = None) -> int:
    """The oldest Meta release whose code runs this model: 3 for a byte-level BPE or a RoPE base other than
    10000, 2 for grouped-query attention or an FFN multiplier, else 1."""
    if (tokenizer and is_bpe(tokenizer)) or cfg.rope_theta != 10000.0:
        return 3
    if cfg.kv_heads != cfg.n_heads or cfg.ffn_dim_multiplier is not None:
        return 2
    return 1


def meta_params(cfg: ModelConfig, release: int) -> Dict[str, Any]:
    """params.json for Meta's ``ModelArgs(max_seq_len=..., max_batch_size=..., **params)`` of ``release``; a
    model that release cannot run is refused, naming what it lacks."""
    if release not in META_PARAMS:
        raise CorpusmillError(f"--meta-release {release}: expected 1, 2 or 3")
    every = {
        "dim": cfg.dim,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.kv_heads,
        "vocab_size": cfg.vocab_size,
        "multiple_of": cfg.multiple_of,
        "ffn_dim_multiplier": cfg.ffn_dim_multiplier,
        "norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
    }
    defaults = {"n_kv_heads": cfg.n_heads, "ffn_dim_multiplier": None, "rope_theta": 10000.0}
    lost = [k for k, d in defaults.items() if k not in META_PARAMS[release] and every[k] != d]
    if lost:
        raise CorpusmillError(
            f"--meta-release {release}: its ModelArgs has no {', '.join(lost)} (this model has "
            f"{', '.join(f'{k}={every[k]}' for k in lost)}); export for release {meta_release_of(cfg)}"
        )
    return {k: every[k] for k in META_PARAMS[release]}


def export_meta(
    model: Transformer,
    cfg: ModelConfig,
    tokenizer: str,
    out_dir: str,
    overwrite: bool = False,
    inputs=(),
    release: Optional[int] = None,
    dtype: str = "fp32",
    mp: int = 1,
) -> str:
    """Meta's layout for ``release`` (1, 2 or 3; by default the oldest that runs the model), in ``mp``
    model-parallel files (corpusmill.train.export_weights)."""
    release = release or meta_release_of(cfg, tokenizer)
    params = meta_params(cfg, release)  # refused before anything is written
    check_mp(cfg, mp)
    return _exported(
        out_dir, overwrite, [*inputs, tokenizer], lambda d: _write_meta(model, params, tokenizer, d, dtype, mp)
    )


def _write_meta(
    model: Transformer, params: Dict[str, Any], tokenizer: str, out_dir: str, dtype: str = "fp32", mp: int = 1
) -> str:
    for rank, state in meta_rank_states(model.state_dict(), mp, dtype):
        torch.save(state, os.path.join(out_dir, f"consolidated.{rank:02d}.pth"))
        del state
    _write_json(os.path.join(out_dir, "params.json"), params)
    if is_bpe(tokenizer):  # Llama 3: tiktoken's ranks file
        with open(os.path.join(out_dir, "tokenizer.model"), "w", encoding="utf-8") as fh:
            fh.write(tiktoken_ranks(tokenizer))
    else:
        shutil.copyfile(tokenizer, os.path.join(out_dir, "tokenizer.model"))
    usual_mode(out_dir)
    return out_dir


def load_meta(meta_dir: str) -> Transformer:
    """Meta's layout (params.json + consolidated.00.pth) as a corpusmill model."""
    with open(os.path.join(meta_dir, "params.json"), encoding="utf-8") as fh:
        params = json.load(fh)
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model = Transformer(ModelConfig(**{k: v for k, v in params.items() if k in fields}))
    model.load_state_dict(
        torch.load(os.path.join(meta_dir, "consolidated.00.pth"), map_location="cpu", weights_only=True)
    )
    return model.eval()
