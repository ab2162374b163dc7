"""corpusmill: a LLaMA-style pretraining corpus on Apache Beam."""

import logging

__version__ = "0.1.0"


class _QuietOptionalGcp(logging.Filter):
    """Beam warns at import that its optional GCP modules are missing (the `gcp` extra is only for
    Dataflow). Those two lines say nothing to a local user; everything else still gets through."""

    _NOISE = ("Failed to import GCSFileSystem", "apitools not found")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._NOISE)


for _name in ("", "apache_beam.io.filesystems"):
    logging.getLogger(_name).addFilter(_QuietOptionalGcp())
