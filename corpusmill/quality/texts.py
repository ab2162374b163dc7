"""Reading reference text for model training (single machine: lmplz and fastText train on one anyway)."""

from __future__ import annotations

import gzip
import io
from typing import Iterator, List, Optional, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import expand_local as expand_inputs
from corpusmill.core.files import read_documents_file

TEXT_SUFFIXES = (".txt", ".txt.gz")
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")


def iter_texts(patterns: Sequence[str], limit: Optional[int] = None) -> Iterator[Tuple[str, str]]:
    """(key, text) for every document of the inputs, in file order.

    ``.txt`` / ``.txt.gz``: one document per non-empty line (key ``path:line``); corpusmill documents
    (``.jsonl(.gz)``, ``.parquet``): one per record (key: the document id).
    """
    n = 0
    for path in expand_inputs(patterns):
        lower = path.lower()
        if lower.endswith(TEXT_SUFFIXES):
            opener = gzip.open if lower.endswith(".gz") else open
            try:
                with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8") as fh:
                    for lineno, line in enumerate(fh, 1):
                        line = line.strip()
                        if line:
                            yield f"{path}:{lineno}", line
                            n += 1
                            if limit is not None and n >= limit:
                                return
            except (UnicodeDecodeError, OSError, EOFError) as exc:
                raise CorpusmillError(
                    f"{path}: cannot read it as UTF-8 text ({exc}); re-encode or re-compress it"
                ) from None
        elif lower.endswith(DOC_SUFFIXES):
            try:
                for doc in read_documents_file(path):
                    yield doc.id, doc.text
                    n += 1
                    if limit is not None and n >= limit:
                        return
            except (ValueError, OSError, EOFError) as exc:
                raise CorpusmillError(f"{path}: {exc}") from None
        else:
            raise CorpusmillError(
                f"input {path}: unknown file type; use {', '.join(TEXT_SUFFIXES)} (one document "
                f"per line) or corpusmill documents ({', '.join(DOC_SUFFIXES)})"
            )


def read_texts(patterns: Sequence[str], limit: Optional[int] = None) -> List[Tuple[str, str]]:
    return list(iter_texts(patterns, limit))
