"""Choosing the compute device, and setting up a job's CPU side (threads, memory reuse)."""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

from .errors import InputError

__all__ = ["configure_cpu", "keep_freed_memory", "resolve_device"]

#: glibc ``mallopt`` parameters and the values :func:`keep_freed_memory` gives them (bytes).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MALLOC_SETTINGS = {_M_MMAP_THRESHOLD: 64 * 2**20, _M_TRIM_THRESHOLD: 256 * 2**20}


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


def keep_freed_memory() -> bool:
    """Let glibc's ``malloc`` reuse freed blocks of up to 64 MiB instead of handing them back to the OS.

    torch takes CPU tensor memory from ``malloc``. By default glibc maps blocks above an
    adaptive threshold afresh and returns a heap's free top once it exceeds 2x that
    threshold, so the activations of every model call of ~100 images at 32 px (several
    blocks of ~16 MiB) are new pages the kernel must zero: on this project's benchmark CNN
    that doubled the time of an inference call of 128 images. With blocks up to 64 MiB
    served from the heap, and up to 256 MiB of free heap kept, a job's memory is reused
    from call to call; its resident size stays near its peak. Process-wide and for the
    rest of the process: jobs call it (:func:`configure_cpu`), library functions do not.

    Returns whether the settings took effect (False where the C library has no glibc
    ``mallopt``, e.g. macOS).
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return all([mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1 for param, value in MALLOC_SETTINGS.items()])


def configure_cpu(threads: int) -> None:
    """Set up a job's CPU side: torch uses ``threads`` threads (a rule's ``threads:``), CPU runs are
    deterministic, and freed memory is reused (:func:`keep_freed_memory`)."""
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    keep_freed_memory()
