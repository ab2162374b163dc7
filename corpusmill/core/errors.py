"""Errors meant for the user: the CLI prints them without a traceback and exits with status 2.

A good message names the file, the record or the option at fault, and the fix.
"""


class CorpusmillError(Exception):
    """Bad configuration or input, explained for the user."""
