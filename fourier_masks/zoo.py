"""Acquiring trained classifiers: the RobustBench model zoo and the user's own model files.

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
they are saved with ``mean = std = None``. The user's own models come as a checkpoint for an
architecture (``source: checkpoint``), a TorchScript archive or a torch.export program
(:mod:`.programs`), from a ``path`` or a ``url`` fetched by :func:`fourier_masks.sources.download`.

Nothing is unpickled beyond tensors unless the model entry says ``trust_pickle: true``.
"""

from __future__ import annotations

import difflib
import itertools
import math
import sys
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from .errors import InputError, brief
from .models import (ARCHITECTURES, Normalized, accuracy, build_network, freeze, load_tensors, on_sys_path,
                     save_model, torch_load_mode)

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
    "read_checkpoint",
    "acquire_checkpoint",
    "output_classes",
    "acquire",
    "check_accuracy",
    "missing_files",
    "ZOO_CLASSES",
]

#: Number of classes of each RobustBench dataset.
ZOO_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}

#: Keys under which training scripts commonly nest the weights of a checkpoint.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")

#: Prefixes that wrappers add to every weight name: DataParallel / DDP and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

#: The clean accuracy at or below which an acquired model is taken not to see the data as
#: it was trained, as a multiple of chance (the share of the most frequent test label).
CHANCE_FACTOR = 1.5


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


def _refused_pickle(files: list[Path], where: str) -> InputError:
    """The error for a file that holds Python objects besides tensors, with how to proceed."""
    first = files[0]
    return InputError(
        f"{where}: {', '.join(map(str, files))} holds Python objects besides tensors, and unpickling them "
        f"can run code. If you trust the file, set {where}.trust_pickle: true, or re-save its weights "
        f"alone: python -c \"import torch; c = torch.load('{first}', weights_only=False); torch.save("
        f"{{'state_dict': c['state_dict'] if isinstance(c, dict) else c.state_dict()}}, '{first}')\"."
    )


def acquire_robustbench(name: str, dataset: str, threat_model: str, model_dir, offline: bool,
                        where: str = "models[?]", trust_pickle: bool = False) -> nn.Module:
    """Load zoo entry ``name`` as a frozen eval-mode module taking ``[N, 3, H, W]`` in ``[0, 1]``.

    Goes through ``robustbench.utils.load_model(model_dir=model_dir)``, which downloads
    missing files. With ``offline=True`` a missing file raises :class:`InputError` naming it
    and where to get it. Files are read as tensors only; some zoo files written before
    torch 2.6 hold pickled Python objects besides tensors, and are unpickled in full only
    with ``trust_pickle=True`` (otherwise :class:`InputError` says how to re-save them).
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

    def load(weights_only: bool):
        with _hub_dir(model_dir / "hub"), torch_load_mode(weights_only), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
            return robustbench.utils.load_model(model_name=name, model_dir=str(model_dir),
                                                dataset=dataset, threat_model=threat_model)

    try:
        try:
            model = load(weights_only=True)
        except Exception as error:  # torch's weights-only refusal is an UnpicklingError
            if "Weights only load failed" not in str(error):
                raise
            if not trust_pickle:
                raise _refused_pickle(paths, where) from error
            model = load(weights_only=False)
    except InputError:
        raise
    except Exception as error:  # robustbench, gdown, torch and timm raise many unrelated types
        raise InputError(
            f"{where}: RobustBench model {dataset}/{threat_model}/{name} could not be loaded from "
            f"{', '.join(map(str, paths))} ({type(error).__name__}: {brief(error)}). If a file is truncated or "
            f"corrupt, delete it and download it again from {_source_hint(name, dataset, threat_model)}."
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
    return OrderedDict(zip(keys, state.values()))


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


def read_checkpoint(path, where: str = "models[?]", trust_pickle: bool = False, python_path=()):
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
               and all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-7) for x, y in zip(a, b))
               for a, b in zip((mean, std), stored))
    if not same:
        raise InputError(
            f"{where}: mean = {mean}, std = {std} differ from the normalisation stored in {path} (mean = "
            f"{stored[0]}, std = {stored[1]}); remove mean and std from the entry to use the stored ones, "
            "or correct them."
        )
    return mean, std


def _fit_weights(network: nn.Module, state: dict, path: Path, arch: str, where: str) -> None:
    """Load ``state`` into ``network``, or list the first missing, unexpected and misshapen keys."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or misshapen:
        raise InputError(
            f"{where}: checkpoint {path} does not fit arch {arch!r}: missing keys {missing[:5]} "
            f"({len(missing)} in all), unexpected keys {unexpected[:5]} ({len(unexpected)} in all), shape "
            f"mismatches {misshapen[:3]} ({len(misshapen)} in all)."
        )
    network.load_state_dict(state)


def acquire_checkpoint(path, arch: str, num_classes: int | None, input_shape, mean=None, std=None,
                       where: str = "models[?]", *, arch_kwargs: dict | None = None, python_path=(),
                       trust_pickle: bool = False) -> tuple[Normalized, dict]:
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
    record = read_checkpoint(path, where, trust_pickle, python_path)
    mean, std = _normalisation(record, mean, std, path, where)
    state = _state_dict(record, path)
    if num_classes is None and not arch.startswith("import:"):
        raise InputError(f"{where}: set num_classes; the dataset config does not fix the number of classes.")
    kwargs = {**network_kwargs(arch, int(input_shape[0]), num_classes or 0), **(arch_kwargs or {})}
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


def _acquire_own(spec: dict, path: Path, input_shape, num_classes, where: str):
    """``(model, save_model keyword arguments)`` of a checkpoint, torchscript or exported entry."""
    from .programs import load_program

    mean, std = spec.get("mean"), spec.get("std")
    if spec["source"] == "checkpoint":
        arch = spec["arch"]
        python_path = spec.get("python_path") or []
        model, kwargs = acquire_checkpoint(path, arch, num_classes, input_shape, mean, std, where,
                                           arch_kwargs=spec.get("arch_kwargs"), python_path=python_path,
                                           trust_pickle=bool(spec.get("trust_pickle")))
        return model, {"arch": arch, "arch_kwargs": kwargs, "python_path": python_path}
    data = path.read_bytes()
    network = load_program(spec["source"], data, f"{where}: {spec['source']} file {path}")
    return freeze(Normalized(network, mean, std)), {"arch": spec["source"], "program": data}


def acquire(spec: dict, resources_dir, output, offline: bool = False, dataset: dict | None = None,
            where: str | None = None) -> None:
    """Write the model of config entry ``spec`` (any source but ``train``) to ``output``.

    robustbench: ``zoo_name``, ``threat_model``, ``dataset`` (``None`` = ``dataset.name``),
    ``trust_pickle``. checkpoint: ``path`` or ``url`` (with ``sha256``), ``arch``,
    ``arch_kwargs``, ``python_path``, ``trust_pickle``; torchscript and exported: ``path``
    or ``url``. All three: optional ``mean``/``std``, ``num_classes`` and ``input_shape``
    (``None`` = what the ``dataset`` config section gives); the network's number of outputs
    must match them. ``dataset`` is the config's ``dataset`` section (defaults filled).
    """
    from .external_data import dataset_shape
    from .sources import model_file, verify_sha256

    where = where or f"models[{spec['name']}]"
    if spec["source"] == "robustbench":
        _acquire_zoo(spec, resources_dir, output, offline, dataset, where)
        return
    input_shape, num_classes = dataset_shape(dataset, resources_dir) if dataset else (None, None)
    path = model_file(spec, resources_dir)
    if not path.is_file():
        key = "path" if spec.get("path") else "url"
        raise InputError(f"{where}.{key}: model file {path} does not exist; stage it there or fix {key}.")
    if spec.get("sha256"):
        verify_sha256(path, spec["sha256"], where)
    input_shape = list(spec.get("input_shape") or input_shape or [])
    if len(input_shape) != 3:
        raise InputError(f"{where}: set input_shape [C, H, W]; the dataset config does not fix it.")
    expected = spec.get("num_classes") or num_classes
    model, saved = _acquire_own(spec, path, input_shape, expected, where)
    found = output_classes(model, input_shape, where)
    if expected not in (None, found):
        origin = f"{where}.num_classes" if spec.get("num_classes") else "the dataset"
        raise InputError(f"{where}: the network has {found} outputs but {origin} has {expected} classes; a model "
                         "must be studied on data with its own classes (set dataset.classes to its label order).")
    save_model(output, model, input_shape=input_shape, num_classes=found, source=spec["source"], **saved)


def _acquire_zoo(spec: dict, resources_dir, output, offline: bool, dataset: dict | None, where: str) -> None:
    """:func:`acquire` of a RobustBench entry."""
    from .external_data import dataset_shape

    input_shape = dataset_shape(dataset, resources_dir)[0] if dataset else None
    zoo_dataset = spec.get("dataset") or (dataset or {}).get("name")
    name, threat_model = spec["zoo_name"], spec.get("threat_model", "Linf")
    if zoo_dataset is None:
        raise InputError(f"{where}.dataset is needed to find {name!r} in the zoo (or pass the dataset section).")
    if input_shape is None or dataset["name"] != zoo_dataset:
        input_shape = [3, 32, 32] if zoo_dataset.startswith("cifar") else [3, 224, 224]
    if input_shape[0] != 3:
        raise InputError(f"{where}: RobustBench models take RGB images; set dataset.channels to 3.")
    model = acquire_robustbench(name, zoo_dataset, threat_model, Path(resources_dir) / "robustbench",
                                offline, where, bool(spec.get("trust_pickle")))
    save_zoo_model(output, model, f"{zoo_dataset}/{threat_model}/{name}", input_shape, ZOO_CLASSES[zoo_dataset])


def check_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, class_names, *, where: str,
                   chance_check: bool, expected_accuracy: float | None, accuracy_tolerance: float) -> float:
    """Clean accuracy of an acquired model on the test split, refused when it cannot be right.

    ``images`` float ``[N, C, H, W]`` in ``[0, 1]``, ``labels`` int64 ``[N]``. Raises
    :class:`InputError` when the model's outputs do not match ``class_names``, when
    ``chance_check`` is on and the accuracy is at or below :data:`CHANCE_FACTOR` x chance
    (the share of the most frequent label), or when it is more than ``accuracy_tolerance``
    away from ``expected_accuracy`` (if not ``None``).
    """
    found = output_classes(model, images.shape[1:], where)
    if found != len(class_names):
        raise InputError(f"{where}: the network has {found} outputs but the dataset has {len(class_names)} classes "
                         f"({', '.join(map(str, class_names[:6]))}{', ...' if len(class_names) > 6 else ''}).")
    measured = accuracy(model, images, labels)
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


def missing_files(config: dict, resources_dir) -> list[tuple[str, Path]]:
    """``(model name, path)`` of every zoo or model file the models of ``config`` need but lack.

    Also checks each zoo name (raising :class:`InputError` as :func:`check_zoo_name` does),
    so calling it at parse time fails before any job runs.
    """
    from .sources import model_file

    missing = []
    for i, spec in enumerate(config["models"]):
        where = f"models[{i}] ({spec['name']})"
        if spec["source"] == "robustbench":
            dataset = spec.get("dataset") or config["dataset"]["name"]
            threat_model = spec.get("threat_model", "Linf")
            check_zoo_name(spec["zoo_name"], dataset, threat_model, where)
            paths = zoo_files(resources_dir, dataset, threat_model, spec["zoo_name"])
        elif spec["source"] == "train":
            continue
        else:
            paths = [model_file(spec, resources_dir)]
        missing += [(spec["name"], p) for p in paths if not p.is_file()]
    return missing
