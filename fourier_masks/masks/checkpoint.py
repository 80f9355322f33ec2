"""Checkpoints of mask learning: tensors and plain values only, tied to everything that decides the masks.

A checkpoint is the dict ``{"fingerprint": {...}, "state": {...}}``, written with
``torch.save`` to a temporary file that is then renamed into place, and read with
:func:`fourier_masks.models.safe_load.load_tensors` (``weights_only=True``): a file that would need
full unpickling, and so could run code, is refused, never run. The fingerprint holds one
hash per input that decides the masks: the version of the mask step's code
(:data:`STEP_VERSION`), the model (its structure and every state-dict tensor), the fitting
images and labels, the options and the seeds.

:func:`load` returns the saved state only when every hash matches. A missing file starts
afresh; an unreadable one (truncated, not a torch file, a pickle of objects) is moved aside
to ``NAME.corrupt`` with a warning naming both files; a readable one made from other inputs
starts afresh with a log line that names the inputs that changed (the next save replaces it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from ..atomic import write_atomic
from ..errors import InputError
from ..models.safe_load import load_tensors

__all__ = ["STEP_VERSION", "Checkpointer", "fingerprint", "load", "move_aside", "save"]

#: Version of the mask step's arithmetic and of the saved state's layout; bump it when a change alters the
#: masks learned from the same inputs or what a checkpoint holds.
STEP_VERSION = "4"

log = logging.getLogger(__name__)


def _hash_tensors(tensors: dict) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (a name -> tensor dict)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, seeds: list[int],
                options: dict) -> dict[str, str]:
    """One hash per input that decides the masks: ``code, model, data, options, seeds``.

    ``options`` holds plain values (the ones that decide the masks); ``model`` is hashed
    by its module structure (``repr``) and its state-dict tensors.
    """
    return {
        "code": STEP_VERSION,
        "model": _hash_text(repr(model)) + _hash_tensors(model.state_dict()),
        "data": _hash_tensors({"images": images, "labels": labels}),
        "options": _hash_text(json.dumps(options, sort_keys=True, default=str)),
        "seeds": _hash_text(json.dumps([int(seed) for seed in seeds])),
    }


def save(path, prints: dict[str, str], state: dict) -> None:
    """Write ``state`` (tensors and plain values) with its fingerprint to ``path``, atomically."""
    with write_atomic(path) as tmp:
        torch.save({"fingerprint": prints, "state": state}, tmp)


def move_aside(path, reason: str) -> Path:
    """Rename an unusable checkpoint to ``NAME.corrupt`` (``NAME.N.corrupt`` if taken) and warn; the new path."""
    path = Path(path)
    target, number = path.with_name(f"{path.name}.corrupt"), 1
    while target.exists():
        target, number = path.with_name(f"{path.name}.{number}.corrupt"), number + 1
    path.replace(target)
    log.warning("mask checkpoint %s is unusable (%s); moved it to %s and starting afresh.", path, reason, target)
    return target


def load(path, prints: dict[str, str]) -> dict | None:
    """The state saved at ``path`` if its fingerprint equals ``prints``, else None (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        saved = load_tensors(path, f"mask checkpoint {path}", "")
    except InputError as error:  # truncated, not a torch file, or a pickle of more than tensors
        move_aside(path, f"it cannot be read as a tensors-only torch file: {type(error.__cause__).__name__}")
        return None
    if not (isinstance(saved, dict) and isinstance(saved.get("fingerprint"), dict) and "state" in saved):
        move_aside(path, "it is not a dict with a fingerprint and a state")
        return None
    changed = [key for key in prints if saved["fingerprint"].get(key) != prints[key]]
    if changed:
        log.warning("mask checkpoint %s was made from another %s; starting afresh.", path, ", ".join(changed))
        return None
    return saved["state"]


class Checkpointer:
    """Saves a learning state every ``interval`` seconds and at the end; resumes a matching one.

    ``path`` None disables it. ``options`` are the plain values that decide the masks; the
    state object has ``payload()`` and its class a ``from_payload(saved, fresh)`` that raises
    on a payload that does not fit.
    """

    def __init__(self, path, interval: float, model, images, labels, seeds: list[int], options: dict):
        self.path = Path(path) if path else None
        self.interval, self.saved_at = interval, time.monotonic()
        self.prints = fingerprint(model, images, labels, seeds, options) if self.path else None

    def resume(self, fresh):
        """The saved state if one matches these inputs, else ``fresh``."""
        saved = load(self.path, self.prints) if self.path else None
        if saved is None:
            return fresh
        try:
            state = type(fresh).from_payload(saved, fresh)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
            move_aside(self.path, f"{type(error).__name__}: {error}")
            return fresh
        log.info("resumed mask learning from %s after epoch %d.", self.path, state.epoch)
        return state

    def save(self, state, due_only: bool = False) -> None:
        """Save ``state`` (only once ``interval`` seconds have passed, with ``due_only``)."""
        if self.path and not (due_only and time.monotonic() - self.saved_at < self.interval):
            save(self.path, self.prints, state.payload())
            self.saved_at = time.monotonic()
