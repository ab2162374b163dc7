"""Live progress of a local run: per step documents read and kept, documents/s, input done and an ETA.

Workers and launcher share a directory (``$CORPUSMILL_PROGRESS_DIR``, set by the launcher; worker
processes of the multi-process runner inherit it). Each step's glue in each worker keeps a
:class:`Tally` and rewrites its own small JSON file at most twice a second; the launcher's
:class:`Watcher` sums the files and prints one line: refreshed in place on a terminal, a plain line
every ``$CORPUSMILL_PROGRESS_EVERY`` seconds (30) otherwise, so a log stays readable.
``CORPUSMILL_PROGRESS=0`` turns it off. On Dataflow the job page shows the same counters live (the
glue's Beam metrics); nothing is written there.

The input's size comes from the readers (:func:`expect_input`, called where they are built on the
launcher); ``input done`` is the bytes the first step has read of it (exact for WARC records, which
count their bytes in the file; approximate for compressed document files), and the ETA follows from it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional

DIR_ENV = "CORPUSMILL_PROGRESS_DIR"
EVERY_ENV = "CORPUSMILL_PROGRESS_EVERY"
OFF_ENV = "CORPUSMILL_PROGRESS"
FLUSH_SECONDS = 0.5

_expected = {"bytes": 0}


def expect_input(paths: Iterable) -> None:
    """Count local input files' sizes towards the run's total (launcher side; remote ones are skipped)."""
    for path in paths:
        if isinstance(path, str) and "://" not in path and os.path.isfile(path):
            try:
                _expected["bytes"] += os.path.getsize(path)
            except OSError:
                pass


MIN_ETA_SHARE = 0.02  # no ETA before this share of the input is read ...
MIN_ETA_SECONDS = 3.0  # ... or this many seconds have passed (the first rate is start-up)


class Tally:
    """One step's counts in one worker, written to its own file now and then."""

    def __init__(self, step: str):
        folder = os.environ.get(DIR_ENV)
        self.path = os.path.join(folder, f"{os.getpid()}-{id(self)}.json") if folder else None
        self.step = step
        self.read = self.kept = self.nbytes = 0
        self.input = None  # bytes of the input files read (a reader that knows them; else the first step's)
        self._last = 0.0

    def add(self, nbytes: int, kept: bool) -> None:
        self.read += 1
        self.kept += kept
        self.nbytes += nbytes
        now = time.monotonic()
        if self.path is not None and now - self._last > FLUSH_SECONDS:
            self._last = now
            self.flush()

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more of the input files read (readers that cut their work by file report this; the
        line's ``input`` share sums every reader's)."""
        self.input = (self.input or 0) + nbytes
        now = time.monotonic()
        if self.path is not None and now - self._last > FLUSH_SECONDS:
            self._last = now
            self.flush()

    def flush(self) -> None:
        if self.path is None:
            return
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                record = {"step": self.step, "read": self.read, "kept": self.kept, "bytes": self.nbytes}
                if self.input is not None:
                    record["input"] = self.input
                json.dump(record, fh)
            os.replace(tmp, self.path)
        except OSError:  # the run ended and its directory is gone
            self.path = None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Watcher:
    """The launcher's side (a context manager around one pipeline run)."""

    def __init__(self, label: str, steps: Callable[[], List[str]] = list, stream=None):
        self.label = label
        self.steps = steps
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = FLUSH_SECONDS if self.tty else float(os.environ.get(EVERY_ENV) or 30)
        self.enabled = os.environ.get(OFF_ENV, "1") != "0"
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._dir: Optional[str] = None
        self._saved: Optional[str] = None
        self._start = 0.0
        self._printed = False
        self._last = ""
        self.input: Optional[int] = None

    def __enter__(self):
        _expected["bytes"] = 0
        if not self.enabled:
            return self
        self._dir = tempfile.mkdtemp(prefix="corpusmill-progress-")
        self._saved = os.environ.get(DIR_ENV)
        os.environ[DIR_ENV] = self._dir
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="corpusmill-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if not self.enabled:
            return False
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.tty and self._printed:
            self.stream.write("\n")
            self.stream.flush()
        if self._saved is None:
            os.environ.pop(DIR_ENV, None)
        else:
            os.environ[DIR_ENV] = self._saved
        shutil.rmtree(self._dir, ignore_errors=True)
        return False

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._print()
        self._print()  # the last state

    def totals(self) -> Dict[str, dict]:
        """Per step, the workers' read/kept/bytes summed; ``self.input``: the input bytes readers reported."""
        totals: Dict[str, dict] = {}
        self.input = None
        for name in os.listdir(self._dir) if self._dir and os.path.isdir(self._dir) else ():
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self._dir, name), encoding="utf-8") as fh:
                    t = json.load(fh)
            except (OSError, ValueError):
                continue
            if "input" in t:
                self.input = (self.input or 0) + t["input"]
            if not t["step"]:  # a reader's input progress alone
                continue
            step = totals.setdefault(t["step"], {"read": 0, "kept": 0, "bytes": 0})
            for key in ("read", "kept", "bytes"):
                step[key] += t[key]
        return totals

    def line(self, width: int = 0) -> str:
        """The progress line; with ``width``, steps in the middle give way ("... N steps ...") so the line
        fits and the last steps, where documents are now, stay in view."""
        totals = self.totals()
        if not totals:
            return ""
        order = [s for s in self.steps() if s in totals] + sorted(s for s in totals if s not in self.steps())
        elapsed = max(time.monotonic() - self._start, 1e-9)
        first = totals[order[0]]
        parts = [f"{s} {totals[s]['read']:,}>{totals[s]['kept']:,}" for s in order]
        head = f"[{self.label}] {_duration(elapsed)}  {first['read'] / elapsed:,.1f} docs/s  "
        tail = ""
        expected = _expected["bytes"]
        got = self.input if self.input is not None else first["bytes"]
        if expected and 0 < got:
            done = min(1.0, got / expected)
            tail = f"  | input {min(got, expected) / 1e6:,.1f} of {expected / 1e6:,.1f} MB ({done:.0%})"
            if done >= 1:
                tail += ", read"
            elif done >= MIN_ETA_SHARE and elapsed >= MIN_ETA_SECONDS:  # earlier, the rate is start-up
                tail += f", ETA {_duration(elapsed * (1 - done) / done)}"
        line = head + "  ".join(parts) + tail
        hidden = 0
        while width and len(line) >= width and len(parts) > 2:
            parts.pop(1)  # the first step stays (what was read), then the latest ones
            hidden += 1
            line = head + "  ".join([parts[0], f"... {hidden} steps ...", *parts[1:]]) + tail
        return line

    def _print(self) -> None:
        width = shutil.get_terminal_size((120, 20)).columns if self.tty else 0
        line = self.line(width)
        counts = line.split("docs/s", 1)[-1]
        if not line or (not self.tty and counts == self._last):  # a log gets a line only when something moved
            return
        self._last = counts
        if self.tty:
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._printed = True
