"""A Beam file system for the scheme ``cmtest://``, stored in a local directory.

Beam picks a file system by URL scheme from every registered ``FileSystem`` subclass; this one lets
the tests exercise the code paths that gs:// takes (remote model files copied to the worker) without
a cloud. It is Beam's own plugin interface, backed by Beam's LocalFileSystem.
"""

from __future__ import annotations

import os

from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "cmtest"
ROOT = os.environ.get("CMTEST_ROOT", "/tmp/cmtest-fs")


class LocalBackedTestFileSystem(LocalFileSystem):
    @classmethod
    def scheme(cls):
        return SCHEME

    @staticmethod
    def to_local(path: str) -> str:
        if not path.startswith(f"{SCHEME}://"):
            return path  # LocalFileSystem's own helpers call back with local paths
        return os.path.join(ROOT, path[len(SCHEME) + 3 :])

    @staticmethod
    def to_url(path: str) -> str:
        return f"{SCHEME}://" + os.path.relpath(path, ROOT)

    def match(self, patterns, limits=None):
        if not all(p.startswith(f"{SCHEME}://") for p in patterns):
            return super().match(patterns, limits)
        results = super().match([self.to_local(p) for p in patterns], limits)
        return [
            MatchResult(
                p,
                [
                    FileMetadata(self.to_url(m.path), m.size_in_bytes, m.last_updated_in_seconds)
                    for m in r.metadata_list
                ],
            )
            for p, r in zip(patterns, results)
        ]

    def open(self, path, *args, **kwargs):
        return super().open(self.to_local(path), *args, **kwargs)

    def exists(self, path):
        return super().exists(self.to_local(path))

    def metadata(self, path):
        return super().metadata(self.to_local(path))

    def create(self, path, *args, **kwargs):
        return super().create(self.to_local(path), *args, **kwargs)

    def mkdirs(self, path):
        return super().mkdirs(self.to_local(path))

    def rename(self, sources, destinations):
        return super().rename([self.to_local(s) for s in sources], [self.to_local(d) for d in destinations])

    def delete(self, paths):
        return super().delete([self.to_local(p) for p in paths])

    def size(self, path):
        return super().size(self.to_local(path))
