"""Planted data: class information only in the region, 1/f background, and masks that find it."""

import numpy as np
import pytest
import torch
from conftest import training

from fourier_masks.data.dataset import to_float
from fourier_masks.data.planted import class_slices, planted, region_mask
from fourier_masks.errors import InputError
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import clean_reference, invariance, loss_per_seed
from fourier_masks.models.networks import accuracy, make_model
from fourier_masks.models.training import train_model
from fourier_masks.spectrum import apply_mask, radius_grid, reflect

#: The planted data these tests start from: 32 px, 4 classes, a stronger signal (snr 4) than the config's.
ARGUMENTS = dict(image_size=32, channels=1, n_classes=4, n_train=2000, n_test=500, radius=(4.0, 8.0),
                 orientation=(0.0, 180.0), seed=0, snr=4.0)


def planted_data(**changes):
    return planted(**{**ARGUMENTS, **changes})


def _power(images: np.ndarray) -> np.ndarray:
    """Power spectra ``[N, H, W]`` of the first channel, mean removed."""
    x = images[:, 0].astype(np.float64) / 255.0
    return np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2


def test_region_mask_orientation_convention_and_reflection():
    mask = region_mask(16, (3, 3), (0, 10))
    assert mask[0, 3] == 1 and mask[0, -3] == 1  # horizontal wave vector and its reflection
    assert mask[3, 0] == 0 and mask.sum() == 2
    for radius, orientation in [((2, 6), (0, 45)), ((5, 8), (60, 120)), ((1, 4), (0, 360))]:
        mask = region_mask(16, radius, orientation)
        np.testing.assert_array_equal(mask, reflect(mask))
        assert mask[0, 0] == 0


def test_class_slices_partition_region_and_are_flip_invariant():
    slices = class_slices(32, (5, 9), (0, 45), 4)
    region = region_mask(32, (5, 9), (0, 45)).astype(bool)
    np.testing.assert_array_equal(slices >= 0, region)
    assert sorted(np.unique(slices[region])) == [0, 1, 2, 3]
    full = class_slices(32, (2, 6), (0, 180), 4)
    flipped = np.roll(np.flip(full, axis=1), 1, axis=1)  # fx -> -fx, what a horizontal flip does
    np.testing.assert_array_equal(flipped, full)


def test_planted_is_deterministic_uint8_and_balanced():
    a = planted_data(image_size=16, channels=3, n_classes=3, n_train=30, n_test=9, radius=(2, 5), seed=3)
    b = planted_data(image_size=16, channels=3, n_classes=3, n_train=30, n_test=9, radius=(2, 5), seed=3)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    assert a.train_images.dtype == np.uint8 and a.train_images.shape == (30, 3, 16, 16)
    np.testing.assert_array_equal(a.train_images[:, 0], a.train_images[:, 2])
    assert np.bincount(a.test_labels).tolist() == [3, 3, 3]
    assert not np.array_equal(a.train_images, planted_data(image_size=16, n_classes=3, n_train=30, n_test=9,
                                                      radius=(2, 5), seed=4).train_images)


def test_class_differences_live_in_the_region():
    radius, orientation = (5, 9), (0, 45)
    data = planted_data(image_size=32, n_train=2000, n_test=4, radius=radius, orientation=orientation, seed=1)
    power = _power(data.train_images)
    class_means = np.stack([power[data.train_labels == k].mean(0) for k in range(4)])
    relative = class_means / class_means.mean(0)
    spread = ((relative - 1) ** 2).sum(0)
    region = region_mask(32, radius, orientation).astype(bool)
    inside = spread[region].sum() / spread.sum()
    assert inside > 0.9, f"only {inside:.3f} of the between-class power spread lies in the region"
    outside = np.abs(relative[:, ~region & (radius_grid(32, 32) > 0)]).mean(-1)
    assert np.all(np.abs(outside - 1) < 0.05), f"class power outside the region differs: {outside}"


def test_background_is_pink():
    data = planted_data(image_size=32, n_train=400, n_test=4, radius=(14, 16), orientation=(80, 100), seed=2)
    power = _power(data.train_images).mean(0)
    r = radius_grid(32, 32)
    keep = (r >= 1) & (r <= 12) & (region_mask(32, (14, 16), (80, 100)) == 0)
    slope = np.polyfit(np.log(r[keep]), np.log(power[keep]), 1)[0]
    assert -2.3 < slope < -1.7, f"radial power slope {slope:.2f}, expected about -2"


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(radius=(6, 2)), "dataset.radius"),
        (dict(radius=(2, 30)), "dataset.radius"),
        (dict(orientation=(90, 45)), "dataset.orientation"),
        (dict(orientation=(0, 400)), "dataset.orientation"),
        (dict(radius=(0.2, 0.6)), "selects no frequency bin"),
        (dict(radius=(3, 3), orientation=(0, 1)), "dataset.n_classes"),
        (dict(channels=2), "dataset.channels"),
        (dict(n_train=2), "dataset.n_train"),
        (dict(snr=0), "dataset.snr"),
        (dict(snr=float("nan")), "dataset.snr"),
        (dict(snr=float("inf")), "dataset.snr"),
    ],
)
def test_planted_rejects_bad_arguments(kwargs, key):
    with pytest.raises(InputError, match=key):
        planted_data(**{"image_size": 16, "n_train": 8, "n_test": 4, "radius": (2, 5), **kwargs})


REGIONS = [
    # image size, radius (cycles per image), orientation (degrees), least enrichment of the mask's
    # energy in the region over a uniform mask. Every mask keeps energy near DC, so a region of low
    # radii stands out less: over two training seeds and both memory layouts its enrichment was
    # 1.7-3.2 (the two others: 8.2 and 3.8 with the schema's defaults, measured with loss paper).
    (16, (1, 3), (0, 180), 2.0),  # low radius, all orientations
    (32, (5, 9), (0, 45), 3.0),  # mid radius, one oblique sector
    (32, (10, 15), (60, 120), 3.0),  # high radius around vertical wave vectors
]


@pytest.mark.parametrize("size, radius, orientation, enrichment", REGIONS)
def test_learned_mask_finds_the_planted_region(size, radius, orientation, enrichment):
    torch.set_num_threads(1)
    data = planted_data(image_size=size, n_train=1000, n_test=200, radius=radius, orientation=orientation, seed=0)
    train_x, train_y = to_float(data.train_images), torch.from_numpy(data.train_labels)
    test_x, test_y = to_float(data.test_images), torch.from_numpy(data.test_labels)
    torch.manual_seed(0)
    model = make_model("small_cnn", 1, 4, [0.5], [0.12], seed=0)
    train_model(model, train_x, train_y, "standard", **training(epochs=5, batch_size=64, lr=3e-3, seed=0))
    test_acc = accuracy(model, test_x, test_y, batch_size=64)
    assert test_acc >= 0.9, f"small_cnn reaches only {test_acc:.3f} test accuracy (need >= 0.9)"

    masks, _ = learn_masks(model, test_x, test_y, seeds=[1], lr=0.1, epochs=12, batch_size=20, device="cpu",
                           **{"lambda": 0.2})
    energy = masks[0, 0].astype(np.float64) ** 2
    region = region_mask(size, radius, orientation)
    share, area = float((energy * region).sum() / energy.sum()), float(region.mean())
    assert share >= enrichment * area, (
        f"mask energy share in the region {share:.3f} is not >= {enrichment} x the uniform-mask share {area:.3f}"
    )
    print(f"region r={radius} o={orientation} @ {size}px: acc {test_acc:.3f}, "
          f"mask energy share {share:.3f} vs uniform {area:.3f}")


@pytest.mark.parametrize("snr", [0.5, 4.0])
def test_config_snr_sets_the_class_signal_power(snr):
    """dataset.snr of a checked config reaches the images: a class's power on its own slice is
    about 1 + snr^2 times the other classes' power there (snr is an amplitude ratio)."""
    from fourier_masks.config import check_config
    from fourier_masks.data.registry import load_dataset

    cfg = check_config({"dataset": {"name": "planted", "image_size": 16, "n_train": 800, "n_test": 4,
                                    "radius": [2, 6], "snr": snr}})["dataset"]
    data = load_dataset(cfg)
    power = _power(data.train_images)
    slices = class_slices(16, cfg["radius"], cfg["orientation"], cfg["n_classes"])
    ratios = [power[data.train_labels == k][:, slices == k].sum(1).mean()
              / power[data.train_labels != k][:, slices == k].sum(1).mean() for k in range(cfg["n_classes"])]
    assert np.mean(ratios) == pytest.approx(1 + snr**2, rel=0.15)
    other = load_dataset({**cfg, "snr": 2 * snr})
    assert not np.array_equal(other.train_images, data.train_images)


#: Issue 20's one-region classifiers: planted data with a mid-radius oblique region, 4 training epochs.
ONE_REGION = {"radius": (5.0, 9.0), "orientation": (0.0, 45.0)}
ONE_REGION_TRAINING = training(epochs=4, batch_size=64, lr=3e-3, seed=0)


def _one_region_data():
    """The planted data (2000 training, 800 test images, 32 px) and its region ``[32, 32]``."""
    return planted_data(n_train=2000, n_test=800, **ONE_REGION), torch.from_numpy(region_mask(32, **ONE_REGION))


class _RegionOnly(torch.nn.Module):
    """A classifier that sees one frequency region only: a fixed band-pass, then ``network``."""

    def __init__(self, region: torch.Tensor, network: torch.nn.Module):
        super().__init__()
        self.register_buffer("region", region)
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(torch.fft.ifft2(torch.fft.fft2(x) * self.region).real + 0.5)


def _assert_default_masks_keep_the_region(model, images, labels, region: torch.Tensor) -> None:
    """Issue 20's bar at the schema's defaults, seeds 1-3: every seed converges and puts >= 0.6 of
    its mask energy in ``region`` ``[H, W]``, with a mean mask value >= 0.7 there."""
    masks, history = learn_masks(model, images, labels, seeds=[1, 2, 3], device="cpu")
    assert set(history.groupby("seed")["status"].last()) == {"converged"}
    inside = region.numpy() > 0
    for seed, mask in zip([1, 2, 3], masks[:, 0].astype(np.float64), strict=True):
        share, mean_inside = float((mask[inside] ** 2).sum() / (mask**2).sum()), float(mask[inside].mean())
        print(f"seed {seed}: energy share in the region {share:.3f}, mean mask there {mean_inside:.3f}")
        assert share >= 0.6 and mean_inside >= 0.7, (seed, share, mean_inside)


def test_default_masks_keep_the_one_region_a_torchscript_classifier_uses():
    """At the schema's defaults, a classifier that uses one region only (keeping the region alone
    keeps its accuracy, removing it gives chance), loaded as TorchScript: every seed converges and
    puts >= 0.6 of its energy in the region, with a mean mask value >= 0.7 there (issue 20's bar;
    measured: share 1.000 and mean 0.96 in every seed)."""
    import io

    from fourier_masks.models.programs import load_torchscript

    torch.set_num_threads(1)
    data, region = _one_region_data()
    network = make_model("small_cnn", 1, 4, [0.5], [0.12], seed=0)
    model = _RegionOnly(region, network)
    train_model(model, to_float(data.train_images), torch.from_numpy(data.train_labels), "standard",
                **ONE_REGION_TRAINING)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model.eval()), buffer)
    model = load_torchscript(buffer.getvalue(), "the one-region classifier")
    images, labels = to_float(data.test_images), torch.from_numpy(data.test_labels)

    def masked_accuracy(mask):
        return accuracy(model, apply_mask(images, mask), labels, batch_size=200)

    assert accuracy(model, images, labels, batch_size=200) >= 0.99
    assert masked_accuracy(region) >= 0.99 and masked_accuracy(1 - region) <= 0.35  # the premise
    _assert_default_masks_keep_the_region(model, images, labels, region)


@pytest.fixture(scope="module")
def region_trained_cnn():
    """A plain small CNN trained on the one-region data and on its region-and-DC-only images; the
    data, the region ``[32, 32]`` and the ideal mask (the region and DC at 1, all else 0). The
    premise of the tests that use it: the ideal mask keeps its accuracy, removing the region gives
    chance."""
    torch.set_num_threads(1)
    data, region = _one_region_data()
    ideal = region.clone()
    ideal[0, 0] = 1.0
    x, y = to_float(data.train_images), torch.from_numpy(data.train_labels)
    model = make_model("small_cnn", 1, 4, [0.5], [0.12], seed=0)
    train_model(model, torch.cat([x, apply_mask(x, ideal)]), torch.cat([y, y]), "standard",
                **ONE_REGION_TRAINING)
    model.eval()
    images, labels = to_float(data.test_images), torch.from_numpy(data.test_labels)
    assert accuracy(model, images, labels, batch_size=200) >= 0.99
    assert accuracy(model, apply_mask(images, ideal), labels, batch_size=200) >= 0.99
    assert accuracy(model, apply_mask(images, 1 - region), labels, batch_size=200) <= 0.35
    return model, data, region, ideal


def test_paper_loss_charges_a_plain_cnn_for_the_confidence_its_ideal_mask_adds(region_trained_cnn):
    """Why the paper loss's masks of a plain one-region CNN are not on/off (README, Definitions):
    keeping the region and DC alone removes background that costs the network confidence, and
    ``exp(d^2)`` charges a fall in cross-entropy like a rise, so the paper's invariance term ranks
    the region attenuated to 0.7 above the ideal mask, while ``ce`` ranks the ideal mask above it
    (measured: the ideal mask lowers the CE of 91% of the images, and those carry 97% of its
    invariance charge; paper loss at lambda 0.05 1.018 for the ideal mask, 1.0095 attenuated)."""
    model, data, region, ideal = region_trained_cnn
    images, labels = to_float(data.test_images), torch.from_numpy(data.test_labels)
    ce_clean, logp_clean, _ = clean_reference(model, images, labels, 200, "cpu")
    attenuated = 0.7 * ideal
    attenuated[0, 0] = 1.0
    masks = torch.stack([ideal, attenuated])
    with torch.no_grad():
        logits = torch.stack([model(apply_mask(images, mask)) for mask in masks])
    assert (logits.argmax(-1) == labels).float().mean(-1).min() >= 0.99  # the 0.7 mask keeps the accuracy too
    gap = torch.nn.functional.cross_entropy(logits[0], labels, reduction="none") - ce_clean
    charge = invariance(gap) - 1
    falls = float(charge[gap < 0].sum() / charge.sum())
    assert falls > 0.8, f"images whose cross-entropy falls carry only {falls:.2f} of the ideal mask's charge"

    def loss(kind, lam):
        return loss_per_seed(kind, logits, labels.expand(2, -1), ce_clean.expand(2, -1),
                             logp_clean.expand(2, -1, -1), lam, masks.mean((1, 2)))

    paper, ce = loss("paper", 0.0), loss("ce", 0.0)  # the data terms alone: the sparsity term favours 0.7 anyway
    assert paper[1] < paper[0] and ce[0] < ce[1], f"paper term {paper.tolist()}, ce term {ce.tolist()}"
    print(f"ideal mask: mean d {gap.mean():.4f} nats, falls carry {falls:.3f} of its charge; "
          f"paper at lambda 0.05 {loss('paper', 0.05).tolist()}, ce {ce.tolist()}")


def test_default_masks_keep_the_one_region_a_plain_cnn_uses(region_trained_cnn):
    """At the schema's defaults (``paper_one_sided``), the plain CNN above, whose ideal mask the
    paper loss charges for its confidence: every seed converges and puts >= 0.6 of its energy in
    the region, with a mean mask value >= 0.7 there (issue 20's bar; measured: 0.96 and 0.72 in
    every seed, against 0.56 and 0.72 with ``loss: paper``)."""
    model, data, region, _ = region_trained_cnn
    images, labels = to_float(data.test_images), torch.from_numpy(data.test_labels)
    _assert_default_masks_keep_the_region(model, images, labels, region)
