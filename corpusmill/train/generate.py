"""Text from a trained model: greedy or temperature / top-p sampling, with a key/value cache.

:func:`forward_cached` runs the model's own modules (the same weights, norms, RoPE and SwiGLU as
:meth:`Transformer.forward`) on new tokens only, keeping each layer's keys and values: the prompt is
one pass, then every new token costs one position. Without the cache (``use_cache=False``) every step
runs the whole sequence again through ``Transformer.forward``; both give the same tokens (tested).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from corpusmill.train.model import Transformer, apply_rope

Cache = List[Optional[Tuple[torch.Tensor, torch.Tensor]]]


@torch.no_grad()
def forward_cached(model: Transformer, tokens: torch.Tensor, cache: Cache, start: int) -> torch.Tensor:
    """Logits ``(B, T, vocab)`` of ``tokens`` ``(B, T)`` at positions ``start .. start + T - 1``, given the
    keys and values of the positions before (``cache``, one entry per layer, updated in place)."""
    B, T = tokens.shape
    if start + T > model.rope.shape[0]:
        raise ValueError(f"position {start + T} is past the model's max_seq_len {model.rope.shape[0]}")
    rope = model.rope[start : start + T]
    h = model.tok_embeddings(tokens)
    for i, layer in enumerate(model.layers):
        attn = layer.attention
        x = layer.attention_norm(h)
        q = attn.wq(x).view(B, T, attn.n_heads, attn.head_dim)
        k = attn.wk(x).view(B, T, attn.n_kv_heads, attn.head_dim)
        v = attn.wv(x).view(B, T, attn.n_kv_heads, attn.head_dim)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        if cache[i] is not None:
            k = torch.cat([cache[i][0], k], dim=1)
            v = torch.cat([cache[i][1], v], dim=1)
        cache[i] = (k, v)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if attn.n_kv_heads != attn.n_heads:
            rep = attn.n_heads // attn.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        # query j (position start + j) sees the keys of positions 0 .. start + j
        mask = torch.ones(T, start + T, dtype=torch.bool, device=tokens.device).tril(diagonal=start)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = h + attn.wo(out.transpose(1, 2).reshape(B, T, -1))
        h = h + layer.feed_forward(layer.ffn_norm(h))
    return model.output(model.norm(h))


def _pick(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> int:
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p  # the smallest set reaching top_p
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


@torch.no_grad()
def generate(
    model: Transformer,
    prompt: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    eos_id: Optional[int] = None,
    use_cache: bool = True,
) -> List[int]:
    """``prompt`` followed by ``max_new_tokens`` tokens (fewer only when ``eos_id`` comes).
    ``temperature`` 0 is greedy; the same seed gives the same sample. Past the model's context
    (``max_seq_len``, a prompt included) the window slides: each next token sees the last
    ``max_seq_len - 1`` tokens, run again from position 0 (no cache), so it never stops early."""
    model.eval()
    device = model.tok_embeddings.weight.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    context = model.rope.shape[0]
    ids = list(prompt)
    limit = len(ids) + max_new_tokens
    cache: Cache = [None] * len(model.layers)
    pending = torch.tensor([ids], device=device)
    while len(ids) < limit:
        if len(ids) >= context:  # the window slides: the last context - 1 tokens, from position 0
            logits = model(torch.tensor([ids[-(context - 1) :]], device=device))[0, -1]
        elif use_cache:
            logits = forward_cached(model, pending, cache, len(ids) - pending.shape[1])[0, -1]
        else:
            logits = model(torch.tensor([ids], device=device))[0, -1]
        nxt = _pick(logits.cpu(), temperature, top_p, generator)
        ids.append(nxt)
        if eos_id is not None and nxt == eos_id:
            break
        pending = torch.tensor([[nxt]], device=device)
    return ids
