"""Our radial and angular bands against the authors' band code, bin for bin.

The authors' analysis (github.com/nkarantzas/FourierMasks, ``utils.py`` at commit 04338173,
``radial_band`` lines 19-54, ``circular_band`` 56-88, ``bandmasks`` 90-113, ``energies``
115-125) works on the fftshifted mask (DC at ``[H // 2, W // 2]``) of a 128 px image. Their
steps are re-implemented below with the image size as a parameter (their 128 and 64 become
``size`` and ``size // 2``; even sizes only, as theirs: at odd sizes their edges would end at
the largest bin radius, ours at ``hypot(H / 2, W / 2)``) and their number types kept (float32
edges and distances):

* radial band ``i``: bins with ``radii[i] <= dist < radii[i + 1]``, ``radii`` a float32
  ``linspace(0, sqrt(2 (size / 2)^2), n + 1)`` and ``dist`` the float32 distance to the centre;
* angular band ``i``: bins inside the triangle from the centre through the points at angles
  ``angles[i]`` and ``angles[i + 1]`` (degrees, counter-clockwise with the row axis pointing
  down, so "up" is the vertical frequency axis), rasterised by ``skimage.draw.polygon`` and
  cut to the disk of radius ``sqrt(2) size``;
* each band then drops the bins it shares with the previous band, and the last band those it
  shares with the first.

Their code leaves the corner bin in no radial band and counts some bins in several raw
triangles (DC in every one; after the de-duplication DC stays in every other sector, and
bins on some axes and diagonals shared by two triangles go to the lower one). The tests
require our bands to equal theirs on every other bin and the band energies of real masks
to agree on every band those bins do not touch.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import draw

from fourier_masks.spectrum import angular_band_index, band_energies, radial_band_index

DATA = Path(__file__).parent / "data"
#: Masks of real runs: the tiny config's (16 px, stored per CPU capability) and the embedded
#: default's standard model, seed 1 (32 px, density 0.55, from an earlier make run).
REAL_MASKS = sorted((DATA / "tiny_fingerprint").glob("*/masks/*/seed*.npy")) + [
    DATA / "embedded_default_standard_seed1.npy"]


def authors_radial_bands(size: int, n: int) -> np.ndarray:
    """Bool ``[n, size, size]`` radial bands in the authors' shifted layout (see module docstring)."""
    radii = torch.linspace(0, float(np.sqrt(2 * (size // 2) ** 2)), n + 1)  # float32, as theirs
    offset = torch.abs(torch.arange(size) - size // 2)
    rows, cols = torch.meshgrid(offset, offset, indexing="ij")
    dist = torch.sqrt(rows**2 + cols**2)  # integer tensor -> float32
    raw = [((dist >= radii[i]) & (dist < radii[i + 1])).numpy() for i in range(n)]
    return _drop_shared(raw)


def authors_raw_sectors(size: int, n: int) -> np.ndarray:
    """Bool ``[n, size, size]`` triangles of the authors' angular bands, before de-duplication.

    Number types as theirs: numpy's float32 ``deg2rad`` and ``sin``/``cos`` of the float32
    angles, then torch float32 for the vertex arithmetic.
    """
    centre = size // 2
    radius = np.sqrt(size**2 + size**2)
    angles = torch.linspace(0, 360, n + 1)
    theta = np.deg2rad(angles.numpy())
    sin, cos = torch.from_numpy(np.sin(theta)), torch.from_numpy(np.cos(theta))
    disk = np.zeros((size, size), bool)
    disk[draw.disk((centre, centre), radius, shape=disk.shape)] = True
    sectors = []
    for i in range(n):
        rows = [centre, centre - 1.5 * radius * sin[i], centre - 1.5 * radius * sin[i + 1], centre]
        cols = [centre, centre + 1.5 * radius * cos[i], centre + 1.5 * radius * cos[i + 1], centre]
        triangle = np.zeros((size, size), bool)
        triangle[draw.polygon(np.array(rows, dtype=np.float32), np.array(cols, dtype=np.float32),
                              shape=triangle.shape)] = True
        sectors.append(triangle & disk)
    return np.stack(sectors)


def _drop_shared(raw) -> np.ndarray:
    """Their de-duplication: band i drops bins set in band i - 1 (as kept), the last also band 0's."""
    kept = [raw[0].copy()]
    for i in range(1, len(raw)):
        band = raw[i] & ~kept[i - 1]
        if i == len(raw) - 1:
            band &= ~kept[0]
        kept.append(band)
    return np.stack(kept)


def _unshift(bands: np.ndarray) -> np.ndarray:
    return np.fft.ifftshift(bands, axes=(-2, -1))


def _as_bool_bands(index: np.ndarray, n: int) -> np.ndarray:
    return np.stack([index == b for b in range(n)])


@pytest.mark.parametrize("size, n", [(16, 8), (16, 64), (32, 64), (48, 16), (128, 64)])
def test_radial_bands_equal_the_authors_bin_for_bin_but_the_corner(size, n):
    theirs = _unshift(authors_radial_bands(size, n))
    ours = _as_bool_bands(radial_band_index(size, size, n)[0], n)
    unassigned = theirs.sum(0) == 0
    assert (theirs.sum(0) <= 1).all()
    corner = np.zeros((size, size), bool)
    corner[size // 2, size // 2] = True  # (-size/2, -size/2): radius equal to their last edge
    np.testing.assert_array_equal(unassigned, corner)
    np.testing.assert_array_equal(theirs[:, ~corner], ours[:, ~corner])
    assert ours[n - 1, corner].all()  # ours: the last band includes the corner


@pytest.mark.parametrize("size, n", [(16, 8), (16, 64), (17, 8), (32, 64), (33, 16), (128, 64)])
def test_angular_bands_equal_the_authors_wherever_they_count_a_bin_once(size, n):
    raw = _unshift(authors_raw_sectors(size, n))
    theirs = _unshift(_drop_shared(authors_raw_sectors(size, n)))
    index, _ = angular_band_index(size, size, n)
    ours = _as_bool_bands(index, n)
    once = raw.sum(0) == 1
    np.testing.assert_array_equal(theirs[:, once], ours[:, once])
    # Bins they count in several raw triangles: DC, and only bins on axes or diagonals.
    fy, fx = np.meshgrid(*(np.rint(np.fft.fftfreq(size) * size),) * 2, indexing="ij")
    on_ray = (fy == 0) | (fx == 0) | (np.abs(fy) == np.abs(fx))
    assert on_ray[~once].all() and not once[0, 0]
    assert theirs[:, 0, 0].sum() == n // 2 and index[0, 0] == -1  # DC: every other sector there, none here


@pytest.mark.parametrize("n", [8, 16, 64])
def test_band_energies_of_real_masks_agree_with_the_authors(n):
    """Masks of real runs (16 and 32 px): their energies against ours."""
    for path in REAL_MASKS:
        mask = np.load(path).astype(np.float64)
        size = mask.shape[-1]
        flat = np.sqrt((mask**2).sum(0))  # channels pooled, as band_energies does
        unit = flat / np.linalg.norm(flat)  # their energies(): mask over its whole L2 norm
        radial = _unshift(authors_radial_bands(size, n))
        theirs_radial = np.sqrt([(unit[band] ** 2).sum() for band in radial])
        ours_radial = band_energies(mask, radial_band_index(size, size, n)[0], n)
        corner_share = unit[size // 2, size // 2] ** 2
        np.testing.assert_allclose(ours_radial[:-1], theirs_radial[:-1], rtol=1e-12)
        np.testing.assert_allclose(ours_radial[-1] ** 2 - corner_share, theirs_radial[-1] ** 2, atol=1e-12)

        raw = _unshift(authors_raw_sectors(size, n))
        sectors = _unshift(_drop_shared(authors_raw_sectors(size, n)))
        theirs_angular = np.sqrt([(unit[band] ** 2).sum() for band in sectors])
        index, _ = angular_band_index(size, size, n)
        ours_angular = band_energies(mask, index, n)
        shared = raw.sum(0) > 1
        untouched = [b for b in range(n) if not (sectors[b] & shared).any() and not ((index == b) & shared).any()]
        assert len(untouched) >= n // 4, untouched
        np.testing.assert_allclose(ours_angular[untouched], theirs_angular[untouched], rtol=1e-12)
