"""``corpusmill train-lm``: a SentencePiece model and a KenLM n-gram model over its pieces, as cc_net.

Steps: every line of the reference text is normalized (:func:`normalize_for_lm`) -> SentencePiece
(unigram) is trained on those lines -> every line is cut into pieces -> ``lmplz -o 5`` estimates the
ARPA model -> ``build_binary`` converts it. The results, ``<lang>.sp.model`` and ``<lang>.arpa.bin``
(plus ``<lang>.lm.json`` describing how they were made), are moved into the output directory only when
everything succeeded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Optional, Sequence

from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.perplexity import (
    LM_SUFFIX,
    SP_SUFFIX,
    find_kenlm_binary,
    load_kenlm,
    load_sentencepiece,
    normalize_for_lm,
)
from corpusmill.quality.texts import iter_texts

LM_TYPES = ("probing", "trie")


def _run_tool(cmd, stdin_path: Optional[str] = None, stdout_path: Optional[str] = None) -> None:
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    finally:
        if stdin_path:
            stdin.close()
        if stdout_path:
            stdout.close()
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-8:]
        raise CorpusmillError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n  " + "\n  ".join(tail))


def train_sentencepiece(
    lines_path: str, model_prefix: str, vocab_size: int, threads: int = 1, max_sentences: int = 1_000_000, seed: int = 0
) -> None:
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            input=lines_path,
            model_prefix=model_prefix,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=0.9999,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            max_sentence_length=1 << 14,
            num_threads=max(1, threads),
            minloglevel=2,
        )
    except RuntimeError as exc:
        msg = str(exc)
        if "Vocabulary size" in msg or "vocab_size" in msg:
            raise CorpusmillError(
                f"--vocab-size {vocab_size} is too large for this reference text ({msg.strip()}); give more "
                f"text or a smaller --vocab-size (cc_net used 65536 with 400k Wikipedia articles)"
            ) from None
        raise CorpusmillError(f"SentencePiece training failed: {msg}") from None


def train_lm(
    lang: str,
    inputs: Sequence[str],
    output_dir: str,
    *,
    vocab_size: int = 65536,
    order: int = 5,
    max_docs: Optional[int] = None,
    sp_sentences: int = 1_000_000,
    memory: str = "20%",
    threads: int = 1,
    lm_type: str = "probing",
    keep_arpa: bool = False,
    seed: int = 0,
    log=print,
) -> dict:
    """Train ``<lang>.sp.model`` and ``<lang>.arpa.bin`` in ``output_dir``; returns what ``<lang>.lm.json`` holds."""
    if not lang or not lang.replace("_", "").replace("-", "").isalnum():
        raise CorpusmillError(f"--lang {lang!r}: use a language code such as 'en'")
    if vocab_size < 8:
        raise CorpusmillError(f"--vocab-size {vocab_size}: too small")
    if not 2 <= order <= 9:
        raise CorpusmillError(f"--order {order}: lmplz supports orders 2 to 9 as built here (cc_net used 5)")
    if lm_type not in LM_TYPES:
        raise CorpusmillError(f"--lm-type {lm_type!r}: use one of {', '.join(LM_TYPES)}")
    lmplz, build_binary = find_kenlm_binary("lmplz"), find_kenlm_binary("build_binary")
    os.makedirs(output_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".train-{lang}-", dir=output_dir)
    try:
        # 1. normalized reference lines
        lines_path = os.path.join(work, "lines.txt")
        docs = lines = chars = 0
        with open(lines_path, "w", encoding="utf-8") as out:
            for _, text in iter_texts(inputs, max_docs):
                docs += 1
                for line in text.split("\n"):
                    norm = normalize_for_lm(line)
                    if norm:
                        out.write(norm + "\n")
                        lines += 1
                        chars += len(norm)
        if lines == 0:
            raise CorpusmillError(f"no text in {', '.join(inputs)}: nothing to train on")
        log(f"[train-lm] {lang}: {docs} documents, {lines} lines, {chars / 1e6:.1f}M characters")

        # 2. SentencePiece
        prefix = os.path.join(work, lang + ".sp")
        train_sentencepiece(lines_path, prefix, vocab_size, threads, sp_sentences, seed)
        sp = load_sentencepiece(prefix + ".model")
        log(f"[train-lm] {lang}: SentencePiece unigram model, {sp.GetPieceSize()} pieces")

        # 3. pieces, one line per reference line
        pieces_path = os.path.join(work, "pieces.txt")
        n_pieces = 0
        with open(lines_path, encoding="utf-8") as src, open(pieces_path, "w", encoding="utf-8") as out:
            for line in src:
                pieces = sp.EncodeAsPieces(line.rstrip("\n"))
                n_pieces += len(pieces)
                out.write(" ".join(pieces) + "\n")

        # 4. lmplz -> ARPA -> build_binary
        arpa = os.path.join(work, lang + ".arpa")
        _run_tool(
            [lmplz, "-o", str(order), "-S", memory, "-T", work, "--discount_fallback"],
            stdin_path=pieces_path,
            stdout_path=arpa,
        )
        binary = os.path.join(work, lang + LM_SUFFIX)
        _run_tool([build_binary, "-T", work, lm_type, arpa, binary])
        load_kenlm(binary)  # the result loads
        log(
            f"[train-lm] {lang}: {order}-gram KenLM model over {n_pieces} pieces, "
            f"{os.path.getsize(binary) / 1e6:.1f} MB ({lm_type})"
        )

        info = {
            "language": lang,
            "inputs": list(inputs),
            "documents": docs,
            "lines": lines,
            "characters": chars,
            "pieces": n_pieces,
            "vocab_size": sp.GetPieceSize(),
            "order": order,
            "lm_type": lm_type,
            "sp_model": lang + SP_SUFFIX,
            "kenlm_model": lang + LM_SUFFIX,
        }
        with open(os.path.join(work, lang + ".lm.json"), "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2)
            fh.write("\n")
        # 5. move into place (SentencePiece model last: its presence is what marks a language as available)
        if keep_arpa:
            os.replace(arpa, os.path.join(output_dir, lang + ".arpa"))
        os.replace(binary, os.path.join(output_dir, lang + LM_SUFFIX))
        os.replace(os.path.join(work, lang + ".lm.json"), os.path.join(output_dir, lang + ".lm.json"))
        os.replace(prefix + ".model", os.path.join(output_dir, lang + SP_SUFFIX))
        return info
    finally:
        shutil.rmtree(work, ignore_errors=True)
