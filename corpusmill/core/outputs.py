"""Who may write, replace or delete an output directory (no Beam; the trainer and exporters use it too).

Three rules (docs/reliability.md, "Never lose, never leak"):

* **Apart from the inputs.** An output that is an input, contains one or lies inside a directory input is
  refused before anything is touched (:func:`check_output_apart`).
* **Only what corpusmill wrote is replaced.** ``--overwrite`` replaces a directory only when it holds one of
  corpusmill's own markers (:func:`written_by_corpusmill`); anything else (a home folder, a thesis) is
  refused, naming what is there.
* **One writer at a time.** :class:`OutputLock` is an ``O_EXCL`` file beside the output naming the holder's
  pid and host; a second writer is refused naming it; a lock whose process is gone (same host) is stale
  and taken over.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from typing import Any, Dict, Iterable, List, Optional

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError

FORMATS = ("jsonl", "parquet")  # document file formats (corpusmill.io.documents writes them)

# An output directory corpusmill made holds one of these: the marker written when it is created, the
# completion marker, a recipe stage's record, a CCNet run's plan, or a checkpoint directory of a run.
CREATED_MARKER = ".corpusmill"
MARKERS = (CREATED_MARKER, "_SUCCESS", "_STAGE.json", os.path.join("_shards", "plan.json"))


def beside(out_dir: str, what: str) -> str:
    """``PARENT/.NAME.corpusmill-WHAT``: the staging, old-copy and lock paths of an output."""
    parent, name = os.path.split(os.path.abspath(out_dir).rstrip(os.sep))
    return os.path.join(parent, f".{name}.corpusmill-{what}")


def mark_created(out_dir: str) -> None:
    """Mark a directory as corpusmill's the moment it is made (so a killed run's half output may be
    replaced later). A dot file: no directory reader takes it for data, ``_SUCCESS`` does not list it."""
    with open(os.path.join(out_dir, CREATED_MARKER), "w", encoding="utf-8") as fh:
        fh.write("written by corpusmill\n")


def written_by_corpusmill(out_dir: str, extra: Iterable[str] = ()) -> bool:
    return any(os.path.exists(os.path.join(out_dir, m)) for m in (*MARKERS, *extra))


def check_replaceable(out_dir: str, extra: Iterable[str] = ()) -> None:
    """Refuse to replace (``--overwrite``) a non-empty directory corpusmill did not write, naming a few
    of the entries that are there."""
    if written_by_corpusmill(out_dir, extra):
        return
    names = sorted(os.listdir(out_dir))
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise CorpusmillError(
        f"--output {out_dir} holds {shown}, not a corpusmill output (no {CREATED_MARKER}, "
        f"_SUCCESS or _STAGE.json); --overwrite replaces only what corpusmill wrote: choose a "
        f"new or empty --output"
    )


def _inside(child: str, parent: str) -> bool:
    return child.startswith(parent.rstrip(os.sep) + os.sep)


def check_output_apart(out_dir: str, inputs, what: str = "input") -> None:
    """Refuse an output that is or contains an input, or lies inside a directory input (``--overwrite``
    would delete the input; a later run would read its own output), naming both."""
    if "://" in out_dir:
        return
    out = os.path.realpath(out_dir)
    for pattern in inputs or ():
        pattern = str(pattern)
        if "://" in pattern:
            continue
        base, recursive = pattern, os.path.isdir(pattern)
        while any(ch in base for ch in "*?[") and base:  # a glob: its fixed directory part
            recursive = recursive or "**" in os.path.basename(base)
            base = os.path.dirname(base)
        src = os.path.realpath(base or ".")
        if out == src or _inside(src, out) or (recursive and _inside(out, src)):
            where = "is" if out == src else ("contains" if _inside(src, out) else "lies inside")
            raise CorpusmillError(
                f"--output {out_dir} {where} the {what} {pattern}; choose an output apart from every {what}"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class OutputLock:
    """An exclusive writer's lock on an output: ``PARENT/.NAME.corpusmill-lock``, created with ``O_EXCL``
    and holding ``{"pid", "host", "since"}``. Objects stores (``gs://``) are not locked (say so in docs).
    Use as a context manager; ``held`` is False when there was nothing to lock."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.path: Optional[str] = None if "://" in out_dir else beside(out_dir, "lock")
        self.held = False

    def __enter__(self) -> "OutputLock":
        if self.path is None:
            return self
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as exc:
            raise CorpusmillError(
                f"--output {self.out_dir}: cannot be written ({exc.strerror or exc}); choose a "
                f"directory you can write to"
            ) from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _attempt in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                fd = None
            except OSError as exc:  # a folder beside which nothing can be written (/proc, read-only)
                raise CorpusmillError(
                    f"--output {self.out_dir}: cannot be written ({exc.strerror or exc}); choose "
                    f"a directory you can write to"
                ) from None
            if fd is None:
                holder = self._holder()
                if (
                    holder is not None
                    and holder.get("host") == me["host"]
                    and isinstance(holder.get("pid"), int)
                    and not _alive(holder["pid"])
                ):
                    self._remove_stale(holder)
                    continue
                if holder is None:  # being written this instant, or unreadable: look again
                    time.sleep(0.2)
                    holder = self._holder()
                    if holder is None:
                        raise CorpusmillError(
                            f"--output {self.out_dir} is locked by {self.path}, which names no "
                            f"writer; if no corpusmill run writes there, delete it"
                        ) from None
                    continue
                raise CorpusmillError(
                    f"--output {self.out_dir} is being written by pid {holder.get('pid')} on {holder.get('host')} "
                    f"(since {holder.get('since')}); wait for that run, or delete {self.path} if it is gone"
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self.held = True
            return self
        raise CorpusmillError(
            f"--output {self.out_dir}: could not take the lock {self.path}; another run keeps taking it"
        )

    def _holder(self) -> Optional[dict]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                value = json.load(fh)
            return value if isinstance(value, dict) else None
        except (OSError, ValueError):
            return None

    def _remove_stale(self, holder: dict) -> None:
        # rename first, so that two runs that both found it stale do not remove a fresh lock
        stale = f"{self.path}.stale-{os.getpid()}"
        try:
            os.rename(self.path, stale)
        except FileNotFoundError:
            return
        with open(stale, encoding="utf-8") as fh:
            try:
                same = json.load(fh) == holder
            except ValueError:
                same = False
        if same:
            os.remove(stale)
        else:  # a new holder took it in between: put it back
            os.rename(stale, self.path)

    def __exit__(self, *exc) -> None:
        if self.held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self.held = False


@dataclasses.dataclass(kw_only=True)
class OutputOptions:
    """The output options every stage that writes documents shares; its config inherits them."""

    output: str = option(required=True, metavar="DIR", help="output directory (local path or gs://...)")
    format: str = option("jsonl", choices=FORMATS, help="document file format: jsonl (.jsonl.gz) or parquet")
    write_dropped: bool = option(
        False, help="write every dropped document under OUT/_dropped/ (otherwise a sample per reason)"
    )
    dropped_sample: int = option(100, min=0, metavar="N", help="dropped documents kept per step and reason")
    docs_per_shard: int = option(
        10_000, min=1, metavar="N", help="documents per output file; a group of n documents gets ceil(n/N) files"
    )
    overwrite: bool = option(False, help="replace a non-empty output directory")
    add_filter: List[str] = option(
        default_factory=list,
        metavar="MODULE:CLASS[@STEP]",
        help="run a Filter of yours (by import path) as an extra step after STEP, or "
        "after --after, or after the last step",
    )
    after: Optional[str] = option(None, metavar="STEP", help="the step --add-filter filters run after")
    filter_arg: Dict[str, Any] = option(
        default_factory=dict,
        metavar="[FILTER.]KEY=VALUE",
        help="a parameter of an --add-filter filter's __init__ (FILTER: its class "
        "or step name, needed with several); in --config, a mapping, also "
        "FILTER: {KEY: VALUE}",
    )
    max_failed_fraction: float = option(
        0.01,
        min=0.0,
        max=1.0,
        metavar="F",
        help="the failure budget: over this share of the records read failing "
        "(dead letters), the output is written but marked over budget in "
        "_SUCCESS and the command exits 3",
    )
    max_failed_files: int = option(
        0,
        min=0,
        metavar="N",
        help="input files that may fail whole (cannot be opened or fetched) within the failure budget",
    )

    @property
    def output_options(self) -> "OutputOptions":
        return self


def show_documents(cfg: OutputOptions, stats: List[dict]) -> None:
    """What a document stage prints when it is done: the stats table and where the documents are (a
    run that wrote nothing, such as a dry run, prints nothing)."""
    if not stats:
        return
    from corpusmill.core.stats import format_stats

    print(format_stats(stats))
    print(f"documents: {os.path.abspath(cfg.output) if '://' not in cfg.output else cfg.output}")
