"""The LLaMA transformer, as the LLaMA reference code (facebookresearch/llama, model.py) defines it.

- pre-normalization with RMSNorm computed in float32 and cast back, a final RMSNorm;
- no biases anywhere; untied input embedding and output layer;
- rotary embeddings on q and k (adjacent pairs rotated, as the reference's complex multiply);
- SwiGLU feed-forward ``w2(silu(w1 x) * w3 x)``;
- grouped-query attention (``n_kv_heads``), causal, through ``F.scaled_dot_product_attention``;
- optional document masking (Llama 3): with the row's document starts, a token attends only to
  earlier tokens of its own document.

The reference code is inference-only; the initialisation here follows torchtitan's LLaMA: embeddings
N(0, 1), linear layers truncated-normal std ``init_std`` (0.02), the residual output projections
(``wo``, ``w2``) scaled by ``1 / sqrt(2 * n_layers)``, the output layer std ``dim ** -0.5``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from corpusmill.train.configs import ModelConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return out.type_as(x) * self.weight

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


def rope_tables(
    head_dim: int, seq_len: int, theta: float = 10000.0, device: Optional[torch.device] = None
) -> torch.Tensor:
    """cos and sin of ``pos * theta ** (-2i / head_dim)``, float32, shape ``(seq_len, head_dim // 2, 2)``."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float64), freqs)
    return torch.stack([angles.cos(), angles.sin()], dim=-1).float()


def apply_rope(x: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs ``(x[2i], x[2i+1])`` of ``x`` (shape ``(B, T, H, head_dim)``) by the angles
    of ``tables[:T]``; computed in float32 and cast back, like the reference."""
    T = x.shape[1]
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    cos = tables[:T, None, :, 0]
    sin = tables[:T, None, :, 1]
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return out.flatten(-2).type_as(x)


def document_mask(doc_starts: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask ``(B, 1, T, T)`` from start flags ``(B, T)``: causal and same document.

    A row that begins inside a document (no start at 0) treats that fragment as a document of its own."""
    doc_ids = torch.cumsum(doc_starts.to(torch.int32), dim=1)
    T = doc_starts.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_starts.device).tril()
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    return (same & causal)[:, None]


def document_block_mask(doc_starts: torch.Tensor):
    """The same mask as :func:`document_mask`, as FlexAttention's block mask (blocks wholly outside a
    document are skipped, not computed and masked)."""
    from torch.nn.attention.flex_attention import create_block_mask

    doc_ids = torch.cumsum(doc_starts.to(torch.int32), dim=1)

    def same_document_causal(b, h, q, k):
        return (q >= k) & (doc_ids[b, q] == doc_ids[b, k])

    B, T = doc_starts.shape
    return create_block_mask(same_document_causal, B, None, T, T, device=doc_starts.device)


_FLEX = {}


def _flex_attention(q, k, v, block_mask):
    """FlexAttention: compiled (fused) on GPUs; eager elsewhere (correct, unfused: for tests on CPU)."""
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    if q.device.type == "cuda":
        if "compiled" not in _FLEX:
            _FLEX["compiled"] = torch.compile(flex_attention, dynamic=False)
        return _FLEX["compiled"](q, k, v, block_mask=block_mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flex_attention(q, k, v, block_mask=block_mask)


def use_flex(cfg: ModelConfig, device: torch.device) -> bool:
    impl = getattr(cfg, "doc_mask_impl", "auto")
    if impl not in ("auto", "dense", "flex"):
        raise ValueError(f"doc_mask_impl {impl!r}: choose auto, dense or flex")
    return impl == "flex" or (impl == "auto" and device.type == "cuda")


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if self.n_kv_heads != self.n_heads:
            rep = self.n_heads // self.n_kv_heads
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif isinstance(mask, torch.Tensor):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:  # a FlexAttention block mask
            out = _flex_attention(q, k, v, mask)
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.ffn_hidden
        self.w1 = nn.Linear(cfg.dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, cfg: ModelConfig):
        super().__init__()
        self.layer_id = layer_id
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor, rope: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), rope, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size is None:
            raise ValueError("ModelConfig.vocab_size must be set before building the model")
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, cfg) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # not a parameter, not saved: recomputed from the config (also after to_empty on meta)
        self.register_buffer("rope", rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta), persistent=False)
        self.activation_checkpointing = False

    @torch.no_grad()
    def init_weights(self, init_std: float = 0.02, generator: Optional[torch.Generator] = None) -> None:
        """Initialise every parameter (deterministic given ``generator``) and the RoPE tables."""
        self.rope = rope_tables(self.cfg.head_dim, self.cfg.max_seq_len, self.cfg.rope_theta, device=self.rope.device)
        nn.init.normal_(self.tok_embeddings.weight, std=1.0, generator=generator)
        out_std = init_std / math.sqrt(2 * self.cfg.n_layers)
        for layer in self.layers:
            for lin in (
                layer.attention.wq,
                layer.attention.wk,
                layer.attention.wv,
                layer.feed_forward.w1,
                layer.feed_forward.w3,
            ):
                nn.init.trunc_normal_(lin.weight, std=init_std, a=-3 * init_std, b=3 * init_std, generator=generator)
            for lin in (layer.attention.wo, layer.feed_forward.w2):
                nn.init.trunc_normal_(lin.weight, std=out_std, a=-3 * out_std, b=3 * out_std, generator=generator)
            layer.attention_norm.reset_parameters()
            layer.ffn_norm.reset_parameters()
        self.norm.reset_parameters()
        std = self.cfg.dim**-0.5
        nn.init.trunc_normal_(self.output.weight, std=std, a=-3 * std, b=3 * std, generator=generator)

    def forward(self, tokens: torch.Tensor, doc_starts: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` for ``tokens`` ``(B, T)``. ``doc_starts`` (bool ``(B, T)``, True where
        a document begins) turns on document masking; None gives plain causal attention."""
        T = tokens.shape[1]
        if T > self.rope.shape[0]:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.rope.shape[0]}")
        mask = None
        if doc_starts is not None:
            mask = document_block_mask(doc_starts) if use_flex(self.cfg, tokens.device) else document_mask(doc_starts)
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            if self.activation_checkpointing and self.training:
                h = torch.utils.checkpoint.checkpoint(layer, h, self.rope, mask, use_reentrant=False)
            else:
                h = layer(h, self.rope, mask)
        return self.output(self.norm(h))

    def loss(
        self, tokens: torch.Tensor, targets: torch.Tensor, doc_starts: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        logits = self(tokens, doc_starts)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_on_meta(cfg: ModelConfig) -> Transformer:
    """The model with meta tensors: shapes and counts without memory."""
    with torch.device("meta"):
        return Transformer(cfg)
