"""Seed summaries and reference comparisons against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from fourier_masks.analysis.statistics import (
    cohens_d,
    compare_to_reference,
    direction_dependence,
    permutation_p,
    summarize,
)
from fourier_masks.errors import InputError


def _table():
    return pd.DataFrame({
        "model": ["standard"] * 3 + ["robust"] * 3 + ["same"] * 3,
        "seed": [1, 2, 3] * 3,
        "acc": [1.0, 2.0, 3.0, 11.0, 12.0, 13.0, 1.0, 2.0, 3.0],
        "density": [0.5] * 9,
    })


def test_summarize_mean_sd_and_bootstrap_interval():
    out = summarize(_table(), "model", ["acc", "density"], n_boot=2000, seed=1)
    row = out[(out.model == "robust") & (out.metric == "acc")].iloc[0]
    assert row["mean"] == 12.0 and row["sd"] == 1.0 and row["n"] == 3
    # The bootstrap mean of {11, 12, 13} ranges over [11, 13]; the 95% interval is inside it.
    assert 11.0 <= row["ci_lo"] < 12.0 < row["ci_hi"] <= 13.0
    constant = out[(out.model == "robust") & (out.metric == "density")].iloc[0]
    assert constant["ci_lo"] == constant["ci_hi"] == 0.5 and constant["sd"] == 0.0


def test_summarize_single_row_and_group_lists():
    df = pd.DataFrame({"model": ["a", "a", "b"], "split": ["x", "y", "x"], "acc": [0.2, 0.4, 0.9]})
    out = summarize(df, ["model", "split"], ["acc"], n_boot=1000)
    assert len(out) == 3 and set(out.columns) >= {"model", "split", "metric"}
    single = out[(out.model == "b")].iloc[0]
    assert math.isnan(single["sd"]) and single["ci_lo"] == single["ci_hi"] == 0.9 and single["n"] == 1


def test_separated_groups_of_three_give_exact_p_of_two_in_twenty():
    p, method = permutation_p(np.array([11.0, 12, 13]), np.array([1.0, 2, 3]), n_perm=10000)
    assert method == "exact" and p == pytest.approx(2 / 20)


def test_identical_groups_give_p_one_and_d_zero():
    out = compare_to_reference(_table(), "standard", metrics=["acc", "density"], n_perm=10000)
    same = out[(out.model == "same") & (out.metric == "acc")].iloc[0]
    assert same["p_value"] == 1.0 and same["difference"] == 0.0 and same["cohens_d"] == 0.0
    constant = out[(out.model == "robust") & (out.metric == "density")].iloc[0]
    assert constant["cohens_d"] == 0.0 and constant["p_value"] == 1.0 and constant["note"] == ""


def test_compare_to_reference_difference_and_cohens_d():
    out = compare_to_reference(_table(), "standard", metrics=["acc"], n_perm=10000)
    assert "standard" not in set(out.model)
    robust = out[out.model == "robust"].iloc[0]
    # Both sds are 1, so the pooled sd is 1 and d equals the difference of means.
    assert robust["difference"] == 10.0 and robust["cohens_d"] == pytest.approx(10.0)
    assert robust["p_value"] == pytest.approx(0.1) and robust["p_method"] == "exact"


def test_cohens_d_of_different_constant_groups_is_nan_with_a_note():
    d, note = cohens_d(np.array([2.0, 2.0]), np.array([1.0, 1.0]))
    assert math.isnan(d) and "zero variance" in note


def test_monte_carlo_p_uses_the_plus_one_correction():
    rng = np.random.default_rng(0)
    a, b = rng.normal(5, 1, 20), rng.normal(0, 1, 20)  # C(40, 20) splits: too many to enumerate
    p, method = permutation_p(a, b, n_perm=999)
    assert method == "monte_carlo" and p == pytest.approx(1 / 1000)
    p_null, _ = permutation_p(rng.normal(0, 1, 20), rng.normal(0, 1, 20), n_perm=999)
    assert p_null > 0.01


def test_bad_arguments_name_the_problem():
    with pytest.raises(InputError, match="reference 'nope'"):
        compare_to_reference(_table(), "nope", metrics=["acc"], n_perm=10000)
    with pytest.raises(InputError, match="missing"):
        summarize(_table(), "model", ["missing"], n_boot=1000)
    with pytest.raises(InputError, match="ci = 1.5"):
        summarize(_table(), "model", ["acc"], n_boot=1000, ci=1.5)


def test_summary_and_comparison_merge_without_clashing_columns():
    table = _table()
    merged = summarize(table, "model", ["acc"], n_boot=1000).merge(
        compare_to_reference(table, "standard", metrics=["acc"], n_perm=10000), on=["model", "metric"], how="left")
    assert {"mean", "n", "difference", "p_value"} <= set(merged.columns)
    robust = merged[merged.model == "robust"].iloc[0]
    assert robust["mean"] - robust["mean_reference"] == robust["difference"] == 10.0


def _angular(model_profiles: dict) -> pd.DataFrame:
    """Angular profile table from ``{model: [per-seed energy profiles]}``."""
    rows = [{"model": model, "seed": seed, "band": band, "energy": value}
            for model, profiles in model_profiles.items() for seed, profile in enumerate(profiles, 1)
            for band, value in enumerate(profile)]
    return pd.DataFrame(rows)


def test_direction_dependence_by_hand():
    flat = [[1.0, 1.0, 1.0, 1.0], [1.1, 1.1, 1.1, 1.1], [0.9, 0.9, 0.9, 0.9]]
    table = _angular({
        "standard": flat,
        "shifted": [[v + 0.5 for v in p] for p in flat],          # same difference in every direction
        "vertical": [[1.0, 2.0, 1.0, 2.0], [1.1, 2.1, 1.1, 2.1], [0.9, 1.9, 0.9, 1.9]],
    })
    out = direction_dependence(table, "standard", n_perm=10000).set_index("model")
    assert out.loc["shifted", "difference"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc["shifted", "p_value"] == 1.0
    # d = (0, 1, 0, 1): minus its mean 0.5 gives +-0.5, RMS 0.5; only the observed split and its
    # mirror image reach it, so p = 2 / C(6, 3) = 0.1, the smallest possible with 3 + 3 seeds.
    assert out.loc["vertical", "difference"] == pytest.approx(0.5)
    assert out.loc["vertical", "p_value"] == pytest.approx(0.1)
    assert (out["p_method"] == "exact").all() and (out["n"] == 3).all() and (out["n_reference"] == 3).all()
    with pytest.raises(InputError, match="reference"):
        direction_dependence(table, "nope", n_perm=10000)


def test_direction_dependence_is_not_significant_for_seed_noise():
    rng = np.random.default_rng(0)
    table = _angular({"a": rng.random((5, 16)), "b": rng.random((5, 16))})
    row = direction_dependence(table, "a", n_perm=100, seed=1).iloc[0]
    assert row["p_method"] == "monte_carlo" and row["p_value"] > 0.05
