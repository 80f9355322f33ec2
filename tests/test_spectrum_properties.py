"""Property tests of fourier_masks.spectrum on random sizes (8-33, odd and even), masks and images."""

import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fourier_masks.spectrum import (
    angle_grid,
    angular_band_index,
    apply_mask,
    band_energies,
    corner_radius,
    frequency_grid,
    full_to_half,
    half_to_full,
    lowpass_mask,
    lowpass_mask_of_density,
    radial_band_index,
    radius_grid,
    reflect,
    symmetrize,
)

SETTINGS = settings(max_examples=50, deadline=None)
sizes = st.integers(8, 33)
seeds = st.integers(0, 2**32 - 1)
channels = st.integers(1, 3)
bands = st.integers(1, 64)


def random_images(seed, c, h, w, dtype=np.float64):
    """Images ``[2, C, H, W]`` in ``[0, 1]``."""
    return np.random.default_rng(seed).random((2, c, h, w)).astype(dtype)


def random_mask(seed, *shape):
    """Mask with values in ``[0, 1]``, not symmetric."""
    return np.random.default_rng(seed + 1).random(shape)


@SETTINGS
@given(h=sizes, w=sizes, c=channels, seed=seeds)
def test_parseval(h, w, c, seed):
    x = random_images(seed, c, h, w)
    spectrum = np.fft.fft2(x)
    np.testing.assert_allclose((x**2).sum(), (np.abs(spectrum) ** 2).sum() / (h * w), rtol=1e-10)


@SETTINGS
@given(h=sizes, w=sizes, c=channels, seed=seeds)
def test_masked_energy_is_that_of_the_symmetrised_mask_times_the_spectrum(h, w, c, seed):
    x, mask = random_images(seed, c, h, w), random_mask(seed, h, w)
    out = apply_mask(x, mask)
    expected = (np.abs(symmetrize(mask) * np.fft.fft2(x)) ** 2).sum() / (h * w)
    np.testing.assert_allclose((out**2).sum(), expected, rtol=1e-10)


@SETTINGS
@given(h=sizes, w=sizes, seed=seeds)
def test_symmetrised_mask_is_symmetric_and_keeps_images_real(h, w, seed):
    x, mask = random_images(seed, 1, h, w), symmetrize(random_mask(seed, h, w))
    np.testing.assert_array_equal(reflect(mask), mask)
    filtered = np.fft.ifft2(mask * np.fft.fft2(x))
    assert np.abs(filtered.imag).max() < 1e-12
    np.testing.assert_allclose(apply_mask(x, mask), filtered.real, atol=1e-12)


@SETTINGS
@given(h=sizes, w=sizes, c=channels, seed=seeds, use_torch=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_apply_mask_returns_real_images_of_the_input_dtype(h, w, c, seed, use_torch, dtype):
    x = random_images(seed, c, h, w, dtype)
    mask = random_mask(seed, h, w)
    if use_torch:
        x = torch.from_numpy(x)
        out = apply_mask(x, torch.from_numpy(mask))
        assert isinstance(out, torch.Tensor) and not out.is_complex()
    else:
        out = apply_mask(x, mask)
        assert isinstance(out, np.ndarray) and not np.iscomplexobj(out)
    assert out.dtype == x.dtype and out.shape == x.shape


@SETTINGS
@given(h=sizes, w=sizes, seed=seeds)
def test_only_the_symmetrised_mask_acts(h, w, seed):
    x, mask = random_images(seed, 2, h, w), random_mask(seed, h, w)
    np.testing.assert_allclose(apply_mask(x, mask), apply_mask(x, symmetrize(mask)), atol=1e-12)


@SETTINGS
@given(h=sizes, w=sizes, c=channels, seed=seeds, per_channel=st.booleans())
def test_full_mask_equals_the_rfft_path(h, w, c, seed, per_channel):
    x = random_images(seed, c, h, w)
    full = random_mask(seed, c if per_channel else 1, h, w)
    half = full_to_half(full)
    assert half.shape == (full.shape[0], h, w // 2 + 1)
    np.testing.assert_allclose(apply_mask(x, half, half=True), apply_mask(x, full), atol=1e-12)


@SETTINGS
@given(h=sizes, w=sizes, seed=seeds)
def test_half_to_full_inverts_full_to_half_up_to_symmetrisation(h, w, seed):
    mask = random_mask(seed, h, w)
    np.testing.assert_allclose(half_to_full(full_to_half(mask), w), symmetrize(mask), atol=1e-15)


@SETTINGS
@given(h=sizes, w=sizes, seed=seeds)
def test_any_half_mask_acts_as_its_symmetric_full_mask(h, w, seed):
    x, half = random_images(seed, 1, h, w), random_mask(seed, h, w // 2 + 1)
    full = half_to_full(half, w)
    np.testing.assert_array_equal(reflect(full), full)
    np.testing.assert_allclose(apply_mask(x, half, half=True), apply_mask(x, full), atol=1e-12)
    np.testing.assert_allclose(full_to_half(full), half_to_full(half, w)[:, : w // 2 + 1])


@SETTINGS
@given(h=sizes, w=sizes, seed=seeds)
def test_torch_and_numpy_layouts_agree(h, w, seed):
    half = random_mask(seed, 2, h, w // 2 + 1)
    full = random_mask(seed, 2, h, w)
    np.testing.assert_allclose(half_to_full(torch.from_numpy(half), w).numpy(), half_to_full(half, w))
    np.testing.assert_allclose(full_to_half(torch.from_numpy(full)).numpy(), full_to_half(full))
    np.testing.assert_array_equal(reflect(torch.from_numpy(full)).numpy(), reflect(full))


@SETTINGS
@given(h=sizes, w=sizes, n=bands)
def test_radial_bands_partition_the_spectrum_exactly(h, w, n):
    index, edges = radial_band_index(h, w, n)
    assert index.min() >= 0 and index.max() < n
    assert edges[0] == 0 and edges[-1] == corner_radius(h, w) and len(edges) == n + 1
    # Band b holds b R / n <= r < (b + 1) R / n with R^2 = (h^2 + w^2) / 4, i.e. in integers
    # b^2 (h^2 + w^2) <= 4 n^2 r^2 < (b + 1)^2 (h^2 + w^2); the corner closes the last band.
    fy, fx = (g.astype(np.int64) for g in frequency_grid(h, w))
    scaled, corner = 4 * n * n * (fy**2 + fx**2), h * h + w * w
    assert (index**2 * corner <= scaled).all()
    assert ((scaled < (index + 1) ** 2 * corner) | ((index == n - 1) & (scaled <= n * n * corner))).all()


def _turned_towards_plus_fx(h, w, delta=1e-9):
    """Paper angle of every bin turned by ``delta`` radians towards +fx (angle 0), in [0, 2 pi)."""
    signed = np.mod(angle_grid(h, w) + np.pi, 2 * np.pi) - np.pi  # (-pi, pi]
    signed[np.isclose(signed, -np.pi)] = np.pi
    return np.mod(signed - delta * np.sign(signed) + delta * (signed == 0), 2 * np.pi)


@SETTINGS
@given(h=sizes, w=sizes, n=bands)
def test_angular_bands_partition_the_spectrum_with_edges_turned_towards_plus_fx(h, w, n):
    index, edges = angular_band_index(h, w, n)
    dc = radius_grid(h, w) == 0
    assert (index[dc] == -1).all() and index[~dc].min() >= 0 and index[~dc].max() < n
    # Every bin turned slightly towards +fx lies strictly inside its sector.
    turned = _turned_towards_plus_fx(h, w)[~dc]
    sector = index[~dc]
    assert ((edges[sector] < turned) & (turned < edges[sector + 1])).all()


def test_no_bin_off_the_axes_and_diagonals_is_near_a_sector_edge():
    # Why float angles decide every bin but those on axes and diagonals: the others stay at
    # least 1e-7 of a sector width from every edge, far above float64 rounding (about 1e-14).
    for size in range(4, 129):
        fy, fx = frequency_grid(size, size)
        off_rays = (fy != 0) & (fx != 0) & (np.abs(fy) != np.abs(fx))
        angle = angle_grid(size, size)[off_rays]
        for n in range(1, 129):
            turns = angle * n / (2 * np.pi)
            assert np.abs(turns - np.rint(turns)).min() > 1e-7, (size, n)


@SETTINGS
@given(h=sizes, w=sizes, c=channels, seed=seeds, n_radial=bands, n_angular=bands)
def test_band_energies_square_to_one_and_pool_channels(h, w, c, seed, n_radial, n_angular):
    mask = random_mask(seed, c, h, w)
    partitions = [(radial_band_index(h, w, n_radial)[0], n_radial),
                  (angular_band_index(h, w, n_angular)[0], n_angular)]
    for index, n in partitions:
        energies = band_energies(mask, index, n)
        assert energies.shape == (n,) and (energies >= 0).all()
        pooled = np.sqrt((mask**2).sum(axis=0))
        unbanded = (pooled[index < 0] ** 2).sum() / (pooled**2).sum()  # DC for sectors
        np.testing.assert_allclose((energies**2).sum(), 1.0 - unbanded, rtol=1e-12)
        np.testing.assert_allclose(band_energies(pooled, index, n), energies, rtol=1e-12)
        per_band = np.array([(pooled[index == b] ** 2).sum() for b in range(n)])
        np.testing.assert_allclose(energies, np.sqrt(per_band / (pooled**2).sum()), rtol=1e-12)


@SETTINGS
@given(h=sizes, w=sizes, density=st.floats(0, 1))
def test_lowpass_mask_of_density_hits_the_density(h, w, density):
    mask = lowpass_mask_of_density(h, w, density)
    assert mask.shape == (h, w) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert abs(mask.mean() - density) <= 1 / (h * w)
    radius = radius_grid(h, w)
    if 0 < mask.sum() < mask.size:
        assert radius[mask == 1].max() <= radius[mask == 0].min()  # a disc: no hole, no island


@SETTINGS
@given(h=sizes, w=sizes, density=st.floats(0, 1))
@example(h=8, w=8, density=49 / 64)
def test_lowpass_mask_of_density_is_as_symmetric_as_the_count_allows(h, w, density):
    # Passing bins pair by pair, at most one pair (k, -k) is split by the count.
    mask = lowpass_mask_of_density(h, w, density)
    asymmetric_bins = int((mask != reflect(mask)).sum())
    assert asymmetric_bins <= 2


@SETTINGS
@given(h=sizes, w=sizes, radius=st.integers(0, 23))
@example(h=10, w=10, radius=3)
def test_lowpass_mask_matches_integer_arithmetic(h, w, radius):
    # Bins are whole cycles per image, so the disc of an integer radius is exact.
    fy = np.fft.ifftshift(np.arange(-(h // 2), (h + 1) // 2))
    fx = np.fft.ifftshift(np.arange(-(w // 2), (w + 1) // 2))
    inside = fy[:, None] ** 2 + fx[None, :] ** 2 <= radius**2
    np.testing.assert_array_equal(lowpass_mask(h, w, radius), inside.astype(np.float32))


@SETTINGS
@given(h=sizes, w=sizes, radius=st.floats(0, 24))
def test_lowpass_mask_of_density_of_a_disc_is_that_disc(h, w, radius):
    disc = lowpass_mask(h, w, radius)
    np.testing.assert_array_equal(lowpass_mask_of_density(h, w, disc.mean()), disc)
