"""What single-image masks say (docs/method.md, analyses 5 and 6).

:func:`band_share_table` compares two sets of masks of the same images band by band, and
:func:`mask_decodability` asks whether a linear classifier can read the class from masks.
Masks come from :func:`fourier_masks.masks.single_image.learn_single_image_masks`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..spectrum import band_energies, radial_band_index, radial_band_index_of_edges

__all__ = ["band_share_table", "band_comparisons", "mask_decodability", "decoding_table"]


def _radial_index(height: int, width: int, radial_edges) -> tuple[np.ndarray, np.ndarray]:
    """Band of each bin ``[H, W]`` (``-1`` for bins outside, decided exactly) and the edges."""
    if np.isscalar(radial_edges):
        if int(radial_edges) != radial_edges or radial_edges < 1:
            raise InputError(f"radial_edges = {radial_edges!r}: give increasing edges or a band count >= 1.")
        return radial_band_index(height, width, int(radial_edges))
    edges = np.asarray(radial_edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise InputError(f"radial_edges = {list(edges)} must be at least two strictly increasing radii "
                         "(cycles per image).")
    return radial_band_index_of_edges(height, width, edges), edges


def band_share_table(masks_a, masks_b, radial_edges) -> pd.DataFrame:
    """Per radial band, the share of images whose mask A has more energy there than mask B.

    Energies are those of :func:`fourier_masks.spectrum.band_energies`: the L2 norm inside
    the band of the mask divided by its whole L2 norm, so masks of different density compare
    by where their energy sits (docs/method.md, analyses 3 and 5).

    Parameters
    ----------
    masks_a, masks_b : ``[N, C', H, W]`` full-layout masks of the same ``N`` images, e.g. a
        robust and a standard model's single-image masks.
    radial_edges : strictly increasing band edges in cycles per image, or a number of
        equal annuli from 0 to the corner radius. Band ``b`` holds ``[e_b, e_b+1)`` (the
        last band includes its outer edge); bins outside all bands are ignored.

    Returns
    -------
    DataFrame, one row per band: ``band``, ``r_lo``, ``r_hi``, ``share_a_greater``,
    ``mean_energy_a``, ``mean_energy_b``, ``n_images``.
    """
    a, b = np.asarray(masks_a), np.asarray(masks_b)
    if a.shape != b.shape or a.ndim != 4:
        raise InputError(f"masks_a {a.shape} and masks_b {b.shape} must both be [N, C', H, W] of one shape.")
    index, edges = _radial_index(a.shape[-2], a.shape[-1], radial_edges)
    n_bands = len(edges) - 1
    energy_a = np.stack([band_energies(m, index, n_bands) for m in a])
    energy_b = np.stack([band_energies(m, index, n_bands) for m in b])
    return pd.DataFrame({
        "band": np.arange(n_bands), "r_lo": edges[:-1], "r_hi": edges[1:],
        "share_a_greater": (energy_a > energy_b).mean(0), "mean_energy_a": energy_a.mean(0),
        "mean_energy_b": energy_b.mean(0), "n_images": len(a),
    })


def band_comparisons(masks: dict, reference: str, radial_edges) -> pd.DataFrame:
    """:func:`band_share_table` of every model's single-image masks against the reference's and its own.

    ``masks``: ``{model: {"clean": [N, C', H, W], "adversarial": [N, C', H, W]}}``, the masks of
    the same ``N`` test images and of their PGD images. Rows ``model, comparison, versus`` and
    the band columns: ``vs_reference`` compares each other model's clean masks (A) with the
    ``reference`` model's (B); ``adversarial_vs_clean`` each model's masks of the PGD images
    (A) with those of the clean images (B).
    """
    parts = []
    for model, kinds in masks.items():
        if model != reference:
            parts.append(band_share_table(kinds["clean"], masks[reference]["clean"], radial_edges)
                         .assign(model=model, comparison="vs_reference", versus=reference))
        parts.append(band_share_table(kinds["adversarial"], kinds["clean"], radial_edges)
                     .assign(model=model, comparison="adversarial_vs_clean", versus=model))
    table = pd.concat(parts, ignore_index=True)
    keys = ["model", "comparison", "versus"]
    return table[keys + [column for column in table if column not in keys]]


def mask_decodability(masks, labels, seed: int = 0, n_splits: int = 5) -> dict:
    """Cross-validated accuracy of a linear classifier reading the class from masks.

    A standardised logistic regression on the flattened masks, scored by stratified
    ``n_splits``-fold cross-validation (fewer folds if a class has fewer images), and the
    same with the labels randomly permuted (scrambled control; docs/method.md, analysis 6).

    Parameters
    ----------
    masks : ``[N, C', H, W]`` masks; labels : int ``[N]`` classes of the images.

    Returns
    -------
    dict with ``accuracy``, ``scrambled_accuracy``, ``chance`` (share of the most frequent
    class) and ``n_splits`` (folds used).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(masks, dtype=np.float64).reshape(len(masks), -1)
    labels = np.asarray(labels)
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    if labels.shape != (len(features),) or len(counts) < 2 or counts.min() < 2:
        raise InputError(f"labels must give each of the {len(features)} masks a class, with at least two "
                         f"classes of at least two images each; got class counts {counts.tolist()}.")
    folds = int(min(n_splits, counts.min()))
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    def score(y):
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        return float(cross_val_score(classifier, features, y, cv=splitter).mean())

    scrambled = np.random.default_rng(seed).permutation(labels)
    return {"accuracy": score(labels), "scrambled_accuracy": score(scrambled),
            "chance": float(counts.max() / counts.sum()), "n_splits": folds}


def decoding_table(masks: dict, images: dict) -> pd.DataFrame:
    """:func:`mask_decodability` of every model's single-image masks of clean and of PGD images.

    ``masks``: ``{model: {"clean": [N, C', H, W], "adversarial": [N, C', H, W]}}``; ``images``:
    ``{model: table with kind, image, label}`` (one row per mask). Classes with fewer than two
    images are left out. Rows ``model, kind, n_images`` and :func:`mask_decodability`'s keys.
    """
    rows = []
    for model, kinds in masks.items():
        for kind in ("clean", "adversarial"):
            table = images[model]
            labels = table.loc[table["kind"] == kind].sort_values("image")["label"].to_numpy()
            keep = np.bincount(labels)[labels] >= 2
            rows.append({"model": model, "kind": kind, "n_images": int(keep.sum()),
                         **mask_decodability(kinds[kind][keep], labels[keep])})
    return pd.DataFrame(rows)
