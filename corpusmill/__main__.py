"""``python -m corpusmill``: the ``corpusmill`` command."""

from corpusmill.cli.main import entry

entry()
