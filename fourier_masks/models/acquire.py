"""Acquiring trained classifiers: RobustBench entries and the user's own model files.

Every acquired model is written in the shared model-file format of :mod:`.files`; zoo models
are saved with ``mean = std = None`` (their normalisation is inside them). The user's own
models come as a checkpoint for an architecture (``source: checkpoint``, :mod:`.checkpoints`),
a TorchScript archive or a torch.export program (:mod:`.programs`), from a ``path`` or a
``url`` fetched by :func:`fourier_masks.models.sources.download`.
:mod:`.preflight` checks a config's entries before any job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.preflight import dataset_shape
from ..errors import InputError
from .checkpoints import acquire_checkpoint, output_classes
from .files import save_model
from .layout import adopt_layout
from .networks import Normalized, accuracy, freeze
from .programs import load_program
from .sources import model_file, verify_sha256
from .zoo import ZOO_CLASSES, acquire_robustbench

__all__ = ["CHANCE_FACTOR", "acquire", "save_zoo_model", "check_accuracy"]

#: The clean accuracy at or below which an acquired model is taken not to see the data as
#: it was trained, as a multiple of chance (the share of the most frequent test label).
CHANCE_FACTOR = 1.5


def save_zoo_model(path, model: nn.Module, spec: str, input_shape, num_classes: int, *,
                   channels_last: bool) -> None:
    """Write zoo model ``model`` (entry ``spec`` = ``DATASET/THREAT_MODEL/NAME``) as a model file.

    ``channels_last``: record that layout where the model runs there (:func:`.layout.choose_layout`).
    """
    model = freeze(Normalized(model))
    adopt_layout(model, input_shape, channels_last)
    save_model(path, model, arch=f"robustbench:{spec}", input_shape=input_shape,
               num_classes=num_classes, source="robustbench")


def _acquire_own(spec: dict, path: Path, input_shape, num_classes, where: str):
    """``(model, save_model keyword arguments)`` of a checkpoint, torchscript or exported entry."""
    mean, std = spec["mean"], spec["std"]
    if spec["source"] == "checkpoint":
        arch, python_path = spec["arch"], spec["python_path"]
        model, kwargs = acquire_checkpoint(path, arch, num_classes, input_shape, mean=mean, std=std, where=where,
                                           arch_kwargs=spec["arch_kwargs"], python_path=python_path,
                                           trust_pickle=spec["trust_pickle"])
        return model, {"arch": arch, "arch_kwargs": kwargs, "python_path": python_path}
    data = path.read_bytes()
    network = load_program(spec["source"], data, f"{where}: {spec['source']} file {path}")
    return freeze(Normalized(network, mean, std)), {"arch": spec["source"], "program": data}


def acquire(spec: dict, resources_dir, output, *, offline: bool, dataset: dict | None,
            channels_last: bool, where: str | None = None) -> None:
    """Write the model of config entry ``spec`` (any source but ``train``) to ``output``.

    robustbench: ``zoo_name``, ``threat_model``, ``dataset`` (``None`` = ``dataset.name``),
    ``trust_pickle``. checkpoint: ``path`` or ``url`` (with ``sha256``), ``arch``,
    ``arch_kwargs``, ``python_path``, ``trust_pickle``; torchscript and exported: ``path``
    or ``url``. All three: optional ``mean``/``std``, ``num_classes`` and ``input_shape``
    (``None`` = what the ``dataset`` config section gives); the network's number of outputs
    must match them. ``spec`` is an entry and ``dataset`` the ``dataset`` section of a checked
    config (every key filled in; ``dataset`` may be ``None``). ``channels_last``: record that
    memory layout for the model where it runs there with the same logits (:mod:`.layout`).
    """
    where = where or f"models[{spec['name']}]"
    if spec["source"] == "robustbench":
        _acquire_zoo(spec, resources_dir, output, offline, dataset, where, channels_last)
        return
    input_shape, num_classes = dataset_shape(dataset, resources_dir) if dataset else (None, None)
    path = model_file(spec, resources_dir)
    if not path.is_file():
        key = "path" if spec["path"] else "url"
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InputError(f"{where}.{key}: model file {path} {what}; stage it there or fix {key}.")
    if spec["sha256"]:
        verify_sha256(path, spec["sha256"], where)
    input_shape = list(spec["input_shape"] or input_shape or [])
    if len(input_shape) != 3:
        raise InputError(f"{where}: set input_shape [C, H, W]; the dataset config does not fix it.")
    expected = spec["num_classes"] or num_classes
    model, saved = _acquire_own(spec, path, input_shape, expected, where)
    found = output_classes(model, input_shape, where)
    if expected not in (None, found):
        origin = f"{where}.num_classes" if spec["num_classes"] else "the dataset"
        raise InputError(f"{where}: the network has {found} outputs but {origin} has {expected} classes; a model "
                         "must be studied on data with its own classes (set dataset.classes to its label order).")
    adopt_layout(model, input_shape, channels_last)
    save_model(output, model, input_shape=input_shape, num_classes=found, source=spec["source"], **saved)


def _acquire_zoo(spec: dict, resources_dir, output, offline: bool, dataset: dict | None, where: str,
                 channels_last: bool) -> None:
    """:func:`acquire` of a RobustBench entry."""
    input_shape = dataset_shape(dataset, resources_dir)[0] if dataset else None
    zoo_dataset = spec["dataset"] or (dataset or {}).get("name")
    name, threat_model = spec["zoo_name"], spec["threat_model"]
    if zoo_dataset is None:
        raise InputError(f"{where}.dataset is needed to find {name!r} in the zoo (or pass the dataset section).")
    if input_shape is None or dataset["name"] != zoo_dataset:
        input_shape = [3, 32, 32] if zoo_dataset.startswith("cifar") else [3, 224, 224]
    if input_shape[0] != 3:
        raise InputError(f"{where}: RobustBench models take RGB images; set dataset.channels to 3.")
    model = acquire_robustbench(name, zoo_dataset, threat_model, Path(resources_dir) / "robustbench",
                                offline, where, trust_pickle=spec["trust_pickle"])
    save_zoo_model(output, model, f"{zoo_dataset}/{threat_model}/{name}", input_shape, ZOO_CLASSES[zoo_dataset],
                   channels_last=channels_last)


def check_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, class_names, *, where: str,
                   chance_check: bool, expected_accuracy: float | None, accuracy_tolerance: float,
                   batch_size: int) -> float:
    """Clean accuracy of an acquired model on the test split, refused when it cannot be right.

    ``images`` float ``[N, C, H, W]`` in ``[0, 1]``, ``labels`` int64 ``[N]``. Raises
    :class:`InputError` when the model's outputs do not match ``class_names``, when
    ``chance_check`` is on and the accuracy is at or below :data:`CHANCE_FACTOR` x chance
    (the share of the most frequent label), or when it is more than ``accuracy_tolerance``
    away from ``expected_accuracy`` (if not ``None``). ``batch_size``: images per model call.
    """
    found = output_classes(model, images.shape[1:], where)
    if found != len(class_names):
        raise InputError(f"{where}: the network has {found} outputs but the dataset has {len(class_names)} classes "
                         f"({', '.join(map(str, class_names[:6]))}{', ...' if len(class_names) > 6 else ''}).")
    measured = accuracy(model, images, labels, batch_size=batch_size)
    chance = float(np.bincount(labels.numpy()).max() / len(labels))
    causes = ("Usual causes: mean/std (the model's own normalisation), class order (dataset.classes), image size "
              "and resizing (dataset.image_size, resize, resize_size) and channels (dataset.channels).")
    if chance_check and measured <= CHANCE_FACTOR * chance:
        raise InputError(
            f"{where}: clean accuracy {measured:.3f} on {len(labels)} test images is at or below {CHANCE_FACTOR} x "
            f"chance ({chance:.3f}): the model does not see the data as it was trained. {causes} If this is meant "
            f"(e.g. random weights), set {where}.chance_check: false."
        )
    if expected_accuracy is not None and abs(measured - expected_accuracy) > accuracy_tolerance:
        raise InputError(
            f"{where}: clean accuracy {measured:.3f} on {len(labels)} test images is more than "
            f"accuracy_tolerance = {accuracy_tolerance} away from expected_accuracy = {expected_accuracy}. {causes}"
        )
    return measured


