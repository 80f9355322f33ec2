"""One entry point for every dataset the config can name: ``load_dataset(cfg, resources_dir)``.

What a dataset config implies before any file is read (shape, files, digest) is in
:mod:`fourier_masks.data.preflight`.
"""

from __future__ import annotations

from ..errors import InputError
from .cifar import cifar
from .dataset import Dataset
from .folder import folder
from .imagenet import imagenet, imagenette
from .photos import photo_patches
from .planted import planted
from .preflight import dataset_root

__all__ = ["DATASETS", "load_dataset"]


def _keys(cfg: dict, *keys: str) -> dict:
    return {key: cfg[key] for key in keys}


def _photos(cfg: dict, resources_dir) -> Dataset:
    return photo_patches(**_keys(cfg, "n_classes", "n_train", "n_test", "image_size", "channels", "seed"))


def _planted(cfg: dict, resources_dir) -> Dataset:
    return planted(**_keys(cfg, "image_size", "channels", "n_classes", "n_train", "n_test", "radius", "orientation",
                           "seed", "snr"))


def _cifar(cfg: dict, resources_dir) -> Dataset:
    return cifar(cfg["name"], dataset_root(cfg, resources_dir), **_keys(cfg, "n_train", "n_test", "download", "seed"))


def _imagenet(cfg: dict, resources_dir) -> Dataset:
    return imagenet(dataset_root(cfg, resources_dir),
                    **_keys(cfg, "n_test", "image_size", "robustbench_subset", "n_train", "seed"))


def _imagenette(cfg: dict, resources_dir) -> Dataset:
    return imagenette(dataset_root(cfg, resources_dir),
                      **_keys(cfg, "classes", "channels", "image_size", "n_train", "n_test", "seed"))


def _folder(cfg: dict, resources_dir) -> Dataset:
    return folder(dataset_root(cfg, resources_dir), **_keys(cfg, "image_size", "channels", "n_train", "n_test", "seed",
                                                     "classes", "resize", "resize_size"))


#: Dataset builders by ``dataset.name``: callable(checked dataset section, resources_dir) -> Dataset.
DATASETS = {"photos": _photos, "planted": _planted, "cifar10": _cifar, "cifar100": _cifar, "imagenet": _imagenet,
            "imagenette": _imagenette, "folder": _folder}

def load_dataset(cfg: dict, resources_dir="resources") -> Dataset:
    """Build the dataset described by a checked config's ``dataset`` section (every key filled in)."""
    if cfg["name"] not in DATASETS:
        raise InputError(f"dataset.name = {cfg['name']!r} is unknown; allowed: {', '.join(DATASETS)}.")
    return DATASETS[cfg["name"]](cfg, resources_dir)


