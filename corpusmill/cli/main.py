"""The ``corpusmill`` command: argument parsing only.

The command list comes from :mod:`corpusmill.pipelines.registry` without importing any stage, so
``corpusmill --help`` does not import Beam. ``corpusmill COMMAND ...`` imports that one stage, builds its
parser from the stage's typed config (one flag per field), and builds the config from, in rising
precedence, the defaults, ``--config FILE.yaml`` and the flags. Options the stage does not define must
be Beam pipeline options (``--runner``, ``--direct_running_mode``, ``--project``, ...); anything else is
an error. Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from corpusmill import __version__
from corpusmill.core.config import add_arguments, build, cli_values, close_matches
from corpusmill.core.errors import CorpusmillError
from corpusmill.pipelines.registry import COMMANDS


class UsageError(CorpusmillError):
    pass


class StrictParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and that takes no abbreviations."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise UsageError(message)


def _top_help() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = [
        f"usage: corpusmill COMMAND [options]   (corpusmill {__version__})",
        "",
        "Build a LLaMA-style pretraining corpus on Apache Beam, and train on it.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += [
        "",
        "corpusmill COMMAND --help shows a command's options; every command that runs a pipeline also",
        "takes --config FILE.yaml (its options as YAML keys; flags override) and Beam pipeline options.",
    ]
    return "\n".join(lines)


def _command(argv: List[str]):
    """(command name, the rest of argv)."""
    first = argv[0]
    if first == "source":
        sources = sorted(c.split(" ", 1)[1] for c in COMMANDS if c.startswith("source "))
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            raise UsageError(f"source: name a source: {', '.join(sources)}")
        name = f"source {argv[1]}"
        if name not in COMMANDS:
            raise UsageError(
                f"unknown source {argv[1]!r}{close_matches(argv[1], sources)} (sources: {', '.join(sources)})"
            )
        return name, argv[2:]
    if first not in COMMANDS:
        names = sorted(set(COMMANDS) | {"source"})
        raise UsageError(
            f"unknown command {first!r}{close_matches(first, names)} (commands: "
            f"{', '.join(c for c in COMMANDS if not c.startswith('source '))}, source NAME)"
        )
    return first, argv[1:]


def refuse_extra(parser: argparse.ArgumentParser, extra: List[str]) -> None:
    """Arguments a command without Beam options did not take: an error naming the first, with close matches."""
    if extra:
        flags = [s for a in parser._actions for s in a.option_strings]  # noqa: SLF001
        word = extra[0].split("=", 1)[0]
        raise UsageError(
            f"unknown option {word}{close_matches(word, flags)}"
            if word.startswith("-")
            else f"unexpected argument {word!r}"
        )


def stage_parser(name: str, stage) -> StrictParser:
    from corpusmill.pipelines.registry import COMMANDS

    summary = COMMANDS[name][1] if name in COMMANDS else stage.summary
    parser = StrictParser(
        prog=f"corpusmill {name}",
        description=stage.description or summary,
        epilog=stage.steps_help() if stage.steps_help else None,
    )
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        default=None,
        help="options as a YAML mapping (the same names, with _); flags given here override it",
    )
    if stage.beam:  # how to run, not what to make: not part of the stage's config
        parser.add_argument(
            "--workers",
            type=_positive,
            metavar="N",
            default=None,
            help="worker processes of the local runner (default: this machine's cores, "
            f"{os.cpu_count()} here); the output is the same with any number",
        )
        parser.add_argument("-v", "--verbose", action="store_true", help="show Beam's own INFO and WARNING lines")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print errors only (no progress line, no table at the end)"
    )
    if stage.steps is not None:
        parser.add_argument(
            "--steps",
            dest="list_steps",
            action="store_true",
            help="list the steps these options run, in order, and exit (--output not needed)",
        )
    add_arguments(parser, stage.config, positional=stage.positional)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def run_command(name: str, args: List[str]) -> int:
    from corpusmill.pipelines.registry import load_stage

    stage = load_stage(name)
    if getattr(stage, "main", None) is not None:  # a command that maps old spellings first (train)
        return int(stage.main(args) or 0)
    return run_parsed(name, stage, args)


def run_parsed(name: str, stage, args: List[str]) -> int:
    """Parse a stage command's arguments with its config (flags, ``--config FILE.yaml``), run it, show it."""
    parser = stage_parser(name, stage)
    if stage.beam:
        namespace, extra = parser.parse_known_args(args)
    else:
        namespace, extra = parser.parse_known_args(args)
        refuse_extra(parser, extra)
    values = cli_values(stage.config, namespace)
    if getattr(namespace, "list_steps", False):  # list them: nothing is run, no output or input needed
        from corpusmill.core.config import config_fields

        for field_name, field in config_fields(stage.config).items():
            if field.metadata.get("required") and field_name not in values and not field.metadata.get("choices"):
                values[field_name] = ["-"] if "List" in str(field.type) else "-"
        cfg = build(stage.config, cli=values, config_file=namespace.config)
        for i, (step, kind, summary) in enumerate(stage.steps(cfg), 1):
            print(f"{i:2d}. {step:<16} {kind:<8} {summary}")
        return 0
    cfg = build(stage.config, cli=values, config_file=namespace.config)
    beam_args: List[str] = []
    if stage.beam:
        from corpusmill.engine.options import check_beam_args, quiet_beam, worker_args

        own = [s for a in parser._actions for s in a.option_strings]  # noqa: SLF001
        beam_args = check_beam_args(extra, own)
        beam_args = worker_args(namespace.workers, beam_args) + beam_args
        quiet_beam(namespace.verbose)
    quiet = {"CORPUSMILL_PROGRESS": "0", "CORPUSMILL_QUIET": "1"} if namespace.quiet else {}
    before = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)  # (the progress line and a stage's status lines read these) for this run only
    try:
        result = stage.run(cfg, beam_args)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if stage.show is not None and not namespace.quiet:
        stage.show(cfg, result)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"corpusmill {__version__}")
        return 0
    name = argv[0]
    restore = _terminate_as_interrupt()
    try:
        name, rest = _command(argv)
        return run_command(name, rest)
    except CorpusmillError as exc:
        message = str(exc)
        print(f"corpusmill {name}: error: {message}", file=sys.stderr)
        return exc.code
    except Exception:
        if not _SIGNALLED:  # a bug: its traceback
            raise
        return _interrupted(name)  # a runner that wrapped the KeyboardInterrupt in its own error
    except KeyboardInterrupt:
        return _interrupted(name)
    finally:
        restore()


def _interrupted(name: str) -> int:
    """One line, every child process ended, exit 130."""
    import threading

    threading.excepthook = lambda args: None  # the runner's threads see their workers end: not news
    stop_children()
    print(f"corpusmill {name}: interrupted; rerun the same command to resume", file=sys.stderr, flush=True)
    return INTERRUPTED


INTERRUPTED = 130  # a shell's status for a command ended by SIGINT


def _terminate_as_interrupt():
    """SIGTERM (a scheduler's kill) ends a command as Ctrl-C does: one line, children stopped, exit 130.
    Returns what puts the old handler back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        first = not _SIGNALLED
        _SIGNALLED.append(signum)
        if first:  # end the workers now, and any the runner starts after: its clean-up waits for them
            threading.excepthook = lambda args: None  # the runner's threads see their workers end: not news
            stop_children()
            threading.Thread(target=_keep_stopping_children, name="corpusmill-interrupt", daemon=True).start()
        raise KeyboardInterrupt(f"signal {signum}")

    _SIGNALLED.clear()
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore():
        for sig, value in old.items():
            signal.signal(sig, value)

    return restore


def _keep_stopping_children() -> None:
    import time

    while True:
        time.sleep(0.3)
        stop_children()


_SIGNALLED: list = []  # the signals this command received (an error raised after one is the interrupt)


def stop_children(grace: float = 0.0) -> None:
    """End every process this one started (Beam's SDK workers, a job server, a unit's subprocess). With
    ``grace``, SIGTERM first and SIGKILL to those still there after so many seconds; by default SIGKILL
    at once: a worker told to stop prints its lost connections, and every corpusmill process is safe to
    kill -9 (outputs are complete or absent; a CCNet run resumes). Linux (/proc); elsewhere a no-op."""
    import os
    import signal
    import time

    def children(pid: int):
        found, todo = [], [pid]
        while todo:
            parent = todo.pop()
            kids = []
            try:  # each thread's children (the runner starts its workers from its own threads)
                threads = os.listdir(f"/proc/{parent}/task")
            except OSError:
                threads = []
            for tid in threads:
                try:
                    with open(f"/proc/{parent}/task/{tid}/children") as fh:
                        kids += [int(k) for k in fh.read().split()]
                except OSError:
                    pass
            found += kids
            todo += kids
        return found

    pids = children(os.getpid())
    for sig in ((signal.SIGTERM,) if grace else ()) + (signal.SIGKILL,):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.05)
    for pid in pids:  # reap our own (not grandchildren) so none is left a zombie
        try:
            os.waitpid(pid, os.WNOHANG)
        except OSError:
            pass


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def entry() -> None:
    """The ``corpusmill`` command. An interrupted run leaves at once: Beam's non-daemon threads (gRPC
    servers of a local job) would otherwise keep the interpreter waiting at shutdown."""
    try:
        code = main()
    except BrokenPipeError:  # `corpusmill ... | head`: the reader has what it wanted
        os._exit(0)
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
