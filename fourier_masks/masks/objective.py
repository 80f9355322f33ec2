"""The Fourier-mask objective: filtering, the losses, the clean reference and masked accuracy.

For a frozen network ``f``, images ``x`` and labels ``y``, the mask ``M`` (one value in
``[0, 1]`` per frequency bin) is scored by (Karantzas et al. 2022; docs/method.md)::

    paper:            phi(CE(f(x~), y) - CE(f(x), y)) + lambda * mean(M)
    paper_one_sided:  phi(max(CE(f(x~), y) - CE(f(x), y), 0)) + lambda * mean(M)
    ce:               CE(f(x~), y) + lambda * mean(M)
    kl:               KL(softmax f(x) || softmax f(x~)) + lambda * mean(M)

with ``x~ = Re(ifft2(M * fft2(x)))``. ``phi`` is the paper's ``exp(d^2)`` for ``|d| <= 1``
nat (:data:`KNEE`) and its tangent line beyond, ``e (1 + 2 (|d| - 1))``: equal to the
paper's where learning normally runs, finite in value and gradient for any ``d`` (``exp(d^2)``
overflows float32 at ``|d| > 9.4``). The paper learns at batch size 1, so its invariance term is
per image: at batch size B it is the batch mean of ``phi(d_i)``, which equals the paper's
loss at B = 1. ``paper_one_sided`` charges an image only for a rise in its cross-entropy: equal
to ``paper`` wherever masking makes the network less sure, it does not charge a mask for the
confidence it adds (README, Definitions). ``mean(M)`` is the L1 norm over the number of bins,
so ``lambda`` has one scale for every loss.

Masks are stacked per seed: parameters ``[S, C', H, W']`` with ``W' = W // 2 + 1`` for the
``rfft`` parametrisation (half spectrum) and ``W`` for ``fft``; full-layout masks are
``[S, C', H, W]``, unshifted (DC at ``[0, 0]``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..spectrum import filter_spectrum, full_to_half, half_to_full, spectrum_of, symmetrize

__all__ = [
    "KNEE",
    "LOSS_FLOOR",
    "bin_weights",
    "clean_reference",
    "count_correct",
    "density",
    "effective_masks",
    "filter_masked",
    "invariance",
    "loss_per_seed",
    "masked_accuracy",
    "to_full_masks",
]

#: Largest ``|CE(x~) - CE(x)|`` (nats) at which the ``paper`` losses are the paper's ``exp(d^2)``.
KNEE = 1.0

#: The least value of each loss's invariance term (``exp(d^2) >= 1``); the stop rule reads the loss above it.
LOSS_FLOOR = {"paper": 1.0, "paper_one_sided": 1.0, "ce": 0.0, "kl": 0.0}


def bin_weights(height: int, width: int, parametrization: str) -> torch.Tensor:
    """Weights ``[H, W']`` so that ``sum(weights * M) / (H W)`` is the full mask's mean."""
    if parametrization == "fft":
        return torch.ones(height, width)
    weights = torch.full((height, width // 2 + 1), 2.0)
    weights[:, 0] = 1.0
    if width % 2 == 0:
        weights[:, -1] = 1.0
    return weights


def density(masks) -> np.ndarray:
    """Mean value of each full-layout mask ``[S, C', H, W]`` -> ``[S]`` (fraction of all-pass)."""
    return np.asarray(masks, dtype=np.float64).reshape(len(masks), -1).mean(axis=1)


def filter_masked(images: torch.Tensor, params: torch.Tensor, parametrization: str) -> torch.Tensor:
    """Masked images ``[S, B, C, H, W]`` from images ``[S, B, C, H, W]`` and mask parameters
    ``[S, C', H, W']`` (one per seed) or ``[S, B, C', H, W']`` (one copy per image)."""
    spectrum = spectrum_of(images, parametrization)
    per_image = params if params.dim() == images.dim() else params[:, None]
    return filter_spectrum(spectrum, per_image, images.shape[-2:], parametrization)


def effective_masks(params: torch.Tensor, width: int, parametrization: str) -> torch.Tensor:
    """Effective (symmetric) full-layout masks ``[S, C', H, W]`` of parameters, on their device."""
    params = params.detach().float()
    return half_to_full(params, width) if parametrization == "rfft" else symmetrize(params)


def to_full_masks(params: torch.Tensor, width: int, parametrization: str) -> np.ndarray:
    """Effective (symmetric) full-layout masks, float32 numpy ``[S, C', H, W]``."""
    return effective_masks(params, width, parametrization).cpu().numpy()


def count_correct(model, images: torch.Tensor, labels: torch.Tensor, full: torch.Tensor,
                  batch_size: int) -> torch.Tensor:
    """Correct predictions ``[S]`` (on the device of ``full``) through each full-layout mask ``[S, C', H, W]``.

    Each model call gets ``batch_size`` images (the last call fewer) seen through one mask, so
    a mask's predictions do not depend on which other masks are measured in the same pass;
    each image batch is transformed once for all masks.
    """
    half = full_to_half(full)
    correct = torch.zeros(len(half), dtype=torch.long, device=half.device)
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x, y = images[i : i + batch_size].to(half.device), labels[i : i + batch_size].to(half.device)
            spectrum = spectrum_of(x, "rfft")
            for row, mask in enumerate(half):
                correct[row] += (model(filter_spectrum(spectrum, mask, x.shape[-2:], "rfft")).argmax(-1) == y).sum()
    return correct


def masked_accuracy(model, images: torch.Tensor, labels: torch.Tensor, masks, batch_size: int) -> np.ndarray:
    """Accuracy of ``model`` on ``images`` seen through each full-layout mask.

    Parameters
    ----------
    masks : ``[S, C', H, W]`` full-layout masks (C' = 1 or C), numpy or tensor.
    batch_size : most masked images per model call.

    Returns
    -------
    float64 ``[S]``: accuracy with each mask.
    """
    device = next(iter(model.buffers()), images).device
    full = torch.as_tensor(np.asarray(masks), dtype=torch.float32).to(device)
    correct = count_correct(model, images, labels, full, batch_size)
    return correct.cpu().double().numpy() / max(len(images), 1)


def clean_reference(model, images, labels, batch_size, device):
    """Per-image clean cross-entropy ``[N]``, clean log-probabilities ``[N, K]`` and accuracy."""
    ce, logp, correct = [], [], 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(images[i : i + batch_size].to(device)).float()
            y = labels[i : i + batch_size].to(device)
            ce.append(F.cross_entropy(logits, y, reduction="none"))
            logp.append(F.log_softmax(logits, -1))
            correct += (logits.argmax(1) == y).sum()
    return torch.cat(ce), torch.cat(logp), int(correct) / len(images)


def invariance(gap: torch.Tensor) -> torch.Tensor:
    """The paper's ``exp(gap^2)`` where ``|gap| <= KNEE``, its tangent line beyond (finite for any gap).

    >>> [round(value, 2) for value in invariance(torch.tensor([0.0, 1.0, 3.0])).tolist()]
    [1.0, 2.72, 13.59]
    """
    gap = gap.abs()
    inside = torch.exp(torch.clamp(gap, max=KNEE) ** 2)
    outside = math.exp(KNEE**2) * (1 + 2 * KNEE * (gap - KNEE))
    return torch.where(gap <= KNEE, inside, outside)


def loss_per_seed(kind, logits, labels, ce_clean, logp_clean, lam, mean_mask):
    """Loss of each seed ``[S]`` from logits ``[S, B, K]``; references indexed like ``labels`` ``[S, B]``."""
    logits = logits.float()
    if kind == "kl":
        logp = F.log_softmax(logits, -1)
        term = (logp_clean.exp() * (logp_clean - logp)).sum(-1).mean(-1)
    else:
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape)
        if kind == "ce":
            term = ce.mean(-1)
        elif kind in ("paper", "paper_one_sided"):
            gap = ce - ce_clean
            term = invariance(gap.clamp(min=0.0) if kind == "paper_one_sided" else gap).mean(-1)
        else:
            raise ValueError(f"unknown mask loss {kind!r}: one of {sorted(LOSS_FLOOR)}")
    return term + lam * mean_mask
