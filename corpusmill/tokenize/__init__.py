"""Tokenization and training shards.

:class:`ShardDataset` reads the Arrow shards written by :mod:`corpusmill.tokenize.shards`
(numpy and pyarrow only: cheap to import).
"""

from corpusmill.tokenize.shards import (
    ShardDataset,
    mark_complete,
    pack_documents,
    token_dtype,
    unpack,
    write_manifest,
    write_shard,
)

__all__ = ["ShardDataset", "mark_complete", "pack_documents", "token_dtype", "unpack", "write_manifest", "write_shard"]
