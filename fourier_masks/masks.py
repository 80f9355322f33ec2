"""Learning Fourier masks of a frozen classifier (Karantzas et al. 2022, method.md).

For a frozen network ``f`` and images ``x`` the mask ``M`` (one value in ``[0, 1]`` per
frequency bin) minimises, by projected Adam (clamp to ``[0, 1]`` after every step)::

    paper:  exp((CE(f(x~), y) - CE(f(x), y))^2) + lambda * mean(M)
    ce:     CE(f(x~), y) + lambda * mean(M)
    kl:     KL(softmax f(x) || softmax f(x~)) + lambda * mean(M)

with ``x~ = Re(ifft2(M * fft2(x)))``. The paper learns at batch size 1, so its invariance
term is per image: at batch size B it is the mean over the batch of
``exp((CE_i(x~) - CE_i(x))^2)``, which equals the paper's loss at B = 1. The ``ce`` and
``kl`` terms are batch means. ``mean(M)`` is the L1 norm over the number of bins, so
``lambda`` has one scale for every loss.

All seeds of one model are learned in one pass: their masks are stacked, each seed draws
its own data order (and, with ``init='random'``, its own initial mask), and one model call
serves all of them. Adam acts element-wise, so this is exactly the same as learning the
seeds one after another. Each epoch a seed keeps its mask if the masked accuracy on the
fitting images is at least ``keep_threshold`` times the clean accuracy, and stops when its
density moved by at most ``tolerance`` for ``patience`` epochs in a row.

Example
-------
>>> import torch
>>> from fourier_masks.models import SmallCNN, Normalized
>>> model = Normalized(SmallCNN(3, 4))
>>> images, labels = torch.rand(16, 3, 16, 16), torch.randint(0, 4, (16,))
>>> masks, history = learn_masks(model, images, labels, seeds=[1, 2], epochs=2, batch_size=8)
>>> masks.shape
(2, 1, 16, 16)
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .data import check_images
from .device import resolve_device
from .errors import InputError, NumericalError
from .models import freeze
from .spectrum import full_to_half, half_to_full, symmetrize

__all__ = [
    "MASK_DEFAULTS",
    "LOSSES",
    "learn_masks",
    "masked_accuracy",
    "resolve_options",
    "density",
    "bin_weights",
    "filter_masked",
    "to_full_masks",
    "clean_reference",
    "loss_per_seed",
    "epoch_order",
]

LOSSES = ("paper", "ce", "kl")

#: Mask-learning options and their defaults; keys and values as in the config's ``mask``
#: section (the authors' protocol is ``lambda=0.2, lr=1e-3, epochs=100, batch_size=1``).
MASK_DEFAULTS = {
    "loss": "paper",
    "lambda": 0.05,
    "lr": 0.05,
    "schedule": "onecycle",
    "warmup": 0.1,
    "epochs": 4,
    "batch_size": 32,
    "init": "ones",
    "per_channel": False,
    "parametrization": "rfft",
    "keep_threshold": 0.99,
    "patience": 7,
    "tolerance": 1e-5,
    "device": "auto",
    "amp": "auto",
    "channels_last": False,
    "compile": False,
    "eval_batch_size": 512,
}

#: Config keys of the ``mask`` section that steer the pipeline, not the learning itself.
PIPELINE_KEYS = ("fit_split", "fit_images", "vectorize_seeds")

_CHOICES = {
    "loss": LOSSES,
    "schedule": ("onecycle", "constant"),
    "init": ("ones", "random"),
    "parametrization": ("rfft", "fft"),
}


def resolve_options(options: dict) -> dict:
    """Defaults merged with ``options``; unknown keys and bad choices raise :class:`InputError`."""
    unknown = set(options) - set(MASK_DEFAULTS) - set(PIPELINE_KEYS)
    if unknown:
        raise InputError(
            f"unknown mask option(s) {sorted(unknown)}; allowed: {', '.join(MASK_DEFAULTS)}."
        )
    resolved = {**MASK_DEFAULTS, **{k: v for k, v in options.items() if k in MASK_DEFAULTS}}
    for key, allowed in _CHOICES.items():
        if resolved[key] not in allowed:
            raise InputError(f"mask.{key} = {resolved[key]!r} is not allowed; use one of {', '.join(allowed)}.")
    if resolved["lambda"] < 0:
        raise InputError(f"mask.lambda = {resolved['lambda']} is negative; it must be >= 0.")
    for key in ("lr", "epochs", "batch_size", "eval_batch_size"):
        if resolved[key] <= 0:
            raise InputError(f"mask.{key} = {resolved[key]} must be positive.")
    return resolved


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


def _onecycle(step: int, total: int, max_lr: float, warmup: float) -> tuple[float, float]:
    """Learning rate and Adam's beta1 at ``step`` of PyTorch's ``OneCycleLR`` (cosine).

    The rate rises from ``max_lr / 25`` to ``max_lr`` over the warm-up, then falls to
    ``max_lr / 25e4``; beta1 moves the other way between 0.95 and 0.85, as in the authors' code.
    """
    initial, final = max_lr / 25, max_lr / 25e4
    peak = max(1.0, warmup * total - 1)
    if step <= peak:
        fraction = step / peak
        return _cosine(initial, max_lr, fraction), _cosine(0.95, 0.85, fraction)
    fraction = min(1.0, (step - peak) / max(1.0, total - 1 - peak))
    return _cosine(max_lr, final, fraction), _cosine(0.85, 0.95, fraction)


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
    """Masked images ``[S, B, C, H, W]`` from images ``[S, B, C, H, W]`` and masks ``[S, C', H, W']``."""
    masks = params[:, None]
    if parametrization == "rfft":
        return torch.fft.irfft2(torch.fft.rfft2(images) * masks, s=images.shape[-2:])
    return torch.fft.ifft2(torch.fft.fft2(images) * masks).real


def to_full_masks(params: torch.Tensor, width: int, parametrization: str) -> np.ndarray:
    """Effective (symmetric) full-layout masks, float32 numpy ``[S, C', H, W]``."""
    params = params.detach().float().cpu()
    if parametrization == "rfft":
        return half_to_full(params, width).numpy()
    return symmetrize(params).numpy()


def masked_accuracy(model, images: torch.Tensor, labels: torch.Tensor, masks, batch_size: int = 512) -> np.ndarray:
    """Accuracy of ``model`` on ``images`` seen through each full-layout mask.

    Parameters
    ----------
    masks : ``[S, C', H, W]`` full-layout masks (C' = 1 or C), numpy or tensor.

    Returns
    -------
    float64 ``[S]``: accuracy with each mask.
    """
    device = next(iter(model.buffers()), images).device
    half = full_to_half(torch.as_tensor(np.asarray(masks), dtype=torch.float32)).to(device)
    correct = torch.zeros(len(half), dtype=torch.long)
    per_call = max(1, batch_size // max(1, len(half)))
    with torch.no_grad():
        for i in range(0, len(images), per_call):
            x = images[i : i + per_call].to(device)
            y = labels[i : i + per_call].to(device)
            stacked = filter_masked(x.unsqueeze(0).expand(len(half), *x.shape), half, "rfft")
            logits = model(stacked.flatten(0, 1)).view(len(half), len(x), -1)
            correct += (logits.argmax(-1) == y).sum(1).cpu()
    return correct.double().numpy() / max(len(images), 1)


def clean_reference(model, images, labels, batch_size, device):
    """Per-image clean cross-entropy ``[N]``, clean log-probabilities ``[N, K]`` and accuracy."""
    ce, logp, correct = [], [], 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(images[i : i + batch_size].to(device)).float()
            y = labels[i : i + batch_size].to(device)
            ce.append(F.cross_entropy(logits, y, reduction="none"))
            logp.append(F.log_softmax(logits, -1))
            correct += int((logits.argmax(1) == y).sum())
    return torch.cat(ce), torch.cat(logp), correct / len(images)


def loss_per_seed(kind, logits, labels, ce_clean, logp_clean, lam, mean_mask):
    """Loss of each seed ``[S]`` from logits ``[S, B, K]``; references indexed like ``labels``."""
    logits = logits.float()
    if kind == "kl":
        logp = F.log_softmax(logits, -1)
        term = (logp_clean.exp() * (logp_clean - logp)).sum(-1).mean(-1)
    else:
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape)
        if kind == "ce":
            term = ce.mean(-1)
        else:
            term = torch.exp((ce - ce_clean) ** 2).mean(-1)
    return term + lam * mean_mask


def _fingerprint(seeds, options, images, labels) -> str:
    """Hash of everything a resumed run must share with the interrupted one."""
    digest = hashlib.sha256(json.dumps({"seeds": list(seeds), **{k: options[k] for k in sorted(options)
                                         if k not in ("device", "eval_batch_size")}}, default=str).encode())
    digest.update(images.cpu().numpy().tobytes()[:: max(1, images.numel() // 4096)])
    digest.update(labels.cpu().numpy().tobytes())
    return digest.hexdigest()


def _initial_masks(seeds, shape, init):
    masks = []
    for seed in seeds:
        if init == "random":
            masks.append(torch.rand(shape, generator=torch.Generator().manual_seed(int(seed))))
        else:
            masks.append(torch.ones(shape))
    return torch.stack(masks)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """Data order of one seed in one epoch; a pure function of both, so resumes replay it.

    The generator seed wraps at 2^64 (torch's limit), so every seed below 2^63 is accepted.
    """
    return torch.randperm(n, generator=torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % 2**64))


def learn_masks(model, images: torch.Tensor, labels: torch.Tensor, seeds, checkpoint=None, **options):
    """Learn one Fourier mask per seed for a frozen classifier, all seeds in one pass.

    Parameters
    ----------
    model : ``nn.Module`` taking ``[N, C, H, W]`` in ``[0, 1]``; it is frozen here.
    images : float ``[N, C, H, W]`` in ``[0, 1]``, the fitting images.
    labels : int64 ``[N]``.
    seeds : ints; each seed sets its data order and (``init='random'``) initial mask.
    checkpoint : optional path; state is saved there every epoch and a matching
        checkpoint is resumed from, ending with the same masks as an uninterrupted run.
    **options : see :data:`MASK_DEFAULTS` (keys as in the config's ``mask`` section).

    Returns
    -------
    masks : float32 numpy ``[S, C', H, W]``, full unshifted layout, values in ``[0, 1]``;
        ``C' = C`` with ``per_channel=True`` else 1. Each is the last mask that met the
        keep rule (the initial mask if none did).
    history : DataFrame, one row per seed and epoch: ``seed, epoch, steps, lr, loss,
        density, fit_acc, clean_acc, kept, seconds`` (``seconds`` is the wall time of the
        epoch's joint pass over all seeds still learning).
    """
    opts = resolve_options(options)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be a non-empty list of distinct integers, got {seeds}.")
    check_images(images, "mask-fitting images")
    if labels.shape != (images.shape[0],):
        raise InputError(f"labels have shape {tuple(labels.shape)}; expected ({images.shape[0]},).")
    images = images.float()
    device = resolve_device(opts["device"])
    model = freeze(model).to(device)
    amp = opts["amp"] == "auto" and device.type == "cuda" or opts["amp"] is True
    if opts["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if opts["compile"] else model

    n, channels, height, width = images.shape
    fit = images.to(device)
    fit_labels = labels.to(device)
    ce_clean, logp_clean, clean_acc = clean_reference(model, fit, fit_labels, opts["eval_batch_size"], device)
    mask_channels = channels if opts["per_channel"] else 1
    param_width = width // 2 + 1 if opts["parametrization"] == "rfft" else width
    params = _initial_masks(seeds, (mask_channels, height, param_width), opts["init"]).to(device)
    weights = bin_weights(height, width, opts["parametrization"]).to(device)
    adam_m, adam_v = torch.zeros_like(params), torch.zeros_like(params)
    state = {
        "epoch": 0,
        "steps": [0] * len(seeds),
        "active": [True] * len(seeds),
        "calm": [0] * len(seeds),
        "last_density": density(to_full_masks(params, width, opts["parametrization"])).tolist(),
        "kept": params.detach().cpu().clone(),
        "history": [],
    }
    fingerprint = _fingerprint(seeds, opts, images, labels)
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if saved.get("fingerprint") == fingerprint:
            state = saved["state"]
            params, adam_m, adam_v = (saved[k].to(device) for k in ("params", "adam_m", "adam_v"))

    steps_per_epoch = math.ceil(n / opts["batch_size"])
    total_steps = opts["epochs"] * steps_per_epoch
    def schedule(step):
        """(learning rate, beta1) of the optimiser's ``step``-th update (0-based)."""
        if opts["schedule"] == "constant":
            return opts["lr"], 0.9
        return _onecycle(step, total_steps, opts["lr"], opts["warmup"])

    while state["epoch"] < opts["epochs"] and any(state["active"]):
        epoch = state["epoch"]
        start = time.perf_counter()
        active = [s for s, on in enumerate(state["active"]) if on]
        orders = torch.stack([epoch_order(seeds[s], epoch, n) for s in active]).to(device)
        losses = torch.zeros(len(active), device=device)
        for i in range(0, n, opts["batch_size"]):
            index = orders[:, i : i + opts["batch_size"]]
            rows = None if len(active) == len(seeds) else active
            batch = (params.detach() if rows is None else params[rows]).requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                masked = filter_masked(fit[index], batch, opts["parametrization"])
                if opts["channels_last"]:
                    masked = masked.flatten(0, 1).contiguous(memory_format=torch.channels_last)
                logits = forward(masked.reshape(-1, channels, height, width)).view(len(active), index.shape[1], -1)
            mean_mask = (batch * weights).sum((-3, -2, -1)) / (mask_channels * height * width)
            loss = loss_per_seed(opts["loss"], logits, fit_labels[index], ce_clean[index],
                                  logp_clean[index], opts["lambda"], mean_mask)
            (grad,) = torch.autograd.grad(loss.sum(), batch)
            with torch.no_grad():
                step = state["steps"][active[0]] + 1
                _projected_adam(params, grad, adam_m, adam_v, rows, step, *schedule(step - 1))
                losses += loss.detach() * index.shape[1]
            for s in active:
                state["steps"][s] = step
        full = to_full_masks(params[active], width, opts["parametrization"])
        fit_acc = masked_accuracy(model, fit, fit_labels, full, opts["eval_batch_size"])
        losses = (losses / n).cpu()
        if not (torch.isfinite(losses).all() and torch.isfinite(params).all()):
            bad = [seeds[s] for s, value in zip(active, losses) if not math.isfinite(float(value))]
            raise NumericalError(
                f"mask learning diverged in epoch {epoch + 1} (seeds {bad or seeds}): the loss or the mask "
                f"became NaN/inf with loss={opts['loss']!r}, lambda={opts['lambda']}, lr={opts['lr']}. "
                "The 'paper' loss exp((CE_masked - CE_clean)^2) overflows once the masked loss drifts far "
                "from the clean one: lower mask.lr, or use mask.loss: ce or kl."
            )
        seconds = time.perf_counter() - start
        for row, s in enumerate(active):
            dens = float(full[row].mean())
            kept = bool(fit_acc[row] >= opts["keep_threshold"] * clean_acc)
            if kept:
                state["kept"][s] = params[s].detach().cpu()
            moved = abs(dens - state["last_density"][s])
            state["calm"][s] = state["calm"][s] + 1 if moved <= opts["tolerance"] else 0
            state["last_density"][s] = dens
            if state["calm"][s] >= opts["patience"]:
                state["active"][s] = False
            state["history"].append({
                "seed": seeds[s], "epoch": epoch + 1, "steps": state["steps"][s], "lr": schedule(state["steps"][s] - 1)[0],
                "loss": float(losses[row]), "density": dens, "fit_acc": float(fit_acc[row]),
                "clean_acc": clean_acc, "kept": kept, "seconds": seconds,
            })
        state["epoch"] = epoch + 1
        if checkpoint:
            _save_checkpoint(checkpoint, fingerprint, state, params, adam_m, adam_v)
    masks = to_full_masks(state["kept"], width, opts["parametrization"]).astype(np.float32)
    return np.clip(masks, 0.0, 1.0), pd.DataFrame(state["history"])


def _projected_adam(params, grad, adam_m, adam_v, rows, step: int, lr: float, beta1: float,
                    beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One Adam update of ``params[rows]`` (every row when ``rows`` is None), clamped to ``[0, 1]``.

    ``step`` counts updates from 1 (bias correction). Rows are the seeds still learning;
    with all of them the update is in place, without gathering and scattering copies.
    """
    if rows is None:
        masks, first, second = params, adam_m, adam_v
    else:
        masks, first, second = params[rows], adam_m[rows], adam_v[rows]
    first.mul_(beta1).add_(grad, alpha=1 - beta1)
    second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = (second / (1 - beta2**step)).sqrt_().add_(eps)
    masks.addcdiv_(first, denominator, value=-lr / (1 - beta1**step)).clamp_(0.0, 1.0)
    if rows is not None:
        params[rows], adam_m[rows], adam_v[rows] = masks, first, second


def _save_checkpoint(path: Path, fingerprint, state, params, adam_m, adam_v) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"fingerprint": fingerprint, "state": state, "params": params.cpu(),
                "adam_m": adam_m.cpu(), "adam_v": adam_v.cpu()}, tmp)
    tmp.replace(path)
