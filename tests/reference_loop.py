"""The plain authors-style mask loop that tests and benchmarks compare ``learn_masks`` with.

:func:`naive_mask` learns one mask the way a plain script does (the authors' protocol,
github nkarantzas/FourierMasks ``train_masks.py``): one seed, batch size 1 through a
``DataLoader``, full complex ``fft2``/``ifft2`` with ``.real``, an ``nn.Parameter`` mask
``[H, W]``, ``torch.optim.Adam`` with PyTorch's ``OneCycleLR``, a clamp after every step and
the per-epoch accuracy through the same batch-1 loader, and the authors' keep and stop rules
(never keep the epoch-1 mask; compare the mean L1 density of the epoch's steps with the previous
epoch's, counting only kept epochs; ``protocol='authors'`` of :class:`fourier_masks.masks.learning.SeedTracker`).
The model is in eval mode but its
weights keep ``requires_grad`` (so every backward also computes weight gradients, as in a
script that never freezes them). It reads the package's per-seed data order so that it
sees the images in the same order as ``learn_masks``.

Tests import it as ``reference_loop`` (``tests/`` is on their path, as for ``slurm`` and
``fingerprint``); the benchmarks load it by its file (``benchmarks/_harness.tests_module``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fourier_masks.masks.learning import epoch_order

__all__ = ["naive_mask"]


def naive_mask(model, images: torch.Tensor, labels: torch.Tensor, *, seed: int, lam: float, lr: float,
               epochs: int, schedule: str = "onecycle", warmup: float = 0.1, keep_threshold: float = 0.99,
               patience: int = 7, tolerance: float = 1e-5, evaluate: bool = True, epoch_cap: int | None = None,
               device="cpu"):
    """Learn one mask with the paper's loss at batch size 1, as a plain script does.

    Parameters
    ----------
    model : ``nn.Module`` taking ``[N, C, H, W]`` in ``[0, 1]``; put in eval mode with
        ``requires_grad`` switched on for its weights (never updated).
    images : float ``[N, C, H, W]`` in ``[0, 1]``; labels : int64 ``[N]``.
    schedule : ``onecycle`` (``OneCycleLR``, ``pct_start=warmup``) or ``constant``.
    evaluate : compute the per-epoch masked accuracy, keep rule and early stopping; without
        it every epoch ends after its steps and the final mask is returned.
    epoch_cap : stop after this many epochs at the latest (the schedule still spans ``epochs``).

    Returns
    -------
    mask : float32 numpy ``[H, W]``, the last mask that met the keep rule (the final mask
        when ``evaluate`` is off), unsymmetrised.
    history : DataFrame, one row per epoch: ``epoch, density, step_density, fit_acc, clean_acc,
        kept, step_seconds, seconds, elapsed`` (``step_density``: mean density before each step;
        ``seconds``: the epoch with its evaluation; ``elapsed``: since the call, set-up included).
    """
    called = time.perf_counter()
    device = torch.device(device)
    model = model.to(device).eval().requires_grad_(True)
    n, _, height, width = images.shape
    with torch.no_grad():
        ce_clean = torch.cat([F.cross_entropy(model(images[i : i + 512].to(device)), labels[i : i + 512].to(device),
                                              reduction="none").cpu() for i in range(0, n, 512)])
    dataset = TensorDataset(images, labels, ce_clean)
    mask = torch.nn.Parameter(torch.ones(height, width, device=device))
    optimizer = torch.optim.Adam([mask], lr=lr)
    scheduler = None
    if schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * n,
                                                        pct_start=warmup)
    clean_acc = _accuracy(model, dataset, None, device) if evaluate else math.nan
    kept, last_density, calm, rows = mask.detach().clone(), 1.0, 0, []
    for epoch in range(min(epochs, epoch_cap or epochs)):
        start = time.perf_counter()
        loader = DataLoader(dataset, batch_size=1, sampler=epoch_order(seed, epoch, n).tolist())
        step_density = _naive_epoch(model, loader, mask, optimizer, scheduler, lam, device)
        step_seconds = time.perf_counter() - start
        row = {"epoch": epoch + 1, "density": float(mask.detach().mean()),
               "step_density": float(np.mean(step_density)), "step_seconds": step_seconds}
        if evaluate:
            row["fit_acc"] = _accuracy(model, dataset, mask.detach(), device)
            row["kept"] = epoch > 0 and row["fit_acc"] / clean_acc >= keep_threshold
            if row["kept"]:
                kept = mask.detach().clone()
                calm = calm + 1 if abs(row["step_density"] - last_density) <= tolerance else 0
            last_density = row["step_density"]
        now = time.perf_counter()
        rows.append({**row, "clean_acc": clean_acc, "seconds": now - start, "elapsed": now - called})
        if evaluate and calm >= patience:
            break
    final = kept if evaluate else mask.detach()
    return final.cpu().numpy().astype(np.float32), pd.DataFrame(rows)


def _naive_epoch(model, loader, mask, optimizer, scheduler, lam: float, device) -> list[float]:
    """One epoch of batch-1 steps, as the authors' ``epoch_mask_train``; the density before each step."""
    step_density = []
    for x, y, ce_ref in loader:
        x, y, ce_ref = x.to(device), y.to(device), ce_ref.to(device)
        step_density.append(float(mask.detach().mean()))
        masked = torch.fft.ifft2(torch.fft.fft2(x) * mask).real
        invariance = torch.exp((F.cross_entropy(model(masked), y) - ce_ref) ** 2)
        loss = invariance.sum() + lam * mask.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            mask.clamp_(0.0, 1.0)
    if device.type == "cuda":  # queued GPU work belongs to the epoch's step time
        torch.cuda.synchronize(device)
    return step_density


def _accuracy(model, dataset, mask, device) -> float:
    """Accuracy through a batch-1 loader, with ``mask`` applied (none: clean images)."""
    correct = 0
    with torch.no_grad():
        for x, y, _ in DataLoader(dataset, batch_size=1):
            x = x.to(device)
            if mask is not None:
                x = torch.fft.ifft2(torch.fft.fft2(x) * mask).real
            correct += int(model(x).argmax(1).cpu() == y.cpu())
    return correct / len(dataset)

