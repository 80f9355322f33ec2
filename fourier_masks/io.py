"""Reading and writing the pipeline's files: masks (.npy), tables (.parquet), logs.

Writes go to a temporary file that is renamed into place, so a killed job never leaves a
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

from .analysis import check_mask
from .errors import InputError

__all__ = ["write_table", "read_table", "save_mask", "load_mask", "logged"]


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_table(table: pd.DataFrame, path) -> None:
    """Write ``table`` to ``path`` as parquet, atomically."""
    path = Path(path)
    tmp = _atomic_target(path)
    table.to_parquet(tmp, index=False)
    tmp.replace(path)


def read_table(path) -> pd.DataFrame:
    """Read a parquet table with a clear error for missing or corrupt files."""
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for unreadable files
        raise InputError(f"table {path} cannot be read ({error}); delete it and rerun the rule that makes it.") from error


def save_mask(mask: np.ndarray, path) -> None:
    """Save one full-layout mask float32 ``[C', H, W]`` as .npy, atomically."""
    path = Path(path)
    tmp = _atomic_target(path)
    with open(tmp, "wb") as handle:
        np.save(handle, check_mask(mask, str(path)))
    tmp.replace(path)


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
    """Send Python logging and stderr of a rule job to its log file."""
    if not log_path:
        yield logging.getLogger("fourier_masks")
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as stream:
        old_stderr, sys.stderr = sys.stderr, stream
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger = logging.getLogger("fourier_masks")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield logger
        except Exception:
            logger.exception("job failed")
            raise
        finally:
            logger.removeHandler(handler)
            sys.stderr = old_stderr
