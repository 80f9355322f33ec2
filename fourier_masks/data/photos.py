"""The embedded default dataset: patches of real photographs bundled with scikit-image.

:func:`photo_patches` cuts each photograph into small patches, one class per photograph, with
train and test patches taken from disjoint blocks of each photograph so that no test pixel is
seen in training.

Example
-------
>>> data = photo_patches(n_classes=8, n_train=80, n_test=16, image_size=32, channels=3, seed=0)
>>> data.train_images.shape, data.train_images.dtype
((80, 3, 32, 32), dtype('uint8'))
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .dataset import SPLITS, Dataset, per_class_counts

__all__ = ["PHOTOGRAPHS", "photo_patches"]

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
    return np.stack([image[:, r : r + size, c : c + size] for r, c in zip(rows, cols, strict=True)])


def photo_patches(*, n_classes: int, n_train: int, n_test: int, image_size: int, channels: int,
                  seed: int) -> Dataset:
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
        blocks = dict(zip(("train", "test"), _split_blocks(n_blocks, test_fraction, rng), strict=True))
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
