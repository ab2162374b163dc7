"""The trainer: a LLaMA model in PyTorch, trained from corpusmill shards (see docs/train.md).

Modules: ``configs`` (named configs, no torch), ``data`` (the deterministic data order, numpy only),
``sample`` (a small real-text shard set), ``model``, ``loop``, ``checkpoint`` (torch), ``cli`` (the
``corpusmill train`` command, cheap to import). This package imports no torch at import time.
"""

__all__ = ["configs", "data", "sample", "model", "loop", "checkpoint", "cli"]
