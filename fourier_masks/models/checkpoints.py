"""The user's own checkpoints: a state dict (or a training checkpoint holding one) for an architecture.

A checkpoint is read as tensors only unless its entry says ``trust_pickle: true``; the weights
are found under a common key (:data:`CHECKPOINT_KEYS`), stripped of wrapper prefixes
(:data:`WRAPPER_PREFIXES`) and fitted to the named architecture, with every mismatch listed.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, brief
from .networks import ARCHITECTURES, Normalized, build_network, freeze, on_sys_path
from .safe_load import load_tensors

__all__ = ["CHECKPOINT_KEYS", "WRAPPER_PREFIXES", "network_kwargs", "read_checkpoint", "acquire_checkpoint",
           "output_classes"]

#: Keys under which training scripts commonly nest the weights of a checkpoint.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")


#: Prefixes that wrappers add to every weight name: DataParallel / DDP and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def network_kwargs(arch: str, in_channels: int, num_classes: int) -> dict:
    """Builder keyword arguments of ``arch`` for ``in_channels`` inputs and ``num_classes`` outputs.

    ``import:`` architectures get none: their factory takes only the entry's ``arch_kwargs``.
    """
    family = arch.partition(":")[0] if ":" in arch else None
    if family is None:
        return {"in_channels": in_channels, "num_classes": num_classes}
    if family == "import":
        return {}
    if family == "timm":
        return {"num_classes": num_classes, "in_chans": in_channels}
    if family == "torchvision":
        if in_channels != 3:
            raise InputError(
                f"arch {arch!r} takes 3 input channels but the dataset has {in_channels}; use a "
                f"package architecture ({', '.join(ARCHITECTURES)}) or a timm: one."
            )
        return {"num_classes": num_classes}
    raise InputError(f"arch {arch!r} cannot load a checkpoint; allowed: {', '.join(ARCHITECTURES)}, "
                     "'torchvision:NAME', 'timm:NAME' or 'import:package.module:factory'.")


def _strip_wrapper_prefixes(state: dict) -> OrderedDict:
    """``state`` without the ``module.`` / ``_orig_mod.`` prefixes that every key carries."""
    keys = list(state)
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if keys and all(k.startswith(prefix) for k in keys):
                keys = [k.removeprefix(prefix) for k in keys]
                stripped = True
    return OrderedDict(zip(keys, state.values(), strict=True))


def _state_dict(record, path: Path) -> dict:
    """The weights inside a loaded checkpoint: nested under a common key, wrapper prefixes stripped."""
    while isinstance(record, dict):
        key = next((k for k in CHECKPOINT_KEYS if isinstance(record.get(k), (dict, nn.Module))), None)
        if key is None:
            break
        record = record[key]
    if isinstance(record, nn.Module):
        record = record.state_dict()
    if not isinstance(record, dict) or not any(isinstance(v, torch.Tensor) for v in record.values()):
        keys = ", ".join(map(str, list(record)[:8])) if isinstance(record, dict) else type(record).__name__
        raise InputError(
            f"checkpoint {path} holds no state dict at its top level nor under any of the keys "
            f"{', '.join(CHECKPOINT_KEYS)} (it has: {keys})."
        )
    return _strip_wrapper_prefixes(record)


def read_checkpoint(path, where: str = "models[?]", *, trust_pickle: bool, python_path):
    """The object stored in the torch checkpoint ``path``: tensors and plain values only.

    With ``trust_pickle`` any Python object is unpickled (classes are imported with
    ``python_path`` first on ``sys.path``): only for files the user vouches for.
    """
    path = Path(path)
    if not trust_pickle:
        return load_tensors(path, f"{where}: checkpoint {path}",
                            f"If it is truncated, fetch it again. If it holds Python objects besides tensors (a "
                            f"pickled model, optimizer or arguments), unpickling them can run code: if you trust it, "
                            f"set {where}.trust_pickle: true, or re-save its weights alone: python -c \"import "
                            f"torch; c = torch.load('{path}', weights_only=False); torch.save(c['state_dict'] if "
                            f"isinstance(c, dict) else c.state_dict(), 'weights.pt')\".")
    try:
        with on_sys_path(python_path):
            return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # unpickling may raise anything
        raise InputError(f"{where}: checkpoint {path} cannot be unpickled ({type(error).__name__}: {brief(error)}); "
                         "if it pickles a model class, put the folder holding its code in python_path.") from error


def _floats(values):
    """A stored mean/std (tensor, list or tuple of numbers) as a list of floats, ``None`` if absent."""
    if isinstance(values, torch.Tensor):
        return [float(v) for v in values.flatten()]
    if isinstance(values, (list, tuple)) and all(isinstance(v, (int, float)) for v in values):
        return [float(v) for v in values]
    return None


def _normalisation(record, mean, std, path: Path, where: str):
    """``(mean, std)``: the config's, else those stored in the checkpoint; a disagreement is an error."""
    if not (isinstance(record, dict) and "mean" in record and "std" in record):
        return mean, std
    stored = (_floats(record["mean"]), _floats(record["std"]))
    if mean is None and std is None:
        return stored
    same = all(a is not None and b is not None and len(a) == len(b)
               and all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-7) for x, y in zip(a, b, strict=True))
               for a, b in zip((mean, std), stored, strict=True))
    if not same:
        raise InputError(
            f"{where}: mean = {mean}, std = {std} differ from the normalisation stored in {path} (mean = "
            f"{stored[0]}, std = {stored[1]}); remove mean and std from the entry to use the stored ones, "
            "or correct them."
        )
    return mean, std


def _fit_weights(network: nn.Module, state: dict, path: Path, arch: str, where: str) -> None:
    """Load ``state`` into ``network`` by PyTorch's own rules (so an old BatchNorm checkpoint without
    ``num_batches_tracked`` loads, as PyTorch fills it in), or list the first missing, unexpected and
    misshapen keys."""
    try:
        network.load_state_dict(state)
        return
    except RuntimeError as error:
        problem = error
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    raise InputError(
        f"{where}: checkpoint {path} does not fit arch {arch!r}: missing keys {missing[:5]} "
        f"({len(missing)} in all), unexpected keys {unexpected[:5]} ({len(unexpected)} in all), shape "
        f"mismatches {misshapen[:3]} ({len(misshapen)} in all)."
    ) from problem


def acquire_checkpoint(path, arch: str, num_classes: int | None, input_shape, *, mean, std, where: str = "models[?]",
                       arch_kwargs: dict, python_path, trust_pickle: bool) -> tuple[Normalized, dict]:
    """Load a state dict or training checkpoint into ``arch``: ``(frozen Normalized, builder kwargs)``.

    ``path``: a ``torch.save`` of a state dict, or of a dict holding it under one of
    :data:`CHECKPOINT_KEYS` (``module.`` and ``_orig_mod.`` prefixes are stripped).
    ``input_shape`` is ``[C, H, W]``; ``mean``/``std`` the per-channel normalisation the
    network was trained with (``None``: the ones stored in the file, if any, else none).
    ``arch_kwargs`` go to the builder (an ``import:`` factory gets only these).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{where}.path = {str(path)!r} does not exist; point it to a torch checkpoint file.")
    record = read_checkpoint(path, where, trust_pickle=trust_pickle, python_path=python_path)
    mean, std = _normalisation(record, mean, std, path, where)
    state = _state_dict(record, path)
    if num_classes is None and not arch.startswith("import:"):
        raise InputError(f"{where}: set num_classes; the dataset config does not fix the number of classes.")
    kwargs = {**network_kwargs(arch, int(input_shape[0]), num_classes or 0), **arch_kwargs}
    network = build_network(arch, python_path=python_path, **kwargs)
    _fit_weights(network, state, path, arch, where)
    return freeze(Normalized(network, mean, std)), kwargs


@torch.no_grad()
def output_classes(model: nn.Module, input_shape, where: str) -> int:
    """Number of outputs of ``model`` on a batch of two black images of ``input_shape`` ``[C, H, W]``."""
    device = next(itertools.chain(model.buffers(), model.parameters()), torch.zeros(0)).device
    try:
        logits = model(torch.zeros(2, *input_shape, device=device))
    except Exception as error:  # any network error on the expected input shape
        raise InputError(f"{where}: the network fails on images of shape [N, {', '.join(map(str, input_shape))}] "
                         f"({type(error).__name__}: {brief(error)}); check input_shape, dataset.image_size and "
                         "dataset.channels against what the network was trained on.") from error
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"{where}: the network returns {shape} for 2 images; expected logits [N, classes].")
    return int(logits.shape[1])
