"""Reading and writing the pipeline's files: masks (.npy), tables (.parquet), logs.

Writes go through :func:`fourier_masks.atomic.write_atomic`, so a killed job never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_atomic
from .errors import InputError, paragraph

__all__ = ["check_mask", "load_mask", "logged", "read_table", "save_mask", "unwritable_folders", "write_table"]


def write_table(table: pd.DataFrame, path) -> None:
    """Write ``table`` to ``path`` as parquet, atomically."""
    with write_atomic(path) as tmp:
        table.to_parquet(tmp, index=False)


def read_table(path) -> pd.DataFrame:
    """Read a parquet table with a clear error for missing or corrupt files."""
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for unreadable files
        raise InputError(f"table {path} cannot be read ({error}); delete it and rerun the rule that makes it."
                         ) from error


def check_mask(mask, path="mask", shape=None) -> np.ndarray:
    """Validate a full-layout mask ``[C', H, W]`` with values in ``[0, 1]``; returns float32.

    ``shape``, if given, is the image shape ``(C, H, W)`` the mask must fit (``C' in {1, C}``).
    Raises :class:`~fourier_masks.errors.InputError` naming ``path`` otherwise.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(f"mask {path} has shape {mask.shape}; expected [C', H, W].")
    if shape is not None and (mask.shape[1:] != tuple(shape[1:]) or mask.shape[0] not in (1, shape[0])):
        raise InputError(
            f"mask {path} has shape {mask.shape}; images are {tuple(shape)}, so it must be "
            f"[1 or {shape[0]}, {shape[1]}, {shape[2]}]."
        )
    if not np.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise InputError(f"mask {path} has values outside [0, 1] or NaN/inf; it is not a learned mask.")
    return mask.astype(np.float32)


def save_mask(mask: np.ndarray, path) -> None:
    """Save one full-layout mask float32 ``[C', H, W]`` as .npy, atomically."""
    mask = check_mask(mask, str(path))
    with write_atomic(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, mask)


def load_mask(path, shape=None) -> np.ndarray:
    """Load a mask float32 ``[C', H, W]``; ``shape`` is the image shape ``(C, H, W)`` it must fit."""
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"mask file {path} cannot be read ({error}); it is truncated or not a .npy array. "
                         "Delete it and rerun the learn_masks rule.") from error
    return check_mask(mask, str(path), shape)


@contextmanager
def logged(log_path):
    """Send Python logging and stderr of a rule job to its log file.

    A job that fails writes its traceback to the log and one paragraph naming the key or
    file (:func:`fourier_masks.errors.paragraph`) to the console, and exits with status 1.
    """
    if not log_path:
        yield logging.getLogger("fourier_masks")
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    failure = lost = None
    try:
        with open(log_path, "w") as stream:
            old_stderr, sys.stderr = sys.stderr, stream
            handler = logging.StreamHandler(stream)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger = logging.getLogger("fourier_masks")
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            try:
                yield logger
            except Exception as error:
                logger.exception("job failed")
                failure = error
            finally:
                logger.removeHandler(handler)
                sys.stderr = old_stderr
    except OSError as error:  # the log itself cannot be written: a full disk, a quota, a read-only mount
        lost = error
    if lost is not None:
        cause = f"{paragraph(failure)} Its log" if failure is not None else "Its log"
        print(f"Job failed: {cause} {log_path} could not be written ({lost.strerror or lost}): free disk space "
              "and rerun; finished outputs are kept.", file=sys.stderr)
        raise SystemExit(1)
    if failure is not None:
        print(f"Job failed: {paragraph(failure)} [traceback in {log_path}]", file=sys.stderr)
        raise SystemExit(1)


def unwritable_folders(paths) -> list[str]:
    """The folders, among those that would hold ``paths``, in which no file can be made (nearest existing ancestor)."""
    blocked = set()
    for path in map(Path, paths):
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
            blocked.add(str(folder))
    return sorted(blocked)
