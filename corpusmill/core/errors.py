"""Errors meant for the user: the CLI prints them without a traceback and exits with status 2.

A good message names the file, the record or the option at fault, and the fix.
"""


class CorpusmillError(Exception):
    """Bad configuration or input, explained for the user. ``code``: the exit status (2: refused before
    any work; 1: the run failed, e.g. a full disk; 3: the run finished over its failure budget)."""

    def __init__(self, message: str = "", code: int = 2):
        super().__init__(message)
        self.code = code
