"""Datasets as plain arrays: images ``uint8 [N, C, H, W]``, labels ``int64 [N]``.

Every dataset the pipeline uses is materialised once by :func:`save_dataset` into a folder
of ``.npy`` arrays plus a ``classes.parquet`` table, and read back by :func:`load_split`
as float32 tensors in ``[0, 1]``.

The embedded default, :func:`photo_patches`, cuts real photographs bundled with
scikit-image into small patches, one class per photograph, with train and test patches taken
from disjoint blocks of each photograph so that no test pixel is seen in training.

Example
-------
>>> data = photo_patches(n_classes=8, n_train=80, n_test=16, image_size=32, seed=0)
>>> data.train_images.shape, data.train_images.dtype
((80, 3, 32, 32), dtype('uint8'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import InputError

__all__ = [
    "PHOTOGRAPHS",
    "Dataset",
    "photo_patches",
    "save_dataset",
    "load_split",
    "load_class_names",
    "to_float",
    "check_images",
    "SPLITS",
]

#: scikit-image photographs usable as classes, in the order classes are taken.
PHOTOGRAPHS = (
    "astronaut",
    "brick",
    "camera",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
    "chelsea",
    "cell",
    "clock",
    "page",
    "text",
)

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


def _photograph(name: str, channels: int) -> np.ndarray:
    """Photograph ``name`` from scikit-image as uint8 ``[C, H, W]``."""
    import skimage.color
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if channels == 1:
        if image.ndim == 3:
            image = (skimage.color.rgb2gray(image) * 255).round().astype(np.uint8)
        return image[None]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def _split_blocks(n_blocks: int, test_fraction: float, rng: np.random.Generator):
    """Shuffle block ids and split them into (train, test), each non-empty."""
    order = rng.permutation(n_blocks)
    n_test = int(np.clip(round(n_blocks * test_fraction), 1, n_blocks - 1))
    return order[n_test:], order[:n_test]


def _sample_patches(image, blocks, block, size, count, rng):
    """``count`` random patches ``[count, C, size, size]`` lying inside the given blocks."""
    blocks_per_row = image.shape[-1] // block
    chosen = rng.choice(blocks, size=count, replace=True)
    rows = (chosen // blocks_per_row) * block + rng.integers(0, block - size + 1, count)
    cols = (chosen % blocks_per_row) * block + rng.integers(0, block - size + 1, count)
    return np.stack([image[:, r : r + size, c : c + size] for r, c in zip(rows, cols)])


def per_class_counts(total: int, n_classes: int) -> list[int]:
    """``total`` items spread over ``n_classes`` as evenly as possible (earlier classes get the rest)."""
    base, extra = divmod(total, n_classes)
    return [base + (k < extra) for k in range(n_classes)]


def photo_patches(
    n_classes: int = 10,
    n_train: int = 5000,
    n_test: int = 1000,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
) -> Dataset:
    """Patches of scikit-image photographs, one class per photograph.

    Each photograph is tiled into square blocks of side ``2 * image_size``; blocks are
    split at random into train and test blocks, and every patch lies inside one block, so
    train and test patches never share a pixel.

    Parameters
    ----------
    n_classes : number of photographs (classes), at most ``len(PHOTOGRAPHS)``.
    n_train, n_test : total patches per split, spread evenly over classes.
    image_size : patch side in pixels.
    channels : 1 (grayscale) or 3 (RGB; grayscale photographs are replicated).
    seed : seeds the block split and patch positions; same seed, same arrays.
    """
    if not 2 <= n_classes <= len(PHOTOGRAPHS):
        raise InputError(
            f"dataset.n_classes = {n_classes} is out of range: the photos dataset has "
            f"between 2 and {len(PHOTOGRAPHS)} classes (one per photograph)."
        )
    if channels not in (1, 3):
        raise InputError(f"dataset.channels = {channels} is not allowed; use 1 or 3.")
    rng = np.random.default_rng(seed)
    block = 2 * image_size
    test_fraction = n_test / (n_train + n_test)
    parts = {"train": ([], []), "test": ([], [])}
    counts = {"train": per_class_counts(n_train, n_classes),
              "test": per_class_counts(n_test, n_classes)}
    for label, name in enumerate(PHOTOGRAPHS[:n_classes]):
        image = _photograph(name, channels)
        n_blocks = (image.shape[1] // block) * (image.shape[2] // block)
        if n_blocks < 2:
            raise InputError(
                f"photograph {name!r} ({image.shape[1]}x{image.shape[2]}) is too small for "
                f"dataset.image_size = {image_size}: it needs two {block}x{block} blocks."
            )
        blocks = dict(zip(("train", "test"), _split_blocks(n_blocks, test_fraction, rng)))
        for split in SPLITS:
            patches = _sample_patches(image, blocks[split], block, image_size,
                                      counts[split][label], rng)
            parts[split][0].append(patches)
            parts[split][1].append(np.full(len(patches), label, dtype=np.int64))
    arrays = {}
    for split in SPLITS:
        images = np.concatenate(parts[split][0])
        labels = np.concatenate(parts[split][1])
        order = rng.permutation(len(labels))
        arrays[f"{split}_images"] = np.ascontiguousarray(images[order])
        arrays[f"{split}_labels"] = labels[order]
    return Dataset(class_names=tuple(PHOTOGRAPHS[:n_classes]), **arrays)


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
