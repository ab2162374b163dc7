"""corpusmill: a LLaMA-style pretraining corpus on Apache Beam."""

import logging

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)


def run_stage(name: str, beam_args=(), **fields):
    """Run a stage from Python with the same typed config as its command and YAML::

        import corpusmill
        stats = corpusmill.run_stage("ccnet", input=["crawl/a.warc.gz"], output="out/cc", languages=["en"])

    ``name`` is a command (``ccnet``, ``source books`` or ``books``, ``train-tokenizer``, ...) or a
    user's ``module:STAGE``; ``fields`` are the config's fields (checked as strictly as a YAML file);
    ``beam_args`` are Beam pipeline options (``["--direct_running_mode=multi_processing"]``). Returns
    what the stage returns (stats.json's content for document stages).
    """
    cfg = stage_config(name, **fields)
    from corpusmill.pipelines.registry import load_stage

    return load_stage(name).run(cfg, list(beam_args))


def stage_config(name: str, **fields):
    """The stage's validated config object, built from keyword arguments (see :func:`run_stage`)."""
    from corpusmill.core.config import build
    from corpusmill.core.errors import CorpusmillError
    from corpusmill.pipelines.registry import load_stage

    stage = load_stage(name)
    if stage.config is None:
        raise CorpusmillError(f"stage {name!r} has no typed config (use its command line)")
    return build(stage.config, overrides=fields, context=name)


class _QuietOptionalGcp(logging.Filter):
    """Beam warns at import that its optional GCP modules are missing (the `gcp` extra is only for
    Dataflow). Those two lines say nothing to a local user; everything else still gets through."""

    _NOISE = ("Failed to import GCSFileSystem", "apitools not found")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._NOISE)


for _name in ("", "apache_beam.io.filesystems"):
    logging.getLogger(_name).addFilter(_QuietOptionalGcp())
