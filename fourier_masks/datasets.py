"""One entry point for every dataset the config can name: ``load_dataset(cfg, resources_dir)``."""

from __future__ import annotations

from .data import Dataset, photo_patches
from .errors import InputError

__all__ = ["DATASETS", "load_dataset"]


def _photos(cfg: dict, resources_dir) -> Dataset:
    return photo_patches(cfg["n_classes"], cfg["n_train"], cfg["n_test"], cfg["image_size"], cfg["channels"],
                         cfg["seed"])


def _planted(cfg: dict, resources_dir) -> Dataset:
    from .planted import planted

    keys = ("image_size", "channels", "n_classes", "n_train", "n_test", "radius", "orientation", "seed", "snr")
    return planted(**{key: cfg[key] for key in keys})


def _external(cfg: dict, resources_dir) -> Dataset:
    from .external_data import LOADERS

    return LOADERS[cfg["name"]](cfg, resources_dir)


DATASETS = {"photos": _photos, "planted": _planted, "cifar10": _external, "cifar100": _external,
            "imagenet": _external, "imagenette": _external, "folder": _external}


def load_dataset(cfg: dict, resources_dir="resources") -> Dataset:
    """Build the dataset described by the config's ``dataset`` section."""
    if cfg["name"] not in DATASETS:
        raise InputError(f"dataset.name = {cfg['name']!r} is unknown; allowed: {', '.join(DATASETS)}.")
    return DATASETS[cfg["name"]](cfg, resources_dir)
