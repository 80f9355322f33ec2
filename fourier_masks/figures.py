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

__all__ = ["save_figure", "mask_grid", "profile_differences", "bias_summary", "transfer_heatmap", "example_images"]


def save_figure(figure, *paths) -> None:
    """Write ``figure`` to each path (format from the suffix) and close it."""
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(figure)


def _shifted_extent(height: int, width: int):
    return (-width / 2 - 0.5, width / 2 - 0.5, height / 2 - 0.5, -height / 2 - 0.5)


def mask_grid(masks: dict, models, seeds):
    """Grid of fftshifted masks (channel mean): one row per model, one column per seed.

    ``masks`` maps ``(model, seed)`` to a full-layout mask ``[C', H, W]``.
    """
    rows, cols = len(models), len(seeds)
    figure, axes = plt.subplots(rows, cols, figsize=(1.8 * cols + 1, 1.8 * rows), squeeze=False)
    image = None
    for i, model in enumerate(models):
        for j, seed in enumerate(seeds):
            mask = np.fft.fftshift(masks[(model, seed)].mean(0))
            axis = axes[i, j]
            image = axis.imshow(mask, cmap="viridis", vmin=0, vmax=1, extent=_shifted_extent(*mask.shape))
            axis.set_xticks([])
            axis.set_yticks([])
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


def profile_differences(radial: pd.DataFrame, angular: pd.DataFrame, reference: str):
    """Radial and angular band energies minus the reference model's, mean +- sd over seeds."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for axis, table, x, label in ((left, radial, "r_lo", "radius (cycles per image)"),
                                  (right, angular, "theta_lo", "orientation (radians)")):
        summary = _difference_from_reference(table, reference, x)
        for model, rows in summary.groupby("model", sort=False):
            if model == reference:
                continue
            line, = axis.plot(rows[x], rows["mean"], label=model)
            axis.fill_between(rows[x], rows["mean"] - rows["std"].fillna(0), rows["mean"] + rows["std"].fillna(0),
                              color=line.get_color(), alpha=0.2)
        axis.axhline(0, color="black", lw=0.8)
        axis.set_xlabel(label)
        axis.set_ylabel(f"band energy minus {reference}")
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
    for axis, metric in zip(axes, panels):
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

    Seeds of a source model are averaged.
    """
    relative = transfer.assign(retention=transfer["masked_acc"] / transfer["clean_acc"])
    matrix = relative.pivot_table(index="source_model", columns="target_model", values="retention", sort=False)
    figure, axis = plt.subplots(figsize=(1 + 0.8 * matrix.shape[1], 1 + 0.7 * matrix.shape[0]))
    image = axis.imshow(matrix.to_numpy(), cmap="magma", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                  color="white" if value < 0.6 else "black")
    axis.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=60, ha="right")
    axis.set_yticks(range(matrix.shape[0]), matrix.index)
    axis.set_xlabel("target model")
    axis.set_ylabel("mask of source model")
    figure.colorbar(image, ax=axis, label="masked / clean accuracy")
    return figure


def _show(axis, image):
    image = np.clip(np.moveaxis(image, 0, -1), 0, 1)
    axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])


def example_images(images: np.ndarray, masks: dict, complements: dict):
    """Original, masked and complement-masked images side by side (method.md, analysis 7).

    ``images`` float ``[N, C, H, W]`` in ``[0, 1]``; ``masks`` and ``complements`` map a
    model name to the masked and complement-masked images ``[N, C, H, W]``. Rows are
    images; columns the original then, per model, masked and complement.
    """
    models = list(masks)
    n = len(images)
    figure, axes = plt.subplots(n, 1 + 2 * len(models), figsize=(1.4 * (1 + 2 * len(models)), 1.5 * n),
                                squeeze=False)
    for i in range(n):
        _show(axes[i, 0], images[i])
        for k, model in enumerate(models):
            _show(axes[i, 1 + 2 * k], masks[model][i])
            _show(axes[i, 2 + 2 * k], complements[model][i])
            if i == 0:
                axes[0, 1 + 2 * k].set_title(f"{model}\nmasked", fontsize=8)
                axes[0, 2 + 2 * k].set_title(f"{model}\ncomplement", fontsize=8)
    axes[0, 0].set_title("original", fontsize=8)
    return figure
