"""One way to write a file so that a killed or failed job never leaves it half-written under its name.

:func:`write_atomic` hands out a hidden temporary path beside the target and renames it into
place only when the writing block succeeds. Standard library only (no numpy, no torch), so
:mod:`fourier_masks.digests` and Snakemake's parse-time modules may use it.

>>> import pathlib, tempfile
>>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> with write_atomic(target) as tmp:
...     _ = tmp.write_text("done")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('done', ['a.txt'])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["write_atomic"]


@contextmanager
def write_atomic(path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield ``.{name}{suffix}{pid}`` in ``path``'s folder (made if absent); rename it to ``path`` on success.

    If the block raises, the temporary file is removed and ``path`` is left as it was. An
    OS error without a file name or naming the temporary file (a full disk, a quota) is
    raised again naming ``path``, so :func:`fourier_masks.io.logged` says which output could
    not be written. ``with write_atomic(path) as tmp: torch.save(obj, tmp)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{suffix}{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None and error.filename in (None, str(tmp), tmp):
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
