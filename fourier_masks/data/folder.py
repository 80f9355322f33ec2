"""Image files and image-folder datasets: ``root/train/{class}/*`` and ``root/test/{class}/*``.

Every loader returns a :class:`fourier_masks.data.dataset.Dataset` (images ``uint8 [N, C, H, W]``,
labels ``int64 [N]``). Subsets are drawn without replacement by a seeded permutation, so
the same config always gives the same arrays. Image files are decoded as torchvision's
evaluation transforms do: PIL opens the file and converts it to ``L`` or ``RGB``, the shorter
side is resized with PIL's antialiased bilinear filter (``transforms.Resize(int)``) and the
centre is cropped to a square (``transforms.CenterCrop``); pixels are then stored as uint8,
so ``/ 255`` gives exactly what ``transforms.ToTensor`` gives. Images of more than 8 bits
(16-bit PNG or TIFF) are first scaled by their full range (65535) to 8 bits.

Layout (``root`` defaults to ``{resources_dir}/data/folder``)::

    folder      root/train/{class}/*, root/test/{class}/* (or root/val/{class}/*)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dataset import Dataset, random_subset
from .preflight import IMAGE_EXTENSIONS, class_folders

__all__ = [
    "read_image",
    "load_images",
    "class_files",
    "from_folders",
    "check_root",
    "folder",
]

def _to_8bit(image, path: Path):
    """``image`` with more than 8 bits per pixel (PIL modes I;16*, I, F) as an 8-bit ``L`` image.

    16-bit and 32-bit integer pixels are scaled by 65535 (the 16-bit range), floats must lie
    in ``[0, 1]``; other modes are returned unchanged.
    """
    from PIL import Image

    if not image.mode.startswith(("I", "F")):
        return image
    array = np.asarray(image).astype(np.float64)
    full = 1.0 if image.mode == "F" else 65535.0
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > full:
        raise InputError(f"image {path} (PIL mode {image.mode}) has values in [{array.min():g}, {array.max():g}], "
                         f"outside the range [0, {full:g}] its mode allows; save it as 8- or 16-bit PNG.")
    return Image.fromarray(np.round(array * (255.0 / full)).astype(np.uint8), mode="L")


def read_image(path, channels: int):
    """The image file ``path`` as a PIL image in mode ``L`` (``channels`` 1) or ``RGB`` (3).

    Unreadable files and decompression bombs (more than PIL's ``MAX_IMAGE_PIXELS``) raise
    :class:`InputError` naming the file.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return _to_8bit(image, Path(path)).convert("L" if channels == 1 else "RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"image {path} is a decompression bomb or far too large ({error}); delete or shrink it "
                         f"(PIL refuses images over {Image.MAX_IMAGE_PIXELS} pixels).") from None
    except InputError:
        raise
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError and more for broken files
        raise InputError(f"image {path} cannot be read ({type(error).__name__}: {error}); delete or replace it."
                         ) from error


def _load_image(path: Path, image_size: int, channels: int, resize: str, resize_size: int) -> np.ndarray:
    """Image file as ``uint8 [C, image_size, image_size]``.

    ``resize`` ``shorter_side``: shorter side to ``resize_size``, then the centre crop;
    ``none``: the image must already be ``image_size`` square.
    """
    import torchvision.transforms.functional as TF

    image = read_image(path, channels)
    if resize == "none":
        if image.size != (image_size, image_size):
            raise InputError(f"image {path} is {image.size[0]}x{image.size[1]} pixels, but dataset.resize: none "
                             f"needs {image_size}x{image_size}; set resize: shorter_side to resize it.")
    else:
        image = TF.center_crop(TF.resize(image, resize_size), [image_size, image_size])
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def load_images(paths, image_size: int, channels: int, resize: str, resize_size: int | None) -> np.ndarray:
    """Image files as ``uint8 [N, C, image_size, image_size]`` (``resize``, ``resize_size``: as :func:`folder`)."""
    if not len(paths):
        return np.zeros((0, channels, image_size, image_size), np.uint8)
    return np.stack([_load_image(p, image_size, channels, resize, resize_size or image_size) for p in paths])


def class_files(folder: Path, classes) -> dict[str, list[Path]]:
    """``{class: sorted image files}`` of the subfolders of ``folder`` (only ``classes`` unless ``None``)."""
    if not folder.is_dir():
        raise InputError(f"dataset folder {folder} does not exist; expected one subfolder of images per class.")
    found = class_folders(folder)
    if classes is None:
        classes = found
    absent = [c for c in classes if c not in found]
    if absent:
        raise InputError(f"dataset folder {folder} lacks the class folders {absent}; it has {found[:10]}.")
    files = {c: sorted(p for p in (folder / c).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
             for c in classes}
    empty = [c for c, paths in files.items() if not paths]
    if not classes or empty:
        raise InputError(
            f"dataset folder {folder} has no images in {empty or 'any class folder'}; "
            f"allowed file types: {', '.join(IMAGE_EXTENSIONS)}."
        )
    return files


def from_folders(train_dir: Path, test_dir: Path, classes, image_size: int, channels: int,
                 n_train: int, n_test: int, seed: int, resize: str, resize_size: int | None) -> Dataset:
    """Dataset from two class-per-subfolder trees with the same classes (labels index ``classes``)."""
    if channels not in (1, 3):
        raise InputError(f"dataset.channels = {channels} is not allowed; use 1 or 3.")
    trees = {"train": class_files(train_dir, classes), "test": class_files(test_dir, classes)}
    if list(trees["train"]) != list(trees["test"]):
        raise InputError(
            f"class folders differ between {train_dir} and {test_dir}: only in train "
            f"{sorted(set(trees['train']) - set(trees['test']))}, only in test "
            f"{sorted(set(trees['test']) - set(trees['train']))}. Both splits need the same classes."
        )
    names = list(trees["train"])
    if len(names) < 2:
        raise InputError(f"dataset folder {train_dir} has {len(names)} class folder ({names}); a classifier needs "
                         "at least 2 classes, one subfolder of images each.")
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        files = [(p, label) for label, c in enumerate(names) for p in trees[split][c]]
        try:
            index = random_subset(len(files), n, rng)
        except InputError as error:
            raise InputError(f"dataset.n_{split}: {error} ({train_dir if split == 'train' else test_dir})") from None
        arrays[f"{split}_images"] = load_images([files[i][0] for i in index], image_size, channels,
                                                 resize, resize_size)
        arrays[f"{split}_labels"] = np.array([files[i][1] for i in index], dtype=np.int64)
    return Dataset(class_names=tuple(names), **arrays)


def _test_dir(root: Path) -> Path:
    for name in ("test", "val"):
        if (root / name).is_dir():
            return root / name
    raise InputError(f"dataset.root = {str(root)!r} has no test/ or val/ folder; expected root/train and root/test.")


def check_root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset.root = {str(root)!r} does not exist; stage the dataset there (see its layout).")
    return root


def folder(root, *, image_size: int, channels: int, n_train: int, n_test: int, seed: int, classes, resize: str,
           resize_size: int | None) -> Dataset:
    """Any ``root/train/{class}/*`` and ``root/test/{class}/*`` (or ``val``) image tree.

    ``classes``: the label order (a model trained with another order must be studied with
    its own), ``None`` for the sorted folder names; other folders are left out. ``resize``:
    ``shorter_side`` resizes the shorter side to ``resize_size`` (``None`` = ``image_size``)
    and crops the centre, ``none`` needs images of exactly ``image_size``. ``n_train`` /
    ``n_test`` = 0 keep every image.
    """
    root = check_root(root)
    return from_folders(root / "train", _test_dir(root), None if classes is None else list(classes), image_size,
                         channels, n_train, n_test, seed, resize, resize_size)


