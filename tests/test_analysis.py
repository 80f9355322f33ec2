"""Analyses on hand-built masks: profiles, bias metrics, controls, transfer, files."""

import warnings

import numpy as np
import pytest
import torch

from fourier_masks.analysis.evaluation import evaluate_controls, evaluate_transfer
from fourier_masks.analysis.metrics import (
    complement_mask,
    control_masks,
    frequency_bias,
    learning_summary,
    profile,
    random_masks_like,
)
from fourier_masks.errors import InputError
from fourier_masks.io import load_mask, save_mask
from fourier_masks.spectrum import lowpass_mask, radius_grid, reflect, symmetrize


def test_profiles_partition_the_energy_and_carry_band_edges():
    mask = np.random.default_rng(0).random((1, 16, 16))
    radial, angular = profile(mask, 8, "radial"), profile(mask, 12, "angular")
    assert radial["energy_share"].sum() == pytest.approx(1.0)
    dc_share = mask[0, 0, 0] ** 2 / (mask**2).sum()  # DC has no orientation: in no sector
    assert angular["energy_share"].sum() == pytest.approx(1.0 - dc_share)
    assert radial["hi"].iloc[-1] == pytest.approx(np.hypot(8, 8))
    assert angular["hi"].iloc[-1] == pytest.approx(2 * np.pi)


def test_lowpass_mask_has_all_its_energy_at_low_frequencies():
    cutoff = 0.25 * 16  # low_freq_cutoff x Nyquist radius of a 32 px image
    bias = frequency_bias(lowpass_mask(32, 32, cutoff)[None], low_freq_cutoff=0.25)
    inside = (radius_grid(32, 32) <= cutoff).mean()
    assert bias["low_freq_fraction"] == pytest.approx(1.0)
    assert bias["low_freq_enrichment"] == pytest.approx(1 / inside)
    assert bias["density"] == pytest.approx(inside)
    assert bias["radial_centroid"] < cutoff


def test_all_pass_mask_is_unbiased_and_isotropic():
    bias = frequency_bias(np.ones((1, 32, 32)), low_freq_cutoff=0.5)
    assert bias["low_freq_enrichment"] == pytest.approx(1.0)
    assert bias["anisotropy"] < 0.05


def test_a_mask_on_one_orientation_is_fully_anisotropic():
    mask = np.zeros((1, 16, 16))
    mask[0, 0, 1:] = 1.0  # horizontal wave vectors only (fy = 0)
    bias = frequency_bias(mask, low_freq_cutoff=0.5)
    assert bias["anisotropy"] == pytest.approx(1.0)
    orientation = bias["dominant_orientation"]  # in [0, pi): 0 and pi are the same orientation
    assert min(orientation, np.pi - orientation) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("size", [16, 17, 32])
def test_a_mask_on_one_oblique_line_points_the_paper_s_way(size):
    # Pass the line k (fy, fx) = k (-1, 2): up and to the right, at atan(1/2) = 26.6 degrees
    # counter-clockwise from +fx in the paper's convention (vertical axis up, i.e. -fy).
    mask = np.zeros((1, size, size))
    for k in range(-(size // 4) + 1, size // 4):
        mask[0, -k % size, 2 * k % size] = 1.0
    bias = frequency_bias(mask, low_freq_cutoff=0.5)
    assert bias["anisotropy"] == pytest.approx(1.0)
    assert bias["dominant_orientation"] == pytest.approx(np.arctan2(1, 2), abs=1e-12)
    angular = profile(mask, 64, "angular")  # sectors of 5.625 degrees
    passed = angular.loc[angular["energy"] > 0, "band"].tolist()
    assert passed == [4, 36]  # 26.6 and 206.6 degrees
    assert angular["energy_share"].sum() == pytest.approx(1 - 1 / mask.sum())  # all but DC


def test_empty_mask_gives_nan_ratios_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bias = frequency_bias(np.zeros((1, 8, 8)), low_freq_cutoff=0.5)
        radial = profile(np.zeros((1, 8, 8)), 4)
    assert bias["density"] == 0 and np.isnan(bias["low_freq_fraction"]) and np.isnan(bias["anisotropy"])
    assert (radial["energy"] == 0).all()


def test_controls_match_the_density_and_complement_passes_the_zeros():
    mask = np.zeros((1, 16, 16), np.float32)
    mask[0, :4, :4] = 0.7
    controls = control_masks(mask, threshold=0.0, seed=0, n_shuffles=3)
    assert controls["random"].shape == (3, 1, 16, 16)
    np.testing.assert_allclose(controls["random"].mean(axis=(1, 2, 3)), symmetrize(mask).mean(), rtol=1e-6)
    assert abs(controls["lowpass"].mean() - mask.mean()) <= 1 / 256
    np.testing.assert_array_equal(complement_mask(mask, threshold=0.0), (mask == 0).astype(np.float32))


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 15, 12), (2, 9, 9)])
def test_random_control_keeps_dc_symmetry_and_values(shape):
    mask = np.random.default_rng(1).random(shape).astype(np.float32)
    symmetric = symmetrize(mask)
    shuffles = random_masks_like(mask, seed=3, n_shuffles=4)
    height, width = shape[1:]
    bins = np.arange(height * width).reshape(height, width)
    self_reflected = (bins == reflect(bins)) & (bins != 0)  # Nyquist bins of even sizes
    for shuffled in shuffles:
        assert (shuffled[:, 0, 0] == symmetric[:, 0, 0]).all()  # DC keeps its learned value
        np.testing.assert_array_equal(shuffled, reflect(shuffled))  # still acts as stored
        np.testing.assert_array_equal(np.sort(shuffled, axis=None), np.sort(symmetric, axis=None))
        np.testing.assert_array_equal(np.sort(shuffled[:, self_reflected], axis=None),
                                      np.sort(symmetric[:, self_reflected], axis=None))
        # Channels move together: the bin a value came from is the same in every channel.
        origin = [np.flatnonzero(symmetric[0].ravel() == v)[0] for v in shuffled[0].ravel()]
        np.testing.assert_array_equal(shuffled.reshape(shape[0], -1), symmetric.reshape(shape[0], -1)[:, origin])
        assert (shuffled != symmetric).mean() > 0.5
    assert not np.array_equal(shuffles[0], shuffles[1])
    np.testing.assert_array_equal(shuffles, random_masks_like(mask, seed=3, n_shuffles=4))
    with pytest.raises(InputError, match="random_shuffles"):
        random_masks_like(mask, seed=3, n_shuffles=0)


def test_random_acc_is_the_mean_and_sd_over_seeded_shuffles(tiny_model, tiny_data):
    # A mask passing DC and a few bins: shuffling used to move DC's 1 elsewhere (accuracy of a
    # blank image); now every shuffle keeps DC, so the spread over shuffles is that of the rest.
    _, _, x, y = tiny_data
    mask = np.zeros((1, 16, 16), np.float32)
    mask[0, 0, 0] = 1.0
    mask[0, 0, 1] = mask[0, 0, -1] = 0.5
    table = evaluate_controls(tiny_model, x, y, {1: mask, 2: mask}, threshold=0.0, random_shuffles=5,
                              batch_size=512)
    assert list(table.columns) == ["seed", "masked_acc", "complement_acc", "random_acc", "random_acc_sd",
                                   "lowpass_acc"]
    shuffles = random_masks_like(mask, 1, 5)
    assert (shuffles[:, 0, 0, 0] == 1).all()
    shuffled = {("r", k): s for k, s in enumerate(shuffles)}
    manual = evaluate_transfer(tiny_model, x, y, shuffled, batch_size=512)["masked_acc"]
    assert table["random_acc"].iloc[0] == pytest.approx(manual.mean())
    assert table["random_acc_sd"].iloc[0] == pytest.approx(manual.std(ddof=1))


def test_transfer_evaluates_every_mask_on_the_target(tiny_model, tiny_data):
    _, _, x, y = tiny_data
    masks = {("a", 1): np.ones((1, 16, 16), np.float32), ("b", 1): np.zeros((1, 16, 16), np.float32)}
    table = evaluate_transfer(tiny_model, x, y, masks, batch_size=512)
    assert table["masked_acc"].iloc[0] == pytest.approx(table["clean_acc"].iloc[0])
    labels_of_blank = tiny_model(torch.zeros(1, 1, 16, 16)).argmax(1)
    assert table["masked_acc"].iloc[1] == pytest.approx(float((y == labels_of_blank).float().mean()))


def test_learning_summary_reports_the_kept_epoch():
    import pandas as pd

    history = pd.DataFrame({"epoch": [1, 2, 3], "steps": [4, 8, 12], "seconds": [1.0, 1.0, 1.0],
                            "kept": [True, True, False], "fit_acc": [0.9, 0.8, 0.5], "clean_acc": [0.9] * 3,
                            "backoffs": [1, 0, 2], "status": ["learning", "learning", "kept_early"]})
    summary = learning_summary(history)
    assert summary == {"status": "kept_early", "epochs": 3, "steps": 12, "backoffs": 3, "seconds": 3.0,
                       "kept_epoch": 2, "fit_clean_acc": 0.9, "fit_masked_acc": 0.8}


def test_seed_agreement_and_the_convergence_report():
    import pandas as pd

    from fourier_masks.analysis.metrics import convergence_report, seed_agreement

    rng = np.random.default_rng(0)
    base = rng.random((1, 8, 8)).astype(np.float32)
    masks = {("a", 1): base, ("a", 2): base, ("b", 1): base, ("b", 2): rng.random((1, 8, 8)).astype(np.float32)}
    statuses = {("a", 1): "converged", ("a", 2): "recovered", ("b", 1): "budget", ("b", 2): "initial"}
    table = seed_agreement(masks, 0.5, statuses).set_index("model")
    assert table.loc["a", "mask_correlation"] == pytest.approx(1.0) and table.loc["a", "density_sd"] == 0
    assert abs(table.loc["b", "mask_correlation"]) < 0.5 and table.loc["b", "density_sd"] > 0
    assert table["converged"].to_dict() == {"a": 2, "b": 0}
    rows = pd.DataFrame([{"model": m, "seed": s, "status": v} for (m, s), v in statuses.items()])
    text = convergence_report(rows)
    assert "2 of 4 masks" in text and "b seed 1: budget" in text and "b seed 2: initial" in text
    assert convergence_report(rows[rows.model == "a"]) == ""


def test_mask_files_round_trip_and_bad_files_are_named(tmp_path):
    mask = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    save_mask(mask, tmp_path / "m.npy")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.npy", (3, 8, 8)), mask)
    with pytest.raises(InputError, match="m.npy"):
        load_mask(tmp_path / "m.npy", (3, 16, 16))
    truncated = tmp_path / "t.npy"
    truncated.write_bytes((tmp_path / "m.npy").read_bytes()[:90])
    with pytest.raises(InputError, match="t.npy"):
        load_mask(truncated)
    np.save(tmp_path / "bad.npy", mask * 3)
    with pytest.raises(InputError, match="outside"):
        load_mask(tmp_path / "bad.npy")
