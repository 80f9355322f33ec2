"""Hand-computed checks of fourier_masks.spectrum: single frequencies, grids and band edges."""

import numpy as np
import pytest
import torch

from fourier_masks.spectrum import (
    angle_grid,
    angular_band_index,
    apply_mask,
    band_energies,
    corner_radius,
    frequency_grid,
    full_to_half,
    half_to_full,
    highpass_mask,
    lowpass_mask,
    lowpass_mask_of_density,
    nyquist_radius,
    radial_band_index,
    radius_grid,
    reflect,
)

PI = np.pi


def cosine(height, width, ky, kx, phase=0.0):
    """Real image ``cos(2 pi (ky y / H + kx x / W) + phase)``, float64 ``[H, W]``."""
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.cos(2 * PI * (ky * y / height + kx * x / width) + phase)


def pair_mask(height, width, ky, kx):
    """Full mask passing only the bins of ``(ky, kx)`` and ``(-ky, -kx)``."""
    mask = np.zeros((height, width))
    mask[ky % height, kx % width] = 1.0
    mask[-ky % height, -kx % width] = 1.0
    return mask


@pytest.mark.parametrize("height, width", [(12, 9), (9, 12), (16, 16), (15, 15)])
def test_pair_mask_extracts_one_cosine(height, width):
    kept = 1.5 * cosine(height, width, 2, -3, phase=0.4)
    dropped = 0.7 * cosine(height, width, 1, 4, phase=-1.1)
    image = (kept + dropped)[None, None]
    mask = pair_mask(height, width, 2, -3)
    np.testing.assert_allclose(apply_mask(image, mask)[0, 0], kept, atol=1e-12)
    np.testing.assert_allclose(apply_mask(image, full_to_half(mask), half=True)[0, 0], kept, atol=1e-12)


def test_one_sided_mask_keeps_half_the_cosine():
    # Only (M(k) + M(-k)) / 2 acts on a real image: passing k but not -k halves the wave.
    image = cosine(10, 10, 3, 1, phase=0.3)[None]
    mask = np.zeros((10, 10))
    mask[3, 1] = 1.0
    np.testing.assert_allclose(apply_mask(image, mask)[0], image[0] / 2, atol=1e-12)


def test_dc_mask_returns_the_mean_of_each_channel():
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 11, 8))
    mask = np.zeros((11, 8))
    mask[0, 0] = 1.0
    expected = np.broadcast_to(images.mean(axis=(-2, -1), keepdims=True), images.shape)
    np.testing.assert_allclose(apply_mask(images, mask), expected, atol=1e-12)


def test_per_channel_mask_filters_each_channel_with_its_own_mask():
    rng = np.random.default_rng(1)
    images = rng.random((1, 2, 8, 8))
    dc = np.zeros((8, 8))
    dc[0, 0] = 1.0
    masks = np.stack([dc, np.ones((8, 8))])
    out = apply_mask(images, masks)
    np.testing.assert_allclose(out[0, 0], np.full((8, 8), images[0, 0].mean()), atol=1e-12)
    np.testing.assert_allclose(out[0, 1], images[0, 1], atol=1e-12)


def test_apply_mask_keeps_type_and_dtype():
    images = torch.rand(2, 1, 8, 8)
    out = apply_mask(images, torch.ones(8, 8, dtype=torch.float64))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    out = apply_mask(images.numpy(), np.ones((8, 8)))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32


@pytest.mark.parametrize(
    "height, width, row, col, fy, fx",
    [
        (8, 8, 0, 0, 0, 0),
        (8, 8, 3, 2, 3, 2),
        (8, 8, 4, 0, -4, 0),  # even size: row H/2 is the (negative) Nyquist frequency
        (8, 8, 7, 5, -1, -3),
        (9, 9, 4, 5, 4, -4),  # odd size: +4 and -4 both exist
        (10, 10, 3, 7, 3, -3),
        (33, 12, 16, 6, 16, -6),
        (33, 12, 17, 11, -16, -1),
    ],
)
def test_frequency_grid_is_in_integer_cycles_per_image(height, width, row, col, fy, fx):
    grid_y, grid_x = frequency_grid(height, width)
    assert grid_y.shape == grid_x.shape == (height, width)
    assert (grid_y[row, col], grid_x[row, col]) == (fy, fx)  # exact: bins are whole cycles


@pytest.mark.parametrize(
    "height, width, row, col, radius",
    [(8, 8, 0, 0, 0.0), (8, 8, 0, 3, 3.0), (8, 8, 3, 4, 5.0), (8, 8, 5, 0, 3.0),
     (10, 10, 3, 0, 3.0), (10, 10, 0, 7, 3.0), (20, 20, 6, 0, 6.0), (12, 16, 6, 8, 10.0)],
)
def test_radius_grid_at_hand_picked_bins(height, width, row, col, radius):
    assert radius_grid(height, width)[row, col] == radius


@pytest.mark.parametrize(
    "row, col, angle",
    # The paper's convention: counter-clockwise from +fx, vertical axis up (up is -fy, row -1).
    [(0, 0, 0.0), (0, 1, 0.0), (7, 0, PI / 2), (7, 1, PI / 4), (0, 7, PI),
     (1, 0, 3 * PI / 2), (1, 1, 7 * PI / 4), (1, 7, 5 * PI / 4), (7, 7, 3 * PI / 4),
     (4, 0, PI / 2), (6, 6, 3 * PI / 4)],
)
def test_angle_grid_at_hand_picked_bins(row, col, angle):
    value = angle_grid(8, 8)[row, col]
    assert 0.0 <= value < 2 * PI
    assert value == pytest.approx(angle, abs=1e-12)


def test_nyquist_and_corner_radius():
    assert nyquist_radius(8, 12) == 4.0
    assert nyquist_radius(9, 9) == 4.5
    assert corner_radius(8, 12) == pytest.approx(np.hypot(4, 6))
    assert radius_grid(8, 12).max() == pytest.approx(corner_radius(8, 12))


@pytest.mark.parametrize("size", [10, 20, 33])
def test_lowpass_mask_includes_the_cutoff_radius(size):
    # Bins at exactly the cut-off radius pass (<=); (3, 0) and (0, 3) lie on it.
    mask = lowpass_mask(size, size, 3.0)
    assert mask[3, 0] == mask[0, 3] == mask[-3, 0] == mask[0, -3] == 1.0
    assert mask[3, 1] == 0.0
    # 29 integer points satisfy y^2 + x^2 <= 9.
    assert mask.sum() == 29


def test_highpass_is_the_complement_of_lowpass():
    low, high = lowpass_mask(9, 12, 2.5), highpass_mask(9, 12, 2.5)
    np.testing.assert_array_equal(low + high, np.ones((9, 12)))
    assert high.dtype == low.dtype == np.float32


def test_lowpass_mask_of_density_extremes_and_range():
    np.testing.assert_array_equal(lowpass_mask_of_density(8, 9, 0.0), np.zeros((8, 9)))
    np.testing.assert_array_equal(lowpass_mask_of_density(8, 9, 1.0), np.ones((8, 9)))
    one = lowpass_mask_of_density(8, 9, 1 / 72)
    assert one[0, 0] == 1.0 and one.sum() == 1  # DC comes first
    with pytest.raises(ValueError, match="density"):
        lowpass_mask_of_density(8, 8, 1.5)


def test_radial_band_edges_are_half_open_and_end_at_the_corner():
    # 6 x 8: corner radius hypot(3, 4) = 5, so 5 bands have the whole-number edges 0..5.
    index, edges = radial_band_index(6, 8, 5)
    np.testing.assert_array_equal(edges, [0, 1, 2, 3, 4, 5])
    assert index.dtype == np.int64 and index.shape == (6, 8)
    assert index[0, 0] == 0
    assert index[1, 1] == 1  # sqrt(2) lies inside band 1
    # A bin on an edge opens the next band: radii 1, 2, 3 and 4 on the axes.
    assert (index[1, 0], index[0, 2], index[3, 0], index[0, 4]) == (1, 2, 3, 4)
    assert index[3, 4] == 4  # the corner (-3, -4), radius 5, falls in the last band


def _bin(size, fy, fx):
    return fy % size, fx % size


@pytest.mark.parametrize(
    "size, n_bands, on_edge",
    # (fy, fx, band opened) for bins whose radius equals a band edge b * corner / n exactly.
    [(32, 64, [(3, 3, 12), (-6, 6, 24), (9, -9, 36), (11, 11, 44), (-12, -12, 48), (13, 13, 52),
               (-16, -16, 63)]),   # 32 px: the diagonals that float binning put one band low
     (16, 8, [(1, 1, 1), (2, -2, 2), (7, 7, 7), (-8, -8, 7)]),   # edges b sqrt(2), the corner last
     (12, 6, [(1, 1, 1), (-5, 5, 5), (-6, -6, 5), (6, 0, 4)]),   # (6, 0): radius 6 inside band 4
     (15, 5, [(0, 0, 0), (3, 3, 2), (6, -6, 4), (7, 7, 4)]),     # odd: edges b 1.5 sqrt 2
     (10, 5, [(1, 1, 1), (4, -4, 4), (-5, -5, 4), (3, 4, 3)])],   # (3, 4): radius 5 < 4 sqrt 2 edge
)
def test_radial_bins_on_an_edge_open_the_upper_band(size, n_bands, on_edge):
    index, _ = radial_band_index(size, size, n_bands)
    for fy, fx, band in on_edge:
        assert index[_bin(size, fy, fx)] == band, (fy, fx)


def test_radial_bins_on_an_edge_of_a_rectangle():
    # 6 x 8, 10 bands: edges at 0.5 cpi steps; (0, 1), (-3, 0) and (1, 0) lie exactly on edges 2, 6, 2.
    index, edges = radial_band_index(6, 8, 10)
    assert edges[2] == 1.0 and edges[6] == 3.0
    assert (index[0, 1], index[3, 0], index[1, 0]) == (2, 6, 2)
    assert index[3, 4] == 9  # the corner


def test_angular_sectors_follow_the_paper_and_leave_dc_out():
    # 4 sectors of pi / 2, counter-clockwise from +fx with up = -fy; edge bins turn towards +fx.
    index, edges = angular_band_index(8, 8, 4)
    np.testing.assert_allclose(edges, [0, PI / 2, PI, 3 * PI / 2, 2 * PI])
    assert index[0, 0] == -1              # DC: no orientation, in no sector
    assert index[0, 1] == 0               # +fx (angle 0)
    assert index[7, 1] == 0               # (fy, fx) = (-1, 1): pi / 4, up and right
    assert index[1, 1] == 3               # (1, 1): 7 pi / 4, down and right
    assert index[7, 0] == 0               # up (pi / 2, an edge): the side nearer +fx, sector 0
    assert index[0, 7] == 1               # -fx (pi, an edge): the sector below pi
    assert index[1, 0] == 3               # down (3 pi / 2, an edge): the side nearer +fx, sector 3
    assert index[7, 7] == 1 and index[1, 7] == 2  # (-1, -1): 3 pi / 4; (1, -1): 5 pi / 4


@pytest.mark.parametrize("size", [8, 9, 16, 17])
def test_diagonal_edges_turn_towards_plus_fx(size):
    # 8 sectors: the diagonals are edges. Up-right (45 deg) -> sector 0, up-left (135) -> 2,
    # down-left (225) -> 5, down-right (315) -> 7; axes: up -> 1, -fx -> 3, down -> 6.
    index, _ = angular_band_index(size, size, 8)
    for k in range(1, size // 2):
        got = [index[_bin(size, fy, fx)] for fy, fx in
               [(-k, k), (-k, -k), (k, -k), (k, k), (-k, 0), (0, -k), (k, 0), (0, k)]]
        assert got == [0, 2, 5, 7, 1, 3, 6, 0], k


def test_band_energies_of_a_single_band_and_of_zeros():
    index, _ = radial_band_index(8, 8, 4)
    mask = np.zeros((8, 8))
    mask[0, 0] = 3.0
    mask[1, 0] = 4.0
    np.testing.assert_allclose(band_energies(mask, index, 4), [1, 0, 0, 0])
    mask[2, 2] = 5.0  # band 2: energy 25 of 50
    np.testing.assert_allclose(band_energies(mask, index, 4), [np.sqrt(0.5), 0, np.sqrt(0.5), 0])
    np.testing.assert_array_equal(band_energies(np.zeros((8, 8)), index, 4), np.zeros(4))


def test_band_energies_leave_out_bins_in_no_band_but_count_them_in_the_norm():
    index, _ = angular_band_index(8, 8, 4)
    mask = np.zeros((8, 8))
    mask[0, 0] = 3.0   # DC: in no sector
    mask[0, 1] = 4.0   # +fx: sector 0
    np.testing.assert_allclose(band_energies(mask, index, 4), [0.8, 0, 0, 0])


def test_reflect_maps_each_bin_to_its_negative_frequency():
    mask = np.arange(12.0).reshape(3, 4)
    reflected = reflect(mask)
    for i in range(3):
        for j in range(4):
            assert reflected[i, j] == mask[-i % 3, -j % 4]
    np.testing.assert_array_equal(reflect(torch.as_tensor(mask)).numpy(), reflected)


def test_half_to_full_averages_the_self_paired_columns():
    # Width 6: half columns 0..3; columns 0 and 3 hold both k and -k.
    half = np.zeros((4, 4))
    half[1, 0] = 1.0  # (1, 0) passed, (-1, 0) = row 3 not
    half[1, 1] = 1.0  # (1, 1) passed, so (-1, -1) = [3, 5] passes too
    full = half_to_full(half, 6)
    assert full[1, 0] == full[3, 0] == 0.5
    assert full[1, 1] == full[3, 5] == 1.0
    assert full.sum() == 3.0


def test_half_to_full_rejects_a_wrong_width():
    with pytest.raises(ValueError, match="columns"):
        half_to_full(np.ones((8, 5)), 10)
