"""One module per stage: its typed config and its step list. See :mod:`corpusmill.pipelines.registry`."""
