"""Beam pipeline options: the ones a stage command does not define itself, checked strictly.

Beam's own parser only logs "Discarding unparseable args" for a flag it does not know, so a mistyped
``--direct_num_worker=2`` would run with one worker. :func:`check_beam_args` parses them with every
option Beam defines (all ``PipelineOptions`` classes, as Beam does) and refuses the rest, with close
matches among corpusmill's and Beam's flags; an unknown ``--runner`` is refused too.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Iterable, List, Optional, Sequence

from corpusmill.core.config import close_matches
from corpusmill.core.errors import CorpusmillError

# The in-process runner without Beam's Prism download (corpusmill.engine.runner); Beam's other runners
# are accepted when named.
DEFAULT_RUNNER = "corpusmill.engine.runner.InProcessRunner"
WORKERS_ENV = "CORPUSMILL_WORKERS"  # the default of --workers, where not the machine's cores


def beam_options(beam_args: Sequence[str] = ()):
    """Pipeline options from the command line's leftover arguments; DirectRunner by default."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from corpusmill.engine.runner import ALIASES

    options = PipelineOptions(list(beam_args))
    if not any(a.split("=", 1)[0] in ("--pipeline_type_check", "--no_pipeline_type_check") for a in beam_args):
        # Beam's construction-time type check reads the options hundreds of times per pipeline (0.3 s of
        # a 3 s small run) and corpusmill's steps carry no type hints to check; --pipeline_type_check
        # turns it back on
        from apache_beam.options.pipeline_options import TypeOptions

        options.view_as(TypeOptions).pipeline_type_check = False
    runner = options.view_as(StandardOptions).runner
    if not runner or (isinstance(runner, str) and runner.lower() in ALIASES):
        options.view_as(StandardOptions).runner = DEFAULT_RUNNER
    check_worker_packaging(options)
    return options


def worker_args(workers: Optional[int], beam_args: Sequence[str]) -> List[str]:
    """The Beam options ``--workers N`` stands for: the in-memory runner in multi-process mode with N
    worker processes (``None``: ``$CORPUSMILL_WORKERS``, else the machine's cores). Nothing when N is 1, when another runner is named
    or when the user set the running mode or the number of workers themselves."""
    from corpusmill.engine.runner import ALIASES

    if any(arg.split("=", 1)[0] in ("--direct_running_mode", "--direct_num_workers") for arg in beam_args):
        return []
    runner = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")), None)
    if runner is None and "--runner" in beam_args:
        i = list(beam_args).index("--runner")
        runner = beam_args[i + 1] if i + 1 < len(beam_args) else None
    if runner is not None and runner.lower() not in ALIASES and runner != DEFAULT_RUNNER:
        return []
    n = workers if workers is not None else int(os.environ.get(WORKERS_ENV) or os.cpu_count() or 1)
    if n <= 1:
        return []
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={n}"]


def cap_workers(beam_args: Sequence[str], most: int) -> List[str]:
    """``beam_args`` with the local runner's worker processes capped at ``most`` (a stage whose work is
    cut by input file cannot use more workers than it has files; each extra one only costs its start-up,
    a fresh process importing Beam). One worker: the runner's in-process mode."""
    args = list(beam_args)
    n = None
    for arg in args:
        if arg.startswith("--direct_num_workers="):
            n = int(arg.split("=", 1)[1])
    if n is None or n <= most:
        return args
    if most <= 1:
        return local_one_worker(args)
    return [f"--direct_num_workers={most}" if a.startswith("--direct_num_workers=") else a for a in args]


def local_one_worker(beam_args: Sequence[str]) -> List[str]:
    """``beam_args`` without the local runner's worker count (``--workers N``'s options): for a child
    process that is one of several running at once."""
    out, skip = [], False
    for arg in beam_args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--direct_running_mode", "--direct_num_workers"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def quiet_beam(verbose: bool = False) -> None:
    """Beam's INFO and WARNING lines (dozens per multi-process run) off, unless ``-v``."""
    logging.getLogger("apache_beam").setLevel(logging.INFO if verbose else logging.ERROR)
    # a failed bundle is logged by the job service and the worker, then raised: the raised error is what
    # the user sees (one line for a known failure, the traceback for a bug), not three copies of it
    for name in (
        "apache_beam.runners.portability.local_job_service",
        "apache_beam.runners.worker.sdk_worker",
        "apache_beam.runners.common",
        "apache_beam.runners.worker.bundle_processor",
        "apache_beam.runners.portability.portable_runner",
    ):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


def check_worker_packaging(options) -> None:
    """Dataflow workers need corpusmill installed: refuse a Dataflow job that does not ship it."""
    from apache_beam.options.pipeline_options import SetupOptions, StandardOptions, WorkerOptions

    if "dataflow" not in str(options.view_as(StandardOptions).runner or "").lower():
        return
    setup = options.view_as(SetupOptions)
    image = options.view_as(WorkerOptions).sdk_container_image
    if not (setup.setup_file or setup.extra_packages or image):
        raise CorpusmillError(
            "--runner DataflowRunner: the workers need corpusmill and its native dependencies; "
            "pass --setup_file ./setup.py (from a corpusmill checkout) or --sdk_container_image "
            "IMAGE (see docs/ccnet.md, Dataflow)"
        )


def _beam_parser():
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):
            raise CorpusmillError(f"Beam option: {message}")

    parser = Parser(allow_abbrev=False, add_help=False)
    subset = {}
    for cls in PipelineOptions.__subclasses__():
        subset.setdefault(str(cls), cls)
    for cls in subset.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 (what PipelineOptions.get_all_options does)
    return parser


def _flags(parser: argparse.ArgumentParser) -> List[str]:
    return [s for action in parser._actions for s in action.option_strings]  # noqa: SLF001


def check_beam_args(args: Sequence[str], own_flags: Iterable[str] = ()) -> List[str]:
    """``args`` if Beam knows every one of them; else a :class:`CorpusmillError` naming the first
    unknown flag (or stray value) with close matches among ``own_flags`` and Beam's flags."""
    from apache_beam.runners.runner import _RUNNER_MAP

    args = list(args)
    if not args:
        return args
    parser = _beam_parser()
    known, unknown = parser.parse_known_args(args)
    if unknown:
        first = unknown[0]
        if not first.startswith("-"):
            raise CorpusmillError(
                f"unexpected argument {first!r}: every value belongs to a flag (to read several "
                f"inputs, give them all after one --input)"
            )
        name = first.split("=", 1)[0]
        candidates = list(own_flags) + _flags(parser)
        raise CorpusmillError(
            f"unknown option {name}{close_matches(name, candidates)} "
            f"(this command's options: --help; the rest must be Beam pipeline options)"
        )
    runner = known.runner
    if runner:
        lower = runner.lower()
        if "." not in runner and lower not in _RUNNER_MAP and lower + "runner" not in _RUNNER_MAP:
            names = sorted({v.rsplit(".", 1)[-1] for v in _RUNNER_MAP.values()})
            raise CorpusmillError(
                f"--runner {runner}: not a Beam runner{close_matches(runner, names)} (known: {', '.join(names)})"
            )
    return args


# Beam logs a warning about optional GCP modules at import; it is noise for local runs.
logging.getLogger("apache_beam.io.gcp").setLevel(logging.ERROR)


def workers_apart_from_the_terminal() -> None:
    """Start the local runner's SDK worker processes in their own session, so that a Ctrl-C at the
    terminal (SIGINT to the foreground process group) reaches corpusmill alone: it stops the workers
    itself (corpusmill.cli.main.stop_children) and prints one line, instead of every worker printing
    its KeyboardInterrupt traceback. Idempotent."""
    import subprocess
    import types

    from apache_beam.runners.portability import local_job_service

    if getattr(local_job_service.subprocess, "corpusmill", False):
        return

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("start_new_session", True)
            super().__init__(*args, **kwargs)

    shim = types.SimpleNamespace(**{k: getattr(subprocess, k) for k in dir(subprocess) if not k.startswith("__")})
    shim.Popen, shim.corpusmill = Popen, True
    local_job_service.subprocess = shim
