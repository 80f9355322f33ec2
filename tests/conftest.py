"""Shared fixtures: a tiny trained model on tiny photo patches, computed once per session."""

import copy

import pytest
import torch

from fourier_masks.config import check_config
from fourier_masks.data.dataset import to_float
from fourier_masks.data.photos import photo_patches
from fourier_masks.models.networks import make_model
from fourier_masks.models.training import train_model

torch.set_num_threads(1)

#: The embedded default's ``training`` section: every setting ``train_model`` takes, from the schema.
TRAINING = check_config({})["training"]


def checked(dataset: dict, *models: dict) -> dict:
    """The config of ``dataset`` and model entries ``models``, checked: every other key filled in from the schema."""
    return check_config({"dataset": dataset, "models": list(models)})


def training(**changes) -> dict:
    """``train_model`` keyword arguments: the schema's training settings with ``changes``, on the CPU."""
    return {**TRAINING, "device": "cpu", **changes}


@pytest.fixture(scope="session")
def tiny_data():
    """Photo patches, 16 px grayscale, 3 classes: (train_x, train_y, test_x, test_y)."""
    data = photo_patches(n_classes=3, n_train=240, n_test=60, image_size=16, channels=1, seed=0)
    return (to_float(data.train_images), torch.from_numpy(data.train_labels),
            to_float(data.test_images), torch.from_numpy(data.test_labels))


@pytest.fixture(scope="session")
def _trained_tiny_model(tiny_data):
    """A small CNN trained once per session on ``tiny_data`` (never handed to a test itself)."""
    train_x, train_y, _, _ = tiny_data
    model = make_model("small_cnn", 1, 3, [0.5], [0.25], seed=0)
    train_model(model, train_x, train_y, "standard", **training(epochs=4, batch_size=32, lr=5e-3, seed=0))
    return model.eval()


@pytest.fixture
def tiny_model(_trained_tiny_model):
    """A fresh copy of the session's trained small CNN, eval mode: what one test changes (layout,
    device, gradients), the next does not see."""
    return copy.deepcopy(_trained_tiny_model)


@pytest.fixture(autouse=True)
def _digest_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Content digests computed in the test process are cached outside the repository."""
    from fourier_masks import digests

    monkeypatch.setattr(digests, "CACHE", tmp_path_factory.getbasetemp() / "digests.json")
