"""Choosing the compute device and the number of CPU threads."""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["resolve_device", "set_threads"]


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are taken as is.

    A device that is asked for by name but absent (or a GPU index beyond the visible ones)
    raises :class:`InputError`.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise InputError(f"device = {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device = {name!r} was asked for, but no CUDA GPU is visible; use auto or cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device = {name!r} was asked for, but only {torch.cuda.device_count()} CUDA GPU(s) are "
                         f"visible (cuda:0 to cuda:{torch.cuda.device_count() - 1}); use cuda, auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device = {name!r} was asked for, but MPS is not available; use auto or cpu.")
    return device


def set_threads(threads: int) -> None:
    """Let torch use ``threads`` CPU threads (a rule's ``threads:``) and make CPU runs deterministic."""
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
