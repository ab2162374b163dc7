"""A trained model on held-out shard sets: loss per set and pooled, and bits per byte (``corpusmill ablate``).

Every row of each set is scored (not the trainer's first ``eval_rows``). Bits per byte divide the summed
loss (nats) by ln 2 and by the UTF-8 bytes of the predicted tokens (each row's tokens after the first,
decoded with the shards' tokenizer, BOS/EOS left out): a measure two tokenizers can be compared on.
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np
import torch

from corpusmill.tokenize import ShardDataset
from corpusmill.tokenize.tokenizer import load_tokenizer
from corpusmill.train.data import load_rows
from corpusmill.train.step import held_out_loss


def evaluate_sets(model, sets: Dict[str, str], tokenizer: str, micro: int = 8) -> Dict[str, dict]:
    """``sets``: name -> eval shard directory. Returns name -> {loss, tokens, bytes, bits_per_byte}, and
    ``"pooled"`` over all of them (token-weighted loss, byte-weighted bits per byte)."""
    tok = load_tokenizer(tokenizer)
    dev = next(model.parameters()).device
    specials = {tok.bos_id, tok.eos_id}
    out: Dict[str, dict] = {}
    total_nats = total_tokens = total_bytes = 0.0
    for name, path in sorted(sets.items()):
        ds = ShardDataset(path)
        n = len(ds)
        if n == 0:
            continue
        loss = held_out_loss(
            model,
            lambda idx, ds=ds: load_rows(ds, idx, model.cfg.doc_mask),
            np.arange(n),
            micro=micro,
            dev=dev,
            pads=ds.padding,
        )
        tokens = n * ds.seq_len - int(ds.padding(np.arange(n)).sum())  # the padding is not scored
        nbytes = 0
        for i in range(n):
            row = ds[i][0][1:]
            nbytes += len(tok.decode([int(t) for t in row if int(t) not in specials]).encode("utf-8"))
        out[name] = {
            "loss": loss,
            "tokens": tokens,
            "bytes": nbytes,
            "bits_per_byte": loss * tokens / math.log(2) / max(1, nbytes),
        }
        total_nats += loss * tokens
        total_tokens += tokens
        total_bytes += nbytes
    if total_tokens:
        out["pooled"] = {
            "loss": total_nats / total_tokens,
            "tokens": int(total_tokens),
            "bytes": int(total_bytes),
            "bits_per_byte": total_nats / math.log(2) / max(1, total_bytes),
        }
    return out


def evaluate_run(run_dir: str, sets: Dict[str, str], tokenizer: str) -> Dict[str, dict]:
    """The newest checkpoint of ``run_dir`` on ``sets`` (CPU)."""
    from corpusmill.train.export import load_trained

    model, _cfg, _tok, _meta = load_trained(run_dir, tokenizer)
    with torch.no_grad():
        return evaluate_sets(model.eval(), sets, tokenizer)
