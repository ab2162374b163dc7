"""What a local directory input holds, and what it is never allowed to read.

A directory input is walked without following any symbolic link, at any level: a link inside an input
could point anywhere (``~/.ssh``, another user's files), and the output would carry what it points to.
Each link, and each file or directory that cannot be read, is a :class:`Skipped` record: the stage's
first step counts a link as dropped ``symlink`` and an unreadable entry as a dead letter, each naming
the entry (never a link's target). Hidden names (``.git``, ``.cache``) are passed over as before.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, List

from corpusmill.core.text import printable

SYMLINK = "symlink"
UNREADABLE = "unreadable"


@dataclasses.dataclass(frozen=True, slots=True)
class Skipped:
    """An input entry that was not read: ``reason`` is ``symlink`` (counted as dropped) or
    ``unreadable`` (a dead letter); ``location`` names the entry."""

    location: str
    reason: str
    detail: str = ""

    @property
    def is_failure(self) -> bool:
        return self.reason != SYMLINK

    @property
    def nbytes(self) -> int:
        return 0


class InputFiles(list):
    """A sorted list of input files, and the :class:`Skipped` entries met while listing them."""

    def __init__(self, files=(), skipped=()):
        super().__init__(files)
        self.skipped: List[Skipped] = list(skipped)


def skipped_link(path: str) -> Skipped:
    return Skipped(printable(path), SYMLINK, "a symbolic link; links are never followed")


def _readable(path: str, skipped: List[Skipped], mode: int, regular: bool = False) -> bool:
    """Whether to read ``path``: not a link (counted), a regular file when ``regular`` (FIFOs, sockets and
    devices are not data), and readable (else counted)."""
    if os.path.islink(path):
        skipped.append(skipped_link(path))
        return False
    if regular and not os.path.isfile(path):
        return False
    if not os.access(path, mode):
        skipped.append(Skipped(printable(path), UNREADABLE, "Permission denied"))
        return False
    return True


def walk_files(top: str, skipped: List[Skipped], *, hidden: bool = False) -> Iterator[str]:
    """Every regular file under directory ``top`` (sorted by path), never following a link; links and
    unreadable entries are appended to ``skipped``. Hidden names are passed over unless ``hidden``."""

    def onerror(err: OSError) -> None:
        skipped.append(Skipped(printable(err.filename or top), UNREADABLE, err.strerror or str(err)))

    if not os.access(top, os.R_OK | os.X_OK):  # (``top`` itself may be a link: the user named it)
        onerror(PermissionError(13, "Permission denied", top))
        return
    for root, dirs, files in os.walk(top, onerror=onerror, followlinks=False):
        dirs[:] = [
            name
            for name in sorted(dirs)
            if (hidden or not name.startswith(".")) and _readable(os.path.join(root, name), skipped, os.R_OK | os.X_OK)
        ]
        for name in sorted(files):
            full = os.path.join(root, name)
            if (hidden or not name.startswith(".")) and _readable(full, skipped, os.R_OK, regular=True):
                yield full
