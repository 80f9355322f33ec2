"""What a config needs from outside, checked before any job: zoo names, entries that fit the data, staged files.

Snakemake runs :func:`check_sources` when it reads the workflow, so this module imports torch,
robustbench and the dataset readers only when a config needs them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..digests import file_sha256
from ..errors import InputError
from .sources import model_file
from .zoo_cache import cache_path, staged_files

__all__ = ["missing_files", "check_sources"]


def missing_files(config: dict, resources_dir) -> list[tuple[str, Path]]:
    """``(model name, path)`` of every zoo or model file the models of ``config`` need but lack.

    Also checks each zoo name (raising :class:`InputError` as :func:`check_zoo_name` does),
    so calling it at parse time fails before any job runs.
    """
    zoo = _zoo_checks() if any(spec["source"] == "robustbench" for spec in config["models"]) else None
    missing = []
    for i, spec in enumerate(config["models"]):
        where = f"models[{i}] ({spec['name']})"
        if spec["source"] == "robustbench":
            dataset = spec["dataset"] or config["dataset"]["name"]
            threat_model = spec["threat_model"]
            if zoo is None:  # a staged file stands for all: the rest is checked when the model is acquired
                paths = (staged_files(resources_dir, dataset, threat_model, spec["zoo_name"])
                         or [cache_path(resources_dir, dataset, threat_model, spec["zoo_name"])])
            else:
                zoo.check_zoo_name(spec["zoo_name"], dataset, threat_model, where)
                paths = zoo.zoo_files(resources_dir, dataset, threat_model, spec["zoo_name"])
        elif spec["source"] == "train":
            continue
        else:
            paths = [model_file(spec, resources_dir)]
        missing += [(spec["name"], p) for p in paths if not p.is_file()]
    return missing


def _zoo_checks():
    """Module :mod:`.zoo` where robustbench can be imported, else ``None`` (with a warning).

    Snakemake may run in an environment of its own without torch (``--sdm conda``); zoo names
    and files are then checked by rule acquire_model, in the rule's environment.
    """
    try:
        from . import zoo

        zoo.import_robustbench()
    except ImportError as error:
        warnings.warn(f"robustbench cannot be imported where Snakemake runs ({error}); RobustBench zoo names and "
                      "files are checked when rule acquire_model runs, in its own environment.", stacklevel=2)
        return None
    return zoo


def _check_own_models(config: dict, resources_dir) -> None:
    """Entries whose shapes do not fit the dataset, and local model files that are missing."""
    from ..data.preflight import dataset_shape

    shape, classes = dataset_shape(config["dataset"], resources_dir)
    for i, spec in enumerate(config["models"]):
        where = f"models[{i}] ({spec['name']})"
        if spec["source"] in ("train", "robustbench"):
            continue
        given = spec.get("input_shape")
        if given and shape and list(given) != list(shape):
            raise InputError(f"{where}.input_shape = {list(given)} does not match the dataset's images {list(shape)} "
                             "(dataset.channels, dataset.image_size); the masks are learned on the dataset's images.")
        if spec.get("num_classes") and classes and spec["num_classes"] != classes:
            raise InputError(f"{where}.num_classes = {spec['num_classes']} does not match the dataset's {classes} "
                             "classes; a model must be studied on data with its own classes.")
        if spec.get("path") and Path(spec["path"]).is_dir():
            raise InputError(f"{where}.path = {spec['path']!r} is a folder; name the model file in it "
                             f"({_listing(Path(spec['path']))}).")
        if spec.get("path") and not Path(spec["path"]).is_file() and not config["offline"]:
            raise InputError(f"{where}.path = {spec['path']!r} does not exist (relative paths are read from the "
                             f"working directory {os.getcwd()}).")
        _check_sha256(spec, resources_dir, where)
        if spec["source"] == "checkpoint":
            from .networks import check_builder_arguments

            check_builder_arguments(spec["arch"], spec.get("arch_kwargs") or {}, f"{where}.arch_kwargs")
        absent = [folder for folder in spec.get("python_path") or [] if not Path(folder).is_dir()]
        if absent:
            raise InputError(f"{where}.python_path names {absent}, which {'is' if len(absent) == 1 else 'are'} not a "
                             f"folder (relative paths are read from the working directory {os.getcwd()}); give the "
                             "folders that hold the architecture's modules.")


def _check_sha256(spec: dict, resources_dir, where: str) -> None:
    """A present model file whose content no longer has the entry's ``sha256`` (e.g. replaced in place)."""
    path = model_file(spec, resources_dir)
    found = file_sha256(path) if spec.get("sha256") and path.is_file() else None
    if found is not None and found != spec["sha256"].lower():
        raise InputError(f"{where}.sha256: {path} has SHA-256 {found}, but the entry expects "
                         f"{spec['sha256'].lower()}. The file changed since it was fetched or staged: fetch it "
                         "again (delete it), or correct sha256 if the new file is the one you mean.")


def _listing(folder: Path, most: int = 6) -> str:
    """A few file names in ``folder``, for an error message."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    return f"it holds {', '.join(names[:most])}{', ...' if len(names) > most else ''}" if names else "it holds no file"


def check_sources(config: dict, resources_dir="resources") -> None:
    """Fail before any job on a wrong zoo name, an entry that cannot fit the data, or missing files.

    Zoo names are checked whenever the config has RobustBench models (with the closest
    names suggested); model entries' ``input_shape`` and ``num_classes`` against the
    dataset; local ``path`` files, ``python_path`` folders, the dataset's folders and the
    ``sha256`` of every present model file always.
    Offline, every missing model or dataset file is listed with where to stage it, in one
    :class:`InputError`.
    """
    from ..data.preflight import check_folders

    check_folders(config["dataset"], resources_dir)
    acquired = [model for model in config["models"] if model["source"] != "train"]
    if not acquired and not config["offline"]:
        return
    missing = []
    if acquired:
        _check_own_models(config, resources_dir)
        specs = {model["name"]: model for model in acquired}
        missing = [f"{path}  (model {name}{', from ' + specs[name]['url'] if specs[name].get('url') else ''})"
                   for name, path in missing_files(config, resources_dir)]
    if not config["offline"]:
        return
    from ..data.preflight import missing_files as missing_data

    missing += [f"{path}  (dataset {config['dataset']['name']})"
                for path in missing_data(config["dataset"], resources_dir)]
    if missing:
        listing = "\n  ".join(missing)
        raise InputError(
            f"offline: true, but {len(missing)} file(s) are not staged:\n  {listing}\n"
            f"Copy them to these paths (RobustBench models in its own layout under {resources_dir}/robustbench, "
            f"models by URL under {resources_dir}/models/{{model}}/, datasets under {resources_dir}/data), "
            "or set offline: false to download them."
        )
