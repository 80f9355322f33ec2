"""Content digests: they follow bytes, not timestamps, read only what changed, and say when they read much."""

import os
import time

from fourier_masks import digests


def test_digests_follow_contents_and_announce_long_reads_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(digests, "ANNOUNCE_FILES", 20)
    files = [tmp_path / f"{i}.png" for i in range(30)]
    for i, path in enumerate(files):
        path.write_bytes(f"image {i:02d}".encode())
    cache = tmp_path / "cache.json"
    first = digests.tree_digest(files, tmp_path, cache_file=cache)
    assert "reading 30 files under" in capsys.readouterr().err
    assert digests.tree_digest(files, tmp_path, cache_file=cache) == first
    assert capsys.readouterr().err == "", "cached digests are not announced again"
    stamps = [(p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in files[:2]]
    time.sleep(0.05)  # file times are kept to a few milliseconds
    contents = [p.read_bytes() for p in files[:2]]
    for path, content, stamp in zip(files[:2], reversed(contents), stamps, strict=True):  # swapped, same size
        path.write_bytes(content)
        os.utime(path, ns=stamp)
    assert digests.tree_digest(files, tmp_path, cache_file=cache) != first
    assert digests.file_sha256(files[0], cache_file=cache) == digests.sha256_of(files[0])
