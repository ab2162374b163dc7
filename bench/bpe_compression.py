"""Compression of the Llama 3 byte-level BPE against LLaMA's SentencePiece BPE, trained on the same text and
measured on the same held-out text (bytes per token: higher is better).

    .venv/bin/python bench/bpe_compression.py --pydocs /usr/share/doc/python3.11/html \\
        [--vocab 32000 128256]

Training text: the visible text of the Python 3.11 documentation pages (every tenth page by path held
out), the Python standard library's own .py files (every tenth held out), and Debian's changelogs and
copyright files on this machine (every tenth held out). Held-out sets are reported apart, plus the UDHR in
72 languages (tests/data/udhr.jsonl), which neither model saw. Each tokenizer is trained by corpusmill's
own functions (``train_sentencepiece`` with LLaMA's options, ``train_bpe``); a vocabulary the text cannot
fill is reported as such. Record the numbers in docs/mixing.md.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data", "c4"))


def _read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def corpora(pydocs):
    from make_c4_samples import visible_text

    sets = {
        "python-doc": [
            visible_text(open(p, "rb").read())
            for p in sorted(glob.glob(os.path.join(pydocs, "**", "*.html"), recursive=True))
        ],
        "python-code": [
            _read(p)
            for p in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "**", "*.py"), recursive=True))[
                :2000
            ]
        ],
        "debian-text": [
            _read(p)
            for p in sorted(glob.glob("/usr/share/doc/*/changelog.Debian.gz"))
            + sorted(glob.glob("/usr/share/doc/*/copyright"))
        ],
    }
    train, held = [], {}
    for name, texts in sets.items():
        for i, t in enumerate(texts):
            (held.setdefault(name, []) if i % 10 == 0 else train).append(t)
    held["udhr-72-languages"] = [
        json.loads(line)["text"]
        for line in open(os.path.join(HERE, "..", "tests", "data", "udhr.jsonl"), encoding="utf-8")
    ]
    return train, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pydocs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--vocab", type=int, nargs="+", default=[32000, 128256])
    args = ap.parse_args()
    import tempfile

    from corpusmill.core.errors import CorpusmillError
    from corpusmill.tokenize.bpe import BPETokenizer, train_bpe
    from corpusmill.tokenize.tokenizer import SentencePieceTokenizer, train_sentencepiece

    train, held = corpora(args.pydocs)
    lines = [line for t in train for line in t.splitlines() if line.strip()]
    print(
        f"training text: {len(train):,} documents, {sum(len(t.encode()) for t in train) / 1e6:.1f} MB, "
        f"{len(lines):,} lines; held out: " + ", ".join(f"{k} {len(v)} docs" for k, v in held.items())
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sentencepiece", "bpe"):
            for vocab in args.vocab:
                t0 = time.perf_counter()
                try:
                    model = (
                        train_sentencepiece(lines, vocab, threads=2)
                        if kind == "sentencepiece"
                        else train_bpe(lines, vocab)
                    )
                except CorpusmillError as exc:
                    rows.append((kind, vocab, None, str(exc)[:160]))
                    continue
                path = os.path.join(tmp, f"{kind}-{vocab}.model")
                open(path, "wb").write(model)
                tok = SentencePieceTokenizer(path) if kind == "sentencepiece" else BPETokenizer(path)
                secs = time.perf_counter() - t0
                result = {}
                for name, texts in held.items():
                    nbytes = sum(len(t.encode("utf-8")) for t in texts)
                    ntok = sum(len(ids) for ids in tok.encode_many(texts))
                    exact = all(tok.decode(tok.encode(t)) == t for t in texts)
                    result[name] = (nbytes / ntok, exact)
                rows.append((kind, vocab, result, f"trained in {secs:.0f} s"))
    names = list(held)
    print("\n| tokenizer | vocab | " + " | ".join(names) + " | note |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for kind, vocab, result, note in rows:
        cells = [f"{result[n][0]:.2f}{'' if result[n][1] else ' (not exact)'}" if result else "-" for n in names]
        print(f"| {kind} | {vocab:,} | " + " | ".join(cells) + f" | {note} |")


if __name__ == "__main__":
    main()
