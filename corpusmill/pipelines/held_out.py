"""The shard stage's held-out sets on Beam: the held-out documents checked against the training documents
by content (corpusmill.mixers.contamination: keys only) and packed into ``shards/eval/<source>/``."""

from __future__ import annotations

import os
from typing import Dict

import apache_beam as beam

from corpusmill.core.files import join
from corpusmill.tokenize.shards import pack_documents, write_shard


def _without_contaminated(training, held):
    """The held-out documents whose tokens are not mostly seen in training (corpusmill.mixers.contamination),
    and per source ``{documents, contaminated, seen_share, seen_share_kept, window, threshold}``."""
    from corpusmill.mixers import contamination as cm

    held_windows = (
        held
        | "HeldWindows" >> beam.Map(lambda t: cm.window_hashes(t.tokens))
        | "HeldTable" >> beam.CombineGlobally(cm.union)
    )
    seen = (
        training
        | "SeenInTraining" >> beam.Map(_seen_windows, beam.pvalue.AsSingleton(held_windows))
        | "SeenTable" >> beam.CombineGlobally(cm.union)
    )
    judged = held | "Contaminated" >> beam.Map(
        lambda t, table: (t, cm.seen_share(t.tokens, table)), beam.pvalue.AsSingleton(seen)
    )
    summary = (
        judged
        | "ShareBySource" >> beam.Map(_share_row, cm.THRESHOLD)
        | "SumShares" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(*[sum] * 6))
        | "Contamination" >> beam.combiners.ToDict()
        | "Summary" >> beam.Map(_contamination_summary, cm.WINDOW, cm.THRESHOLD)
    )
    clean = judged | "DropContaminated" >> beam.FlatMap(lambda ts: [ts[0]] if ts[1] < cm.THRESHOLD else [])
    return clean, summary


def _seen_windows(t, table):
    from corpusmill.mixers import contamination as cm

    hashes = cm.window_hashes(t.tokens)
    return hashes[cm.found_in(hashes, table)]


def _share_row(judged, threshold: float):
    """(source, (documents, contaminated, seen tokens, tokens, seen tokens kept, tokens kept)) of one."""
    t, share = judged
    n, kept = len(t.tokens), share < threshold
    return t.source, (1, int(not kept), share * n, n, share * n * kept, n * kept)


def _contamination_summary(by_source, window: int, threshold: float) -> Dict[str, dict]:
    out = {}
    for source, (docs, dirty, seen, tokens, seen_kept, tokens_kept) in sorted(by_source.items()):
        out[source] = {
            "documents": int(docs),
            "contaminated": int(dirty),
            "seen_share": round(seen / tokens, 6) if tokens else 0.0,
            "seen_share_kept": round(seen_kept / tokens_kept, 6) if tokens_kept else 0.0,
            "window": window,
            "threshold": threshold,
            "rule": f"a held-out document with >= {threshold:g} of its tokens in a {window}-token window seen in "
            f"training is left out of the eval set",
        }
    return out


MIN_EVAL_ROWS = 32  # a held-out set under this many rows is warned about
EVAL_DIR = "eval"  # shards/eval/<source>/: each source's held-out documents, one pass, never in training
EVAL_GROUP_TOKENS = 16_000_000  # held-out tokens packed together in one worker


def _write_eval_group(item, out_dir, seq_len, bos, eos, vocab_size, batch_rows):
    """One packing group of a source's held-out documents -> one eval shard (None if under one row)."""
    (source, group), entries = item
    entries = sorted(entries, key=lambda e: (e[0], e[1]))
    stats: Dict[str, int] = {}
    rows, bounds = pack_documents(  # the last row filled up with EOS: no held-out document is cut
        [e[2] for e in entries], seq_len, bos, eos, vocab_size=vocab_size, stats=stats, pad_id=eos
    )
    if not len(rows):
        return source, None
    os.makedirs(join(out_dir, EVAL_DIR, source), exist_ok=True)
    info = write_shard(join(out_dir, EVAL_DIR, source, f"shard-{group:05d}.arrow"), rows, bounds, batch_rows=batch_rows)
    info.update(index=int(group), documents=int(stats["documents"]), padding=int(stats["padding"]))
    return source, info
