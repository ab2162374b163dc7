"""``corpusmill report RUN_DIR``: one self-contained HTML file plus a terminal summary."""

from __future__ import annotations

import os


def make_report(run_dir: str, output: str = "", max_docs: int = 20_000, quiet: bool = False):
    """Write the report for ``run_dir``; returns (the HTML file's path, the collected RunData)."""
    from corpusmill.core.files import write_text_local as write_text_atomic
    from corpusmill.report.collect import collect
    from corpusmill.report.html import render

    data = collect(run_dir, max_docs=max_docs, quiet=quiet)
    path = output or os.path.join(run_dir, "report.html")
    write_text_atomic(path, render(data))
    return path, data


def register(sub) -> None:
    parser = sub.add_parser("report", help="write an HTML report of a run (funnels, languages, scores, samples, mixture)",
                            description="Read every stats.json, the dropped samples, dead letters and the mixing "
                                        "manifest under RUN_DIR; write one self-contained HTML file and print a summary.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (stage outputs at any depth)")
    parser.add_argument("--output", default="", help="HTML file to write (default: RUN_DIR/report.html)")
    parser.add_argument("--max-docs", type=int, default=20_000,
                        help="documents read per stage for the histograms (default: 20000)")
    parser.set_defaults(func=_main)


def _main(args, _beam_args) -> int:
    from corpusmill.report.html import terminal_summary

    path, data = make_report(args.run_dir, args.output, args.max_docs)
    print(terminal_summary(data))
    print(f"report: {os.path.abspath(path)}")
    return 0
