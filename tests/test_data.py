"""Embedded photo-patch dataset: disjoint splits, balance, determinism, file round trip, errors."""

import numpy as np
import pytest

import fourier_masks.data.photos as photos
from fourier_masks.data.dataset import check_images, load_class_names, load_split, save_dataset
from fourier_masks.data.photos import photo_patches
from fourier_masks.errors import InputError


def _coordinate_photograph(name, channels):
    """A 'photograph' whose pixel values encode their own position: row in channel 0, column in 1."""
    rows, cols = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    return np.stack([rows, cols, np.zeros_like(rows)]).astype(np.int64)[:channels]


def test_train_and_test_patches_never_share_a_pixel(monkeypatch):
    monkeypatch.setattr(photos, "_photograph", _coordinate_photograph)
    patches = photo_patches(n_classes=2, n_train=400, n_test=100, image_size=16, channels=3, seed=1)
    for label in range(2):
        seen = {}
        for split in ("train", "test"):
            images, labels = patches.split(split)
            chosen = images[labels == label].astype(np.int64)
            seen[split] = set(zip(chosen[:, 0].ravel(), chosen[:, 1].ravel(), strict=True))
        assert seen["train"] and seen["test"]
        assert not seen["train"] & seen["test"], "a pixel appears in both splits"


def test_classes_are_balanced_and_deterministic():
    first = photo_patches(n_classes=8, n_train=160, n_test=40, image_size=32, channels=3, seed=3)
    second = photo_patches(n_classes=8, n_train=160, n_test=40, image_size=32, channels=3, seed=3)
    other = photo_patches(n_classes=8, n_train=160, n_test=40, image_size=32, channels=3, seed=4)
    assert np.bincount(first.train_labels).tolist() == [20] * 8
    assert np.bincount(first.test_labels).tolist() == [5] * 8
    assert np.array_equal(first.train_images, second.train_images)
    assert not np.array_equal(first.train_images, other.train_images)
    assert first.train_images.dtype == np.uint8 and first.train_images.shape == (160, 3, 32, 32)


def test_saved_dataset_loads_as_floats_in_unit_range(tmp_path):
    patches = photo_patches(n_classes=2, n_train=20, n_test=10, image_size=16, channels=1, seed=0)
    save_dataset(patches, tmp_path)
    images, labels = load_split(tmp_path, "test")
    assert images.shape == (10, 1, 16, 16) and images.dtype.is_floating_point
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    np.testing.assert_array_equal(labels.numpy(), patches.test_labels)


def test_truncated_image_file_names_the_file(tmp_path):
    save_dataset(photo_patches(n_classes=2, n_train=20, n_test=10, image_size=16, channels=1, seed=0), tmp_path)
    path = tmp_path / "train_images.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="train_images.npy"):
        load_split(tmp_path, "train")


@pytest.mark.parametrize("images, message", [
    (np.zeros((4, 16, 16), np.uint8), "shape"),
    (np.zeros((4, 2, 16, 16), np.uint8), "shape"),
    (np.zeros((4, 1, 16, 16), np.int32), "dtype"),
    (np.full((4, 1, 16, 16), 1.5, np.float32), "range"),
    (np.full((4, 1, 16, 16), np.nan, np.float32), "NaN"),
])
def test_bad_image_tensors_are_refused(images, message):
    with pytest.raises(InputError, match=message):
        check_images(images)


def test_too_many_classes_is_refused():
    with pytest.raises(InputError, match="dataset.n_classes"):
        photo_patches(n_classes=len(photos.PHOTOGRAPHS) + 1, n_train=40, n_test=20, image_size=16, channels=3, seed=0)


def test_truncated_class_table_names_the_file(tmp_path):
    save_dataset(photo_patches(n_classes=2, n_train=20, n_test=10, image_size=16, channels=1, seed=0), tmp_path)
    assert load_class_names(tmp_path) == ["astronaut", "brick"]
    path = tmp_path / "classes.parquet"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InputError, match=r"classes.parquet cannot be read .*rerun the prepare_dataset rule"):
        load_class_names(tmp_path)
