"""Planted data: 1/f noise images whose class lives only in a chosen frequency region.

Every image is stationary Gaussian noise with a natural-image (pink) power spectrum
``1 / r^2`` (``r`` the radial frequency in cycles per image). The *region* is a set of
frequency bins given by a radius range (cycles per image) and an orientation range (degrees
of the wave vector, measured like :func:`fourier_masks.spectrum.angle_grid`), together with
its point reflection so that the images stay real. The region is cut into ``n_classes``
slices of equal width along its longer side (orientation arc at the mean radius, or radius);
class ``k`` adds extra power on slice ``k`` only::

    power_k(f) = (1 + g_k^2) / r^2   on slice k,       1 / r^2   everywhere else,

with gains ``g_k`` chosen so that each class adds the same total power (``snr^2`` times the
mean background power of a slice). Outside the region the class-conditional distributions
are therefore identical, and inside it the classes differ only in where the power sits: a
learned Fourier mask of a good classifier must keep the region.

Slices are cut along orientation folded as ``|theta mod 180 - 90|``, which a horizontal
flip leaves unchanged, so flip-and-crop augmentation never turns one class into another.
The DC bin is never part of the region (all images have mean 0.5 before quantisation).

Example
-------
>>> data = planted(image_size=16, channels=1, n_classes=2, n_train=40, n_test=8, radius=(2, 5),
...                orientation=(0, 180), seed=0, snr=3.0)
>>> data.train_images.shape, data.train_images.dtype
((40, 1, 16, 16), dtype('uint8'))
>>> float(region_mask(16, (2, 5), (0, 180)).sum())
72.0
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..spectrum import angle_grid, corner_radius, radius_grid
from .dataset import Dataset, per_class_counts

__all__ = ["planted", "region_mask", "class_slices"]

#: Pixel standard deviation of the images before quantisation (clipping at 0 and 1 is rare).
PIXEL_STD = 0.12


def _check_range(value, key: str, low: float, high: float, unit: str) -> tuple[float, float]:
    """``value`` as a ``(lo, hi)`` pair of floats with ``low <= lo <= hi <= high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{key} = {value!r} must be a pair [lo, hi] of numbers in {unit}.") from None
    if not lo <= hi:
        raise InputError(f"{key} = [{lo:g}, {hi:g}] is backwards; it needs lo <= hi ({unit}).")
    if lo < low or hi > high:
        raise InputError(
            f"{key} = [{lo:g}, {hi:g}] leaves the allowed range [{low:g}, {high:g}] {unit}."
        )
    return lo, hi


def _region(image_size: int, radius, orientation) -> np.ndarray:
    """Boolean ``[H, W]`` region (with its reflection, without DC), validated."""
    if int(image_size) != image_size or image_size < 4:
        raise InputError(f"dataset.image_size = {image_size!r} must be an integer >= 4 pixels.")
    corner = corner_radius(image_size, image_size)
    r_lo, r_hi = _check_range(radius, "dataset.radius", 0.0, corner,
                              f"cycles per image (the corner at {image_size} px is {corner:.2f})")
    o_lo, o_hi = _check_range(orientation, "dataset.orientation", 0.0, 360.0, "degrees")
    r = radius_grid(image_size, image_size)
    theta = np.degrees(angle_grid(image_size, image_size))
    tol = 1e-9

    def inside(angle):
        return (angle >= o_lo - tol) & (angle <= o_hi + tol)

    region = inside(theta) | inside((theta + 180.0) % 360.0)
    region &= (r >= r_lo - tol) & (r <= r_hi + tol) & (r > 0)
    if not region.any():
        raise InputError(
            f"dataset.radius = [{r_lo:g}, {r_hi:g}] with dataset.orientation = [{o_lo:g}, {o_hi:g}] "
            f"selects no frequency bin at {image_size} px (DC never counts); widen either range."
        )
    return region


def region_mask(image_size: int, radius, orientation) -> np.ndarray:
    """Float32 ``[H, W]`` (unshifted layout): 1 on the region and its reflection, else 0.

    ``radius`` is ``(lo, hi)`` in cycles per image, ``orientation`` ``(lo, hi)`` in degrees
    of the wave vector within ``[0, 360]``; both ends are inclusive and DC is excluded.
    """
    return _region(image_size, radius, orientation).astype(np.float32)


def class_slices(image_size: int, radius, orientation, n_classes: int) -> np.ndarray:
    """Int64 ``[H, W]``: the class whose slice holds each region bin, ``-1`` outside.

    The region is cut into ``n_classes`` equal-width slices along its longer side: the
    flip-invariant orientation ``|theta mod 180 - 90|`` (arc length at the mean radius) or
    the radius. Every slice must hold at least one bin.
    """
    if int(n_classes) != n_classes or n_classes < 2:
        raise InputError(f"dataset.n_classes = {n_classes!r} must be an integer >= 2.")
    region = _region(image_size, radius, orientation)
    r = radius_grid(image_size, image_size)[region]
    folded = np.abs(np.mod(angle_grid(image_size, image_size)[region], np.pi) - np.pi / 2)
    arc = r.mean() * np.ptp(folded)
    coordinate = folded if arc >= np.ptp(r) else r
    span = np.ptp(coordinate)
    slices = np.full((image_size, image_size), -1, dtype=np.int64)
    if span > 0:
        slices[region] = np.minimum((coordinate - coordinate.min()) / span * n_classes, n_classes - 1)
    counts = np.bincount(slices[region].clip(0), minlength=n_classes)
    if span == 0 or (counts == 0).any():
        raise InputError(
            f"the region of dataset.radius = {list(radius)} and dataset.orientation = {list(orientation)} "
            f"holds {int(region.sum())} bins at {image_size} px, too few to cut into dataset.n_classes = "
            f"{n_classes} non-empty slices; widen the region or use fewer classes."
        )
    return slices


def _amplitudes(image_size: int, slices: np.ndarray, n_classes: int, snr: float) -> np.ndarray:
    """Float64 ``[K, H, W]`` amplitude spectrum ``sqrt(power_k)`` of each class."""
    r = radius_grid(image_size, image_size)
    background = np.zeros_like(r)
    background[r > 0] = 1.0 / r[r > 0] ** 2
    slice_power = np.array([background[slices == k].sum() for k in range(n_classes)])
    added = snr**2 * slice_power.mean()
    power = np.repeat(background[None], n_classes, axis=0)
    for k in range(n_classes):
        power[k][slices == k] *= 1 + added / slice_power[k]
    return np.sqrt(power)


def planted(*, image_size: int, channels: int, n_classes: int, n_train: int, n_test: int, radius, orientation,
            seed: int, snr: float) -> Dataset:
    """Synthetic 1/f images whose class information lies only in one frequency region.

    Parameters
    ----------
    image_size : side in pixels.
    channels : 1, or 3 (the grey image repeated in every channel).
    n_classes : number of classes, one slice of the region each.
    n_train, n_test : images per split, spread evenly over classes.
    radius : ``(lo, hi)`` cycles per image, ``0 <= lo <= hi <=`` the corner radius.
    orientation : ``(lo, hi)`` degrees of the wave vector, ``0 <= lo <= hi <= 360``; the
        point reflection is always included, so ``(0, 180)`` means all orientations.
    seed : same seed, same arrays.
    snr : amplitude ratio of a class's added signal to the background inside its slice.

    Returns
    -------
    :class:`fourier_masks.data.dataset.Dataset` with uint8 ``[N, C, H, W]`` images.
    """
    if channels not in (1, 3):
        raise InputError(f"dataset.channels = {channels!r} is not allowed; use 1 or 3.")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if int(value) != value or value < n_classes:
            raise InputError(f"dataset.{key} = {value!r} must be an integer >= dataset.n_classes = {n_classes}.")
    if not 0 < snr < np.inf:
        raise InputError(f"dataset.snr = {snr!r} must be a positive finite number.")
    slices = class_slices(image_size, radius, orientation, n_classes)
    amplitudes = _amplitudes(image_size, slices, n_classes, snr)
    # Pixel variance of Re(ifft2(fft2(white) * a)) is mean(a^2); equal for every class.
    scale = PIXEL_STD / np.sqrt((amplitudes[0] ** 2).mean())
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, total in (("train", n_train), ("test", n_test)):
        labels = np.repeat(np.arange(n_classes), per_class_counts(int(total), n_classes))
        labels = rng.permutation(labels)
        white = rng.standard_normal((len(labels), image_size, image_size))
        noise = np.fft.ifft2(np.fft.fft2(white) * amplitudes[labels]).real
        pixels = np.clip(0.5 + scale * noise, 0.0, 1.0)
        images = np.round(pixels * 255).astype(np.uint8)[:, None]
        arrays[f"{split}_images"] = np.ascontiguousarray(np.repeat(images, channels, axis=1))
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return Dataset(class_names=tuple(f"slice{k}" for k in range(n_classes)), **arrays)
