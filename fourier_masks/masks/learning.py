"""Learning Fourier masks of a frozen classifier (Karantzas et al. 2022; docs/method.md, Loss and Learning protocol).

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
its own data order (and, with ``init='random'``, its own initial mask), and the model
calls serve all of them. Adam acts element-wise, so this is exactly the same as learning
the seeds one after another. A :class:`SeedTracker` per seed applies the keep and stop
rules of ``protocol`` (``default`` or the authors' ``authors``, see :class:`SeedTracker`).
The keep rule needs the masked accuracy on the fitting images, one batched pass over them
for all the seeds it judges. ``authors`` (and ``monitor=True``) measures it after every
epoch; ``default``, whose stop rule needs only the density, measures it when a seed stops,
walking back from its newest epoch to the first mask that meets the rule: the same mask as
measuring every epoch, in one pass instead of one per epoch when the newest mask is kept.

The options (:class:`MaskOptions`) have no defaults in Python: the config schema
``workflow/schemas/config.schema.yaml`` holds them, and :func:`mask_options` fills the
keywords a caller leaves out from it.

Example
-------
>>> import torch
>>> from fourier_masks.models.networks import SmallCNN, Normalized
>>> model = Normalized(SmallCNN(3, 4))
>>> images, labels = torch.rand(16, 3, 16, 16), torch.randint(0, 4, (16,))
>>> masks, history = learn_masks(model, images, labels, seeds=[1, 2], epochs=2, batch_size=8)
>>> masks.shape
(2, 1, 16, 16)
>>> sorted(set(history["epoch"]))
[1, 2]
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..config import check_config
from ..data.dataset import check_images
from ..device import resolve_device
from ..errors import InputError, NumericalError
from ..models.networks import freeze
from ..spectrum import full_to_half, half_to_full, symmetrize
from . import checkpoint as mask_checkpoint

__all__ = [
    "MaskOptions",
    "SeedTracker",
    "bin_weights",
    "clean_reference",
    "density",
    "epoch_order",
    "filter_masked",
    "learn_masks",
    "loss_per_seed",
    "mask_options",
    "masked_accuracy",
    "to_full_masks",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MaskOptions:
    """How masks are learned: the config's ``mask`` keys that decide the masks, and the device.

    Each field is the config key of the same name (``lam`` is ``mask.lambda``); the schema
    documents them. Build it with :meth:`from_config` from a checked config, or with
    :func:`mask_options` from keywords over the schema's defaults.
    """

    loss: str
    lam: float
    lr: float
    schedule: str
    warmup: float
    epochs: int
    batch_size: int
    init: str
    per_channel: bool
    parametrization: str
    protocol: str
    keep_threshold: float
    patience: int
    tolerance: float
    monitor: bool
    amp: bool | str
    channels_last: bool
    compile: bool
    model_batch_size: int
    checkpoint_interval: float
    device: str

    @classmethod
    def config_keys(cls) -> list[str]:
        """The keyword (config key) of each field, ``device`` last."""
        return ["lambda" if field.name == "lam" else field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_config(cls, mask: dict, device: str) -> MaskOptions:
        """From a checked config's ``mask`` section (other keys in it are ignored) and ``device``."""
        names = [field.name for field in dataclasses.fields(cls) if field.name != "device"]
        return cls(**{name: mask["lambda" if name == "lam" else name] for name in names}, device=device)

    def learning_rate(self, step: int, total: int) -> tuple[float, float]:
        """``(learning rate, Adam beta1)`` of the ``step``-th update (0-based) of ``total``."""
        if self.schedule == "constant":
            return self.lr, 0.9
        return _onecycle(step, total, self.lr, self.warmup)


def mask_options(**keywords) -> MaskOptions:
    """Options from keyword arguments (``mask`` config keys and ``device``) over the schema's defaults.

    The values are checked like a config (``mask.<key>`` names a bad one); a keyword that
    is not a mask-learning option raises :class:`InputError`.

    >>> mask_options(epochs=2, device="cpu").epochs
    2
    """
    allowed = MaskOptions.config_keys()
    unknown = sorted(set(keywords) - set(allowed))
    if unknown:
        raise InputError(f"unknown mask option(s) {unknown}; the options of learn_masks are {', '.join(allowed)} "
                         "(fit_split, fit_images, vectorize_seeds and eval_batch_size steer the pipeline only).")
    section = {key: value for key, value in keywords.items() if key != "device"}
    device = {"device": str(keywords["device"])} if "device" in keywords else {}  # a torch.device too
    config = check_config({"mask": section, **device})
    return MaskOptions.from_config(config["mask"], config["device"])


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


def _effective_masks(params: torch.Tensor, width: int, parametrization: str) -> torch.Tensor:
    """Effective (symmetric) full-layout masks ``[S, C', H, W]`` of parameters, on their device."""
    params = params.detach().float()
    return half_to_full(params, width) if parametrization == "rfft" else symmetrize(params)


def to_full_masks(params: torch.Tensor, width: int, parametrization: str) -> np.ndarray:
    """Effective (symmetric) full-layout masks, float32 numpy ``[S, C', H, W]``."""
    return _effective_masks(params, width, parametrization).cpu().numpy()


def _count_correct(model, images: torch.Tensor, labels: torch.Tensor, half: torch.Tensor,
                   batch_size: int) -> torch.Tensor:
    """Correct predictions ``[S]`` (on the device) through each half mask ``[S, C', H, W//2+1]``.

    Each model call gets ``batch_size`` images (the last call fewer) seen through one mask, so
    a mask's predictions do not depend on which other masks are measured in the same pass.
    """
    correct = torch.zeros(len(half), dtype=torch.long, device=half.device)
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x, y = images[i : i + batch_size].to(half.device), labels[i : i + batch_size].to(half.device)
            spectrum = torch.fft.rfft2(x)  # once for all the masks
            for row, mask in enumerate(half):
                masked = torch.fft.irfft2(spectrum * mask, s=x.shape[-2:])
                correct[row] += (model(masked).argmax(-1) == y).sum()
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
    half = full_to_half(torch.as_tensor(np.asarray(masks), dtype=torch.float32)).to(device)
    correct = _count_correct(model, images, labels, half, batch_size)
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


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """Data order of one seed in one epoch; a pure function of both, so resumes replay it.

    The generator seed wraps at 2^64 (torch's limit), so every seed below 2^63 is accepted.
    """
    return torch.randperm(n, generator=torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % 2**64))


class SeedTracker:
    """Keep and stop bookkeeping of one seed.

    After each epoch :meth:`update` is given the seed's mask, its density and (see below)
    its masked accuracy on the fitting images. ``protocol='default'`` keeps the mask if that
    accuracy is at least ``keep_threshold`` times the clean accuracy, and counts an epoch as
    calm when the end-of-epoch density moved by at most ``tolerance``; a moving epoch resets
    the count. ``protocol='authors'`` follows the authors' ``train_masks.py``: the epoch-1
    mask is never kept, the density is the mean over the epoch's steps of the mask's density
    before each step, and only kept epochs touch the count (calm: +1, moving: reset). Both
    stop after ``patience`` calm epochs in a row. The result is the last kept mask
    (:attr:`kept`, of epoch :attr:`kept_epoch`; the initial mask, epoch 0, if none was kept).

    Under ``default`` the stop rule does not need the accuracy, so the keep rule may wait:
    an epoch updated without one joins :attr:`pending`, and once the seed is done
    :meth:`judge_newest` judges those masks newest first until one is kept. The last kept
    mask is the newest that meets the rule, so this ends with the same :attr:`kept`.
    """

    def __init__(self, seed: int, mask: torch.Tensor, measured: float):
        self.seed = seed
        self.kept, self.kept_epoch = mask, 0
        self.pending: list[tuple[int, torch.Tensor]] = []  # (epoch, mask) not judged yet, oldest first
        self.active = True
        self.calm = 0
        self.last_density = measured

    @staticmethod
    def meets_keep_rule(epoch: int, fit_acc: float, clean_acc: float, options: MaskOptions) -> bool:
        """Whether the mask of ``epoch`` (1-based) with masked accuracy ``fit_acc`` is kept."""
        return fit_acc >= options.keep_threshold * clean_acc and not (options.protocol == "authors" and epoch == 1)

    def update(self, epoch: int, mask: torch.Tensor, measured: float, options: MaskOptions,
               accuracy: tuple[float, float] | None = None) -> bool | None:
        """Apply the rules after ``epoch`` (1-based); returns whether the mask was kept.

        ``accuracy`` is ``(fit_acc, clean_acc)``; without it (``protocol='default'`` only)
        the mask joins :attr:`pending` and None is returned.
        """
        authors = options.protocol == "authors"
        if accuracy is None:
            self.pending.append((epoch, mask))
            kept = None
        else:
            kept = self.meets_keep_rule(epoch, *accuracy, options)
            if kept:
                self.kept, self.kept_epoch = mask, epoch
        if kept or not authors:
            calm = abs(measured - self.last_density) <= options.tolerance
            self.calm = self.calm + 1 if calm else 0
        self.last_density = measured
        self.active = self.calm < options.patience
        return kept

    def judge_newest(self, fit_acc: float, clean_acc: float, options: MaskOptions) -> tuple[int, bool]:
        """Judge the newest pending mask (accuracy ``fit_acc``); a kept one ends the search.

        Returns its epoch and whether it was kept; the older pending masks are dropped once
        one is kept.
        """
        epoch, mask = self.pending.pop()
        kept = self.meets_keep_rule(epoch, fit_acc, clean_acc, options)
        if kept:
            self.kept, self.kept_epoch = mask, epoch
            self.pending.clear()
        return epoch, kept

    @classmethod
    def from_state(cls, state: dict) -> SeedTracker:
        """A tracker from its attributes (``vars`` of one, as a checkpoint holds them)."""
        tracker = cls(int(state["seed"]), state["kept"], float(state["last_density"]))
        tracker.active, tracker.calm = bool(state["active"]), int(state["calm"])
        tracker.kept_epoch = int(state["kept_epoch"])
        tracker.pending = [(int(epoch), mask) for epoch, mask in state["pending"]]
        return tracker


@dataclasses.dataclass
class _Problem:
    """What stays fixed while learning: the model, fitting images on the device, clean reference."""

    model: torch.nn.Module
    forward: object
    images: torch.Tensor
    labels: torch.Tensor
    ce_clean: torch.Tensor
    logp_clean: torch.Tensor
    clean_acc: float
    weights: torch.Tensor
    device: torch.device
    amp: bool
    options: MaskOptions

    @classmethod
    def build(cls, model, images, labels, options: MaskOptions) -> _Problem:
        device = resolve_device(options.device)
        model = freeze(model).to(device)
        if options.channels_last:
            model = model.to(memory_format=torch.channels_last)
        amp = options.amp is True or (options.amp == "auto" and device.type == "cuda")
        images = (images.float() / 255 if images.dtype == torch.uint8 else images.float()).to(device)
        labels = labels.to(device)
        ce, logp, clean_acc = clean_reference(model, images, labels, options.model_batch_size, device)
        weights = bin_weights(*images.shape[-2:], options.parametrization).to(device)
        forward = torch.compile(model) if options.compile else model
        return cls(model, forward, images, labels, ce, logp, clean_acc, weights, device, amp, options)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.images) / self.options.batch_size)

    @property
    def total_steps(self) -> int:
        return self.options.epochs * self.steps_per_epoch

    @property
    def bins(self) -> int:
        """Bins of the full-layout masks of one seed, ``C' H W``."""
        return self.param_shape[0] * self.images.shape[-2] * self.images.shape[-1]

    @property
    def param_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.images.shape[1:]
        width = width // 2 + 1 if self.options.parametrization == "rfft" else width
        return (channels if self.options.per_channel else 1, height, width)

    def seeds_per_call(self, batch: int) -> int:
        """Seeds whose ``batch`` masked images each go to the model in one call (whole seeds, at least one)."""
        return max(1, self.options.model_batch_size // batch)

    def logits(self, masked: torch.Tensor) -> torch.Tensor:
        """Model outputs ``[S, B, K]`` of masked images ``[S, B, C, H, W]``, in one call."""
        batch = masked.flatten(0, 1)
        if self.options.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return self.forward(batch).view(*masked.shape[:2], -1)


@dataclasses.dataclass
class _State:
    """What changes while learning: the masks and Adam moments of the seeds still learning."""

    epoch: int
    step: int
    params: torch.Tensor
    adam_m: torch.Tensor
    adam_v: torch.Tensor
    trackers: list[SeedTracker]
    history: list[dict]

    @property
    def active(self) -> list[SeedTracker]:
        return [tracker for tracker in self.trackers if tracker.active]

    def payload(self) -> dict:
        """Tensors (on the CPU) and plain values, for a checkpoint."""
        return {"epoch": self.epoch, "step": self.step, "params": self.params.cpu(), "adam_m": self.adam_m.cpu(),
                "adam_v": self.adam_v.cpu(), "trackers": [vars(t) for t in self.trackers], "history": self.history}

    @classmethod
    def from_payload(cls, saved: dict, like: _State) -> _State:
        """The state in a checkpoint's payload, checked against a fresh state ``like`` it must fit."""
        trackers = [SeedTracker.from_state(entry) for entry in saved["trackers"]]
        tensors = [saved[key].to(like.params) for key in ("params", "adam_m", "adam_v")]
        if ([t.seed for t in trackers] != [t.seed for t in like.trackers]
                or any(t.shape != (sum(x.active for x in trackers), *like.params.shape[1:]) for t in tensors)
                or any(mask.shape != like.params.shape[1:] for t in trackers
                       for mask in [t.kept, *(pending for _, pending in t.pending)])):
            raise ValueError("its seeds or tensor shapes do not fit this run")
        return cls(int(saved["epoch"]), int(saved["step"]), *tensors, trackers, list(saved["history"]))


class _Checkpointer:
    """Saves the state every ``options.checkpoint_interval`` seconds and at the end; resumes a matching one."""

    def __init__(self, path, problem: _Problem, images, labels, seeds: list[int]):
        self.path = Path(path) if path else None
        self.interval, self.saved_at = problem.options.checkpoint_interval, time.monotonic()
        if self.path:
            options = {key: value for key, value in dataclasses.asdict(problem.options).items()
                       if key not in ("device", "checkpoint_interval")}
            self.prints = mask_checkpoint.fingerprint(problem.model, images, labels, seeds,
                                                      {**options, "device": problem.device.type})

    def resume(self, fresh: _State) -> _State:
        saved = mask_checkpoint.load(self.path, self.prints) if self.path else None
        if saved is None:
            return fresh
        try:
            state = _State.from_payload(saved, fresh)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
            mask_checkpoint.move_aside(self.path, f"{type(error).__name__}: {error}")
            return fresh
        log.info("resumed mask learning from %s after epoch %d.", self.path, state.epoch)
        return state

    def save(self, state: _State, due_only: bool = False) -> None:
        if self.path and not (due_only and time.monotonic() - self.saved_at < self.interval):
            mask_checkpoint.save(self.path, self.prints, state.payload())
            self.saved_at = time.monotonic()


def _initial_state(seeds: list[int], problem: _Problem) -> _State:
    options, shape = problem.options, problem.param_shape
    masks = [torch.rand(shape, generator=torch.Generator().manual_seed(seed)) if options.init == "random"
             else torch.ones(shape) for seed in seeds]
    params = torch.stack(masks).to(problem.device)
    densities = density(to_full_masks(params, problem.images.shape[-1], options.parametrization))
    trackers = [SeedTracker(seed, mask, float(d)) for seed, mask, d in zip(seeds, masks, densities, strict=True)]
    return _State(0, 0, params, torch.zeros_like(params), torch.zeros_like(params), trackers, [])


def _projected_adam(params, grad, adam_m, adam_v, step: int, lr: float, beta1: float,
                    beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One in-place Adam update of ``params`` (``step`` counts from 1), clamped to ``[0, 1]``."""
    adam_m.mul_(beta1).add_(grad, alpha=1 - beta1)
    adam_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = (adam_v / (1 - beta2**step)).sqrt_().add_(eps)
    params.addcdiv_(adam_m, denominator, value=-lr / (1 - beta1**step)).clamp_(0.0, 1.0)


def _step_gradient(problem: _Problem, params: torch.Tensor, index: torch.Tensor):
    """Loss ``[A]``, mean mask ``[A]`` and the loss's gradient w.r.t. ``params`` ``[A, C', H, W']``
    of one step on the images ``index`` ``[A, B]``.

    Each model call (:meth:`_Problem.seeds_per_call` seeds) is differentiated right after its
    forward pass, while its activations are still in cache; a seed's loss depends on its own
    mask only, so this is the gradient of the summed loss.
    """
    options, parts = problem.options, []
    per_call = problem.seeds_per_call(index.shape[1])
    for masks, images in zip(params.split(per_call), index.split(per_call), strict=True):
        masks = masks.detach().requires_grad_(True)
        with torch.autocast(problem.device.type, dtype=torch.bfloat16, enabled=problem.amp):
            logits = problem.logits(filter_masked(problem.images[images], masks, options.parametrization))
        mean_mask = (masks * problem.weights).sum((-3, -2, -1)) / problem.bins
        loss = loss_per_seed(options.loss, logits, problem.labels[images], problem.ce_clean[images],
                             problem.logp_clean[images], options.lam, mean_mask)
        (grad,) = torch.autograd.grad(loss.sum(), masks)
        parts.append((loss.detach(), mean_mask.detach(), grad))
    loss, mean_mask, grad = (torch.cat(tensors) for tensors in zip(*parts, strict=True))
    return loss, mean_mask, grad


def _run_epoch(problem: _Problem, state: _State) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the fitting images for every seed still learning.

    Returns the mean loss ``[A]`` and the mean mask density before each step ``[A]``, on
    the device; nothing in the loop waits for the device.
    """
    options, n = problem.options, len(problem.images)
    orders = torch.stack([epoch_order(t.seed, state.epoch, n) for t in state.active]).to(problem.device)
    losses = torch.zeros(len(orders), device=problem.device)
    step_density = torch.zeros(len(orders), device=problem.device)
    for start in range(0, n, options.batch_size):
        index = orders[:, start : start + options.batch_size]
        loss, mean_mask, grad = _step_gradient(problem, state.params, index)
        state.step += 1
        with torch.no_grad():
            _projected_adam(state.params, grad, state.adam_m, state.adam_v, state.step,
                            *options.learning_rate(state.step - 1, problem.total_steps))
            losses += loss * index.shape[1]
            step_density += mean_mask
    return losses / n, step_density / problem.steps_per_epoch


def _check_finite(losses: torch.Tensor, state: _State, options: MaskOptions) -> None:
    if torch.isfinite(losses).all() and torch.isfinite(state.params).all():
        return
    bad = [t.seed for t, value in zip(state.active, losses.tolist(), strict=True) if not math.isfinite(value)]
    raise NumericalError(
        f"mask learning diverged in epoch {state.epoch + 1} (seeds {bad or [t.seed for t in state.active]}): the "
        f"loss or the mask became NaN/inf with loss={options.loss!r}, lambda={options.lam}, lr={options.lr}. "
        "The 'paper' loss exp((CE_masked - CE_clean)^2) overflows once the masked loss drifts far "
        "from the clean one: lower mask.lr, or use mask.loss: ce or kl."
    )


def _judges_every_epoch(options: MaskOptions) -> bool:
    """Whether the keep rule is applied after every epoch (else when a seed is done; see :class:`SeedTracker`)."""
    return options.monitor or options.protocol == "authors"


def _fit_accuracy(problem: _Problem, full: torch.Tensor) -> list[float]:
    """Accuracy on the fitting images through each full-layout mask ``[K, C', H, W]``, one batched pass."""
    correct = _count_correct(problem.model, problem.images, problem.labels, full_to_half(full),
                             problem.options.model_batch_size)
    return (correct.double() / len(problem.images)).tolist()


def _settle(problem: _Problem, trackers: list[SeedTracker], history: list[dict]) -> None:
    """Judge the pending masks of ``trackers`` newest first until each keeps one or has none left.

    Each round measures the newest pending mask of every tracker still searching in one
    batched pass, and records its accuracy and decision in that epoch's ``history`` row.
    """
    searching = [tracker for tracker in trackers if tracker.pending]
    rows = {(row["seed"], row["epoch"]): row for row in history} if searching else {}
    width, parametrization = problem.images.shape[-1], problem.options.parametrization
    while searching:
        params = torch.stack([tracker.pending[-1][1] for tracker in searching]).to(problem.device)
        accuracies = _fit_accuracy(problem, _effective_masks(params, width, parametrization))
        for tracker, fit_acc in zip(searching, accuracies, strict=True):
            epoch, kept = tracker.judge_newest(fit_acc, problem.clean_acc, problem.options)
            rows[tracker.seed, epoch].update(fit_acc=fit_acc, kept=kept)
        searching = [tracker for tracker in searching if tracker.pending]


def _learn_epoch(problem: _Problem, state: _State) -> None:
    """Run one epoch and apply the stop rule and the keep rule (now, or for seeds that are done)."""
    options, start, active = problem.options, time.perf_counter(), state.active
    losses, step_density = _run_epoch(problem, state)
    _check_finite(losses, state, options)
    full = _effective_masks(state.params, problem.images.shape[-1], options.parametrization)
    every_epoch = _judges_every_epoch(options)
    fit_acc = _fit_accuracy(problem, full) if every_epoch else [math.nan] * len(active)
    densities = [float(mask.mean()) for mask in full.cpu().numpy()]  # float32 means, as the history has them
    losses, step_density = losses.tolist(), step_density.tolist()
    state.epoch += 1
    lr = options.learning_rate(state.step - 1, problem.total_steps)[0]
    for row, tracker in enumerate(active):
        measured = step_density[row] if options.protocol == "authors" else densities[row]
        accuracy = (fit_acc[row], problem.clean_acc) if every_epoch else None
        kept = tracker.update(state.epoch, state.params[row].detach().to("cpu", copy=True), measured, options,
                              accuracy)
        state.history.append({
            "seed": tracker.seed, "epoch": state.epoch, "steps": state.step, "lr": lr, "loss": losses[row],
            "density": densities[row], "step_density": step_density[row], "fit_acc": fit_acc[row],
            "clean_acc": problem.clean_acc, "kept": kept,
        })
    done = [tracker for tracker in active if not tracker.active or state.epoch == options.epochs]
    _settle(problem, done, state.history)
    seconds = time.perf_counter() - start
    for row in state.history[-len(active):]:
        row["seconds"] = seconds
    _log_progress(state.history[-len(active):], active, problem, seconds)
    still = [row for row, tracker in enumerate(active) if tracker.active]
    if len(still) < len(active):
        index = torch.tensor(still, dtype=torch.long, device=problem.device)
        state.params, state.adam_m, state.adam_v = (tensor.index_select(0, index)
                                                    for tensor in (state.params, state.adam_m, state.adam_v))


def _seed_progress(row: dict, tracker: SeedTracker, last: bool) -> str:
    """One seed's part of an epoch's log line: density, fit accuracy and decision where measured, end."""
    text = f"seed {row['seed']}: density {row['density']:.4f}"
    if not math.isnan(row["fit_acc"]):
        text += f", fit acc {row['fit_acc']:.4f}{', kept' if row['kept'] else ''}"
    if not tracker.active or last:
        text += f"{'' if tracker.active else ', stopped'}, ends with the mask of epoch {tracker.kept_epoch}"
    return text


def _log_progress(rows: list[dict], trained: list[SeedTracker], problem: _Problem, seconds: float) -> None:
    """One log line per epoch: its speed, and each seed's progress (:func:`_seed_progress`)."""
    last = rows[0]["epoch"] == problem.options.epochs
    seeds = "; ".join(_seed_progress(row, tracker, last) for row, tracker in zip(rows, trained, strict=True))
    log.info("epoch %d/%d: %.1f s, %.1f steps/s (%.0f image-seed steps/s); %s", rows[0]["epoch"],
             problem.options.epochs, seconds, problem.steps_per_epoch / seconds,
             len(problem.images) * len(trained) / seconds, seeds)


def _checked_seeds(images, labels, seeds) -> list[int]:
    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be a non-empty list of distinct integers, got {seeds}.")
    check_images(images, "mask-fitting images")
    if labels.shape != (images.shape[0],):
        raise InputError(f"labels have shape {tuple(labels.shape)}; expected ({images.shape[0]},).")
    return seeds


def _results(state: _State, problem: _Problem) -> tuple[np.ndarray, pd.DataFrame]:
    kept = torch.stack([tracker.kept for tracker in state.trackers])
    masks = to_full_masks(kept, problem.images.shape[-1], problem.options.parametrization)
    history = pd.DataFrame(state.history).astype({"kept": "boolean"})  # <NA>: the keep rule did not judge it
    return np.clip(masks, 0.0, 1.0).astype(np.float32), history


def learn_masks(model, images: torch.Tensor, labels: torch.Tensor, seeds, *, checkpoint=None,
                options: MaskOptions | None = None, **mask_keywords):
    """Learn one Fourier mask per seed for a frozen classifier, all seeds in one pass.

    Parameters
    ----------
    model : ``nn.Module`` taking ``[N, C, H, W]`` in ``[0, 1]``; it is frozen here and moved to
        the device (with ``channels_last`` it runs in that layout and gets its own layout back).
    images : float ``[N, C, H, W]`` in ``[0, 1]``, the fitting images.
    labels : int64 ``[N]``.
    seeds : ints; each seed sets its data order and (``init='random'``) initial mask.
    checkpoint : optional path. The state is saved there every ``checkpoint_interval``
        seconds and at the end; a checkpoint of the same model, data, options, seeds and
        code is resumed from, ending with the same masks as an uninterrupted run (see
        :mod:`fourier_masks.masks.checkpoint`).
    options : a :class:`MaskOptions`, e.g. ``MaskOptions.from_config`` of a checked config;
        or, instead, the options as keywords (``mask`` config keys and ``device``), the
        ones left out taken from the config schema (:func:`mask_options`).

    Returns
    -------
    masks : float32 numpy ``[S, C', H, W]``, full unshifted layout, values in ``[0, 1]``;
        ``C' = C`` with ``per_channel=True`` else 1. Each is the last mask that met the
        keep rule (the initial mask if none did).
    history : DataFrame, one row per seed and epoch: ``seed, epoch, steps, lr, loss,
        density, step_density, fit_acc, clean_acc, kept, seconds``. ``density`` is the
        mask's at the end of the epoch, ``step_density`` the mean before each step,
        ``seconds`` the wall time of the epoch's joint pass over all seeds still learning
        (with the keep-rule passes made after it). ``fit_acc`` (masked accuracy on the
        fitting images) and ``kept`` (nullable boolean) are measured after every epoch with
        ``protocol='authors'`` or ``monitor=True``; otherwise only for the epochs the
        keep rule judged when the seed was done (its newest back to the kept one), NaN and
        ``<NA>`` elsewhere.
    """
    if options is None:
        options = mask_options(**mask_keywords)
    elif mask_keywords:
        raise InputError(f"pass the options either as options= or as keywords, not both ({sorted(mask_keywords)}).")
    seeds = _checked_seeds(images, labels, seeds)
    problem = _Problem.build(model, images, labels, options)
    state = _initial_state(seeds, problem)
    saver = _Checkpointer(checkpoint, problem, images, labels, seeds)
    state = saver.resume(state)
    while state.epoch < options.epochs and state.active:
        _learn_epoch(problem, state)
        saver.save(state, due_only=state.epoch < options.epochs and bool(state.active))  # always the last
    if options.channels_last:
        problem.model.to(memory_format=torch.contiguous_format)
    return _results(state, problem)
