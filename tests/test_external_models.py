"""Networks trained by others (../shared/external, see its README), studied as a user would.

Each model goes through the pipeline's ``import:`` form with its owners' architecture file and
normalisation and must score the accuracy the README lists (measured there with plain PyTorch).
Masks learned at the defaults must converge, keep the accuracy on held-out images and agree
across seeds; ``protocol: authors`` must agree with the authors' batch-1 loop on the same images.
Every test skips where the folder is absent.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fourier_masks.analysis.metrics import frequency_bias
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import masked_accuracy
from fourier_masks.models.checkpoints import acquire_checkpoint
from fourier_masks.models.layout import choose_layout
from fourier_masks.models.networks import predict
from fourier_masks.spectrum import reflect

EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "external"
pytestmark = pytest.mark.skipif(not EXTERNAL.is_dir(), reason="../shared/external is absent")

CIFAR_NORMALISATION = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2471, 0.2435, 0.2616]}
#: file -> (factory, normalisation, dataset, accuracy the README lists)
PANEL = {
    "trades_smallcnn_mnist.pt": ("trades_small_cnn:SmallCNN", {}, "mnist", 0.9948),
    "deeprobust_mnist_standard.pt": ("deeprobust_net:Net", {}, "mnist", 0.9873),
    "deeprobust_mnist_fgsm.pt": ("deeprobust_net:Net", {}, "mnist", 0.9705),
    "deeprobust_mnist_pgd.pt": ("deeprobust_net:Net", {}, "mnist", 0.9856),
    "deeprobust_mnist_trades.pt": ("deeprobust_net:Net", {}, "mnist", 0.9827),
    "abcrown_cifar10_resnet2b.pth": ("abcrown_resnet:resnet2b", CIFAR_NORMALISATION, "cifar10", 0.688),
    "abcrown_cifar10_resnet4b.pth": ("abcrown_resnet:resnet4b", CIFAR_NORMALISATION, "cifar10", 0.749),
}


def _idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(EXTERNAL / "mnist" / name) as file:
        return np.frombuffer(file.read(), np.uint8, offset=offset)


def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10 000 MNIST t10k digits, float ``[N, 1, 28, 28]`` in ``[0, 1]``, and their labels."""
    images = _idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = _idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return torch.from_numpy(images.copy()).float() / 255, torch.from_numpy(labels)


def cifar10(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The CIFAR-10 JPEGs of ``split``, classes by sorted folder name, float ``[N, 3, 32, 32]``."""
    images, labels = [], []
    for label, folder in enumerate(sorted(p for p in (EXTERNAL / "cifar10" / split).iterdir() if p.is_dir())):
        for path in sorted(folder.glob("*.jpg")):
            images.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255, torch.tensor(labels)


def external_model(name: str):
    factory, normalisation, dataset, _ = PANEL[name]
    shape = (1, 28, 28) if dataset == "mnist" else (3, 32, 32)
    model, _ = acquire_checkpoint(EXTERNAL / "models" / name, f"import:{factory}", None, shape,
                                  mean=normalisation.get("mean"), std=normalisation.get("std"),
                                  arch_kwargs={}, python_path=[str(EXTERNAL / "models")], trust_pickle=False)
    return model


@pytest.fixture(scope="module")
def mnist_digits():
    return mnist()


@pytest.mark.parametrize("name", list(PANEL))
def test_every_external_model_loads_through_the_import_form_with_its_owners_accuracy(name, mnist_digits):
    images, labels = mnist_digits if PANEL[name][2] == "mnist" else cifar10("test")
    model = external_model(name)
    accuracy = float((predict(model, images, batch_size=64) == labels).double().mean())
    assert accuracy == pytest.approx(PANEL[name][3], abs=0.005), name
    # their forward flattens with .view: acquisition records the default layout for them
    assert choose_layout(model, images.shape[1:], wanted=True) == name.startswith("abcrown"), name


def _seed_metrics(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return masks.mean(axis=(1, 2, 3)), np.array([frequency_bias(mask, 0.5)["low_freq_fraction"] for mask in masks])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deeprobust_mnist_standard.pt", "deeprobust_mnist_pgd.pt"])
def test_default_masks_of_external_models_converge_keep_accuracy_and_agree_over_seeds(name, mnist_digits):
    images, labels = mnist_digits
    fit, held = slice(0, 800), slice(5000, 6000)
    model = external_model(name)
    masks, history = learn_masks(model, images[fit], labels[fit], seeds=[1, 2, 3])
    last = history.groupby("seed").tail(1)
    assert set(last["status"]) <= {"converged", "recovered"}, last[["seed", "epoch", "status"]]
    clean = masked_accuracy(model, images[held], labels[held], np.ones((1, 1, 28, 28), np.float32), 500)[0]
    retention = masked_accuracy(model, images[held], labels[held], masks, 500) / clean
    assert (retention >= 0.95).all(), retention
    density, low_freq = _seed_metrics(masks)
    assert density.std(ddof=1) <= 0.03 and low_freq.std(ddof=1) <= 0.03, (density, low_freq)
    assert density.max() < 0.6, "a converged mask of these networks drops most frequencies"


@pytest.mark.slow
def test_authors_protocol_agrees_with_the_authors_loop_on_an_external_model(mnist_digits):
    """The authors' own loop (reference_loop: batch 1, torch Adam, OneCycleLR) on a network trained elsewhere."""
    from reference_loop import naive_mask

    images, labels = mnist_digits[0][:150], mnist_digits[1][:150]
    model = external_model("deeprobust_mnist_pgd.pt")
    rules = {"epochs": 3, "patience": 7, "tolerance": 1e-5, "keep_threshold": 0.99}
    theirs, _ = naive_mask(external_model("deeprobust_mnist_pgd.pt"), images, labels, seed=1, lam=0.2, lr=1e-3,
                           **rules)
    ours, history = learn_masks(model, images, labels, seeds=[1], batch_size=1, lr=1e-3, schedule="onecycle",
                                parametrization="fft", protocol="authors", loss="paper", **{"lambda": 0.2}, **rules)
    symmetric = ((theirs + reflect(theirs)) / 2)[None]
    assert abs(ours.mean() - symmetric.mean()) <= 0.02
    ours_low, theirs_low = (frequency_bias(mask, 0.5)["low_freq_fraction"] for mask in (ours[0], symmetric))
    assert abs(ours_low - theirs_low) <= 0.03
    assert symmetric.mean() < 0.9, "the loop must have moved the mask for this test to mean anything"
