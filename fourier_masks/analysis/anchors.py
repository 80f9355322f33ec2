"""Anchor analyses of frozen classifiers from the literature the masks are compared with.

* :func:`fourier_heatmap` (Yin et al. 2019): test error when a single Fourier basis image
  (a real plane wave) of fixed L2 norm is added to every image, one map entry per frequency;
  :func:`split_half_reliability` says whether the images were enough to make it reproducible.
* :func:`cutoff_curves` (Wang et al. 2020): accuracy on low-pass and high-pass filtered
  images as a function of the radial cut-off.

Maps use the unshifted ``fft2`` layout of :mod:`fourier_masks.spectrum` (DC at ``[0, 0]``),
like the masks; radii are in cycles per image and pixels in ``[0, 1]``.

Example
-------
>>> import torch
>>> from fourier_masks.models.networks import make_model
>>> model = make_model("small_cnn", 1, 3, seed=0).eval()
>>> images, labels = torch.rand(6, 1, 8, 8), torch.randint(0, 3, (6,))
>>> fourier_heatmap(model, images, labels, norm=1.0, noise="phase", stride=1, batch_size=64).shape
(8, 8)
>>> list(cutoff_curves(model, images, labels, [1.0, 6.0], batch_size=64).columns)
['radius', 'lowpass_acc', 'highpass_acc']
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..models.networks import accuracy, predict
from ..spectrum import apply_mask, frequency_grid, highpass_mask, lowpass_mask, radius_grid

log = logging.getLogger(__name__)

__all__ = ["plane_waves", "heatmap_bins", "heatmap_correct", "fourier_heatmap", "split_half_reliability",
           "heatmap_table", "cutoff_curves"]


def plane_waves(height: int, width: int, row: int, col: int, phases: torch.Tensor) -> torch.Tensor:
    """Unit-L2-norm real plane waves of frequency bin ``(row, col)``, one per phase.

    ``cos(2 pi (fy y / H + fx x / W) + phase)`` with ``(fy, fx)`` the bin's frequency in
    cycles per image; its spectrum lies on the bin and its reflection only. ``phases`` is a
    float tensor of any shape ``S``; returns float32 ``[*S, H, W]``. Bins equal to their own
    reflection (DC, Nyquist) only admit phases 0 and pi (other phases shrink the wave).
    """
    fy, fx = (float(grid[row, col]) for grid in frequency_grid(height, width))
    y = torch.arange(height, dtype=torch.float64).view(-1, 1)
    x = torch.arange(width, dtype=torch.float64).view(1, -1)
    argument = 2 * math.pi * (fy * y / height + fx * x / width)
    waves = torch.cos(argument + phases.double()[..., None, None])
    return (waves / waves.flatten(-2).norm(dim=-1)[..., None, None]).float()


def heatmap_bins(height: int, width: int, stride: int, max_radius: float | None) -> list[tuple[int, int]]:
    """Half-plane bins ``(row, col)``, ``col <= W // 2``, on the stride grid and within the radius."""
    radius = radius_grid(height, width)
    limit = math.inf if max_radius is None else max_radius
    return [(i, j) for i in range(0, height, stride) for j in range(0, width // 2 + 1, stride)
            if radius[i, j] <= limit]


#: Noise of the Fourier heat map: a uniform random phase, or Yin et al.'s random sign.
HEATMAP_NOISE = ("phase", "sign")


def _phases(noise: str, self_conjugate: bool, n: int, channels: int, generator) -> torch.Tensor:
    """Phases ``[n, channels]`` of the plane waves: 0 or pi (a random sign), or uniform."""
    if noise == "sign" or self_conjugate:
        return math.pi * torch.randint(0, 2, (n, channels), generator=generator).double()
    return 2 * math.pi * torch.rand(n, channels, generator=generator, dtype=torch.float64)


def heatmap_correct(model, images: torch.Tensor, labels: torch.Tensor, norm: float, *, noise: str, stride: int,
                    batch_size: int, max_radius: float | None = None, seed: int = 0) -> np.ndarray:
    """Per image and frequency: is the image still classified right with a plane wave added?

    For each frequency bin ``k`` every image channel gets ``norm * u_k`` added, with ``u_k``
    a unit-norm real plane wave at ``k`` (and its reflection), and the result is clipped to
    ``[0, 1]``. ``noise`` sets the wave's phase per image and channel: ``sign`` is Yin et al.
    (2019), the cosine basis image times a random sign (phase 0 or pi); ``phase`` draws a
    uniform phase, which also probes sine-like features. Bins equal to their own reflection
    (DC, Nyquist) always take a random sign.

    Parameters
    ----------
    model : frozen classifier taking ``[N, C, H, W]`` in ``[0, 1]``.
    images : float ``[N, C, H, W]`` in ``[0, 1]``; labels : int64 ``[N]``.
    norm : L2 norm of the perturbation of each channel, pixel units (``[0, 1]`` scale).
        Yin et al. use 4 for CIFAR-10 (32 x 32), where it is a per-pixel RMS of 0.125.
    noise : ``phase`` or ``sign`` (see above).
    stride : evaluate every ``stride``-th frequency index along each axis (speed).
    batch_size : most images per model call (the config's ``mask.eval_batch_size``).
    max_radius : evaluate only bins up to this radius, cycles per image (speed).
    seed : seeds the phases.

    Returns
    -------
    float32 ``[N, H, W]`` in the unshifted layout: 1 where image ``n`` is still right, 0 where
    the wave flips it; each half-plane bin is evaluated and copied to its reflection; skipped
    bins are NaN. The heat map is ``1 - mean over images`` (:func:`fourier_heatmap`).
    """
    if not norm > 0:
        raise InputError(f"norm = {norm!r} must be a positive L2 norm in pixel units ([0, 1] scale).")
    if int(stride) != stride or stride < 1:
        raise InputError(f"stride = {stride!r} must be a positive integer.")
    if noise not in HEATMAP_NOISE:
        raise InputError(f"analysis.fourier_heatmap.noise = {noise!r}; allowed: {', '.join(HEATMAP_NOISE)}.")
    n, channels, height, width = images.shape
    generator = torch.Generator().manual_seed(seed)
    correct = np.full((n, height, width), np.nan, dtype=np.float32)
    bins, start = heatmap_bins(height, width, stride, max_radius), time.perf_counter()
    for done, (row, col) in enumerate(bins, 1):
        self_conjugate = (2 * row) % height == 0 and (2 * col) % width == 0
        phases = _phases(noise, self_conjugate, n, channels, generator)
        perturbed = (images + norm * plane_waves(height, width, row, col, phases)).clamp(0.0, 1.0)
        right = (predict(model, perturbed, batch_size=batch_size) == labels.cpu()).numpy()
        correct[:, row, col] = correct[:, (-row) % height, (-col) % width] = right
        if done % max(1, len(bins) // 10) == 0 or done == len(bins):
            seconds = time.perf_counter() - start
            log.info("heat map: %d of %d frequencies, %.1f s, %.0f images/s", done, len(bins), seconds,
                     done * n / max(seconds, 1e-9))
    return correct


def fourier_heatmap(model, images: torch.Tensor, labels: torch.Tensor, norm: float, **options) -> np.ndarray:
    """Error rate per frequency when a plane wave of L2 norm ``norm`` is added to the images.

    ``1 - mean over images`` of :func:`heatmap_correct` (same arguments): float64 ``[H, W]``
    in the unshifted layout (``np.fft.fftshift`` to plot), NaN at skipped bins.
    """
    return 1.0 - heatmap_correct(model, images, labels, norm, **options).mean(0, dtype=np.float64)


def split_half_reliability(correct: np.ndarray, seed: int = 0) -> float:
    """Correlation of the heat maps of two disjoint random halves of the images.

    ``correct`` is :func:`heatmap_correct`'s ``[N, H, W]``. The images are split at random
    (seeded) into two halves of ``N // 2``; each half gives an error map, and the result is
    the Pearson correlation of the two maps over the evaluated bins (each bin and its
    reflection counted once). 1: the map is reproducible; near 0: it is noise. NaN when
    either half map is constant or fewer than two images or bins are available.
    """
    n, height, width = correct.shape
    order = np.random.default_rng(seed).permutation(n)
    half = n // 2
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    unique = (rows * width + cols) <= ((-rows) % height) * width + (-cols) % width
    evaluated = unique & ~np.isnan(correct[0])
    if half < 1 or evaluated.sum() < 2:
        return float("nan")
    maps = [correct[order[i * half:(i + 1) * half]][:, evaluated].mean(0, dtype=np.float64) for i in (0, 1)]
    if min(np.ptp(m) for m in maps) == 0:
        return float("nan")
    return float(np.corrcoef(*maps)[0, 1])


def heatmap_table(model, images: torch.Tensor, labels: torch.Tensor, norm: float, *, noise: str, stride: int,
                  batch_size: int) -> pd.DataFrame:
    """The Fourier heat map as a table: one row per frequency bin.

    Columns ``fy, fx`` (cycles per image), ``error`` (:func:`fourier_heatmap`, NaN where
    ``stride`` skips the bin) and ``reliability``, the map's :func:`split_half_reliability`
    (one value, on every row). Arguments as :func:`heatmap_correct`.
    """
    correct = heatmap_correct(model, images, labels, norm, noise=noise, stride=stride, batch_size=batch_size)
    heat = 1.0 - correct.mean(0, dtype=np.float64)
    fy, fx = frequency_grid(*heat.shape)
    return pd.DataFrame({"fy": fy.ravel(), "fx": fx.ravel(), "error": heat.ravel(),
                         "reliability": split_half_reliability(correct)})


def cutoff_curves(model, images: torch.Tensor, labels: torch.Tensor, radii, *, batch_size: int) -> pd.DataFrame:
    """Accuracy on radially low-pass and high-pass filtered images (Wang et al. 2020).

    Low-pass keeps bins with radius ``<= r``, high-pass the rest (DC included in low-pass),
    using :func:`fourier_masks.spectrum.lowpass_mask` and ``highpass_mask``; filtered images
    are not clipped. At ``r >=`` the corner radius the low-pass images are the originals and
    the high-pass images are all zero.

    Parameters
    ----------
    radii : cut-off radii in cycles per image, each ``>= 0``.
    batch_size : most images per model call (the config's ``mask.eval_batch_size``).

    Returns
    -------
    DataFrame with columns ``radius``, ``lowpass_acc``, ``highpass_acc``, one row per radius.
    """
    radii = [float(r) for r in radii]
    if not radii or min(radii) < 0:
        raise InputError(f"radii = {radii} must be a non-empty list of radii >= 0 (cycles per image).")
    height, width = images.shape[-2:]
    rows = []
    for r in radii:
        low = apply_mask(images, lowpass_mask(height, width, r))
        high = apply_mask(images, highpass_mask(height, width, r))
        rows.append({"radius": r, "lowpass_acc": accuracy(model, low, labels, batch_size=batch_size),
                     "highpass_acc": accuracy(model, high, labels, batch_size=batch_size)})
    return pd.DataFrame(rows, columns=["radius", "lowpass_acc", "highpass_acc"])
