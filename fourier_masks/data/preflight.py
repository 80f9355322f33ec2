"""What a dataset config implies before any image is read: shape, classes, files, folders, digest.

Plain paths and strings, no numpy or torch: Snakemake calls these when it builds the job
graph (:func:`check_folders`, :func:`missing_files` for ``offline: true``, and
:func:`source_digest` as a param of rule prepare_dataset).
"""

from __future__ import annotations

from pathlib import Path

from ..digests import tree_digest
from ..errors import InputError

__all__ = ["CIFAR_FOLDERS", "EXTERNAL", "IMAGE_EXTENSIONS", "IMAGE_FOLDERS", "dataset_root", "class_folders",
           "folder_classes", "dataset_shape", "missing_files", "check_folders", "source_digest"]

#: The folder each CIFAR archive unpacks to under ``dataset.root``.
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}

#: Image file types the image-tree loaders read.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

#: Datasets read from files under ``dataset.root`` rather than generated.
EXTERNAL = ("cifar10", "cifar100", "imagenet", "imagenette", "folder")

#: Folders under ``dataset.root`` whose images the image-tree loaders read.
IMAGE_FOLDERS = {"folder": ("train", "test", "val"), "imagenette": ("train", "val"), "imagenet": ("val",)}


def dataset_root(cfg: dict, resources_dir) -> Path:
    """``dataset.root``, or ``{resources_dir}/data/{name}`` when it is ``null``."""
    return Path(cfg["root"] or Path(resources_dir) / "data" / cfg["name"])


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the subfolders of ``folder`` (hidden ones, like .ipynb_checkpoints, left out)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_classes(cfg: dict, resources_dir="resources") -> list[str] | None:
    """Class names in label order of the ``folder`` dataset config ``cfg``; ``None`` if its tree is absent.

    Raises :class:`InputError` for fewer than 2 classes.
    """
    train = dataset_root(cfg, resources_dir) / "train"
    if cfg["classes"]:
        return list(cfg["classes"])
    if not train.is_dir():
        return None
    names = class_folders(train)
    if len(names) < 2:
        raise InputError(f"dataset.root: {train} has {len(names)} class folder ({names}); a classifier needs at "
                         "least 2 classes, one subfolder of images each.")
    return names


def dataset_shape(cfg: dict, resources_dir="resources") -> tuple[list[int], int | None]:
    """``([C, H, W], number of classes)`` a checked dataset section ``cfg`` gives (classes ``None`` if unknown).

    Other datasets (``photos``, ``planted``) are read from ``channels``, ``image_size`` and
    ``n_classes``; a ``folder`` dataset's classes from ``classes`` or its class folders.
    """
    name = cfg["name"]
    if name in CIFAR_FOLDERS:
        return [3, 32, 32], {"cifar10": 10, "cifar100": 100}[name]
    if name == "imagenet":
        return [3, cfg["image_size"], cfg["image_size"]], 1000
    shape = [cfg["channels"], cfg["image_size"], cfg["image_size"]]
    if name == "imagenette":
        return shape, len(cfg["classes"])
    if name == "folder":
        classes = folder_classes(cfg, resources_dir)
        return shape, None if classes is None else len(classes)
    return shape, cfg["n_classes"]


def missing_files(cfg: dict, resources_dir="resources") -> list[Path]:
    """Files or folders the dataset config ``cfg`` needs that are absent (for ``offline: true``)."""
    if cfg["name"] not in EXTERNAL:
        return []
    root = dataset_root(cfg, resources_dir)
    if cfg["name"] == "cifar10":
        needed = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    elif cfg["name"] == "cifar100":
        needed = ["train", "test", "meta"]
    else:
        needed = {"imagenet": ["val"], "imagenette": ["train", "val"], "folder": ["train"]}[cfg["name"]]
        return [root / n for n in needed if not (root / n).is_dir()]
    folder_ = root / CIFAR_FOLDERS[cfg["name"]]
    return [folder_ / n for n in needed if not (folder_ / n).is_file()]


def check_folders(cfg: dict, resources_dir="resources") -> None:
    """Raise :class:`InputError` before any job for folders a dataset config names that are not there.

    A ``folder`` dataset's ``root`` must be a folder (nothing can fetch it); where an image
    tree is present, every name in ``classes`` must be a class folder of each split.
    """
    if cfg["name"] not in ("folder", "imagenette", "imagenet"):
        return
    root = dataset_root(cfg, resources_dir)
    if cfg["name"] == "folder" and not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise InputError(f"dataset.root = {str(root)!r} {what}; a folder dataset needs a folder with "
                         "train/{class}/* and test/{class}/* (or val/) images, which nothing here can download.")
    for split in ("train", "test", "val"):
        tree = root / split
        if not cfg.get("classes") or not tree.is_dir():
            continue
        found = set(class_folders(tree))
        absent = [name for name in cfg["classes"] if name not in found]
        if absent:
            raise InputError(f"dataset.classes names {absent}, which {tree} lacks as class folders; it has "
                             f"{sorted(found)[:10]}{' ...' if len(found) > 10 else ''}. Name the class folders in "
                             "the model's label order.")


def source_digest(cfg: dict, resources_dir="resources") -> str | None:
    """Content digest of every image file of the dataset config ``cfg`` (:func:`fourier_masks.digests.tree_digest`).

    Image-tree datasets (``folder``, ``imagenette``, ``imagenet``): the image files under
    ``root/train``, ``root/test`` and ``root/val`` (those the loader may read), by path and
    bytes, so adding, removing, renaming or changing one changes the digest, even with its
    old size and modification time; rule prepare_dataset passes it as a param, which makes
    Snakemake rebuild the arrays. ``None`` for datasets made here (``photos``, ``planted``)
    and for CIFAR, whose files torchvision checks against their md5 sums on every load.
    """
    if cfg["name"] not in IMAGE_FOLDERS:
        return None
    root = dataset_root(cfg, resources_dir)
    paths = [p for split in IMAGE_FOLDERS[cfg["name"]] for p in (root / split).rglob("*")
             if p.suffix.lower() in IMAGE_EXTENSIONS]
    return tree_digest(paths, root)
