"""Acquiring trained classifiers: the RobustBench model zoo and user checkpoints.

This is the one module that imports ``robustbench``. Zoo weights live in RobustBench's own
layout under ``{resources_dir}/robustbench`` (its ``model_dir``)::

    {resources_dir}/robustbench/{dataset}/{threat_model}/{name}.pt        one network
    {resources_dir}/robustbench/{dataset}/{threat_model}/{name}.pt_m{i}.pt ensemble member i
    {resources_dir}/robustbench/hub/checkpoints/{file}                     zoo entries that
        timm or torchvision fetch from a URL (XCiT, DeiT, AlexNet, ImageNet Standard_R50)

With ``offline: false`` missing files are downloaded (Google Drive, GitHub releases); with
``offline: true`` they must be staged there beforehand (:func:`missing_files` lists them).

Every acquired model is written in the shared model-file format of :mod:`.models`; zoo
models take ``[N, 3, H, W]`` pixels in ``[0, 1]`` (their normalisation is inside them), so
they are saved with ``mean = std = None``.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .errors import InputError, brief
from .models import ARCHITECTURES, Normalized, build_network, freeze, load_tensors, save_model

__all__ = [
    "import_robustbench",
    "zoo_names",
    "check_zoo_name",
    "cache_path",
    "zoo_files",
    "acquire_robustbench",
    "build_architecture",
    "save_zoo_model",
    "network_kwargs",
    "acquire_checkpoint",
    "acquire",
    "missing_files",
    "ZOO_CLASSES",
]

#: Number of classes of each RobustBench dataset.
ZOO_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}

#: Keys under which training scripts commonly nest the weights of a checkpoint.
CHECKPOINT_KEYS = ("state_dict", "model", "net")


def import_robustbench():
    """Import and return ``robustbench`` (with ``robustbench.utils`` and ``.model_zoo`` loaded).

    RobustBench 1.1.1 imports ``autoattack`` and ``autoattack.state``; the package on PyPI
    is ``pyautoattack``, so it is registered under those names when no ``autoattack`` is
    installed. The pkg_resources deprecation warning robustbench triggers is silenced.
    """
    try:
        import autoattack.state  # noqa: F401  (the GitHub package, when installed)
    except ModuleNotFoundError:
        import pyautoattack
        import pyautoattack.state

        sys.modules.setdefault("autoattack", pyautoattack)
        sys.modules.setdefault("autoattack.state", pyautoattack.state)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message="Importing from timm", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.interface", category=FutureWarning)
        import robustbench
        import robustbench.model_zoo
        import robustbench.utils
    return robustbench


def _zoo() -> dict:
    """``{dataset: {threat_model: {name: entry}}}`` with plain-string keys."""
    model_dicts = import_robustbench().model_zoo.model_dicts
    return {ds.value: {tm.value: entries for tm, entries in threats.items()}
            for ds, threats in model_dicts.items()}


def zoo_names(dataset: str, threat_model: str) -> list[str]:
    """Names of the zoo entries for ``dataset`` (cifar10, cifar100, imagenet) and ``threat_model``."""
    zoo = _zoo()
    if dataset not in zoo:
        raise InputError(
            f"dataset.name = {dataset!r} has no RobustBench models; zoo models need one of: "
            f"{', '.join(zoo)}."
        )
    if threat_model not in zoo[dataset]:
        raise InputError(
            f"threat_model = {threat_model!r} is not in RobustBench's {dataset} zoo; allowed: "
            f"{', '.join(zoo[dataset])}."
        )
    return list(zoo[dataset][threat_model])


def check_zoo_name(name: str, dataset: str, threat_model: str, where: str = "models[?]") -> None:
    """Raise :class:`InputError` unless ``name`` is a zoo entry of ``dataset``/``threat_model``.

    ``where`` names the config entry, e.g. ``models[3]``; the message names
    ``{where}.zoo_name`` or ``{where}.threat_model`` and suggests the closest names.
    """
    try:
        names = zoo_names(dataset, threat_model)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    elsewhere = [f"{d}/{t}" for d, threats in _zoo().items() for t, entries in threats.items()
                 if name in entries]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    if elsewhere:
        hint += f" {name!r} exists in {', '.join(elsewhere)}."
    raise InputError(
        f"{where}.zoo_name = {name!r} is not in RobustBench's {dataset}/{threat_model} zoo "
        f"({len(names)} entries).{hint} See zoo_names({dataset!r}, {threat_model!r}) for all."
    )


def _split_spec(spec: str) -> tuple[str, str, str]:
    parts = spec.split("/", 2)
    if len(parts) != 3:
        raise InputError(f"robustbench architecture {spec!r} must read DATASET/THREAT_MODEL/NAME, "
                         "e.g. cifar10/Linf/Standard.")
    return parts[0], parts[1], parts[2]


def cache_path(resources_dir, dataset: str, threat_model: str, name: str) -> Path:
    """``{resources_dir}/robustbench/{dataset}/{threat_model}/{name}.pt`` (RobustBench's layout)."""
    return Path(resources_dir) / "robustbench" / dataset / threat_model / f"{name}.pt"


def _timm_name(name: str, dataset: str, threat_model: str) -> str | None:
    """The timm model RobustBench's ``load_model`` redirects ``name`` to, if any."""
    import timm

    candidate = f"{name.lower().replace('-', '_')}_{dataset}_{threat_model.lower()}"
    return candidate if timm.is_model(candidate) else None


def _hub_url(name: str, dataset: str, threat_model: str) -> str | None:
    """URL of the weights that timm or torchvision fetch for a zoo entry, if it is fetched that way."""
    timm_name = _timm_name(name, dataset, threat_model)
    if timm_name is not None:
        import timm

        return timm.models.get_pretrained_cfg(timm_name).url
    if dataset == "imagenet" and "Standard" in name:  # RobustBench returns torchvision's weights
        import torchvision

        return torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
    return None


def zoo_files(resources_dir, dataset: str, threat_model: str, name: str) -> list[Path]:
    """Every file RobustBench reads to load ``name`` (see the module docstring for the layout)."""
    import_robustbench()
    url = _hub_url(name, dataset, threat_model)
    if url is not None:
        return [Path(resources_dir) / "robustbench" / "hub" / "checkpoints" / Path(urlparse(url).path).name]
    path = cache_path(resources_dir, dataset, threat_model, name)
    gdrive = _zoo()[dataset][threat_model][name]["gdrive_id"]
    if isinstance(gdrive, list):
        return [path.with_name(f"{path.name}_m{i}.pt") for i in range(len(gdrive))]
    return [path]


def _source_hint(name: str, dataset: str, threat_model: str) -> str:
    url = _hub_url(name, dataset, threat_model)
    if url is not None:
        return url
    gdrive = _zoo()[dataset][threat_model][name]["gdrive_id"]
    ids = gdrive if isinstance(gdrive, list) else [gdrive]
    return ", ".join(f"https://drive.google.com/uc?id={i}" for i in ids)


def _is_web_page(path: Path) -> bool:
    """Whether ``path`` holds HTML (what gdown saves when Google Drive refuses a download)."""
    with path.open("rb") as file:
        return file.read(64).lstrip().startswith(b"<")


@contextmanager
def _hub_dir(path: Path):
    """Let torch.hub (used by timm and torchvision) cache downloads under ``path``."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(path))
    try:
        yield
    finally:
        torch.hub.set_dir(previous)


@contextmanager
def _full_unpickling():
    """Let ``torch.load`` calls that do not set ``weights_only`` unpickle any object."""
    previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous


def acquire_robustbench(name: str, dataset: str, threat_model: str, model_dir, offline: bool,
                        where: str = "models[?]") -> nn.Module:
    """Load zoo entry ``name`` as a frozen eval-mode module taking ``[N, 3, H, W]`` in ``[0, 1]``.

    Goes through ``robustbench.utils.load_model(model_dir=model_dir)``, which downloads
    missing files. With ``offline=True`` a missing file raises :class:`InputError` naming it
    and where to get it. Zoo files written before torch 2.6 may hold pickled Python objects
    besides tensors; as RobustBench itself did on those torch versions, such files (from the
    zoo's own list of sources) are then unpickled in full.
    """
    check_zoo_name(name, dataset, threat_model, where)
    robustbench = import_robustbench()
    model_dir = Path(model_dir)
    paths = zoo_files(model_dir.parent, dataset, threat_model, name)
    missing = [p for p in paths if not p.is_file()]
    if offline and missing:
        raise InputError(
            f"{where}: offline is true but RobustBench model {dataset}/{threat_model}/{name} is "
            f"not staged: missing {', '.join(map(str, missing))}. Download it from "
            f"{_source_hint(name, dataset, threat_model)} on a machine with internet and put it "
            "there under exactly that name, or set offline: false."
        )
    pages = [p for p in paths if p.is_file() and _is_web_page(p)]
    if pages:
        raise InputError(
            f"{where}: {', '.join(map(str, pages))} is a web page (Google Drive's download warning "
            "or quota page) saved instead of the weights; delete it and download the file from "
            f"{_source_hint(name, dataset, threat_model)} by hand to exactly that path."
        )

    def load():
        with _hub_dir(model_dir / "hub"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            return robustbench.utils.load_model(model_name=name, model_dir=str(model_dir),
                                                dataset=dataset, threat_model=threat_model)

    files = ", ".join(map(str, paths))
    try:
        try:
            model = load()
        except Exception as error:  # torch's weights-only refusal is an UnpicklingError
            if "Unsupported global" not in str(error):
                raise
            warnings.warn(f"{files} holds Python objects besides tensors; unpickling it in full "
                          "(a RobustBench zoo file, from the zoo's own list of sources).", stacklevel=2)
            with _full_unpickling(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
                model = load()
    except Exception as error:  # robustbench, gdown, torch and timm raise many unrelated types
        raise InputError(
            f"{where}: RobustBench model {dataset}/{threat_model}/{name} could not be loaded from "
            f"{files} ({type(error).__name__}: {brief(error)}). If a file is truncated or corrupt, delete "
            f"it and download it again from {_source_hint(name, dataset, threat_model)}."
        ) from error
    return freeze(model)


def build_architecture(spec: str) -> nn.Module:
    """The untrained network of zoo entry ``spec`` = ``DATASET/THREAT_MODEL/NAME``.

    Its ``state_dict`` keys are those of the module :func:`acquire_robustbench` returns, so
    :func:`fourier_masks.models.load_model` can rebuild a saved zoo model offline.
    """
    dataset, threat_model, name = _split_spec(spec)
    check_zoo_name(name, dataset, threat_model, where=f"architecture robustbench:{spec}")
    timm_name = _timm_name(name, dataset, threat_model)
    if timm_name is not None:
        import timm

        return timm.create_model(timm_name, pretrained=False, num_classes=ZOO_CLASSES[dataset])
    if dataset == "imagenet" and "Standard" in name:
        import torchvision

        zoo = import_robustbench().model_zoo.imagenet
        return zoo.normalize_model(torchvision.models.resnet50(weights=None), zoo.mu, zoo.sigma)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        return _zoo()[dataset][threat_model][name]["model"]()


def save_zoo_model(path, model: nn.Module, spec: str, input_shape, num_classes: int) -> None:
    """Write zoo model ``model`` (entry ``spec`` = ``DATASET/THREAT_MODEL/NAME``) as a model file."""
    save_model(path, Normalized(model), arch=f"robustbench:{spec}", input_shape=input_shape,
               num_classes=num_classes, source="robustbench")


def network_kwargs(arch: str, in_channels: int, num_classes: int) -> dict:
    """Builder keyword arguments of ``arch`` for ``in_channels`` inputs and ``num_classes`` outputs."""
    family = arch.partition(":")[0] if ":" in arch else None
    if family is None:
        return {"in_channels": in_channels, "num_classes": num_classes}
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
                     "'torchvision:NAME' or 'timm:NAME'.")


def _state_dict(record, path: Path) -> dict:
    """The weights inside a loaded checkpoint: nested under a common key, ``module.`` stripped."""
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
    return OrderedDict((k.removeprefix("module."), v) for k, v in record.items())


def acquire_checkpoint(path, arch: str, num_classes: int, input_shape, mean=None, std=None,
                       where: str = "models[?]") -> Normalized:
    """Load a state dict or training checkpoint into ``arch``; returns a frozen :class:`Normalized`.

    ``path``: a ``torch.save`` of a state dict, or of a dict holding it under
    ``state_dict``, ``model`` or ``net`` (``module.`` prefixes from DataParallel are
    stripped). ``input_shape`` is ``[C, H, W]``; ``mean``/``std`` the per-channel
    normalisation the network was trained with (``None`` if it takes ``[0, 1]`` pixels).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{where}.path = {str(path)!r} does not exist; point it to a torch checkpoint file.")
    record = load_tensors(path, f"{where}.path: checkpoint {path}",
                          "Expected a torch.save of a state dict (tensors only); if you trust the file, re-save "
                          "its weights alone: torch.save(torch.load(f, weights_only=False)['state_dict'], "
                          "'weights.pt').")
    state = _state_dict(record, path)
    network = build_network(arch, **network_kwargs(arch, int(input_shape[0]), int(num_classes)))
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or misshapen:
        raise InputError(
            f"{where}: checkpoint {path} does not fit arch {arch!r} with {num_classes} classes and "
            f"{input_shape[0]} input channels: missing keys {missing[:5]} ({len(missing)} in all), "
            f"unexpected keys {unexpected[:5]} ({len(unexpected)} in all), shape mismatches "
            f"{misshapen[:3]} ({len(misshapen)} in all)."
        )
    network.load_state_dict(state)
    return freeze(Normalized(network, mean, std))


def acquire(spec: dict, resources_dir, output, offline: bool = False, dataset: dict | None = None,
            where: str | None = None) -> None:
    """Write the model of config entry ``spec`` (``source`` robustbench or checkpoint) to ``output``.

    robustbench: ``zoo_name``, ``threat_model`` and ``dataset`` (``None`` = ``dataset.name``).
    checkpoint: ``path``, ``arch``, optional ``mean``/``std``, and ``num_classes``/
    ``input_shape`` (``None`` = what the ``dataset`` config section gives).
    ``dataset`` is the config's ``dataset`` section (with defaults filled).
    """
    from .external_data import dataset_shape

    where = where or f"models[{spec['name']}]"
    input_shape, num_classes = dataset_shape(dataset) if dataset else (None, None)
    if spec["source"] == "robustbench":
        zoo_dataset = spec.get("dataset") or (dataset or {}).get("name")
        name, threat_model = spec["zoo_name"], spec.get("threat_model", "Linf")
        if zoo_dataset is None:
            raise InputError(f"{where}.dataset is needed to find {name!r} in the zoo (or pass the dataset section).")
        if input_shape is None or dataset["name"] != zoo_dataset:
            input_shape = [3, 32, 32] if zoo_dataset.startswith("cifar") else [3, 224, 224]
        if input_shape[0] != 3:
            raise InputError(f"{where}: RobustBench models take RGB images; set dataset.channels to 3.")
        model = acquire_robustbench(name, zoo_dataset, threat_model, Path(resources_dir) / "robustbench",
                                    offline, where)
        save_zoo_model(output, model, f"{zoo_dataset}/{threat_model}/{name}", input_shape,
                       ZOO_CLASSES[zoo_dataset])
        return
    if spec["source"] != "checkpoint":
        raise InputError(f"{where}.source = {spec['source']!r} is not acquired; allowed: robustbench, checkpoint.")
    input_shape = spec.get("input_shape") or input_shape
    num_classes = spec.get("num_classes") or num_classes
    if num_classes is None or input_shape is None:
        raise InputError(f"{where}: set num_classes and input_shape; the dataset config does not fix them.")
    model = acquire_checkpoint(spec["path"], spec["arch"], num_classes, input_shape,
                               spec.get("mean"), spec.get("std"), where)
    save_model(output, model, arch=spec["arch"], input_shape=input_shape, num_classes=num_classes,
               source="checkpoint", arch_kwargs=network_kwargs(spec["arch"], input_shape[0], num_classes))


def missing_files(config: dict, resources_dir) -> list[tuple[str, Path]]:
    """``(model name, path)`` of every zoo or checkpoint file the models of ``config`` need but lack.

    Also checks each zoo name (raising :class:`InputError` as :func:`check_zoo_name` does),
    so calling it at parse time fails before any job runs.
    """
    missing = []
    for i, spec in enumerate(config["models"]):
        where = f"models[{i}] ({spec['name']})"
        if spec["source"] == "robustbench":
            dataset = spec.get("dataset") or config["dataset"]["name"]
            threat_model = spec.get("threat_model", "Linf")
            check_zoo_name(spec["zoo_name"], dataset, threat_model, where)
            paths = zoo_files(resources_dir, dataset, threat_model, spec["zoo_name"])
        elif spec["source"] == "checkpoint":
            paths = [Path(spec["path"])]
        else:
            continue
        missing += [(spec["name"], p) for p in paths if not p.is_file()]
    return missing
