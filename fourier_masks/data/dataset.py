"""Datasets as plain arrays: images ``uint8 [N, C, H, W]``, labels ``int64 [N]``.

Every dataset the pipeline uses is materialised once by :func:`save_dataset` into a folder
of ``.npy`` arrays plus a ``classes.parquet`` table, and read back by :func:`load_split`
as float32 tensors in ``[0, 1]``. Each source (photos, planted, CIFAR, ImageNet, image
folders) has its own module in this package; :mod:`.registry` picks one by ``dataset.name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import InputError

__all__ = [
    "Dataset",
    "SPLITS",
    "per_class_counts",
    "random_subset",
    "save_dataset",
    "load_split",
    "load_class_names",
    "to_float",
    "check_images",
]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` of both splits."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of split ``name`` (``train`` or ``test``)."""
        if name not in SPLITS:
            raise InputError(f"unknown split {name!r}; allowed: {', '.join(SPLITS)}")
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")


def per_class_counts(total: int, n_classes: int) -> list[int]:
    """``total`` items spread over ``n_classes`` as evenly as possible (earlier classes get the rest)."""
    base, extra = divmod(total, n_classes)
    return [base + (k < extra) for k in range(n_classes)]


def random_subset(n_available: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` items out of ``n_available`` in random order (all of them when n = 0)."""
    if n > n_available:
        raise InputError(f"asked for {n} images but only {n_available} are available.")
    return rng.permutation(n_available)[: n or n_available]


def save_dataset(dataset: Dataset, folder: str | Path) -> None:
    """Write ``{split}_images.npy``, ``{split}_labels.npy`` and ``classes.parquet``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        images, labels = dataset.split(split)
        check_images(images, f"{split} images")
        np.save(folder / f"{split}_images.npy", images)
        np.save(folder / f"{split}_labels.npy", labels.astype(np.int64))
    pd.DataFrame({"label": range(len(dataset.class_names)), "name": dataset.class_names}
                 ).to_parquet(folder / "classes.parquet", index=False)


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` images as a float32 tensor in ``[0, 1]``."""
    return torch.from_numpy(np.asarray(images)).float().div_(255.0)


def check_images(images, name: str = "images") -> None:
    """Raise :class:`InputError` unless ``images`` is ``[N, C, H, W]`` uint8, or float in [0, 1]."""
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1] not in (1, 3) or min(shape) < 1:
        raise InputError(
            f"{name} have shape {shape}; expected [N, C, H, W] with C = 1 or 3 and N, H, W >= 1."
        )
    dtype = str(images.dtype).replace("torch.", "")
    if dtype == "uint8":
        return
    if not dtype.startswith("float"):
        raise InputError(f"{name} have dtype {dtype}; expected uint8 or float in [0, 1].")
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    if not np.isfinite(array).all():
        raise InputError(f"{name} contain NaN or inf values; expected floats in [0, 1].")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InputError(
            f"{name} range over [{low:.3g}, {high:.3g}]; expected [0, 1] (pixel values / 255)."
        )


def load_split(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images float32 ``[N, C, H, W]`` in ``[0, 1]`` and labels int64 ``[N]`` of one split."""
    folder = Path(folder)
    paths = [folder / f"{split}_images.npy", folder / f"{split}_labels.npy"]
    arrays = []
    for path in paths:
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as error:
            raise InputError(
                f"cannot read {path}: {error}. Expected a .npy array written by "
                "save_dataset; delete it and rerun the prepare_dataset rule."
            ) from error
    images, labels = arrays
    check_images(images, str(paths[0]))
    if labels.shape != (images.shape[0],):
        raise InputError(
            f"{paths[1]} has shape {labels.shape}; expected ({images.shape[0]},) to match "
            f"{paths[0]}."
        )
    return to_float(images), torch.from_numpy(labels.astype(np.int64))


def load_class_names(folder: str | Path) -> list[str]:
    """Class names in label order, from ``classes.parquet``."""
    path = Path(folder) / "classes.parquet"
    try:
        return pd.read_parquet(path)["name"].astype(str).tolist()
    except Exception as error:  # pyarrow raises several types for truncated or foreign files
        raise InputError(f"{path} cannot be read ({type(error).__name__}: {error}); it is truncated or not "
                         "written by save_dataset. Delete it and rerun the prepare_dataset rule.") from error
