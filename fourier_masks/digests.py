"""Content digests of the files a run reads, so that results follow contents, not timestamps.

A file's digest is the SHA-256 of its bytes. Hashing a large image folder at every dry run
would be slow, so digests are cached in ``.snakemake/fourier_masks_digests.json`` of the
working directory, keyed by the file's absolute path with its inode, size, modification
and status-change times (nanoseconds). Any write to a file changes its status-change time,
which ``touch -r`` cannot set back, so a file replaced in place with its old size and
modification time is hashed again. Torch-free: the workflow computes these while it builds
the job graph.

>>> import os, tempfile, time, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> image, cache = folder / "a.png", folder / "cache.json"
>>> image.write_bytes(b"one")
3
>>> before, old = tree_digest([image], folder, cache_file=cache), image.stat()
>>> time.sleep(0.05)  # file times are kept to a few milliseconds
>>> image.write_bytes(b"two")  # the same size ...
3
>>> os.utime(image, ns=(old.st_atime_ns, old.st_mtime_ns))  # ... and modification time (touch -r)
>>> before == tree_digest([image], folder, cache_file=cache)
False
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .atomic import write_atomic

__all__ = ["CACHE", "sha256_of", "file_sha256", "tree_digest"]

#: Where digests are cached, relative to the working directory.
CACHE = Path(".snakemake") / "fourier_masks_digests.json"


def sha256_of(path) -> str:
    """SHA-256 hex digest of the bytes of the file ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _identity(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _read_cache(cache_file: Path) -> dict:
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_cache(cache_file: Path, cache: dict) -> None:
    """Write the cache atomically; a cache that cannot be written only costs time later."""
    try:
        with write_atomic(cache_file) as partial:
            partial.write_text(json.dumps(cache))
    except OSError:
        pass


def _cached_sha256(path: Path, cache: dict) -> tuple[str, bool]:
    """The file's SHA-256 from ``cache`` where its identity is unchanged, else hashed (and cached)."""
    key, identity = str(path.resolve()), _identity(path)
    entry = cache.get(key)
    if isinstance(entry, list) and len(entry) == 5 and entry[:4] == identity:
        return entry[4], False
    cache[key] = [*identity, sha256_of(path)]
    return cache[key][4], True


def file_sha256(path, cache_file=None) -> str:
    """:func:`sha256_of` of ``path``, read from the cache (default :data:`CACHE`) where the file is unchanged."""
    cache_file = Path(cache_file or CACHE)
    cache = _read_cache(cache_file)
    found, changed = _cached_sha256(Path(path), cache)
    if changed:
        _write_cache(cache_file, cache)
    return found


#: Files to hash at once beyond which :func:`tree_digest` says on stderr what it is doing.
ANNOUNCE_FILES = 2000


def tree_digest(paths, root, cache_file=None) -> str:
    """SHA-256 over (path relative to ``root``, content digest) of every file in ``paths``, in sorted order.

    Only files whose identity (inode, size, mtime, ctime) changed since they were cached (in
    ``cache_file``, default :data:`CACHE`) are read; when more than :data:`ANNOUNCE_FILES`
    must be, one line on stderr says so, so that a long dry run shows what it is doing.
    """
    cache_file = Path(cache_file or CACHE)
    cache, changed = _read_cache(cache_file), False
    paths = sorted(Path(p) for p in paths)
    unread = len(paths) - len(cache.keys() & {str(p.resolve()) for p in paths}) if len(paths) > ANNOUNCE_FILES else 0
    if unread > ANNOUNCE_FILES:
        print(f"fourier-masks: reading {len(paths)} files under {root} to digest their contents (once: the "
              f"digests are kept in {cache_file})...", file=sys.stderr, flush=True)
    digest = hashlib.sha256()
    for path in paths:
        found, new = _cached_sha256(path, cache)
        changed |= new
        digest.update(f"{path.relative_to(root).as_posix()}\0{found}\n".encode())
    if changed:
        _write_cache(cache_file, cache)
    return digest.hexdigest()
