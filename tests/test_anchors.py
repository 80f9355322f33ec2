"""Fourier heat maps and cut-off curves on a classifier whose sensitivity is known exactly."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from fourier_masks.analysis.anchors import (
    cutoff_curves,
    fourier_heatmap,
    heatmap_correct,
    plane_waves,
    split_half_reliability,
)
from fourier_masks.errors import InputError
from fourier_masks.models.networks import predict
from fourier_masks.spectrum import corner_radius, radius_grid

SIZE, K0 = 16, (2, 3)  # the linear model reads the plane wave at bin (row 2, col 3)


class PlaneWaveClassifier(nn.Module):
    """Two classes from the sign of ``s = <w, x>``, ``w`` the unit cosine wave at ``K0``.

    A small bias decides ties, so images without the ``K0`` component are all class 0.
    ``phase`` shifts ``w``: ``-pi / 2`` makes it the sine wave, orthogonal to the cosine.
    """

    def __init__(self, phase: float = 0.0):
        super().__init__()
        self.register_buffer("w", plane_waves(SIZE, SIZE, *K0, torch.tensor(phase)))

    def forward(self, x):
        s = (x[:, 0] * self.w).sum((-2, -1))
        return torch.stack([s + 1e-3, -s], dim=1)


def _data(n=64, seed=0, phase=0.0):
    """Grey images carrying ``a * w`` (|a| in [0.3, 1]) plus weak noise; labels = the model's output."""
    g = torch.Generator().manual_seed(seed)
    model = PlaneWaveClassifier(phase).eval()
    a = (0.3 + 0.7 * torch.rand(n, generator=g)) * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    images = 0.5 + a.view(-1, 1, 1, 1) * model.w + 0.02 * torch.randn(n, 1, SIZE, SIZE, generator=g)
    return model, images, predict(model, images, batch_size=64)


def test_plane_waves_are_unit_norm_and_live_on_one_bin_pair():
    waves = plane_waves(SIZE, SIZE, *K0, torch.tensor([0.0, 1.0, 2.5]))
    assert torch.allclose(waves.flatten(1).norm(dim=1), torch.ones(3))
    power = np.abs(np.fft.fft2(waves.numpy())) ** 2
    support = power.sum(0) > 1e-6
    assert support[K0] and support[-K0[0], -K0[1]] and support.sum() == 2


def test_heatmap_peaks_at_the_models_frequency():
    model, images, labels = _data()
    heat = fourier_heatmap(model, images, labels, norm=2.0, noise="phase", stride=1, seed=1, batch_size=64)
    assert heat.shape == (SIZE, SIZE) and not np.isnan(heat).any()
    peak = heat[K0]
    assert peak == heat[-K0[0], -K0[1]] and peak > 0.2, f"error at the model's frequency is only {peak}"
    others = np.delete(heat.ravel(), [np.ravel_multi_index(K0, heat.shape),
                                      np.ravel_multi_index((-K0[0] % SIZE, -K0[1] % SIZE), heat.shape)])
    assert others.max() < 0.05, f"error elsewhere reaches {others.max()}"


def test_heatmap_subset_leaves_skipped_bins_nan():
    model, images, labels = _data(n=8)
    heat = fourier_heatmap(model, images, labels, norm=2.0, noise="phase", stride=2, max_radius=4.0, batch_size=64)
    computed = ~np.isnan(heat)
    assert computed.any() and (radius_grid(SIZE, SIZE)[computed] <= 4.0).all()
    np.testing.assert_array_equal(computed, np.roll(np.flip(computed), 1, axis=(0, 1)))  # mirrored
    with pytest.raises(InputError, match="stride"):
        fourier_heatmap(model, images, labels, norm=4.0, noise="phase", stride=0, batch_size=64)


def test_heatmap_logs_its_progress(caplog):
    model, images, labels = _data(n=8)
    with caplog.at_level("INFO", logger="fourier_masks.analysis.anchors"):
        heatmap_correct(model, images, labels, 2.0, noise="sign", stride=2, batch_size=64)
    lines = [r.getMessage() for r in caplog.records if r.name == "fourier_masks.analysis.anchors"]
    bins = 8 * 5  # rows 0, 2, ..., 14 by columns 0, 2, ..., 8 of the half plane
    assert len(lines) == 10 and "images/s" in lines[-1]
    assert lines[-1].startswith(f"heat map: {bins} of {bins} frequencies")


def test_sign_noise_adds_only_the_cosine_basis_image():
    # Yin et al.'s noise is +- the cosine basis image: a model reading the sine wave at K0
    # never sees it, while a uniform phase flips some of its images.
    model, images, labels = _data(phase=-math.pi / 2)
    sign = fourier_heatmap(model, images, labels, norm=2.0, noise="sign", stride=1, seed=1, batch_size=64)
    phase = fourier_heatmap(model, images, labels, norm=2.0, noise="phase", stride=1, seed=1, batch_size=64)
    assert np.nanmax(sign) == 0.0
    assert phase[K0] > 0.2
    cosine_model, images, labels = _data()
    cosine = fourier_heatmap(cosine_model, images, labels, norm=2.0, noise="sign", stride=1, seed=1, batch_size=64)
    assert cosine[K0] > 0.2
    with pytest.raises(InputError, match="noise"):
        fourier_heatmap(model, images, labels, norm=4.0, noise="gauss", stride=1, batch_size=64)


class CoinClassifier(nn.Module):
    """Two classes at random, from a seeded generator: its heat map is pure noise."""

    def __init__(self):
        super().__init__()
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, x):
        return torch.rand(len(x), 2, generator=self.generator)


def test_split_half_reliability_separates_a_real_map_from_noise():
    model, images, labels = _data(n=64)
    correct = heatmap_correct(model, images, labels, norm=2.0, noise="phase", stride=1, seed=1, batch_size=64)
    assert correct.shape == (64, SIZE, SIZE) and set(np.unique(correct)) <= {0.0, 1.0}
    heat = fourier_heatmap(model, images, labels, norm=2.0, noise="phase", stride=1, seed=1, batch_size=64)
    np.testing.assert_allclose(1 - correct.mean(0), heat)
    assert split_half_reliability(correct) > 0.95  # the peak at K0 shows in both halves
    coin = heatmap_correct(CoinClassifier(), images, labels, norm=2.0, noise="phase", stride=1, seed=1, batch_size=64)
    assert abs(split_half_reliability(coin)) < 0.4
    assert np.isnan(split_half_reliability(correct[:1]))


def test_cutoff_curves_step_at_the_models_radius():
    model, images, labels = _data()
    r0 = math.hypot(*K0)
    corner = corner_radius(SIZE, SIZE)
    radii = [0.0, 1.0, 2.0, 3.5, r0, 5.0, 8.0, corner, corner + 1]
    curves = cutoff_curves(model, images, labels, radii, batch_size=64)
    clean = float((predict(model, images, batch_size=64) == labels).float().mean())
    blank = float((predict(model, torch.zeros_like(images), batch_size=64) == labels).float().mean())
    assert clean == 1.0 and 0.2 < blank < 0.8
    below = curves.radius < r0
    np.testing.assert_allclose(curves.lowpass_acc[below], blank)
    np.testing.assert_allclose(curves.lowpass_acc[~below], clean)
    np.testing.assert_allclose(curves.highpass_acc[below], clean)
    np.testing.assert_allclose(curves.highpass_acc[~below], blank)
    assert curves.lowpass_acc.is_monotonic_increasing and curves.highpass_acc.is_monotonic_decreasing
    with pytest.raises(InputError, match="radii"):
        cutoff_curves(model, images, labels, [-1.0], batch_size=64)
