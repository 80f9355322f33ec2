"""The RobustBench model zoo: names, the files each entry needs, and loading an entry.

This is the one module that imports ``robustbench``. Zoo weights live in RobustBench's own
layout under ``{resources_dir}/robustbench`` (its ``model_dir``, see
:mod:`fourier_masks.models.zoo_cache`); entries that timm or torchvision fetch from a URL
(XCiT, DeiT, AlexNet, ImageNet Standard_R50) keep theirs in ``hub/checkpoints/``.

With ``offline: false`` missing files are downloaded (Google Drive, GitHub releases); with
``offline: true`` they must be staged there beforehand (:func:`fourier_masks.models.preflight.missing_files`
lists them). Zoo models take ``[N, 3, H, W]`` pixels in ``[0, 1]`` (their normalisation is
inside them). :func:`build_architecture` rebuilds the untrained network of an entry, which is
how :func:`fourier_masks.models.files.load_model` reads a saved ``robustbench:`` model offline.

Nothing is unpickled beyond tensors unless the model entry says ``trust_pickle: true``.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import InputError, brief
from .networks import freeze
from .safe_load import torch_load_mode
from .zoo_cache import cache_path, record_fetch

__all__ = [
    "ZOO_CLASSES",
    "import_robustbench",
    "zoo_names",
    "check_zoo_name",
    "zoo_files",
    "acquire_robustbench",
    "build_architecture",
]

#: Number of classes of each RobustBench dataset.
ZOO_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}


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
                        where: str = "models[?]", *, trust_pickle: bool) -> nn.Module:
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
    if missing:
        record_fetch(model_dir.parent, dataset, threat_model, name, paths)
    return freeze(model)


def build_architecture(spec: str) -> nn.Module:
    """The untrained network of zoo entry ``spec`` = ``DATASET/THREAT_MODEL/NAME``.

    Its ``state_dict`` keys are those of the module :func:`acquire_robustbench` returns, so
    :func:`fourier_masks.models.files.load_model` can rebuild a saved zoo model offline.
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


