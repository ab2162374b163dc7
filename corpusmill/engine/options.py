"""Beam lives only in this package: IO, the generic filter glue, and one module per stage/source."""

from __future__ import annotations

import logging
from typing import Sequence


def beam_options(beam_args: Sequence[str] = ()):
    """Pipeline options from the command line's leftover arguments; DirectRunner by default."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    options = PipelineOptions(list(beam_args))
    if not options.view_as(StandardOptions).runner:
        options.view_as(StandardOptions).runner = "DirectRunner"
    return options


# Beam logs a warning about optional GCP modules at import; it is noise for local runs.
logging.getLogger("apache_beam.io.gcp").setLevel(logging.ERROR)
