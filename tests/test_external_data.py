"""Dataset loaders on tiny staged copies of the real on-disk formats (no downloads)."""

import os
import pickle
import struct
import time
import zlib

import numpy as np
import pytest
import torchvision
from PIL import Image

from fourier_masks.config import check_config
from fourier_masks.data.cifar import cifar
from fourier_masks.data.dataset import check_images
from fourier_masks.data.folder import read_image
from fourier_masks.data.imagenet import _robustbench_file, imagenet
from fourier_masks.data.preflight import dataset_shape, folder_classes, missing_files, source_digest
from fourier_masks.data.registry import load_dataset
from fourier_masks.errors import InputError


@pytest.fixture
def no_md5(monkeypatch):
    """The staged archives are not the real ones, so torchvision's md5 check is skipped (tests only)."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def section(**keys) -> dict:
    """The ``dataset`` section of a checked config: ``keys`` over the schema's defaults."""
    return check_config({"dataset": keys})["dataset"]


def folder_of(root, **keys):
    """The ``folder`` dataset at ``root`` as the pipeline loads it."""
    return load_dataset(section(name="folder", root=str(root), **keys))


def _pickle(path, record):
    with open(path, "wb") as file:
        pickle.dump(record, file)


def _cifar10(root, per_batch=4, n_test=6):
    """CIFAR-10 python batches (torchvision reads the real py2 pickles with str keys); {file: (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        _pickle(folder / name, {"data": data, "labels": labels})
        written[name] = (data, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {"label_names": names})
    return written


def _cifar100(root, n_train=7, n_test=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 100, n).tolist()
        _pickle(folder / name, {"data": data, "fine_labels": labels, "coarse_labels": [0] * n})
        written[name] = (data, labels)
    _pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)]})
    return written


def _images(data):
    return data.reshape(-1, 3, 32, 32)


def test_cifar10_round_trip(tmp_path, no_md5):
    written = _cifar10(tmp_path)
    dataset = load_dataset(section(name="cifar10", root=str(tmp_path), download=False))
    train = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    order = np.argsort(np.random.default_rng(0).permutation(len(train)))  # undo the seeded shuffle
    np.testing.assert_array_equal(dataset.train_images[order], _images(train))
    np.testing.assert_array_equal(dataset.train_labels[order], train_labels)
    assert dataset.train_images.dtype == np.uint8 and dataset.train_labels.dtype == np.int64
    test_data, test_labels = written["test_batch"]
    test_pixels = {row.tobytes(): label for row, label in zip(_images(test_data), test_labels, strict=True)}
    assert len(dataset.test_images) == 6
    for image, label in zip(dataset.test_images, dataset.test_labels, strict=True):
        assert test_pixels[image.tobytes()] == label
    assert dataset.class_names[:2] == ("airplane", "automobile")
    check_images(dataset.train_images)


def test_cifar_subsets_are_seeded(tmp_path, no_md5):
    _cifar10(tmp_path)
    a = cifar("cifar10", tmp_path, n_train=5, n_test=3, download=False, seed=4)
    b = cifar("cifar10", tmp_path, n_train=5, n_test=3, download=False, seed=4)
    c = cifar("cifar10", tmp_path, n_train=5, n_test=3, download=False, seed=5)
    assert a.train_images.shape == (5, 3, 32, 32) and a.test_images.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    assert not np.array_equal(a.train_images, c.train_images)
    with pytest.raises(InputError, match="asked for 50 images but only 20"):
        cifar("cifar10", tmp_path, n_train=50, n_test=0, download=False, seed=0)


def test_cifar100_round_trip(tmp_path, no_md5):
    written = _cifar100(tmp_path)
    dataset = load_dataset(section(name="cifar100", root=str(tmp_path), download=False), "unused")
    for split in ("train", "test"):
        images, labels = dataset.split(split)
        rows = zip(_images(written[split][0]), written[split][1], strict=True)
        pixels = {row.tobytes(): label for row, label in rows}
        assert sorted(pixels.values()) == sorted(labels.tolist())
        assert all(pixels[image.tobytes()] == label for image, label in zip(images, labels, strict=True))
    assert len(dataset.class_names) == 100


def test_cifar_missing_names_the_folder(tmp_path):
    with pytest.raises(InputError, match=r"cifar-10-batches-py.*dataset.download: true"):
        cifar("cifar10", tmp_path / "absent", n_train=0, n_test=0, download=False, seed=0)
    missing = missing_files(section(name="cifar10", root=str(tmp_path)))
    assert missing[0] == tmp_path / "cifar-10-batches-py/data_batch_1"


def test_cifar_md5_is_checked(tmp_path):
    """Without the test-only patch, files that are not the published archive are refused."""
    _cifar10(tmp_path)
    assert missing_files(section(name="cifar10", root=str(tmp_path))) == []
    with pytest.raises(InputError, match="not found or corrupted"):
        cifar("cifar10", tmp_path, n_train=0, n_test=0, download=False, seed=0)


def _png(path, color, size=(40, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def _tree(root, splits, classes, per_class=2):
    """Class-per-folder PNGs; class k has the uniform colour (20k, 100, 200 - 20k)."""
    for split in splits:
        for k, name in enumerate(classes):
            for j in range(per_class):
                _png(root / split / name / f"img{j}.png", (20 * k, 100, 200 - 20 * k))


def test_folder_loads_resized_labelled_images(tmp_path):
    _tree(tmp_path, ["train", "val"], ["cat", "dog", "emu"])
    dataset = folder_of(tmp_path, image_size=16, channels=3)
    assert dataset.class_names == ("cat", "dog", "emu")
    assert dataset.train_images.shape == (6, 3, 16, 16) and dataset.test_images.shape == (6, 3, 16, 16)
    for image, label in zip(dataset.train_images, dataset.train_labels, strict=True):
        np.testing.assert_array_equal(image[:, 8, 8], [20 * label, 100, 200 - 20 * label])
    gray = folder_of(tmp_path, image_size=8, channels=1, n_train=4, n_test=2, seed=1)
    assert gray.train_images.shape == (4, 1, 8, 8) and gray.test_images.shape == (2, 1, 8, 8)


def test_imagenette_paper_classes_grayscale(tmp_path):
    paper = section(name="imagenette")["classes"]  # the config's default: the paper's five WNIDs
    wnids = list(paper) + ["n01440764"]  # tench, not one of the paper's five
    _tree(tmp_path, ["train", "val"], wnids)
    dataset = load_dataset(section(name="imagenette", root=str(tmp_path), image_size=12), "unused")
    assert dataset.class_names == tuple(paper)
    assert dataset.train_images.shape == (10, 1, 12, 12) and dataset.test_images.shape == (10, 1, 12, 12)
    k = wnids.index("n03028079")
    luma = round((299 * 20 * k + 587 * 100 + 114 * (200 - 20 * k)) / 1000)  # PIL's ITU-R 601-2 luma
    church = dataset.test_images[dataset.test_labels == 2]
    assert np.abs(church.astype(int) - luma).max() <= 1


def test_imagenet_labels_follow_the_1000_class_order(tmp_path):
    ids = _robustbench_file("imagenet_test_image_ids.txt").read_text().split()[:3]
    for line in ids:
        _png(tmp_path / "val" / line, (10, 20, 30), size=(300, 260))
    dataset = imagenet(tmp_path, n_test=2, n_train=1, image_size=32, robustbench_subset=True, seed=0)
    index = {name: i for i, name in enumerate(dataset.class_names)}
    assert len(dataset.class_names) == 1000 and dataset.class_names[0] == "n01440764"
    assert dataset.test_labels.tolist() == [index[line.split("/")[0]] for line in ids[:2]]
    assert dataset.train_labels.tolist() == [index[ids[2].split("/")[0]]]
    assert dataset.test_images.shape == (2, 3, 32, 32)
    shuffled = imagenet(tmp_path, n_test=3, image_size=32, robustbench_subset=False, n_train=0, seed=0)
    assert sorted(shuffled.test_labels.tolist()) == sorted(index[line.split("/")[0]] for line in ids)
    with pytest.raises(InputError, match="missing from .*val"):
        imagenet(tmp_path, n_test=4, image_size=32, robustbench_subset=True, n_train=0, seed=0)


def test_dataset_shape():
    assert dataset_shape(section(name="cifar100")) == ([3, 32, 32], 100)
    assert dataset_shape(section(name="imagenet", image_size=224)) == ([3, 224, 224], 1000)
    assert dataset_shape(section(name="imagenette")) == ([1, 128, 128], 5)
    assert dataset_shape(section(name="folder", root="absent", image_size=64, channels=3)) == (
        [3, 64, 64], None)
    assert dataset_shape(section(name="folder", root="absent", classes=["a", "b"])) == ([3, 32, 32], 2)


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        folder_of(tmp_path / "absent")
    _tree(tmp_path / "a", ["train"], ["cat"])
    with pytest.raises(InputError, match="no test/ or val/ folder"):
        folder_of(tmp_path / "a")
    _tree(tmp_path / "b", ["train"], ["cat", "dog"])
    _tree(tmp_path / "b", ["test"], ["cat", "owl"])
    with pytest.raises(InputError, match=r"only in train \['dog'\], only in test \['owl'\]"):
        folder_of(tmp_path / "b")
    (tmp_path / "c" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "c" / "train" / "cat" / "notes.txt").write_text("no images")
    (tmp_path / "c" / "test").mkdir()
    with pytest.raises(InputError, match=r"no images in \['cat'\]"):
        folder_of(tmp_path / "c")
    _tree(tmp_path / "d", ["train", "val"], ["n02102040"])
    with pytest.raises(InputError, match="lacks the class folders"):
        load_dataset(section(name="imagenette", root=str(tmp_path / "d")))
    _tree(tmp_path / "e", ["train", "test"], ["cat", "dog"])
    (tmp_path / "e" / "test" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png cannot be read"):
        folder_of(tmp_path / "e")
    _tree(tmp_path / "f", ["train", "test"], ["cat"])
    with pytest.raises(InputError, match=r"has 1 class folder \(\['cat'\]\); a classifier needs at least 2"):
        folder_of(tmp_path / "f")
    with pytest.raises(InputError, match=r"lacks the class folders \['cow'\]"):
        folder_of(tmp_path / "e", classes=["cat", "cow"])


def _png16(path, array):
    """A 16-bit PNG (grey for [H, W], RGB for [H, W, 3]) written by hand: PIL cannot write 16-bit RGB."""
    height, width = array.shape[:2]
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2 if array.ndim == 3 else 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_16_bit_images_are_scaled_by_their_range_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 16 * 16).round().astype(np.uint16).reshape(16, 16)
    _png16(tmp_path / "grey.png", ramp)
    _png16(tmp_path / "rgb.png", np.stack([ramp, ramp[::-1], ramp.T], -1))
    expected = np.round(ramp / 257.0)
    for channels in (1, 3):
        grey = np.asarray(read_image(tmp_path / "grey.png", channels), dtype=float)
        assert (grey == 255).mean() < 0.01  # PIL's own conversion clips 99% of these pixels to 255
        np.testing.assert_allclose(grey if channels == 1 else grey[..., 0], expected, atol=0)
    rgb = np.asarray(read_image(tmp_path / "rgb.png", 3), dtype=float)
    np.testing.assert_allclose(rgb[..., 1], expected[::-1], atol=1)


def test_bombs_and_unreadable_files_are_input_errors_naming_the_file(tmp_path):
    _png16(tmp_path / "small.png", np.zeros((4, 4), np.uint16))
    bomb = bytearray((tmp_path / "small.png").read_bytes())
    bomb[16:24] = struct.pack(">II", 30000, 30000)  # IHDR claims 900 megapixels
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(bomb))
    with pytest.raises(InputError, match=r"image .*bomb.png is a decompression bomb or far too large"):
        read_image(tmp_path / "bomb.png", 3)
    _png(tmp_path / "full.jpg", (200, 10, 10), size=(64, 64))
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    with pytest.raises(InputError, match=r"image .*cut.jpg cannot be read"):
        read_image(tmp_path / "cut.jpg", 3)
    Image.fromarray(np.full((4, 4), 2.0, np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(InputError, match=r"float.tif \(PIL mode F\) has values in \[2, 2\]"):
        read_image(tmp_path / "float.tif", 1)


def _photos(root, sizes=((37, 52), (80, 45), (33, 33), (120, 64))):
    """Real photographs (scikit-image) cropped to several sizes, in two class folders per split."""
    import skimage.data

    for split in ("train", "test"):
        for name in ("coffee", "chelsea"):
            photo = getattr(skimage.data, name)()
            for i, (h, w) in enumerate(sizes):
                folder = root / split / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(photo[10 * i : 10 * i + h, 20 * i : 20 * i + w]).save(folder / f"{i}.png")


@pytest.mark.parametrize("channels, resize_size", [(3, None), (3, 40), (1, None)])
def test_folder_pixels_are_torchvisions_evaluation_transform(tmp_path, channels, resize_size):
    """Resize(int) + CenterCrop + ToTensor on PIL images (ImageFolder's RGB or L), bit for bit."""
    from torchvision import datasets, transforms

    _photos(tmp_path)
    size = 32
    transform = transforms.Compose([transforms.Resize(resize_size or size), transforms.CenterCrop(size),
                                    transforms.ToTensor()])
    mode = "L" if channels == 1 else "RGB"
    theirs = datasets.ImageFolder(str(tmp_path / "test"), transform=transform,
                                  loader=lambda p: Image.open(p).convert(mode))
    ours = folder_of(tmp_path, image_size=size, channels=channels, resize_size=resize_size,
                     classes=["chelsea", "coffee"])
    pixels = {(image / 255.0).astype(np.float32).tobytes(): label
              for image, label in zip(ours.test_images, ours.test_labels, strict=True)}
    assert len(pixels) == len(theirs) == 8
    for image, label in theirs:
        assert pixels[image.numpy().tobytes()] == label


def test_folder_class_order_and_no_resize(tmp_path):
    _tree(tmp_path, ["train", "test"], ["cat", "dog", "emu"])
    (tmp_path / "train" / "owl").mkdir()  # not listed: left out
    dataset = folder_of(tmp_path, image_size=16, classes=["emu", "cat", "dog"])
    assert dataset.class_names == ("emu", "cat", "dog")
    for image, label in zip(dataset.test_images, dataset.test_labels, strict=True):
        k = ["cat", "dog", "emu"].index(dataset.class_names[label])
        np.testing.assert_array_equal(image[:, 8, 8], [20 * k, 100, 200 - 20 * k])
    with pytest.raises(InputError, match=r"img0.png is 40x30 pixels, but dataset.resize: none needs 16x16"):
        folder_of(tmp_path, image_size=16, resize="none", classes=["cat", "dog"])
    for name in ("cat", "dog"):
        for split in ("train", "test"):
            _png(tmp_path / "square" / split / name / "a.png", (1, 2, 3), size=(12, 12))
    assert folder_of(tmp_path / "square", image_size=12, resize="none").test_images.shape == (2, 3, 12, 12)
    config = section(name="folder", root=str(tmp_path), image_size=16)
    assert dataset_shape(config) == ([3, 16, 16], 4) and folder_classes(config) == ["cat", "dog", "emu", "owl"]


def test_source_digest_follows_the_images_a_loader_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the digest cache lives in the working directory's .snakemake/
    _tree(tmp_path, ["train", "test"], ["cat", "dog"])
    cfg = {"name": "folder", "root": str(tmp_path)}
    digest = source_digest(cfg)
    (tmp_path / "notes.txt").write_text("not an image")
    _png(tmp_path / "extra" / "cat" / "img.png", (1, 2, 3))  # outside train/, test/ and val/
    assert source_digest(cfg) == digest
    image = tmp_path / "train" / "cat" / "img0.png"
    stamp = (image.stat().st_atime_ns, image.stat().st_mtime_ns)
    os.utime(image, ns=(stamp[0], stamp[1] + 10**9))
    assert source_digest(cfg) == digest, "a touch alone changes no content"
    time.sleep(0.05)  # file times are kept to a few milliseconds
    image.write_bytes(image.read_bytes()[:-1] + bytes([image.read_bytes()[-1] ^ 1]))  # same size
    os.utime(image, ns=stamp)
    changed = source_digest(cfg)
    _png(tmp_path / "test" / "dog" / "img9.png", (0, 0, 0))
    added = source_digest(cfg)
    assert len({digest, changed, added}) == 3
    assert source_digest({"name": "imagenette", "root": str(tmp_path)}) != added  # reads val/, not test/
    for name in ("photos", "planted", "cifar10"):  # made here, or md5-checked by torchvision
        assert source_digest({"name": name, "root": str(tmp_path)}) is None
