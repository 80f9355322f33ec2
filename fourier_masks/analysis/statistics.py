"""Summaries over seeds and comparisons with a reference model, for tidy tables.

Inputs are long DataFrames with one row per replicate (e.g. per model and seed) and one
column per metric. :func:`summarize` gives each group's mean, standard deviation and a
percentile-bootstrap confidence interval of the mean; :func:`compare_to_reference` gives
each model's difference from a reference model with Cohen's d and a two-sided permutation
p-value (exact when the number of label splits is at most ``n_perm``).

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "acc": [1, 2, 3, 11, 12, 13]})
>>> compare_to_reference(df, "a", metrics=["acc"], n_perm=100)[["model", "difference", "p_value", "p_method"]]
  model  difference  p_value p_method
0     b        10.0      0.1    exact
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["summarize", "compare_to_reference", "cohens_d", "permutation_p", "direction_dependence"]


def _check_columns(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what} {missing} are not columns of the table; it has {list(df.columns)}.")


def _bootstrap_ci(values: np.ndarray, n_boot: int, ci: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the bootstrap distribution of the mean."""
    if len(values) == 1:
        return float(values[0]), float(values[0])
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    tail = (1 - ci) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarize(df: pd.DataFrame, by, metrics, n_boot: int, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per group and metric: ``mean, sd, ci_lo, ci_hi, n`` over the group's rows.

    Parameters
    ----------
    df : one row per replicate (seed).
    by : column name or list of names defining the groups.
    metrics : metric column names.
    n_boot : bootstrap resamples of the mean; ci : interval level in ``(0, 1)``.

    Returns
    -------
    Long DataFrame with the ``by`` columns, ``metric``, ``mean``, ``sd`` (ddof 1, NaN for a
    single row), ``ci_lo``, ``ci_hi`` (percentile bootstrap; both equal the value for a
    single row) and ``n`` (non-missing rows). Missing values are dropped per metric.
    """
    by = [by] if isinstance(by, str) else list(by)
    metrics = list(metrics)
    _check_columns(df, by + metrics, "by/metrics")
    if not 0 < ci < 1:
        raise InputError(f"ci = {ci} must lie strictly between 0 and 1 (e.g. 0.95).")
    if n_boot < 1:
        raise InputError(f"n_boot = {n_boot} must be a positive number of bootstrap resamples.")
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in df.groupby(by, sort=True):
        for metric in metrics:
            values = group[metric].dropna().to_numpy(dtype=np.float64)
            if len(values) == 0:
                continue
            low, high = _bootstrap_ci(values, n_boot, ci, rng)
            rows.append({**dict(zip(by, key, strict=True)), "metric": metric, "mean": values.mean(),
                         "sd": values.std(ddof=1) if len(values) > 1 else math.nan,
                         "ci_lo": low, "ci_hi": high, "n": len(values)})
    return pd.DataFrame(rows, columns=[*by, "metric", "mean", "sd", "ci_lo", "ci_hi", "n"])


def cohens_d(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    """Cohen's d of ``mean(a) - mean(b)`` over the pooled sd, and a note ('' if none).

    Two constant groups: d = 0 when equal; otherwise undefined (NaN) with a note. Fewer
    than 3 values in all leave the pooled sd undefined (NaN, with a note).
    """
    diff = a.mean() - b.mean()
    dof = len(a) + len(b) - 2
    if dof < 1:
        return math.nan, "too few replicates for a pooled sd"
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1 if len(a) > 1 else 0)
                        + (len(b) - 1) * b.var(ddof=1 if len(b) > 1 else 0)) / dof)
    if pooled == 0:
        return (0.0, "") if diff == 0 else (math.nan, "zero variance in both groups: d undefined")
    return diff / pooled, ""


def _label_splits(n: int, k: int, n_perm: int, seed: int) -> tuple[np.ndarray, str]:
    """Index sets ``[S, k]`` of the first group for the permutation tests, and the method.

    All ``C(n, k)`` splits when there are at most ``n_perm`` (``exact``), else ``n_perm``
    random ones (``monte_carlo``).
    """
    if math.comb(n, k) <= n_perm:
        return np.array(list(itertools.combinations(range(n), k))), "exact"
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_perm, n)), axis=1)[:, :k], "monte_carlo"


def _p_value(null: np.ndarray, observed: float, method: str, scale: float) -> float:
    """Share of permuted statistics at least as large as ``observed`` (with a rounding tolerance)."""
    hits = int((null >= observed - 1e-12 * max(1.0, scale)).sum())
    return hits / len(null) if method == "exact" else (1 + hits) / (1 + len(null))


def permutation_p(a: np.ndarray, b: np.ndarray, n_perm: int, seed: int = 0) -> tuple[float, str]:
    """Two-sided permutation p-value of ``|mean(a) - mean(b)|``, and the method used.

    All ``C(n_a + n_b, n_a)`` splits are enumerated when there are at most ``n_perm``
    (``exact``: p = share of splits at least as extreme, the observed one included);
    otherwise ``n_perm`` random splits are drawn (``monte_carlo``: p = (1 + hits) /
    (1 + n_perm)).
    """
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    groups, method = _label_splits(n, k, n_perm, seed)
    sums = pooled[groups].sum(axis=1)
    diffs = np.abs(sums / k - (pooled.sum() - sums) / (n - k))
    return _p_value(diffs, abs(a.mean() - b.mean()), method, np.abs(pooled).max()), method


def _direction_dependence(profiles: np.ndarray, k: int, groups: np.ndarray) -> np.ndarray:
    """RMS over sectors of the orientation-dependent part of ``mean(first k) - mean(rest)``.

    ``profiles`` ``[n, B]``; ``groups`` ``[S, k]`` row sets of the first group. Returns ``[S]``.
    """
    n = len(profiles)
    sums = profiles[groups].sum(axis=1)
    difference = sums / k - (profiles.sum(axis=0) - sums) / (n - k)
    centred = difference - difference.mean(axis=1, keepdims=True)
    return np.sqrt((centred**2).mean(axis=1))


def direction_dependence(angular: pd.DataFrame, reference: str, n_perm: int, seed: int = 0) -> pd.DataFrame:
    """Does a model's angular profile differ from the reference's more in some directions?

    ``angular``: the ``angular_profile`` table (``model, seed, band, energy``), one profile
    per model and seed. For a model, ``d_b`` is its mean sector energy minus the reference's
    (in the paper's orientation); the statistic is the RMS over sectors of ``d_b - mean(d)``,
    0 when the two differ by the same amount in every direction. Its p-value comes from
    permuting the seeds' labels (whole profiles) between the model and the reference,
    exact when there are at most ``n_perm`` splits (3 + 3 seeds: 20 splits, smallest p 0.1).

    Returns
    -------
    One row per other model: ``model``, ``metric`` (``direction_dependence``), ``n``,
    ``reference``, ``n_reference``, ``difference`` (the statistic, band-energy units),
    ``p_value``, ``p_method`` and ``note``.
    """
    _check_columns(angular, ["model", "seed", "band", "energy"], "columns")
    if reference not in set(angular["model"]):
        raise InputError(f"reference {reference!r} is not a model of the angular profile table; "
                         f"models: {sorted(map(str, set(angular['model'])))}.")
    wide = angular.pivot_table(index=["model", "seed"], columns="band", values="energy")
    ref = wide.loc[reference].to_numpy()
    rows = []
    for model in sorted(set(angular["model"]) - {reference}):
        own = wide.loc[model].to_numpy()
        profiles = np.concatenate([own, ref])
        groups, method = _label_splits(len(profiles), len(own), n_perm, seed)
        observed = _direction_dependence(profiles, len(own), np.arange(len(own))[None])[0]
        null = _direction_dependence(profiles, len(own), groups)
        rows.append({"model": model, "metric": "direction_dependence", "n": len(own), "reference": reference,
                     "n_reference": len(ref), "difference": observed,
                     "p_value": _p_value(null, observed, method, observed), "p_method": method, "note": ""})
    return pd.DataFrame(rows, columns=["model", "metric", "n", "reference", "n_reference", "difference", "p_value",
                                       "p_method", "note"])


def compare_to_reference(df: pd.DataFrame, reference: str, by: str = "model", metrics=(), *, n_perm: int,
                         seed: int = 0) -> pd.DataFrame:
    """Each group against the ``reference`` group, per metric.

    Returns
    -------
    DataFrame, one row per non-reference group and metric: ``by``, ``metric``,
    ``reference``, ``n_reference``, ``mean_reference``, ``difference`` (group minus
    reference), ``cohens_d``, ``p_value`` (two-sided permutation), ``p_method`` (``exact``
    or ``monte_carlo``) and ``note``. Missing values are dropped. The group's own ``mean``
    and ``n`` come from :func:`summarize`, so the two tables merge on ``[by, 'metric']``.
    """
    metrics = list(metrics)
    if not metrics:
        raise InputError("compare_to_reference needs at least one metric column in metrics.")
    _check_columns(df, [by, *metrics], "by/metrics")
    if reference not in set(df[by]):
        raise InputError(f"reference {reference!r} is not a value of column {by!r}; "
                         f"values: {sorted(map(str, set(df[by])))}.")
    if n_perm < 1:
        raise InputError(f"n_perm = {n_perm} must be a positive number of permutations.")
    ref = df[df[by] == reference]
    rows = []
    for name, group in df[df[by] != reference].groupby(by, sort=True):
        for metric in metrics:
            a = group[metric].dropna().to_numpy(dtype=np.float64)
            b = ref[metric].dropna().to_numpy(dtype=np.float64)
            if len(a) == 0 or len(b) == 0:
                continue
            d, note = cohens_d(a, b)
            p, method = permutation_p(a, b, n_perm, seed)
            rows.append({by: name, "metric": metric, "reference": reference,
                         "n_reference": len(b), "mean_reference": b.mean(),
                         "difference": a.mean() - b.mean(), "cohens_d": d, "p_value": p,
                         "p_method": method, "note": note})
    return pd.DataFrame(rows, columns=[by, "metric", "reference", "n_reference", "mean_reference", "difference",
                                       "cohens_d", "p_value", "p_method", "note"])
