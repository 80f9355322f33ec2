"""Errors raised for bad input (configs, files, model names, image tensors), and how they reach the user.

A failure ends in one paragraph on the console naming the offending key or file
(:func:`paragraph`); the traceback goes to the job's log only (:func:`fourier_masks.io.logged`)
or, at parse time, nowhere (:func:`exit_on_input_error`).
"""

from __future__ import annotations

import errno
import sys
from contextlib import contextmanager


class InputError(ValueError):
    """Bad user input; the message names the offending key or file and what is allowed."""


class NumericalError(RuntimeError):
    """A computation produced NaN or inf; the message says where and what to try."""


def brief(error: Exception, limit: int = 400) -> str:
    """``error``'s message cut to ``limit`` characters (state-dict errors list every key)."""
    text = str(error)
    return text if len(text) <= limit else text[:limit] + " [...]"


_FOLDER_ADVICE = {
    errno.EACCES: "make it writable (or run with --directory elsewhere) and rerun; finished outputs are kept",
    errno.EPERM: "make it writable (or run with --directory elsewhere) and rerun; finished outputs are kept",
    errno.EROFS: "it is on a read-only file system: run with --directory elsewhere; finished outputs are kept",
    errno.ENOSPC: "free disk space and rerun; finished outputs are kept",
    errno.EDQUOT: "free disk space (quota exceeded) and rerun; finished outputs are kept",
}


def paragraph(error: BaseException) -> str:
    """One paragraph saying what failed: an input error's own message, the file of an OS error, else the
    error's type and message."""
    if isinstance(error, (InputError, NumericalError)):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        advice = _FOLDER_ADVICE.get(error.errno, "")
        return f"cannot write or read {error.filename}: {error.strerror}" + (f"; {advice}." if advice else ".")
    if isinstance(error, OSError) and error.errno in _FOLDER_ADVICE:  # a write to an open file
        return f"a file could not be written: {error.strerror}; {_FOLDER_ADVICE[error.errno]}."
    if isinstance(error, MemoryError):
        return (f"out of memory ({brief(error) or 'no details'}); use a smaller dataset.image_size, fewer images "
                "or smaller batch sizes.")
    return f"{type(error).__name__}: {brief(error)}"


@contextmanager
def exit_on_input_error():
    """Turn an :class:`InputError` into its message on stderr and exit status 1, without a traceback.

    For checks that run while Snakemake reads the workflow, where it would otherwise
    print the exception with the frames of the rule files.
    """
    try:
        yield
    except InputError as error:
        print(paragraph(error), file=sys.stderr)
        raise SystemExit(1) from None
