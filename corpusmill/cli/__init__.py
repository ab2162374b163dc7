"""The ``corpusmill`` command: argument parsing only; stages are imported when their command runs."""

from corpusmill.cli.main import main

__all__ = ["main"]
