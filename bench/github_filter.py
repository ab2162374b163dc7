"""Benchmark: files/s of the GitHub filters + header removal + exact dedup.

    .venv/bin/python bench/github_filter.py [--copies 2] [--no-stage] [beam options, e.g. --direct_running_mode=multi_processing --direct_num_workers=2]

Input: the CPython standard library on this machine (about 1,900 allow-listed files), laid out as
``--copies`` repositories (every copy after the first is all exact duplicates, so dedup has work).
Prints the pure filter loop and the whole Beam stage; record the numbers in docs/sources.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sysconfig
import tempfile
import time

from corpusmill.dedup.exact import content_hash
from corpusmill.filters import code as rules
from corpusmill.filters.base import run_filters
from corpusmill.io.code import ReadCodeFile
from corpusmill.pipelines.github import GitHubConfig, run_github


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--no-stage", action="store_true")
    args, beam_args = ap.parse_known_args()
    lib = sysconfig.get_paths()["stdlib"]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for dirpath, dirs, names in os.walk(lib):
            dirs[:] = [d for d in dirs if d not in ("site-packages", "__pycache__")]
            files += [os.path.join(dirpath, n) for n in names]
        roots = os.path.join(tmp, "repos")
        for k in range(args.copies):
            for f in files:
                dst = os.path.join(roots, f"stdlib-copy{k}", os.path.relpath(f, lib))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(f, dst)
        n = len(files) * args.copies

        steps = [
            rules.ExtensionAllowList(),
            rules.SizeCap(),
            ReadCodeFile(),
            rules.MaxLineLength(),
            rules.MeanLineLength(),
            rules.AlnumShare(),
            rules.AlphaPerToken(),
            rules.StripLicenseHeader(),
        ]
        start = time.perf_counter()
        seen, kept = set(), 0
        for k in range(args.copies):
            for f in files:
                rel = os.path.relpath(f, lib)
                path = os.path.join(roots, f"stdlib-copy{k}", rel)
                verdict = run_filters(steps, rules.CodeFile(path, f"stdlib-copy{k}", rel, os.path.getsize(path)))
                if verdict.kept:
                    h = content_hash(verdict.doc.text)
                    kept += h not in seen
                    seen.add(h)
        took = time.perf_counter() - start
        print(
            f"filters + header + dedup (plain loop, one process): {n} files in {took:.2f}s = {n / took:.0f} files/s; "
            f"{kept} kept"
        )
        if args.no_stage:
            return
        out = os.path.join(tmp, "out")
        start = time.perf_counter()
        stats = run_github(GitHubConfig(output=out, mode="local", input=[roots]), beam_args)
        took = time.perf_counter() - start
        print(
            f"GitHub stage (--from local, {' '.join(beam_args) or 'in-memory DirectRunner'}): {n} files in "
            f"{took:.1f}s = {n / took:.0f} files/s; kept {stats[-1]['kept']}, "
            f"duplicates {stats[-1]['dropped'].get('duplicate_content', 0)}"
        )


if __name__ == "__main__":
    main()
