"""ImageNet validation images and Imagenette, read from class-per-folder trees of JPEGs.

Layouts (``root`` defaults to ``{resources_dir}/data/{name}``)::

    imagenet    root/val/{wnid}/*.JPEG            (ImageNet validation, 1000 wnids)
    imagenette  root/{train,val}/{wnid}/*.JPEG    (e.g. imagenette2 or imagenette2-320)

Images are decoded as :mod:`.folder` describes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dataset import Dataset
from .folder import check_root, class_files, from_folders, load_images

__all__ = ["imagenet", "imagenette"]


def imagenette(root, *, classes, channels: int, image_size: int, n_train: int, n_test: int, seed: int) -> Dataset:
    """Imagenette (``root/train``, ``root/val`` with WNID folders), the WNIDs ``classes`` only.

    Train images come from ``train``, test images from ``val``; shorter side resized to
    ``image_size`` and centre-cropped, as the authors' test transform (they use grayscale,
    ``channels=1``, PIL luma, and five classes: the config's defaults). Labels index
    ``classes`` in the order given.
    """
    root = check_root(root)
    return from_folders(root / "train", root / "val", list(classes), image_size, channels,
                        n_train, n_test, seed, "shorter_side", image_size)


def _robustbench_file(name: str) -> Path:
    """A helper file shipped with robustbench, found without importing it."""
    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("dataset.robustbench_subset needs the robustbench package; install the 'zoo' extra.")
    return Path(spec.submodule_search_locations[0]) / "helper_files" / name


def imagenet(root, *, n_test: int, image_size: int, robustbench_subset: bool, n_train: int, seed: int) -> Dataset:
    """ImageNet validation images (``root/val/{wnid}/*``), labels in the standard 1000-class order.

    Shorter side resized to ``image_size * 256 / 224`` then centre-cropped (RobustBench's
    Res256Crop224 at 224). With ``robustbench_subset`` the images are RobustBench's fixed
    5000-image list in its order, otherwise a seeded shuffle of every validation image.
    The first ``n_test`` form the test split, the next ``n_train`` the train split (images
    for fitting masks; the zoo models were trained on none of them).
    """
    root = check_root(root)
    val = root / "val"
    class_index = json.loads(_robustbench_file("imagenet_class_to_id_map.json").read_text())
    class_names = tuple(sorted(class_index, key=class_index.get))
    if robustbench_subset:
        lines = _robustbench_file("imagenet_test_image_ids.txt").read_text().split()
        files = [val / line for line in lines]
    else:
        tree = class_files(val, None)
        unknown = [c for c in tree if c not in class_index]
        if unknown:
            raise InputError(f"{val} has folders that are not ImageNet WNIDs: {unknown[:5]}.")
        files = [p for c in tree for p in tree[c]]
        files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    if n_test + n_train > len(files) or n_test < 1:
        raise InputError(
            f"dataset.n_test = {n_test} and n_train = {n_train} need 1 <= n_test and n_test + n_train "
            f"<= {len(files)} validation images{' (the RobustBench list)' if robustbench_subset else ''}."
        )
    chosen = {"test": files[:n_test], "train": files[n_test:n_test + n_train]}
    absent = [p for p in chosen["test"] + chosen["train"] if not p.is_file()]
    if absent:
        raise InputError(
            f"{len(absent)} ImageNet validation images are missing from {val}, e.g. {absent[0]}; "
            "expected the validation set sorted into one folder per WNID."
        )
    resize_size = round(image_size * 256 / 224)
    arrays = {}
    for split, paths in chosen.items():
        arrays[f"{split}_images"] = load_images(paths, image_size, 3, "shorter_side", resize_size)
        arrays[f"{split}_labels"] = np.array([class_index[p.parent.name] for p in paths], dtype=np.int64)
    return Dataset(class_names=class_names, **arrays)
