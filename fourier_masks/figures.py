"""Matplotlib figures of masks, profiles, bias metrics, transfer and masked images.

Functions take arrays and tables and return a :class:`matplotlib.figure.Figure`;
:func:`save_figure` writes it as PNG and PDF. Masks are drawn fftshifted (DC in the centre)
with axes in cycles per image.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import CenteredNorm  # noqa: E402

from .masks.protocol import CONVERGED  # noqa: E402

__all__ = ["save_figure", "mask_grid", "profile_differences", "bias_summary", "transfer_heatmap", "example_images",
           "fourier_heatmap_grid", "cutoff_curves_figure", "single_image_band_shares", "single_image_decoding_figure",
           "retrain_figure"]


def save_figure(figure, *paths) -> None:
    """Write ``figure`` to each path (format from the suffix) and close it."""
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(figure)


def _shifted_extent(height: int, width: int):
    return (-width / 2 - 0.5, width / 2 - 0.5, height / 2 - 0.5, -height / 2 - 0.5)


def mask_grid(masks: dict, models, seeds, statuses: dict | None = None):
    """Grid of fftshifted masks (channel mean): one row per model, one column per seed.

    ``masks`` maps ``(model, seed)`` to a full-layout mask ``[C', H, W]``; ``statuses`` to how
    its learning ended: a mask that is not a converged result gets a red frame and its status.
    """
    statuses = statuses or {}
    rows, cols = len(models), len(seeds)
    figure, axes = plt.subplots(rows, cols, figsize=(1.8 * cols + 1, 1.8 * rows + 0.4), squeeze=False,
                                layout="constrained")
    image = None
    for i, model in enumerate(models):
        for j, seed in enumerate(seeds):
            mask = np.fft.fftshift(masks[(model, seed)].mean(0))
            axis = axes[i, j]
            image = axis.imshow(mask, cmap="viridis", vmin=0, vmax=1, extent=_shifted_extent(*mask.shape))
            axis.set_xticks([])
            axis.set_yticks([])
            status = statuses.get((model, seed), "converged")
            if status not in CONVERGED:
                axis.text(0.5, 0.02, status, transform=axis.transAxes, ha="center", va="bottom", fontsize=8,
                          color="white", backgroundcolor="tab:red")
                for spine in axis.spines.values():
                    spine.set(color="tab:red", linewidth=2.5)
            if i == 0:
                axis.set_title(f"seed {seed}", fontsize=9)
            if j == 0:
                axis.set_ylabel(model, fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.6, label="mask value")
    figure.suptitle("Learned Fourier masks (DC at centre)")
    return figure


def _difference_from_reference(table: pd.DataFrame, reference: str, x: str) -> pd.DataFrame:
    """Per model, band and seed: energy minus the reference model's mean energy in that band."""
    reference_mean = table[table["model"] == reference].groupby("band")["energy"].mean()
    table = table.assign(difference=table["energy"] - table["band"].map(reference_mean))
    return table.groupby(["model", "band", x])["difference"].agg(["mean", "std"]).reset_index()


def _plot_differences(axis, summary: pd.DataFrame, x: str, reference: str, labels: dict) -> None:
    """One line (mean) and band (sd over seeds) per non-reference model."""
    for model, rows in summary.groupby("model", sort=False):
        if model == reference:
            continue
        line, = axis.plot(rows[x], rows["mean"], label=labels.get(model, model))
        axis.fill_between(rows[x], rows["mean"] - rows["std"].fillna(0), rows["mean"] + rows["std"].fillna(0),
                          color=line.get_color(), alpha=0.2)
    axis.axhline(0, color="black", lw=0.8)
    axis.set_ylabel(f"band energy minus {reference}")


def profile_differences(radial: pd.DataFrame, angular: pd.DataFrame, reference: str,
                        direction: pd.DataFrame | None = None):
    """Radial and angular band energies minus the reference model's, mean +- sd over seeds.

    Sectors are drawn at their centre in degrees in the paper's orientation (counter-clockwise
    from ``+fx``, vertical frequency axis up). ``direction``, the ``direction_dependence`` rows
    of ``frequency_bias_stats`` (``model, p_value``), adds each model's p-value to the legend.
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _plot_differences(left, _difference_from_reference(radial, reference, "r_lo"), "r_lo", reference, {})
    left.set_xlabel("radius (cycles per image)")
    angular = angular.assign(degrees=np.degrees((angular["theta_lo"] + angular["theta_hi"]) / 2))
    labels = {} if direction is None else {
        row.model: f"{row.model} (direction p = {row.p_value:.2g})" for row in direction.itertuples()}
    _plot_differences(right, _difference_from_reference(angular, reference, "degrees"), "degrees", reference, labels)
    right.set_xticks(range(0, 361, 45), ["0\n+fx", "45", "90\nup", "135", "180\n-fx", "225", "270\ndown", "315",
                                         "360"])
    right.set_xlim(0, 360)
    right.set_xlabel("orientation (degrees, counter-clockwise, vertical frequency axis up)")
    left.set_title("Radial profile")
    right.set_title("Angular profile")
    right.legend(fontsize=8, frameon=False)
    return figure


def bias_summary(bias: pd.DataFrame, masks: pd.DataFrame, reference: str,
                 metrics=("density", "low_freq_fraction", "radial_centroid", "anisotropy")):
    """Per-seed dots and means of frequency-bias metrics and masked/clean accuracy per model."""
    retention = masks.assign(retention=masks["masked_acc"] / masks["clean_acc"])[["model", "seed", "retention"]]
    table = bias.merge(retention, on=["model", "seed"])
    panels = [*metrics, "retention"]
    models = list(dict.fromkeys(table["model"]))
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for axis, metric in zip(axes, panels, strict=True):
        for k, model in enumerate(models):
            values = table.loc[table["model"] == model, metric]
            axis.scatter(np.full(len(values), k), values, s=14, alpha=0.7,
                         color="black" if model == reference else "tab:blue")
            axis.hlines(values.mean(), k - 0.3, k + 0.3, color="tab:red")
        axis.set_xticks(range(len(models)), models, rotation=60, ha="right", fontsize=8)
        axis.set_title(metric, fontsize=10)
    figure.tight_layout()
    return figure


def transfer_heatmap(transfer: pd.DataFrame):
    """Masked accuracy relative to clean accuracy: source mask (rows) x target model (columns).

    Seeds of a source model are averaged. Colours diverge around 1 (red: the mask costs the
    target accuracy, blue: it gains) over the matrix's own range, at least +-0.05, so that
    differences of a few per cent between regimes stay visible.
    """
    relative = transfer.assign(retention=transfer["masked_acc"] / transfer["clean_acc"])
    matrix = relative.pivot_table(index="source_model", columns="target_model", values="retention", sort=False)
    values = matrix.to_numpy()
    halfrange = max(0.05, float(np.nanmax(np.abs(values - 1.0))))
    figure, axis = plt.subplots(figsize=(1 + 0.8 * matrix.shape[1], 1 + 0.7 * matrix.shape[0]))
    image = axis.imshow(values, cmap="RdBu", norm=CenteredNorm(vcenter=1.0, halfrange=halfrange))
    for (i, j), value in np.ndenumerate(values):
        axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                  color="white" if abs(value - 1.0) > 0.6 * halfrange else "black")
    axis.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=60, ha="right")
    axis.set_yticks(range(matrix.shape[0]), matrix.index)
    axis.set_xlabel("target model")
    axis.set_ylabel("mask of source model")
    figure.colorbar(image, ax=axis, label="masked / clean accuracy")
    return figure


def _stretched(image: np.ndarray) -> np.ndarray:
    """``image`` ``[C, H, W]`` scaled to ``[0, 1]`` between its own 1st and 99th percentiles."""
    low, high = np.percentile(image, [1, 99])
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _show(axis, image, stretch: bool = False):
    image = np.clip(np.moveaxis(_stretched(image) if stretch else image, 0, -1), 0, 1)
    axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])


def example_images(images: np.ndarray, masks: dict, complements: dict):
    """Original, masked and complement-masked images side by side (docs/method.md, analysis 7).

    ``images`` float ``[N, C, H, W]`` in ``[0, 1]``; ``masks`` and ``complements`` map a
    model name to the masked and complement-masked images ``[N, C, H, W]``. Rows are
    images; columns the original then, per model, masked and complement. Masked and complement
    images are shown with per-image contrast (1st to 99th percentile), so that a complement
    that keeps little energy is still visible.
    """
    models = list(masks)
    n = len(images)
    figure, axes = plt.subplots(n, 1 + 2 * len(models), figsize=(1.4 * (1 + 2 * len(models)), 1.5 * n),
                                squeeze=False)
    for i in range(n):
        _show(axes[i, 0], images[i])
        for k, model in enumerate(models):
            _show(axes[i, 1 + 2 * k], masks[model][i], stretch=True)
            _show(axes[i, 2 + 2 * k], complements[model][i], stretch=True)
            if i == 0:
                axes[0, 1 + 2 * k].set_title(f"{model}\nmasked*", fontsize=8)
                axes[0, 2 + 2 * k].set_title(f"{model}\ncomplement*", fontsize=8)
    axes[0, 0].set_title("original", fontsize=8)
    figure.supxlabel("* per-image contrast (1st to 99th percentile)", fontsize=8)
    return figure


def _model_panels(n: int, size: float = 2.4):
    """A near-square grid of ``n`` axes (unused cells hidden) and the figure."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(size * cols + 1, size * rows), squeeze=False)
    for axis in axes.flat[n:]:
        axis.set_visible(False)
    return figure, axes.flat[:n]


def _cell_edges(centres: np.ndarray) -> np.ndarray:
    """Edges of cells around sorted, possibly unevenly spaced centres ``[K]`` -> ``[K + 1]``."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def fourier_heatmap_grid(table: pd.DataFrame):
    """Fourier heat maps (Yin et al. 2019), one panel per model, DC at the centre.

    ``table``: ``model, fy, fx, error`` (frequencies in cycles per image, error rate in
    ``[0, 1]``, NaN where not evaluated), one row per frequency bin and model. Frequencies
    never evaluated are dropped and each evaluated bin fills the cell around it.
    """
    models = list(dict.fromkeys(table["model"]))
    figure, axes = _model_panels(len(models))
    image = None
    for axis, model in zip(axes, models, strict=True):
        heat = table[table["model"] == model].pivot_table(index="fy", columns="fx", values="error")
        image = axis.pcolormesh(_cell_edges(heat.columns.to_numpy(float)), _cell_edges(heat.index.to_numpy(float)),
                                heat.to_numpy(), cmap="inferno", vmin=0, vmax=1)
        axis.set_aspect("equal")
        axis.invert_yaxis()
        axis.set_title(model, fontsize=9)
    figure.supxlabel("fx (cycles per image)", fontsize=9)
    figure.supylabel("fy (cycles per image)", fontsize=9)
    figure.colorbar(image, ax=list(axes), shrink=0.6, label="error rate")
    figure.suptitle("Fourier heat maps: error under an added plane wave")
    return figure


def cutoff_curves_figure(table: pd.DataFrame):
    """Accuracy on low-pass (left) and high-pass (right) filtered test images against the cut-off.

    ``table``: ``model, radius, lowpass_acc, highpass_acc`` (radius in cycles per image).
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, column, title in zip(axes, ("lowpass_acc", "highpass_acc"),
                                   ("Low-pass: bins with radius <= r kept", "High-pass: bins with radius > r kept"),
                                   strict=True):
        for model, rows in table.groupby("model", sort=False):
            axis.plot(rows["radius"], rows[column], marker=".", label=model)
        axis.set_xlabel("cut-off radius r (cycles per image)")
        axis.set_title(title, fontsize=10)
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(fontsize=8, frameon=False)
    return figure


def single_image_band_shares(table: pd.DataFrame):
    """Per radial band, the share of images whose mask A has more energy than mask B.

    ``table``: rows of :func:`fourier_masks.analysis.single_image.band_share_table` with ``model``,
    ``comparison`` (``vs_reference``: the model's clean-image masks against the reference
    model's, named in ``versus``; ``adversarial_vs_clean``: masks of the model's PGD images
    against those of the clean images). Bands are drawn at their centre radius.
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    reference = table.loc[table["comparison"] == "vs_reference", "versus"].unique()
    titles = {"vs_reference": f"Clean images: model vs {', '.join(reference) or 'reference'}",
              "adversarial_vs_clean": "Same model: PGD image vs clean image"}
    for axis, (comparison, title) in zip(axes, titles.items(), strict=True):
        rows = table[table["comparison"] == comparison]
        for model, band in rows.groupby("model", sort=False):
            axis.plot((band["r_lo"] + band["r_hi"]) / 2, band["share_a_greater"], marker=".", label=model)
        axis.axhline(0.5, color="black", lw=0.8)
        axis.set_xlabel("band centre radius (cycles per image)")
        axis.set_title(title, fontsize=10)
        if len(rows):
            axis.legend(fontsize=8, frameon=False)
    axes[0].set_ylabel("share of images with more band energy")
    axes[0].set_ylim(-0.02, 1.02)
    return figure


def single_image_decoding_figure(table: pd.DataFrame):
    """Class decoding from single-image masks: accuracy and scrambled-label control per model.

    ``table``: ``model, kind`` (clean, adversarial), ``accuracy``, ``scrambled_accuracy``,
    ``chance``; chance is drawn as a tick per model.
    """
    models = list(dict.fromkeys(table["model"]))
    kinds = list(dict.fromkeys(table["kind"]))
    width = 0.8 / (2 * len(kinds))
    figure, axis = plt.subplots(figsize=(1.2 + 0.9 * len(models), 3.8))
    x = np.arange(len(models))
    for k, kind in enumerate(kinds):
        rows = table[table["kind"] == kind].set_index("model").loc[models]
        for j, (column, hatch) in enumerate((("accuracy", None), ("scrambled_accuracy", "//"))):
            offset = (2 * k + j - len(kinds) + 0.5) * width
            axis.bar(x + offset, rows[column], width, hatch=hatch, color=f"C{k}",
                     alpha=1.0 if hatch is None else 0.5,
                     label=f"{kind} masks" + ("" if hatch is None else ", scrambled"))
    chance = table.groupby("model", sort=False)["chance"].max().loc[models]
    axis.hlines(chance, x - 0.45, x + 0.45, color="black", lw=1, label="chance")
    axis.set_xticks(x, models, rotation=60, ha="right", fontsize=8)
    axis.set_ylabel("cross-validated accuracy")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7, frameon=False)
    return figure


def retrain_figure(table: pd.DataFrame):
    """Test accuracy of each original model and its retrained-on-masked-images copy.

    ``table``: ``model, trained_on`` (original, masked), ``clean_acc``, ``masked_acc``.
    """
    figure, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=True)
    models = list(dict.fromkeys(table["model"]))
    x = np.arange(len(models))
    for axis, column, title in zip(axes, ("clean_acc", "masked_acc"), ("Clean test images", "Masked test images"),
                                   strict=True):
        for j, trained_on in enumerate(("original", "masked")):
            rows = table[table["trained_on"] == trained_on].set_index("model").loc[models]
            axis.bar(x + (j - 0.5) * 0.4, rows[column], 0.4, label=f"trained on {trained_on} images")
        axis.set_xticks(x, models, rotation=30, ha="right")
        axis.set_title(title, fontsize=10)
    axes[0].set_ylabel("test accuracy")
    axes[0].set_ylim(0, 1)
    axes[1].legend(fontsize=8, frameon=False)
    return figure
