"""``corpusmill report RUN_DIR``: one self-contained HTML file plus a terminal summary."""

from __future__ import annotations

import dataclasses
import os

from corpusmill.core.config import option
from corpusmill.core.stage import Stage


def make_report(run_dir: str, output: str = "", quiet: bool = False, diff: str = ""):
    """Write the report for ``run_dir`` (compared with the run ``diff``, if given); returns (the HTML
    file's path, the collected RunData)."""
    from corpusmill.core.files import write_text_local as write_text_atomic
    from corpusmill.report.collect import collect
    from corpusmill.report.html import render

    data = collect(run_dir, quiet=quiet)
    if not data.stages and not data.mixtures and not data.training:
        from corpusmill.core.errors import CorpusmillError

        raise CorpusmillError(
            f"{run_dir}: no finished stage here (no stats.json, shard manifest or train_log.jsonl under it): point "
            f"at a run directory, or finish the run first"
        )
    if diff:
        data.compared = collect(diff, quiet=True)
        if not data.compared.stages:
            from corpusmill.core.errors import CorpusmillError

            raise CorpusmillError(f"--diff {diff}: no stage output (stats.json) under it to compare with")
    path = output or os.path.join(run_dir, "report.html")
    write_text_atomic(path, render(data))
    return path, data


@dataclasses.dataclass(kw_only=True)
class ReportConfig:
    run_dir: str = option(required=True, metavar="RUN_DIR", help="a run directory (stage outputs at any depth)")
    output: str = option("", metavar="FILE", help="HTML file to write (default: RUN_DIR/report.html)")
    diff: str = option(
        "",
        metavar="OTHER_RUN",
        help="compare with another run: per stage of the same name, the "
        "configuration, thresholds, models and counts that differ",
    )


def _run(cfg: ReportConfig, _beam_args=()):
    return make_report(cfg.run_dir, cfg.output, diff=cfg.diff)


def _show(_cfg: ReportConfig, result) -> None:
    from corpusmill.report.html import terminal_summary

    path, data = result
    print(terminal_summary(data))
    print(f"report: {os.path.abspath(path)}")


STAGE = Stage(
    name="report",
    config=ReportConfig,
    run=_run,
    show=_show,
    beam=False,
    positional=("run_dir",),
    description="Read every stats.json, the dropped samples, dead letters and the mixing manifest under "
    "RUN_DIR; write one self-contained HTML file and print a summary.",
)
