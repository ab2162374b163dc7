"""What every part of corpusmill shares, with no Beam and no torch: the Document record, errors,
the one stable hash, typed configs, local paths and atomic writes."""
