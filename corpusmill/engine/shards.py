"""Shards with resume, as cc_net: a run's input files cut into shards by position, each shard complete
when its own marker is written.

    OUT/_shards/plan.json           the files of every shard and a fingerprint of the options
    OUT/_shards/unit-UUUUU/         one pipeline run over a group of shards (its stats.json, _dropped/, _failed/)
    OUT/_shards/unit-UUUUU/sSSSSS/  shard SSSSS's documents
    OUT/_shards/shard-SSSSS.json    shard SSSSS's marker: its files, their sizes and sha256

Rerunning the same command skips every unit whose shards all have markers (and whose files are all
there with their recorded sizes); a unit with any shard missing is run again from the start, which gives
the same bytes. A different plan (other files or options) in the same output is refused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Dict, List, Optional, Sequence

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join, sha256_file
from corpusmill.io.files import write_text_atomic

SHARDS_DIR = "_shards"
PLAN_FILE = "plan.json"


def cut(files: Sequence[str], num_shards: int) -> List[List[str]]:
    """cc_net's cut: shard ``s`` holds ``files[s*n//S : (s+1)*n//S]`` (contiguous, by position)."""
    n = len(files)
    if num_shards > n:
        raise CorpusmillError(f"--num-shards {num_shards}: more shards than input files ({n}); use at most {n}")
    return [list(files[(s * n) // num_shards : ((s + 1) * n) // num_shards]) for s in range(num_shards)]


def fingerprint(options: dict, shards: Sequence[Sequence[str]]) -> str:
    blob = json.dumps({"options": options, "shards": shards}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _read_json(path: str) -> Optional[dict]:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return json.loads(fh.read().decode("utf-8"))


def _write_json(path: str, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def sha256_of(path: str) -> str:
    """A file's sha256 on any Beam file system (corpusmill.core.files.sha256_file)."""
    return sha256_file(path, lambda p: FileSystems.open(p, compression_type=CompressionTypes.UNCOMPRESSED))


class ShardState:
    """The ``_shards/`` folder of one output directory."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.root = join(out_dir, SHARDS_DIR)

    def unit_dir(self, unit: int) -> str:
        return join(self.root, f"unit-{unit:05d}")

    def marker(self, shard: int) -> str:
        return join(self.root, f"shard-{shard:05d}.json")

    def plan(self) -> Optional[dict]:
        return _read_json(join(self.root, PLAN_FILE))

    def write_plan(self, plan: dict) -> None:
        _write_json(join(self.root, PLAN_FILE), plan)

    def done(self, shard: int) -> bool:
        """A marker exists and every file it lists is there with its recorded size."""
        marker = _read_json(self.marker(shard))
        if marker is None:
            return False
        paths = [join(self.out_dir, f["path"]) for f in marker["files"]]
        if not paths:
            return True
        sizes = {m.path: m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list}
        return all(sizes.get(p) == f["bytes"] for p, f in zip(paths, marker["files"]))

    def _rel(self, path: str) -> str:
        return path[len(self.out_dir) :].lstrip("/") if path else ""

    def mark(self, shard: int, unit: int, files: Sequence[str], pieces: Sequence = ()) -> None:
        """Write shard ``shard``'s marker: its files (relative to the output) with size and sha256, and
        its pieces (corpusmill.engine.passes.Piece: what the final phase reads)."""
        listed = []
        for path in sorted(files):
            size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
            listed.append({"path": self._rel(path), "bytes": size, "sha256": sha256_of(path)})
        _write_json(
            self.marker(shard),
            {
                "shard": shard,
                "unit": unit,
                "files": listed,
                "pieces": [{"index": p.index, "docs": self._rel(p.docs), "keys": self._rel(p.keys)} for p in pieces],
            },
        )

    def pieces(self, shard: int) -> List[dict]:
        """The shard's pieces as its marker lists them (paths made absolute again)."""
        marker = _read_json(self.marker(shard)) or {}
        return [
            {
                "index": p["index"],
                "docs": join(self.out_dir, p["docs"]),
                "keys": join(self.out_dir, p["keys"]) if p["keys"] else "",
            }
            for p in marker.get("pieces", [])
        ]

    def files(self, shard: int) -> List[str]:
        marker = _read_json(self.marker(shard)) or {"files": []}
        return [join(self.out_dir, f["path"]) for f in marker["files"]]

    def summary(self, shards: int) -> Dict[str, int]:
        done = sum(1 for s in range(shards) if self.done(s))
        return {"done": done, "pending": shards - done}
