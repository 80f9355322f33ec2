"""CIFAR-10 and CIFAR-100 through torchvision.

Layouts (``root`` defaults to ``{resources_dir}/data/{name}``)::

    cifar10     root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar100    root/cifar-100-python/{train, test, meta}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .dataset import Dataset, random_subset
from .preflight import CIFAR_FOLDERS

__all__ = ["cifar"]


def cifar(name: str, root, *, n_train: int, n_test: int, download: bool, seed: int) -> Dataset:
    """CIFAR-10 or CIFAR-100 (``name``) through torchvision, images ``uint8 [N, 3, 32, 32]``.

    ``download`` fetches the archive into ``root`` when absent (torchvision checks its md5);
    ``n_train``/``n_test`` = 0 keep the whole split (50000 / 10000).
    """
    import torchvision

    classes = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
    if name not in classes:
        raise InputError(f"dataset.name = {name!r} is not a CIFAR dataset; allowed: cifar10, cifar100.")
    rng = np.random.default_rng(seed)
    arrays = {}
    try:
        for split, n in (("train", n_train), ("test", n_test)):
            data = classes[name](root=str(root), train=split == "train", download=download)
            index = random_subset(len(data.targets), n, rng)
            arrays[f"{split}_images"] = np.ascontiguousarray(data.data[index].transpose(0, 3, 1, 2))
            arrays[f"{split}_labels"] = np.asarray(data.targets, dtype=np.int64)[index]
    except (RuntimeError, OSError) as error:  # not found / corrupted, or a failed download
        raise InputError(
            f"dataset.root = {str(root)!r}: {error} Expected {Path(root) / CIFAR_FOLDERS[name]} "
            "with the files of the python version of the archive from "
            "https://www.cs.toronto.edu/~kriz/cifar.html; with dataset.download: true it is fetched."
        ) from error
    except InputError as error:
        raise InputError(f"dataset.n_train / n_test: {error}") from None
    return Dataset(class_names=tuple(data.classes), **arrays)
