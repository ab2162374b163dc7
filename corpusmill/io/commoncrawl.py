"""Naming Common Crawl input: a snapshot (``--dump CC-MAIN-2019-09``) or a listing (``--input-list``).

A snapshot's WET files are listed in ``crawl-data/<dump>/wet.paths.gz`` (one path per line, relative to
the bucket root); corpusmill resolves each against ``--base-url`` (Common Crawl's public HTTPS endpoint
by default; ``s3://commoncrawl/`` reads the same files through Beam's S3 file system). A file's snapshot
is read from that layout (``crawl-data/CC-MAIN-YYYY-WW/...``); for other layouts the user names it.
"""

from __future__ import annotations

import gzip
import io
import re
import urllib.parse
from typing import List, Optional, Sequence

from corpusmill.core.errors import CorpusmillError

DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
DUMP_RE = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")
_DUMP_IN_PATH = re.compile(r"(?:^|/)crawl-data/(CC-MAIN-\d{4}-\d{2})/")
LISTING_SUFFIXES = (".paths", ".paths.gz")


def dump_of(path: str, default: str = "") -> str:
    """The snapshot a file belongs to, from Common Crawl's layout; ``default`` when the path has none."""
    m = _DUMP_IN_PATH.search(path)
    return m.group(1) if m else default


def listing_path(dump: str, base_url: str = DEFAULT_BASE_URL, kind: str = "wet") -> str:
    if not DUMP_RE.match(dump):
        raise CorpusmillError(
            f"--dump {dump!r}: expected a Common Crawl snapshot name like CC-MAIN-2019-09 "
            f"(see https://commoncrawl.org/overview)"
        )
    return resolve(f"crawl-data/{dump}/{kind}.paths.gz", base_url)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def resolve(entry: str, base_url: str, listing: str = "") -> str:
    """An entry of a listing as a full path. Entries stay inside the listing's origin or ``base_url``:
    an absolute URL on another host, a local path in a remote listing, or a relative path that climbs
    out of ``base_url`` (``../../x``) is refused, naming it."""
    remote = "://" in listing
    if "://" in entry:
        allowed = {_origin(u) for u in (base_url, listing) if "://" in u}
        if allowed and _origin(entry) not in allowed:
            raise CorpusmillError(
                f"listing {listing}: entry {entry!r} is on another host than the listing and "
                f"--base-url ({', '.join(sorted(allowed))}); a listing names files of its own origin"
            )
        return entry
    if entry.startswith("/"):
        if remote:
            raise CorpusmillError(
                f"listing {listing}: entry {entry!r} is a local path in a remote listing; "
                f"nothing local is read unless you name it"
            )
        return entry
    if not base_url:
        raise CorpusmillError(
            f"listing entry {entry!r} is a relative path: pass --base-url to say where it is "
            f"(e.g. {DEFAULT_BASE_URL} for Common Crawl); nothing remote is read unless named"
        )
    if ".." in entry.replace("\\", "/").split("/"):
        raise CorpusmillError(
            f"listing {listing or '(given)'}: entry {entry!r} climbs out of --base-url {base_url} "
            f"('..'); a listing names files under it"
        )
    return base_url.rstrip("/") + "/" + entry.lstrip("/")


def parse_listing(data: bytes, name: str) -> List[str]:
    """The entries of a ``*.paths`` or ``*.paths.gz`` listing (blank lines and ``#`` comments skipped)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CorpusmillError(f"listing {name}: not a readable gzip file ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusmillError(f"listing {name}: not UTF-8 text ({exc})") from None
    entries = [line.strip() for line in io.StringIO(text) if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise CorpusmillError(f"listing {name}: no paths in it")
    return entries


def listed_files(listings: Sequence[str], base_url: str, max_files: Optional[int], read_bytes) -> List[str]:
    """Every file of the listings, in listing order (duplicates refused), cut to ``max_files``.

    ``read_bytes(path) -> bytes`` reads a listing from wherever it is (local, http, gs, s3)."""
    files: List[str] = []
    for listing in listings:
        try:
            data = read_bytes(listing)
        except OSError as exc:  # a 404, a network that stays down, a missing local file
            raise CorpusmillError(
                f"listing {listing}: cannot be read ({exc}); check --dump / --input-list and --base-url"
            ) from None
        files.extend(resolve(e, base_url, listing) for e in parse_listing(data, listing))
    seen = set()
    for f in files:
        if f in seen:
            raise CorpusmillError(f"listing names {f} twice; each file may be listed once")
        seen.add(f)
    return files[:max_files] if max_files else files
