"""Frequency grids, Fourier masks and band partitions of the 2-D spectrum.

Conventions
-----------
* Spectra are in the unshifted ``fft2`` layout: DC at ``[0, 0]``, frequency index ``i``
  stands for ``fftfreq(H)[i] * H`` cycles per image.
* Frequencies are in **cycles per image** (cpi); angles are in **radians**, in
  ``[0, 2 pi)``, in the paper's convention (Karantzas et al. 2022): counter-clockwise from
  the horizontal frequency axis ``+fx`` with the vertical frequency axis pointing **up**.
  Row frequencies ``fy`` grow downwards (as array rows do), so a bin's angle is
  ``atan2(-fy, fx)``: ``(fy, fx) = (-1, 0)`` lies at ``pi / 2``.
* A *full* mask has shape ``[..., H, W]``; a *half* mask lives on the ``rfft2``
  half-spectrum, shape ``[..., H, W // 2 + 1]``.
* Applying a mask means ``Re(ifft2(M * fft2(x)))`` per channel. Only the symmetrised mask
  ``(M(k) + M(-k)) / 2`` acts on a real image, so a half mask with ``irfft2`` is the same
  function with half the parameters (see :func:`half_to_full`).
* Functions take numpy arrays or torch tensors. torch is imported only to apply a mask, so
  the numpy analyses of masks run without it.

Example
-------
>>> import numpy as np
>>> mask = lowpass_mask(32, 32, radius=4.0)
>>> x = np.random.default_rng(0).random((1, 1, 32, 32), dtype=np.float32)
>>> apply_mask(x, mask).shape
(1, 1, 32, 32)
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np

__all__ = [
    "frequency_grid",
    "radius_grid",
    "squared_radius_grid",
    "angle_grid",
    "nyquist_radius",
    "corner_radius",
    "reflect",
    "symmetrize",
    "half_to_full",
    "full_to_half",
    "spectrum_of",
    "filter_spectrum",
    "apply_mask",
    "lowpass_mask",
    "highpass_mask",
    "lowpass_mask_of_density",
    "radial_band_index",
    "radial_band_index_of_edges",
    "angular_band_index",
    "band_energies",
]


def frequency_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertical and horizontal frequency of every bin, in cycles per image.

    Returns ``(fy, fx)``, each float64 ``[H, W]`` in the unshifted layout.
    """
    fy = np.rint(np.fft.fftfreq(height) * height)  # whole cycles, exactly
    fx = np.rint(np.fft.fftfreq(width) * width)
    return np.meshgrid(fy, fx, indexing="ij")


def radius_grid(height: int, width: int) -> np.ndarray:
    """Radial frequency ``sqrt(fy^2 + fx^2)`` of every bin, cycles per image, ``[H, W]``."""
    fy, fx = frequency_grid(height, width)
    return np.hypot(fy, fx)


def squared_radius_grid(height: int, width: int) -> np.ndarray:
    """Exact squared radial frequency ``fy^2 + fx^2`` of every bin, int64 ``[H, W]`` (cpi squared)."""
    fy, fx = (grid.astype(np.int64) for grid in frequency_grid(height, width))
    return fy**2 + fx**2


def angle_grid(height: int, width: int) -> np.ndarray:
    """Orientation ``atan2(-fy, fx)`` of every bin's wave vector, radians in ``[0, 2 pi)``, ``[H, W]``.

    The paper's convention: counter-clockwise from ``+fx``, vertical axis pointing up. DC
    has angle 0.
    """
    fy, fx = frequency_grid(height, width)
    return np.mod(np.arctan2(-fy + 0.0, fx), 2 * np.pi)


def nyquist_radius(height: int, width: int) -> float:
    """Largest radius inside the spectrum along both axes, ``min(H, W) / 2`` cpi."""
    return min(height, width) / 2


def corner_radius(height: int, width: int) -> float:
    """Radius of the spectrum's corner, ``hypot(H / 2, W / 2)`` cpi: the outer band edge."""
    return float(np.hypot(height / 2, width / 2))


def _is_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor (torch is loaded whenever one exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def reflect(mask):
    """Return ``M(-k)`` for a full mask ``M(k)`` of shape ``[..., H, W]`` (numpy or torch)."""
    if _is_tensor(mask):
        import torch

        flipped = torch.flip(mask, dims=(-2, -1))
        return torch.roll(flipped, shifts=(1, 1), dims=(-2, -1))
    flipped = np.flip(mask, axis=(-2, -1))
    return np.roll(flipped, shift=(1, 1), axis=(-2, -1))


def symmetrize(mask):
    """The part of a full mask that acts on real images: ``(M(k) + M(-k)) / 2``."""
    return (mask + reflect(mask)) / 2


def half_to_full(half, width: int):
    """Effective full mask ``[..., H, W]`` of a half mask ``[..., H, W // 2 + 1]``.

    ``irfft2(half * rfft2(x), s=(H, W))`` equals ``Re(ifft2(full * fft2(x)))`` for every
    real ``x``, and the returned ``full`` is symmetric: ``full(k) == full(-k)``. Columns
    0 and ``W / 2`` (even ``W``) hold both ``k`` and ``-k`` in the half layout; their
    effective value is the mean of the two.
    """
    is_torch = _is_tensor(half)
    height = half.shape[-2]
    cols = width // 2 + 1
    if half.shape[-1] != cols:
        raise ValueError(
            f"a half mask for width {width} needs {cols} columns, got shape {tuple(half.shape)}"
        )
    if is_torch:
        full = half.new_zeros((*half.shape[:-1], width))
    else:
        full = np.zeros((*half.shape[:-1], width), dtype=half.dtype)
    full[..., :cols] = half
    # Columns beyond W//2 hold M(-k) = half[-i, -j].
    rows = (-np.arange(height)) % height
    mirrored_cols = (-np.arange(cols, width)) % width
    if is_torch:
        import torch

        rows_t = torch.as_tensor(rows, device=half.device)
        full[..., cols:] = half[..., rows_t, :][..., torch.as_tensor(mirrored_cols, device=half.device)]
    else:
        full[..., cols:] = half[..., rows, :][..., mirrored_cols]
    return symmetrize(full)


def full_to_half(full):
    """Half mask ``[..., H, W // 2 + 1]`` acting like the full mask ``[..., H, W]``."""
    width = full.shape[-1]
    return symmetrize(full)[..., : width // 2 + 1]


def _as_tensor(images):
    """``(images as a tensor, whether they came as numpy)``."""
    import torch

    if isinstance(images, torch.Tensor):
        return images, False
    return torch.as_tensor(np.asarray(images)), True


def spectrum_of(images, parametrization: str):
    """Spectrum ``[..., H, W']`` of real image tensors ``[..., H, W]``: ``rfft2`` (``W' = W // 2 + 1``)
    for ``parametrization='rfft'``, else ``fft2`` (``W' = W``)."""
    import torch

    return torch.fft.rfft2(images) if parametrization == "rfft" else torch.fft.fft2(images)


def filter_spectrum(spectrum, masks, size, parametrization: str):
    """Real images ``[..., H, W]`` (``size = (H, W)``) of ``spectrum * masks`` (broadcast): the one
    mask filter, used by :func:`apply_mask`, mask learning and the accuracy through a mask."""
    import torch

    if parametrization == "rfft":
        return torch.fft.irfft2(spectrum * masks, s=size)
    return torch.fft.ifft2(spectrum * masks).real


def apply_mask(images, mask, *, half: bool = False):
    """Filter images with a Fourier mask: ``Re(ifft2(mask * fft2(images)))``.

    Parameters
    ----------
    images : array or tensor ``[..., C, H, W]``, real.
    mask : array or tensor broadcastable to ``images``, e.g. ``[H, W]``, ``[1, H, W]``
        (one mask shared by all channels) or ``[C, H, W]`` (one per channel), full layout;
        with ``half=True`` a half mask ``[..., W // 2 + 1]``, the same function as
        ``half_to_full(mask, W)`` at half the FFT work.

    Returns
    -------
    Masked images, same type, shape and (real) dtype as ``images``.
    """
    import torch

    x, to_numpy = _as_tensor(images)
    m = torch.as_tensor(mask, device=x.device)
    layout = "rfft" if half else "fft"
    spectrum = spectrum_of(x.to(torch.promote_types(x.dtype, torch.float32)), layout)
    out = filter_spectrum(spectrum, m, x.shape[-2:], layout).to(x.dtype)
    return out.numpy() if to_numpy else out


def lowpass_mask(height: int, width: int, radius: float) -> np.ndarray:
    """Binary float32 mask ``[H, W]`` passing bins with radial frequency ``<= radius`` cpi."""
    return (radius_grid(height, width) <= radius).astype(np.float32)


def highpass_mask(height: int, width: int, radius: float) -> np.ndarray:
    """Binary float32 mask ``[H, W]`` passing bins with radial frequency ``> radius`` cpi."""
    return 1.0 - lowpass_mask(height, width, radius)


def lowpass_mask_of_density(height: int, width: int, density: float) -> np.ndarray:
    """Radial low-pass mask ``[H, W]`` whose mean is as close as possible to ``density``.

    Bins are passed in order of increasing radius, a bin and its reflection ``-k`` one
    after the other, so the result is a disc of that area, symmetric except for at most
    one pair split by the count.
    """
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], got {density}")
    flat = np.arange(height * width).reshape(height, width)
    pair = np.minimum(flat, reflect(flat)).ravel()
    order = np.lexsort((flat.ravel(), pair, squared_radius_grid(height, width).ravel()))
    n_pass = int(round(density * height * width))
    mask = np.zeros(height * width, dtype=np.float32)
    mask[order[:n_pass]] = 1.0
    return mask.reshape(height, width)


def _band_of_squared_radius(squared: np.ndarray, squared_edges) -> np.ndarray:
    """Band ``b`` of each integer squared radius with ``e_b^2 <= s < e_(b+1)^2``, exactly.

    ``squared_edges`` are the squared band edges as :class:`fractions.Fraction` (or ints);
    the last band also holds ``s == e_last^2``; ``-1`` marks bins outside all bands. For an
    integer ``s``, ``s >= e^2`` iff ``s >= ceil(e^2)`` and ``s <= e^2`` iff ``s <= floor(e^2)``,
    so every comparison is between integers.
    """
    opening = np.array([math.ceil(e) for e in squared_edges[1:-1]], dtype=np.int64)
    index = np.searchsorted(opening, squared, side="right").astype(np.int64)
    index[(squared < math.ceil(squared_edges[0])) | (squared > math.floor(squared_edges[-1]))] = -1
    return index


def radial_band_index(height: int, width: int, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Assign every bin to one of ``n_bands`` equal-width annuli from 0 to the corner radius.

    Returns ``(index, edges)``: int64 ``[H, W]`` band of each bin, and float64
    ``[n_bands + 1]`` band edges in cycles per image. Band ``b`` holds radii in
    ``[edges[b], edges[b + 1])``; the corner itself falls in the last band. The decision is
    exact: the squared edges ``b^2 (H^2 + W^2) / (4 n^2)`` are rational and the squared radii
    integers, so a bin on an edge (e.g. the diagonal ``(3, 3)`` at 32 px, 64 bands) always
    opens the upper band.
    """
    corner_squared = Fraction(height * height + width * width, 4)
    squared_edges = [corner_squared * Fraction(b * b, n_bands * n_bands) for b in range(n_bands + 1)]
    index = _band_of_squared_radius(squared_radius_grid(height, width), squared_edges)
    return index, np.linspace(0.0, corner_radius(height, width), n_bands + 1)


def radial_band_index_of_edges(height: int, width: int, edges) -> np.ndarray:
    """Band of every bin for increasing radii ``edges`` (cycles per image), int64 ``[H, W]``.

    Band ``b`` holds ``[edges[b], edges[b + 1])`` (the last band also its outer edge), decided
    exactly from the squared radii; bins outside ``[edges[0], edges[-1]]`` get ``-1``.
    """
    squared_edges = [Fraction(float(e)) ** 2 for e in edges]
    return _band_of_squared_radius(squared_radius_grid(height, width), squared_edges)


def angular_band_index(height: int, width: int, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Assign every bin but DC to one of ``n_bands`` equal sectors of ``[0, 2 pi)``.

    Angles are the paper's (:func:`angle_grid`): sector ``b`` spans ``[b w, (b + 1) w]`` with
    ``w = 2 pi / n_bands``, counter-clockwise from ``+fx`` with the vertical axis up. A bin
    lying exactly on a sector edge belongs to the sector on the side of the edge nearer
    ``+fx`` (as if turned slightly towards angle 0; a bin on ``-fx``, angle ``pi``, to the
    sector below ``pi``). This rule is symmetric under ``fy -> -fy`` and agrees with the
    authors' band code on every bin that code draws in one sector only (at 16, 17, 32, 33
    and 128 px; at a few sizes such as 20 px its float rounding draws the downward axis in
    the sector clockwise of it alone). DC has no orientation and is in no sector (index ``-1``).

    Exactness: only bins on axes and diagonals can lie on an edge (an edge at angle
    ``2 pi b / n`` meets grid points only if its tangent is rational or infinite, which by
    Niven's theorem means a multiple of ``pi / 4``), and those are decided in integers; all other bins are at least 1e-7
    of a sector width away from an edge (checked up to 512 px and 360 sectors), far above
    float64 rounding.

    Returns ``(index, edges)``: int64 ``[H, W]`` and float64 ``[n_bands + 1]`` edges in radians.
    """
    fy, fx = (grid.astype(np.int64) for grid in frequency_grid(height, width))
    up, right = -fy, fx
    signed = np.arctan2(up + 0.0, right + 0.0)  # (-pi, pi]: +0.0 keeps -fx at +pi
    turns = signed * n_bands / (2 * np.pi)  # angle in sector widths
    on_ray = (up == 0) | (right == 0) | (np.abs(up) == np.abs(right))
    eighths = np.rint(signed * 4 / np.pi).astype(np.int64) * n_bands  # turns = eighths / 8 on a ray
    floor = np.where(on_ray, eighths // 8, np.floor(turns))
    ceil = np.where(on_ray, -((-eighths) // 8), np.ceil(turns))
    index = np.where(signed > 0, ceil - 1, floor).astype(np.int64) % n_bands
    index[(up == 0) & (right == 0)] = -1
    return index, np.linspace(0.0, 2 * np.pi, n_bands + 1)


def band_energies(mask: np.ndarray, index: np.ndarray, n_bands: int) -> np.ndarray:
    """L2 norm of the unit-normalised mask inside each band (docs/method.md, analysis 3).

    Parameters
    ----------
    mask : ``[..., H, W]`` full-layout mask; leading axes (channels) are pooled.
    index : int ``[H, W]`` band of each bin, from :func:`radial_band_index` or
        :func:`angular_band_index`; ``-1`` marks a bin in no band (DC for sectors).

    Returns
    -------
    float64 ``[n_bands]`` energies ``e_b = ||m_b|| / ||m||``, ``||m||`` over all bins (as in
    the authors' code), so ``e_b ** 2`` is band ``b``'s share of the mask's energy; the
    shares sum to 1 less the share of bins in no band. An all-zero mask gives zeros.
    """
    squared = np.asarray(mask, dtype=np.float64) ** 2
    squared = squared.reshape(-1, *index.shape).sum(axis=0)
    banded = index >= 0
    per_band = np.bincount(index[banded], weights=squared[banded], minlength=n_bands)
    total = squared.sum()
    if total == 0:
        return np.zeros(n_bands)
    return np.sqrt(per_band / total)
