"""Metrics of learned masks: profiles, frequency-bias summaries and control masks (numpy only).

Masks are full-layout arrays ``[C', H, W]`` (unshifted, values in ``[0, 1]``). A mask's
*energy* in a set of bins is the sum of its squared values there, pooled over channels.

Frequency-bias metrics (:func:`frequency_bias`)
-----------------------------------------------
``density``            mean mask value: 1 is all-pass, 0 passes nothing.
``low_freq_fraction``  share of the mask's energy at radii ``<= cutoff`` cycles per image,
                       with ``cutoff = low_freq_cutoff * min(H, W) / 2``.
``low_freq_enrichment`` ``low_freq_fraction`` over the share of bins inside the cutoff, i.e.
                       over what an all-pass (or any uniform) mask gives; 1 = no bias.
``radial_centroid``    energy-weighted mean radius, cycles per image.
``radial_spread``      energy-weighted standard deviation of the radius, cycles per image.
``anisotropy``         ``|sum m^2 exp(2 i theta)| / sum m^2`` over bins off DC: 0 when the
                       energy is spread evenly over orientations, 1 when it lies on one line.
``dominant_orientation`` ``arg(sum m^2 exp(2 i theta)) / 2`` in ``[0, pi)`` radians: the
                       wave-vector orientation holding most energy, in the paper's
                       convention (counter-clockwise from ``+fx``, vertical axis up; see
                       :func:`fourier_masks.spectrum.angle_grid`).
Ratios of an all-zero mask are undefined and reported as NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..masks.protocol import CONVERGED
from ..spectrum import (
    angle_grid,
    angular_band_index,
    band_energies,
    lowpass_mask_of_density,
    nyquist_radius,
    radial_band_index,
    radius_grid,
    reflect,
    symmetrize,
)
from .statistics import compare_to_reference, direction_dependence, summarize

__all__ = [
    "profile",
    "frequency_bias",
    "complement_mask",
    "random_mask_like",
    "random_masks_like",
    "lowpass_mask_like",
    "control_masks",
    "mask_profiles",
    "learning_summary",
    "mask_summary",
    "seed_agreement",
    "convergence_report",
]


def profile(mask: np.ndarray, n_bands: int, kind: str = "radial") -> pd.DataFrame:
    """Radial or angular band energies of one mask ``[C', H, W]`` (docs/method.md, analysis 3).

    Returns a DataFrame with one row per band: ``band``, ``lo``, ``hi`` (cycles per image
    for ``radial``, radians in the paper's orientation for ``angular``), ``energy`` (L2
    norm of the unit-normalised mask in the band) and ``energy_share`` (``energy ** 2``;
    radial shares sum to 1, angular ones to 1 less DC's share, DC being in no sector).
    """
    height, width = mask.shape[-2:]
    band_index = radial_band_index if kind == "radial" else angular_band_index
    index, edges = band_index(height, width, n_bands)
    energy = band_energies(mask, index, n_bands)
    return pd.DataFrame({"band": np.arange(n_bands), "lo": edges[:-1], "hi": edges[1:],
                         "energy": energy, "energy_share": energy**2})


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def frequency_bias(mask: np.ndarray, low_freq_cutoff: float) -> dict:
    """Frequency-bias summaries of one mask ``[C', H, W]``; see the module docstring."""
    height, width = mask.shape[-2:]
    energy = (np.asarray(mask, dtype=np.float64) ** 2).reshape(-1, height, width).sum(0)
    total = energy.sum()
    radius = radius_grid(height, width)
    inside = radius <= low_freq_cutoff * nyquist_radius(height, width)
    low_fraction = _ratio(energy[inside].sum(), total)
    centroid = _ratio((energy * radius).sum(), total)
    spread = np.sqrt(_ratio((energy * (radius - centroid) ** 2).sum(), total)) if total > 0 else float("nan")
    off_dc = radius > 0
    moment = (energy[off_dc] * np.exp(2j * angle_grid(height, width)[off_dc])).sum()
    return {
        "density": float(np.mean(mask)),
        "low_freq_fraction": low_fraction,
        "low_freq_enrichment": low_fraction / inside.mean(),
        "radial_centroid": centroid,
        "radial_spread": float(spread),
        "anisotropy": _ratio(abs(moment), energy[off_dc].sum()),
        "dominant_orientation": float(np.mod(np.angle(moment) / 2, np.pi)),
    }


def complement_mask(mask: np.ndarray, threshold: float) -> np.ndarray:
    """``1 - binarised mask``: passes exactly the bins where ``mask <= threshold`` (docs/method.md, analysis 4)."""
    return (np.asarray(mask) <= threshold).astype(np.float32)


def random_mask_like(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """The symmetrised mask's values shuffled over frequency pairs ``{k, -k}``, DC kept.

    Every pair moves as one, so the result stays symmetric (it acts on real images as
    stored) and holds exactly the same values: same density and energy, no structure. DC
    keeps its learned value (a random value there scales the image's mean brightness, and
    accuracy followed it), the other bins that are their own reflection (Nyquist bins of
    even sizes) are shuffled among themselves, and channels move together. Float32
    ``[C', H, W]`` like ``mask``.
    """
    symmetric = symmetrize(np.asarray(mask, dtype=np.float32))
    height, width = symmetric.shape[-2:]
    bins = np.arange(height * width)
    partner = reflect(bins.reshape(height, width)).ravel()
    rng = np.random.default_rng(seed)
    source = bins.copy()
    pairs = bins[bins < partner]
    shuffled = pairs[rng.permutation(len(pairs))]
    source[pairs], source[partner[pairs]] = shuffled, partner[shuffled]
    singles = bins[(bins == partner) & (bins != 0)]
    source[singles] = singles[rng.permutation(len(singles))]
    flat = symmetric.reshape(*symmetric.shape[:-2], -1)
    return flat[..., source].reshape(symmetric.shape)


def random_masks_like(mask: np.ndarray, seed: int, n_shuffles: int) -> np.ndarray:
    """``n_shuffles`` shuffles of ``mask`` (:func:`random_mask_like`), float32 ``[S, C', H, W]``.

    Shuffle ``k`` is seeded with ``(seed, k)``, so each mask seed has its own reproducible set.
    """
    if int(n_shuffles) != n_shuffles or n_shuffles < 1:
        raise InputError(f"analysis.random_shuffles = {n_shuffles!r} must be a positive number of shuffles.")
    return np.stack([random_mask_like(mask, (seed, k)) for k in range(int(n_shuffles))])


def lowpass_mask_like(mask: np.ndarray) -> np.ndarray:
    """Binary radial low-pass mask ``[1, H, W]`` of the same density as ``mask``."""
    height, width = mask.shape[-2:]
    return lowpass_mask_of_density(height, width, float(np.mean(mask)))[None]


def control_masks(mask: np.ndarray, threshold: float, seed: int, n_shuffles: int) -> dict[str, np.ndarray]:
    """Control masks of one learned mask ``[C', H, W]``.

    Keys: ``complement`` (:func:`complement_mask`) and ``lowpass`` (:func:`lowpass_mask_like`),
    each ``[C', H, W]``, and ``random``, ``n_shuffles`` shuffles ``[S, C', H, W]``
    (:func:`random_masks_like`).
    """
    return {
        "complement": complement_mask(mask, threshold),
        "random": random_masks_like(mask, seed, n_shuffles),
        "lowpass": np.broadcast_to(lowpass_mask_like(mask), mask.shape).astype(np.float32),
    }


def mask_profiles(masks: dict, radial_bands: int, angular_bands: int,
                  low_freq_cutoff: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Radial and angular profiles and frequency-bias metrics of many masks, as three tables.

    ``masks``: ``{(model, seed): mask [C', H, W]}``. Returns ``(radial, angular, bias)``:
    ``radial`` one row per mask and band, ``model, seed, band, r_lo, r_hi`` (cycles per image),
    ``energy, energy_share`` (:func:`profile`); ``angular`` the same with ``theta_lo,
    theta_hi`` (radians); ``bias`` one row per mask, ``model, seed`` and the metrics of
    :func:`frequency_bias`.
    """
    pairs = [({"model": model, "seed": seed}, mask) for (model, seed), mask in masks.items()]
    first = ["model", "seed"]

    def profiles(kind: str, n_bands: int, names: dict) -> pd.DataFrame:
        table = pd.concat([profile(mask, n_bands, kind).assign(**key) for key, mask in pairs], ignore_index=True)
        table = table.rename(columns=names)
        return table[first + [column for column in table if column not in first]]

    bias = pd.DataFrame([{**key, **frequency_bias(mask, low_freq_cutoff)} for key, mask in pairs])
    return (profiles("radial", radial_bands, {"lo": "r_lo", "hi": "r_hi"}),
            profiles("angular", angular_bands, {"lo": "theta_lo", "hi": "theta_hi"}), bias)


def learning_summary(history: pd.DataFrame) -> dict:
    """Summary of one seed's mask-learning history (see :func:`~fourier_masks.masks.learning.learn_masks`).

    Returns how learning ended (``status``, :data:`fourier_masks.masks.protocol.STATUSES`),
    ``epochs`` run, optimiser ``steps``, steps undone (``backoffs``), wall ``seconds`` of the
    passes it took part in, the epoch of the kept mask (``kept_epoch``, 0 for the initial
    mask) and the clean and kept-mask accuracy on the fitting images. Epochs the keep rule did
    not judge (``kept`` missing) count as not kept.
    """
    kept = history[history["kept"].fillna(False).astype(bool)]
    return {
        "status": str(history["status"].iloc[-1]),
        "epochs": int(history["epoch"].max()),
        "steps": int(history["steps"].max()),
        "backoffs": int(history["backoffs"].sum()),
        "seconds": float(history["seconds"].sum()),
        "kept_epoch": int(kept["epoch"].max()) if len(kept) else 0,
        "fit_clean_acc": float(history["clean_acc"].iloc[0]),
        "fit_masked_acc": float(kept["fit_acc"].iloc[-1]) if len(kept) else float(history["clean_acc"].iloc[0]),
    }


#: Columns of :func:`mask_summary`, in order.
SUMMARY_COLUMNS = ["model", "seed", "status", "clean_acc", "masked_acc", "complement_acc", "random_acc",
                   "random_acc_sd", "lowpass_acc", "density", "steps", "epochs", "backoffs", "kept_epoch", "seconds",
                   "fit_clean_acc", "fit_masked_acc"]


def mask_summary(histories: dict, densities: dict, controls: pd.DataFrame) -> pd.DataFrame:
    """One row per model and seed: held-out accuracies with the mask and its controls, density and cost.

    ``histories``: ``{(model, seed): learning history}`` (:func:`learning_summary`);
    ``densities``: ``{(model, seed): mean mask value}``; ``controls``: the
    :func:`fourier_masks.analysis.evaluation.evaluate_controls` rows of every model with
    ``model`` and ``clean_acc``. Columns :data:`SUMMARY_COLUMNS`.
    """
    rows = [{"model": model, "seed": seed, "density": densities[model, seed], **learning_summary(history)}
            for (model, seed), history in histories.items()]
    table = pd.DataFrame(rows).merge(controls, on=["model", "seed"], validate="one_to_one")
    return table[SUMMARY_COLUMNS]


def seed_agreement(masks: dict, low_freq_cutoff: float, statuses: dict) -> pd.DataFrame:
    """Per model: how much its seeds' masks agree, i.e. whether the essential frequencies are the model's.

    ``masks``: ``{(model, seed): mask [C', H, W]}``; ``statuses``: ``{(model, seed): status}``.
    One row per model: ``seeds``, ``converged`` (seeds whose mask is a converged result),
    ``mask_correlation`` and ``min_mask_correlation`` (mean and least Pearson correlation of two
    seeds' masks over all bins and pairs; NaN for one seed or a constant mask), and the sd over
    seeds (ddof 1) of ``density``, ``low_freq_fraction`` and ``radial_centroid``.
    """
    rows = []
    for model in dict.fromkeys(model for model, _ in masks):
        keys = [key for key in masks if key[0] == model]
        flat = np.stack([masks[key].ravel() for key in keys]).astype(np.float64)
        pairs = [(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys))]
        with np.errstate(invalid="ignore", divide="ignore"):
            correlations = [float(np.corrcoef(flat[i], flat[j])[0, 1]) for i, j in pairs]
        bias = pd.DataFrame([frequency_bias(masks[key], low_freq_cutoff) for key in keys])
        rows.append({"model": model, "seeds": len(keys),
                     "converged": sum(statuses[key] in CONVERGED for key in keys),
                     "mask_correlation": float(np.mean(correlations)) if pairs else np.nan,
                     "min_mask_correlation": float(np.min(correlations)) if pairs else np.nan,
                     **{f"{metric}_sd": float(bias[metric].std(ddof=1)) if len(keys) > 1 else np.nan
                        for metric in ("density", "low_freq_fraction", "radial_centroid")}})
    return pd.DataFrame(rows)


def convergence_report(masks_table: pd.DataFrame) -> str:
    """A paragraph naming every mask of the ``masks`` table that is not a converged result; ``""`` if none."""
    bad = masks_table[~masks_table["status"].isin(CONVERGED)]
    if bad.empty:
        return ""
    listed = "; ".join(f"{row.model} seed {row.seed}: {row.status}" for row in bad.itertuples())
    return (f"{len(bad)} of {len(masks_table)} masks are not converged results ({listed}). 'budget': mask.epochs ran "
            "out while the mask still moved; 'kept_early': the converged mask failed the keep rule and an earlier "
            "one is reported; 'diverged': learning kept blowing up; 'initial': no mask kept the accuracy, so the "
            "all-pass mask is reported. Their rows in results/tables/masks.parquet say so in 'status', the mask "
            "grid marks them, and mask.require_converged: true makes them an error.")


#: Frequency-bias metrics compared across models (see the module docstring).
BIAS_METRICS = ("density", "low_freq_fraction", "low_freq_enrichment", "radial_centroid", "radial_spread",
                "anisotropy")


def bias_statistics(bias: pd.DataFrame, angular: pd.DataFrame, reference: str, n_boot: int, n_perm: int,
                    seed: int = 0) -> pd.DataFrame:
    """Per model and metric: spread over seeds and comparison with the ``reference`` model.

    ``bias`` is the ``frequency_bias`` table (one row per model and seed), ``angular`` the
    ``angular_profile`` table. Returns one row per model and metric with ``mean, sd, ci_lo,
    ci_hi, n`` (percentile bootstrap of the mean over seeds) and, against ``reference``,
    ``difference``, ``cohens_d`` and a two-sided permutation ``p_value``; plus one
    ``direction_dependence`` row per other model
    (:func:`~fourier_masks.analysis.statistics.direction_dependence`: how unevenly over orientations
    its angular profile differs from the reference's, with a permutation p-value over seeds).
    """
    metrics = list(BIAS_METRICS)
    summary = summarize(bias, by="model", metrics=metrics, n_boot=n_boot, seed=seed)
    comparison = compare_to_reference(bias, reference, by="model", metrics=metrics, n_perm=n_perm, seed=seed)
    per_metric = summary.merge(comparison, on=["model", "metric"], how="left")
    direction = direction_dependence(angular, reference, n_perm=n_perm, seed=seed)
    return pd.concat([per_metric, direction], ignore_index=True)[per_metric.columns]
