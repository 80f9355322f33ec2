"""Held-out accuracy of models with learned masks, their controls, and other models' masks.

Masks are full-layout arrays ``[C', H, W]`` (unshifted, values in ``[0, 1]``); accuracies
come from :func:`fourier_masks.masks.objective.masked_accuracy`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..masks.objective import masked_accuracy
from .metrics import control_masks

__all__ = ["evaluate_controls", "evaluate_transfer", "retrain_summary"]


def evaluate_controls(model, images, labels, masks: dict, threshold: float, random_shuffles: int,
                      batch_size: int) -> pd.DataFrame:
    """Held-out accuracy of ``model`` with each of its own masks and their controls.

    Parameters
    ----------
    masks : ``{seed: mask [C', H, W]}``.
    random_shuffles : shuffles of each mask behind ``random_acc`` (:func:`random_masks_like`).
    batch_size : most masked images per model call (the config's ``mask.eval_batch_size``).

    Returns
    -------
    DataFrame, one row per seed: ``seed, masked_acc, complement_acc, random_acc`` (mean over
    the shuffles), ``random_acc_sd`` (their standard deviation, NaN for one shuffle) and
    ``lowpass_acc``.
    """
    rows = []
    for seed, mask in masks.items():
        controls = control_masks(mask, threshold, seed, random_shuffles)
        stack = np.concatenate([np.stack([mask, controls["complement"], controls["lowpass"]]), controls["random"]])
        acc = masked_accuracy(model, images, labels, stack, batch_size)
        random = acc[3:]
        rows.append({"seed": seed, "masked_acc": acc[0], "complement_acc": acc[1], "random_acc": random.mean(),
                     "random_acc_sd": random.std(ddof=1) if len(random) > 1 else np.nan, "lowpass_acc": acc[2]})
    return pd.DataFrame(rows)


def evaluate_transfer(model, images, labels, masks: dict, batch_size: int) -> pd.DataFrame:
    """Accuracy of one target model with every mask (docs/method.md, analysis 8).

    Parameters
    ----------
    masks : ``{(source_model, source_seed): mask [C', H, W]}``; a mask with one channel is
        shared by all channels, a per-channel mask must match the target's channels.
    batch_size : most masked images per model call (the config's ``mask.eval_batch_size``).

    Returns
    -------
    DataFrame: ``source_model, source_seed, masked_acc`` plus ``clean_acc`` of the target.
    """
    keys = list(masks)
    channels = images.shape[1]
    stack = np.stack([np.broadcast_to(masks[k], (channels, *masks[k].shape[-2:])) for k in keys])
    accuracies = masked_accuracy(model, images, labels, stack, batch_size)
    clean = masked_accuracy(model, images, labels, np.ones((1, 1, *images.shape[-2:]), np.float32), batch_size)[0]
    return pd.DataFrame({"source_model": [k[0] for k in keys], "source_seed": [k[1] for k in keys],
                         "clean_acc": clean, "masked_acc": accuracies})


def retrain_summary(models: dict, images, labels, mask: np.ndarray, batch_size: int, *, name: str,
                    mask_seed: int) -> pd.DataFrame:
    """Test accuracy on clean and on masked images of a model and of its retrained copy.

    ``models``: ``{trained_on: model}`` (``original``, ``masked``: trained on images seen
    through ``mask`` ``[C', H, W]``). Rows ``model`` (``name``), ``trained_on``, ``mask_seed``,
    ``mask_density``, ``clean_acc``, ``masked_acc``.
    """
    filters = np.stack([np.ones_like(mask), mask])
    rows = []
    for trained_on, model in models.items():
        clean_acc, masked_acc = masked_accuracy(model, images, labels, filters, batch_size)
        rows.append({"model": name, "trained_on": trained_on, "mask_seed": mask_seed,
                     "mask_density": float(mask.mean()), "clean_acc": clean_acc, "masked_acc": masked_acc})
    return pd.DataFrame(rows)
