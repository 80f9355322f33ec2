"""The model file format every rule shares: :func:`save_model` and :func:`load_model`.

A model file (``results/models/{model}/model.pt``) is a ``torch.save`` of a plain dict:

``arch``          architecture name: one of :data:`ARCHITECTURES`, ``torchvision:NAME``,
                  ``timm:NAME``, ``robustbench:DATASET/THREAT/NAME``, ``import:MODULE:FACTORY``
                  (any importable callable returning an ``nn.Module``), or one of
                  :data:`PROGRAMS` (the network is the stored ``program`` itself)
``arch_kwargs``   keyword arguments of the architecture builder
``python_path``   folders (absolute) an ``import:`` architecture was imported from, or ``[]``
``program``       uint8 tensor: the bytes of a TorchScript archive or torch.export program
                  (``arch`` in :data:`PROGRAMS` only)
``state_dict``    weights of the network (without the normalisation wrapper; empty for programs)
``mean``, ``std`` per-channel input normalisation applied inside the model, or ``None``
``input_shape``   ``[C, H, W]`` the model expects, pixels in ``[0, 1]``
``num_classes``   number of outputs
``source``        ``train``, ``checkpoint``, ``torchscript``, ``exported`` or ``robustbench``
``channels_last`` whether the model runs in the channels-last memory layout, decided once when
                  it was trained or acquired (:func:`.layout.choose_layout`); absent = ``False``

:func:`load_model` turns it back into an eval-mode ``nn.Module`` taking ``[N, C, H, W]``
images in ``[0, 1]``, in the recorded memory layout, batch norm folded (:mod:`.fusion`). A file
is read as tensors only; an ``import:`` architecture is code, so it is imported only when the caller names it in
``imports`` (the workflow passes the config's own entries, see :func:`~fourier_masks.models.sources.imports_of`).
"""


from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..atomic import write_atomic
from ..errors import InputError, brief
from .fusion import folded
from .layout import probe_images, set_layout
from .networks import ARCHITECTURES, Normalized, build_network, freeze
from .programs import load_program
from .safe_load import load_tensors
from .zoo import build_architecture

__all__ = ["PROGRAMS", "save_model", "read_record", "load_model"]


FORMAT_VERSION = 1
#: What model files written before a key existed mean by its absence.
LEGACY_KEYS = {"channels_last": False}


#: Architecture-free model files: the stored program is the network (see :mod:`.programs`).
PROGRAMS = ("torchscript", "exported")


def save_model(path, model: Normalized, *, arch: str, input_shape, num_classes: int,
               source: str, arch_kwargs: dict | None = None, python_path=(), program: bytes | None = None) -> None:
    """Write ``model`` in the shared model-file format (see the module docstring).

    ``program``: the file bytes of a TorchScript archive or exported program (``arch`` in
    :data:`PROGRAMS`), stored instead of the weights. The model's memory layout
    (``model.channels_last``, see :mod:`.layout`) is recorded with it.
    """
    weights = {} if program is not None else model.network.state_dict()
    record = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs or {}),
        "python_path": [str(Path(folder).resolve()) for folder in python_path],
        "state_dict": {k: v.detach().cpu() for k, v in weights.items()},
        "mean": model.mean.flatten().tolist() if model.has_norm else None,
        "std": model.std.flatten().tolist() if model.has_norm else None,
        "input_shape": [int(s) for s in input_shape],
        "num_classes": int(num_classes),
        "source": source,
        "channels_last": bool(getattr(model, "channels_last", False)),
    }
    if program is not None:
        record["program"] = torch.frombuffer(bytearray(program), dtype=torch.uint8)
    with write_atomic(path) as tmp:
        torch.save(record, tmp)


def read_record(path) -> dict:
    """The dict stored in a model file, with a clear error for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; expected a file written by save_model.")
    record = load_tensors(path, f"model file {path}", "It is truncated or not a torch file; delete it and "
                          "rerun the rule that makes it.")
    missing = {"arch", "state_dict", "input_shape", "num_classes"} - set(record if isinstance(record, dict) else {})
    if missing:
        raise InputError(f"model file {path} lacks the keys {sorted(missing)}; it was not written by save_model.")
    return record


def _network(record: dict, path, imports: dict) -> nn.Module:
    """The network of a model-file record, weights loaded (programs: the stored program)."""
    arch = record["arch"]
    if arch in PROGRAMS:
        program = record.get("program")
        if not isinstance(program, torch.Tensor) or program.dtype != torch.uint8:
            raise InputError(f"model file {path} has arch {arch!r} but no program; it was not written by save_model.")
        return load_program(arch, program.numpy().tobytes(), f"model file {path}")
    kwargs = dict(record.get("arch_kwargs") or {})
    if arch.startswith("import:") and arch not in imports:
        raise InputError(
            f"model file {path} rebuilds its network by running {arch!r} (imported from "
            f"{record.get('python_path') or 'sys.path'}). Code named by a data file runs only on request: "
            f"load_model({str(path)!r}, imports={{{arch!r}: {record.get('python_path') or []}}}) if you trust it."
        )
    if arch in ARCHITECTURES:
        kwargs.setdefault("in_channels", record["input_shape"][0])
        kwargs.setdefault("num_classes", record["num_classes"])
    if arch.startswith("robustbench:"):
        network = build_architecture(arch.removeprefix("robustbench:"))
    else:
        network = build_network(arch, python_path=imports.get(arch, ()), **kwargs)
    try:
        network.load_state_dict(record["state_dict"])
    except RuntimeError as error:
        raise InputError(f"the weights in {path} do not fit architecture {arch!r}: {brief(error)}") from error
    return network


def load_model(path, device: str | torch.device = "cpu", *, imports: dict | None = None) -> Normalized:
    """Load a model file as a frozen eval-mode module taking ``[N, C, H, W]`` in ``[0, 1]``.

    The module runs in the memory layout the file records (``channels_last``), with its
    eval-mode batch norm folded into the convolutions where that leaves its logits unchanged
    (:func:`.fusion.folded`): the loaded model is for inference and input gradients, not training.

    ``imports``: ``{arch: python_path}`` of the ``import:`` architectures the caller trusts
    (:func:`~fourier_masks.models.sources.imports_of` gives the config's); a file naming another one is refused.

    >>> model = load_model("results/models/standard/model.pt")  # doctest: +SKIP
    """
    record = read_record(path)
    model = Normalized(_network(record, path, imports or {}), record.get("mean"), record.get("std"))
    model.input_shape = tuple(record["input_shape"])
    model.num_classes = record["num_classes"]
    channels_last = {**LEGACY_KEYS, **record}["channels_last"]
    if not isinstance(channels_last, bool):
        raise InputError(f"model file {path} has channels_last = {channels_last!r}; expected true or false.")
    model = folded(freeze(model), probe_images(model.input_shape, "cpu"))
    return set_layout(model, channels_last).to(device)
