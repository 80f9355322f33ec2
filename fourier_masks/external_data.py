"""Datasets read from disk or downloaded: CIFAR-10/100, ImageNet, Imagenette, image folders.

Every loader returns a :class:`fourier_masks.data.Dataset` (images ``uint8 [N, C, H, W]``,
labels ``int64 [N]``). Subsets are drawn without replacement by a seeded permutation, so
the same config always gives the same arrays. Image files are decoded as torchvision's
evaluation transforms do: PIL opens the file and converts it to ``L`` or ``RGB``, the shorter
side is resized with PIL's antialiased bilinear filter (``transforms.Resize(int)``) and the
centre is cropped to a square (``transforms.CenterCrop``); pixels are then stored as uint8,
so ``/ 255`` gives exactly what ``transforms.ToTensor`` gives. Images of more than 8 bits
(16-bit PNG or TIFF) are first scaled by their full range (65535) to 8 bits.

Layouts (``root`` defaults to ``{resources_dir}/data/{name}``)::

    cifar10     root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar100    root/cifar-100-python/{train, test, meta}
    imagenet    root/val/{wnid}/*.JPEG            (ImageNet validation, 1000 wnids)
    imagenette  root/{train,val}/{wnid}/*.JPEG    (e.g. imagenette2 or imagenette2-320)
    folder      root/train/{class}/*, root/test/{class}/* (or root/val/{class}/*)
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np

from .data import Dataset
from .errors import InputError

__all__ = [
    "IMAGENETTE_PAPER_CLASSES",
    "LOADERS",
    "cifar",
    "imagenet",
    "imagenette",
    "folder",
    "folder_classes",
    "read_image",
    "dataset_shape",
    "missing_files",
]

#: The five Imagenette classes of Karantzas et al.: English springer, chain saw, church,
#: French horn, garbage truck.
IMAGENETTE_PAPER_CLASSES = ("n02102040", "n03000684", "n03028079", "n03394916", "n03417042")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _subset(n_available: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` items out of ``n_available`` in random order (all of them when n = 0)."""
    if n > n_available:
        raise InputError(f"asked for {n} images but only {n_available} are available.")
    return rng.permutation(n_available)[: n or n_available]


def cifar(name: str, root, n_train: int = 0, n_test: int = 0, download: bool = True, seed: int = 0) -> Dataset:
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
            index = _subset(len(data.targets), n, rng)
            arrays[f"{split}_images"] = np.ascontiguousarray(data.data[index].transpose(0, 3, 1, 2))
            arrays[f"{split}_labels"] = np.asarray(data.targets, dtype=np.int64)[index]
    except (RuntimeError, OSError) as error:  # not found / corrupted, or a failed download
        raise InputError(
            f"dataset.root = {str(root)!r}: {error} Expected {Path(root) / _CIFAR_FOLDERS[name]} "
            "with the files of the python version of the archive from "
            "https://www.cs.toronto.edu/~kriz/cifar.html; with dataset.download: true it is fetched."
        ) from error
    except InputError as error:
        raise InputError(f"dataset.n_train / n_test: {error}") from None
    return Dataset(class_names=tuple(data.classes), **arrays)


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


def _load_images(paths, image_size: int, channels: int, resize: str = "shorter_side",
                 resize_size: int | None = None) -> np.ndarray:
    if not len(paths):
        return np.zeros((0, channels, image_size, image_size), np.uint8)
    return np.stack([_load_image(p, image_size, channels, resize, resize_size or image_size) for p in paths])


def _class_folders(folder: Path) -> list[str]:
    """Sorted names of the subfolders of ``folder`` (hidden ones, like .ipynb_checkpoints, left out)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_files(folder: Path, classes=None) -> dict[str, list[Path]]:
    """``{class: sorted image files}`` of the subfolders of ``folder`` (only ``classes`` if given)."""
    if not folder.is_dir():
        raise InputError(f"dataset folder {folder} does not exist; expected one subfolder of images per class.")
    found = _class_folders(folder)
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


def _from_folders(train_dir: Path, test_dir: Path, classes, image_size: int, channels: int,
                  n_train: int, n_test: int, seed: int, resize: str = "shorter_side",
                  resize_size: int | None = None) -> Dataset:
    """Dataset from two class-per-subfolder trees with the same classes (labels index ``classes``)."""
    if channels not in (1, 3):
        raise InputError(f"dataset.channels = {channels} is not allowed; use 1 or 3.")
    trees = {"train": _class_files(train_dir, classes), "test": _class_files(test_dir, classes)}
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
            index = _subset(len(files), n, rng)
        except InputError as error:
            raise InputError(f"dataset.n_{split}: {error} ({train_dir if split == 'train' else test_dir})") from None
        arrays[f"{split}_images"] = _load_images([files[i][0] for i in index], image_size, channels,
                                                 resize, resize_size)
        arrays[f"{split}_labels"] = np.array([files[i][1] for i in index], dtype=np.int64)
    return Dataset(class_names=tuple(names), **arrays)


def _test_dir(root: Path) -> Path:
    for name in ("test", "val"):
        if (root / name).is_dir():
            return root / name
    raise InputError(f"dataset.root = {str(root)!r} has no test/ or val/ folder; expected root/train and root/test.")


def _check_root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset.root = {str(root)!r} does not exist; stage the dataset there (see its layout).")
    return root


def folder(root, image_size: int = 32, channels: int = 3, n_train: int = 0, n_test: int = 0,
           seed: int = 0, classes=None, resize: str = "shorter_side", resize_size: int | None = None) -> Dataset:
    """Any ``root/train/{class}/*`` and ``root/test/{class}/*`` (or ``val``) image tree.

    ``classes``: the label order (a model trained with another order must be studied with
    its own), default the sorted folder names; other folders are left out. ``resize``:
    ``shorter_side`` resizes the shorter side to ``resize_size`` (``None`` = ``image_size``)
    and crops the centre, ``none`` needs images of exactly ``image_size``. ``n_train`` /
    ``n_test`` = 0 keep every image.
    """
    root = _check_root(root)
    return _from_folders(root / "train", _test_dir(root), None if classes is None else list(classes), image_size,
                         channels, n_train, n_test, seed, resize, resize_size)


def imagenette(root, classes=IMAGENETTE_PAPER_CLASSES, channels: int = 1, image_size: int = 128,
               n_train: int = 0, n_test: int = 0, seed: int = 0) -> Dataset:
    """Imagenette (``root/train``, ``root/val`` with WNID folders), the paper's 5 classes by default.

    Train images come from ``train``, test images from ``val``; grayscale (``channels=1``,
    PIL luma), shorter side resized to ``image_size`` and centre-cropped, as the authors'
    test transform. Labels index ``classes`` in the order given.
    """
    root = _check_root(root)
    return _from_folders(root / "train", root / "val", list(classes), image_size, channels,
                         n_train, n_test, seed)


def _robustbench_file(name: str) -> Path:
    """A helper file shipped with robustbench, found without importing it."""
    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("dataset.robustbench_subset needs the robustbench package; install the 'zoo' extra.")
    return Path(spec.submodule_search_locations[0]) / "helper_files" / name


def imagenet(root, n_test: int = 5000, image_size: int = 224, robustbench_subset: bool = False,
             n_train: int = 0, seed: int = 0) -> Dataset:
    """ImageNet validation images (``root/val/{wnid}/*``), labels in the standard 1000-class order.

    Shorter side resized to ``image_size * 256 / 224`` then centre-cropped (RobustBench's
    Res256Crop224 at 224). With ``robustbench_subset`` the images are RobustBench's fixed
    5000-image list in its order, otherwise a seeded shuffle of every validation image.
    The first ``n_test`` form the test split, the next ``n_train`` the train split (images
    for fitting masks; the zoo models were trained on none of them).
    """
    root = _check_root(root)
    val = root / "val"
    class_index = json.loads(_robustbench_file("imagenet_class_to_id_map.json").read_text())
    class_names = tuple(sorted(class_index, key=class_index.get))
    if robustbench_subset:
        lines = _robustbench_file("imagenet_test_image_ids.txt").read_text().split()
        files = [val / line for line in lines]
    else:
        tree = _class_files(val)
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
        arrays[f"{split}_images"] = _load_images(paths, image_size, 3, "shorter_side", resize_size)
        arrays[f"{split}_labels"] = np.array([class_index[p.parent.name] for p in paths], dtype=np.int64)
    return Dataset(class_names=class_names, **arrays)


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


def folder_classes(cfg: dict, resources_dir="resources") -> list[str] | None:
    """Class names in label order of the ``folder`` dataset config ``cfg``; ``None`` if its tree is absent.

    Raises :class:`InputError` for fewer than 2 classes.
    """
    train = _root(cfg, resources_dir) / "train"
    if cfg.get("classes"):
        return list(cfg["classes"])
    if not train.is_dir():
        return None
    names = _class_folders(train)
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
    if name in _CIFAR_FOLDERS:
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
    folder_ = root / _CIFAR_FOLDERS[cfg["name"]]
    return [folder_ / n for n in needed if not (folder_ / n).is_file()]
