"""Reading torch files without running code: tensors-only loads.

``torch.load`` of a file written by ``torch.save`` unpickles it, and unpickling can run code.
:func:`load_tensors` reads tensors and plain values only; :func:`torch_load_mode` forces the
mode of every ``torch.load`` inside a block (third-party loaders included).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

from ..errors import InputError, brief

__all__ = ["torch_load_mode", "load_tensors"]


@contextmanager
def torch_load_mode(weights_only: bool):
    """Make every ``torch.load`` inside the block tensors-only (``True``) or fully unpickling (``False``).

    ``True`` overrides even calls that pass ``weights_only=False`` (torch.export's loader
    does); ``False`` applies to calls that leave ``weights_only`` unset (RobustBench's).
    """
    names = {True: "TORCH_FORCE_WEIGHTS_ONLY_LOAD", False: "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    previous = {name: os.environ.pop(name, None) for name in names.values()}
    os.environ[names[weights_only]] = "1"
    try:
        yield
    finally:
        for name, value in previous.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def load_tensors(path, what: str, advice: str):
    """``torch.load`` of a tensors-only file onto the CPU.

    An unreadable file raises :class:`InputError`: ``{what} cannot be read (reason). {advice}``.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for bad files
        raise InputError(f"{what} cannot be read ({type(error).__name__}: {brief(error)}). {advice}") from error
