"""One entry point for every dataset the config can name: ``load_dataset(cfg, resources_dir)``.

Also what a dataset config implies before any file is read: its image shape and number of
classes (:func:`dataset_shape`) and the files it needs (:func:`missing_files`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .cifar import CIFAR_FOLDERS, cifar
from .dataset import Dataset
from .folder import class_folders, folder
from .imagenet import IMAGENETTE_PAPER_CLASSES, imagenet, imagenette
from .photos import photo_patches
from .planted import planted

__all__ = ["DATASETS", "LOADERS", "load_dataset", "folder_classes", "dataset_shape", "missing_files"]


def _photos(cfg: dict, resources_dir) -> Dataset:
    return photo_patches(cfg["n_classes"], cfg["n_train"], cfg["n_test"], cfg["image_size"], cfg["channels"],
                         cfg["seed"])


def _planted(cfg: dict, resources_dir) -> Dataset:
    keys = ("image_size", "channels", "n_classes", "n_train", "n_test", "radius", "orientation", "seed", "snr")
    return planted(**{key: cfg[key] for key in keys})


def _external(cfg: dict, resources_dir) -> Dataset:
    return LOADERS[cfg["name"]](cfg, resources_dir)


def _root(cfg: dict, resources_dir) -> Path:
    return Path(cfg.get("root") or Path(resources_dir) / "data" / cfg["name"])


#: Dataset loaders by ``dataset.name``: callable(cfg, resources_dir) -> Dataset.
LOADERS = {
    "cifar10": lambda cfg, rd: cifar("cifar10", _root(cfg, rd), cfg.get("n_train", 0), cfg.get("n_test", 0),
                                     cfg.get("download", True), cfg.get("seed", 0)),
    "cifar100": lambda cfg, rd: cifar("cifar100", _root(cfg, rd), cfg.get("n_train", 0), cfg.get("n_test", 0),
                                      cfg.get("download", True), cfg.get("seed", 0)),
    "imagenet": lambda cfg, rd: imagenet(_root(cfg, rd), cfg.get("n_test", 5000), cfg.get("image_size", 224),
                                         cfg.get("robustbench_subset", False), cfg.get("n_train", 0),
                                         cfg.get("seed", 0)),
    "imagenette": lambda cfg, rd: imagenette(_root(cfg, rd), tuple(cfg.get("classes", IMAGENETTE_PAPER_CLASSES)),
                                             cfg.get("channels", 1), cfg.get("image_size", 128),
                                             cfg.get("n_train", 0), cfg.get("n_test", 0), cfg.get("seed", 0)),
    "folder": lambda cfg, rd: folder(_root(cfg, rd), cfg["image_size"], cfg["channels"], cfg["n_train"],
                                     cfg["n_test"], cfg["seed"], cfg["classes"], cfg["resize"], cfg["resize_size"]),
}


DATASETS = {"photos": _photos, "planted": _planted, "cifar10": _external, "cifar100": _external,
            "imagenet": _external, "imagenette": _external, "folder": _external}


def load_dataset(cfg: dict, resources_dir="resources") -> Dataset:
    """Build the dataset described by the config's ``dataset`` section."""
    if cfg["name"] not in DATASETS:
        raise InputError(f"dataset.name = {cfg['name']!r} is unknown; allowed: {', '.join(DATASETS)}.")
    return DATASETS[cfg["name"]](cfg, resources_dir)


def folder_classes(cfg: dict, resources_dir="resources") -> list[str] | None:
    """Class names in label order of the ``folder`` dataset config ``cfg``; ``None`` if its tree is absent.

    Raises :class:`InputError` for fewer than 2 classes.
    """
    train = _root(cfg, resources_dir) / "train"
    if cfg.get("classes"):
        return list(cfg["classes"])
    if not train.is_dir():
        return None
    names = class_folders(train)
    if len(names) < 2:
        raise InputError(f"dataset.root: {train} has {len(names)} class folder ({names}); a classifier needs at "
                         "least 2 classes, one subfolder of images each.")
    return names


def dataset_shape(cfg: dict, resources_dir="resources") -> tuple[list[int], int | None]:
    """``([C, H, W], number of classes)`` the dataset config ``cfg`` gives (classes ``None`` if unknown).

    Other datasets (``photos``, ``planted``) are read from ``channels``, ``image_size`` and
    ``n_classes``; a ``folder`` dataset's classes from ``classes`` or its class folders.
    """
    name = cfg["name"]
    if name in CIFAR_FOLDERS:
        return [3, 32, 32], {"cifar10": 10, "cifar100": 100}[name]
    size = cfg.get("image_size", {"imagenet": 224, "imagenette": 128}.get(name, 32))
    if name == "imagenet":
        return [3, size, size], 1000
    channels = cfg.get("channels", 1 if name == "imagenette" else 3)
    if name == "imagenette":
        return [channels, size, size], len(cfg.get("classes", IMAGENETTE_PAPER_CLASSES))
    if name == "folder":
        classes = folder_classes(cfg, resources_dir)
        return [channels, size, size], None if classes is None else len(classes)
    return [channels, size, size], cfg.get("n_classes")


def missing_files(cfg: dict, resources_dir="resources") -> list[Path]:
    """Files or folders the dataset config ``cfg`` needs that are absent (for ``offline: true``)."""
    if cfg["name"] not in LOADERS:
        return []
    root = _root(cfg, resources_dir)
    if cfg["name"] == "cifar10":
        needed = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    elif cfg["name"] == "cifar100":
        needed = ["train", "test", "meta"]
    else:
        needed = {"imagenet": ["val"], "imagenette": ["train", "val"], "folder": ["train"]}[cfg["name"]]
        return [root / n for n in needed if not (root / n).is_dir()]
    folder_ = root / CIFAR_FOLDERS[cfg["name"]]
    return [folder_ / n for n in needed if not (folder_ / n).is_file()]
