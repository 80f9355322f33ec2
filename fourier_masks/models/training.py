"""Training a network from scratch in one of the regimes of :mod:`fourier_masks.models.regimes`."""

from __future__ import annotations

import logging
import math
import time

import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import InputError, NumericalError
from .attacks import ATTACKS, fgsm_rs, pgd
from .layout import adopt_layout
from .networks import make_model
from .regimes import REGIME_SETTINGS, check_regime

__all__ = ["augment", "train_from_scratch", "train_model"]

LOG = logging.getLogger(__name__)


def _affine(images: torch.Tensor, scale, angle, shift) -> torch.Tensor:
    """Per-image zoom ``scale`` [N], rotation ``angle`` [N] (radians), shift [N, 2] (fraction of side)."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, -2 * shift[:, 0]], 1),
                         torch.stack([sin, cos, -2 * shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _flip_and_crop(images: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    n, _, h, w = images.shape
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    padded = F.pad(images, (pad,) * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    rows = (torch.arange(h).view(1, h) + dy.view(n, 1)).view(n, 1, h, 1)
    cols = (torch.arange(w).view(1, w) + dx.view(n, 1)).view(n, 1, 1, w)
    batch = torch.arange(n).view(n, 1, 1, 1)
    chan = torch.arange(images.shape[1]).view(1, -1, 1, 1)
    return padded[batch, chan, rows, cols]


def augment(images: torch.Tensor, regime: str, generator: torch.Generator, settings: dict) -> torch.Tensor:
    """Random augmentation of a batch ``[N, C, H, W]`` in ``[0, 1]`` for ``regime``.

    Adversarial regimes are handled in :func:`train_model` (they need the model).
    """
    n = images.shape[0]
    images = _flip_and_crop(images, generator, pad=max(1, images.shape[-1] // 16))
    zeros, ones = torch.zeros(n), torch.ones(n)
    if regime == "noise":
        noisy = torch.rand(n, generator=generator) < 0.5
        noise = torch.randn(images.shape, generator=generator) * settings["noise_sigma"]
        return torch.where(noisy.view(-1, 1, 1, 1), (images + noise).clamp(0, 1), images)
    if regime == "scale":
        low, high = settings["scale"]
        factor = low + (high - low) * torch.rand(n, generator=generator)
        return _affine(images, factor, zeros, torch.zeros(n, 2))
    if regime == "translate":
        shift = (2 * torch.rand(n, 2, generator=generator) - 1) * settings["translate"]
        return _affine(images, ones, zeros, shift)
    if regime == "rotate":
        angle = (2 * torch.rand(n, generator=generator) - 1) * math.radians(settings["rotate"])
        return _affine(images, ones, angle, torch.zeros(n, 2))
    return images


def train_model(model, images: torch.Tensor, labels: torch.Tensor, regime: str, *, epochs: int, batch_size: int,
                lr: float, seed: int, device: str | torch.device, **settings) -> pd.DataFrame:
    """Train ``model`` in place with Adam and a one-cycle schedule; returns the history.

    Parameters
    ----------
    model : module taking ``[N, C, H, W]`` in ``[0, 1]``.
    images : float ``[N, C, H, W]`` in ``[0, 1]``; labels : int64 ``[N]``.
    regime : one of :data:`~.regimes.REGIMES`; ``settings``: the config's ``training`` keys the
        regime reads (:data:`~.regimes.REGIME_SETTINGS`; :func:`~.regimes.regime_settings` picks
        them from a checked config's ``training`` section, which also serves whole). The adversarial regimes' ``attack``
        is one of :data:`~fourier_masks.models.attacks.ATTACKS`: ``pgd`` (``steps`` steps of the
        regime's budget, Madry et al. 2018) or ``fgsm_rs`` (one step of 1.25 eps from a random
        start, Wong et al. 2020).
    The model trains in its own memory layout (:func:`fourier_masks.models.layout.set_layout`;
    channels-last runs convolutions about 1.5x faster on CPUs, results differ by float rounding only).

    Returns
    -------
    DataFrame with one row per epoch: ``epoch``, ``loss``, ``train_acc``, ``seconds``.
    Each epoch is also logged (logger ``fourier_masks.models.training``) with its steps per second.
    """
    _check_recipe(regime, settings)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                   pct_start=0.15)
    adversary = _adversary(regime, settings, generator)
    rows = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(images), generator=generator)
        total_loss, correct = 0.0, 0
        for i in range(0, len(images), batch_size):
            index = order[i : i + batch_size]
            x = augment(images[index], regime, generator, settings).to(device)
            y = labels[index].to(device)
            loss, hits = _step(model, x, y, adversary, optimizer, schedule)
            total_loss += loss * len(index)
            correct += hits
        if not math.isfinite(total_loss):
            raise NumericalError(f"training diverged in epoch {epoch + 1}: the loss is {total_loss}, so the weights "
                                 f"are no longer numbers; lower training.lr (now {lr}) and rerun.")
        rows.append({"epoch": epoch + 1, "loss": total_loss / len(images),
                     "train_acc": correct / len(images), "seconds": time.perf_counter() - start})
        _log_epoch(rows[-1], epochs, steps_per_epoch)
    model.eval()
    return pd.DataFrame(rows)


def _check_recipe(regime: str, settings: dict) -> None:
    """Refuse an unknown regime or attack, or ``settings`` that lack a key the regime reads."""
    check_regime(regime)
    missing = sorted(set(REGIME_SETTINGS[regime]) - set(settings))
    if missing:
        raise InputError(f"training in regime {regime!r} needs the training settings {missing}; pass "
                         "the training section of a checked config (fourier_masks.config.check_config).")
    if "attack" in REGIME_SETTINGS[regime] and settings["attack"] not in ATTACKS:
        raise InputError(f"training.attack = {settings['attack']!r} is not an attack; use one of {', '.join(ATTACKS)}.")


def _step(model, x: torch.Tensor, y: torch.Tensor, adversary, optimizer, schedule) -> tuple[float, int]:
    """One weight update on the batch ``x`` [N, C, H, W] (made adversarial first when ``adversary``
    is set); returns the batch's mean loss and its number of correct predictions."""
    if adversary is not None:
        model.eval()
        x = adversary(model, x, y)
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return float(loss.detach()), int((logits.argmax(1) == y).sum())


def _adversary(regime: str, settings: dict, generator: torch.Generator):
    """``(model, x, y) -> adversarial x`` of an adversarial ``regime`` (None for the others)."""
    norm = {"adv_linf": "linf", "adv_l2": "l2"}.get(regime)
    if norm is None:
        return None
    budget = settings[f"pgd_{norm}"]
    if settings["attack"] == "fgsm_rs":
        return lambda model, x, y: fgsm_rs(model, x, y, norm=norm, eps=budget["eps"], generator=generator)
    return lambda model, x, y: pgd(model, x, y, norm=norm, eps=budget["eps"], steps=budget["steps"],
                                   generator=generator)


def _log_epoch(row: dict, epochs: int, steps_per_epoch: int) -> None:
    LOG.info("epoch %d/%d: loss %.4f, train accuracy %.3f, %.1f s, %.1f steps/s", row["epoch"], epochs, row["loss"],
             row["train_acc"], row["seconds"], steps_per_epoch / max(row["seconds"], 1e-9))


def train_from_scratch(arch: str, regime: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                       training: dict, device: str | torch.device, *, channels_last: bool):
    """A new ``arch`` network, normalised by the images' channel statistics, trained in ``regime``.

    The config's recipe (rule train_model): weights seeded by ``training["seed"]``, the memory
    layout chosen (``channels_last`` where the network runs there, :func:`.layout.choose_layout`),
    then :func:`train_model` with the ``training`` settings. ``images`` float ``[N, C, H, W]``,
    ``labels`` int64 ``[N]``. Returns the model (eval mode, on ``device``) and its history.
    """
    mean = images.mean((0, 2, 3)).tolist()
    std = images.std((0, 2, 3)).clamp_min(1e-3).tolist()
    model = make_model(arch, images.shape[1], num_classes, mean, std, seed=training["seed"])
    adopt_layout(model.eval(), images.shape[1:], channels_last)  # eval: BN statistics untouched
    history = train_model(model, images, labels, regime, device=device, **training)
    return model, history
