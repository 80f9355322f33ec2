"""Learning Fourier masks of a frozen classifier until they converge (Karantzas et al. 2022; docs/method.md).

The masks minimise the objective of :mod:`fourier_masks.masks.objective` by projected Adam
(clamp to ``[0, 1]`` after every step). All seeds of one model are learned in one pass: their
masks are stacked, each seed draws its own data order (and, with ``init='random'``, its own
initial mask), and the model calls serve all of them. Adam acts element-wise, so this is the
same as learning the seeds one after another. Each seed's learning rate is the schedule's
(:mod:`fourier_masks.masks.options`) times its own scale, which halves on a plateau and after
each back-off. :class:`~fourier_masks.masks.protocol.SeedTracker` applies the keep and stop
rules and says how each seed ended (``status``).

Back-offs (``protocol='default'``): a step whose loss is not finite, or exceeds ``jump`` times
the seed's running loss (an exponential mean of its accepted steps' losses) and ``jump`` times
the loss of the seed's previous mask on the same images, is undone: the seed's mask and Adam
moments go back to before its previous update, and its learning-rate scale halves. The
history counts them per epoch. The authors' protocol takes every step, as their loop does.

The keep rule needs the masked accuracy on the fitting images, one batched pass over them for
all the seeds it judges. ``authors`` (and ``monitor=True``) measures it after every epoch;
``default``, whose stop rule needs no accuracy, measures it when a seed stops, walking back
from its newest epoch to the first mask that meets the rule: the same mask as measuring every
epoch, in one pass instead of one per epoch when the newest mask is kept.

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

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.dataset import check_images
from ..device import resolve_device
from ..errors import InputError
from ..models.networks import freeze
from . import checkpoint as mask_checkpoint
from .objective import (
    LOSS_FLOOR,
    bin_weights,
    clean_reference,
    count_correct,
    density,
    effective_masks,
    filter_masked,
    loss_per_seed,
    to_full_masks,
)
from .options import MaskOptions, mask_options
from .progress import epoch_line
from .protocol import SeedTracker
from .state import LearningState, projected_adam, undo_jumped

__all__ = ["epoch_order", "learn_masks"]

log = logging.getLogger(__name__)

def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """Data order of one seed in one epoch; a pure function of both, so resumes replay it.

    The generator seed wraps at 2^64 (torch's limit), so every seed below 2^63 is accepted.
    """
    return torch.randperm(n, generator=torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % 2**64))


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
        images = (images.float() / 255 if images.dtype == torch.uint8 else images.float()).to(device)
        amp = options.amp is True or (options.amp == "auto" and device.type == "cuda")
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
        return self.forward(masked.flatten(0, 1)).view(*masked.shape[:2], -1)

    def fit_accuracy(self, full: torch.Tensor) -> list[float]:
        """Accuracy on the fitting images through each full-layout mask ``[K, C', H, W]``, one batched pass."""
        correct = count_correct(self.model, self.images, self.labels, full, self.options.model_batch_size)
        return (correct.double() / len(self.images)).tolist()


def _initial_state(seeds: list[int], problem: _Problem) -> LearningState:
    options, shape = problem.options, problem.param_shape
    masks = [torch.rand(shape, generator=torch.Generator().manual_seed(seed)) if options.init == "random"
             else torch.ones(shape) for seed in seeds]
    params = torch.stack(masks).to(problem.device)
    densities = density(to_full_masks(params, problem.images.shape[-1], options.parametrization))
    trackers = [SeedTracker(seed, mask, float(d)) for seed, mask, d in zip(seeds, masks, densities, strict=True)]
    return LearningState.start(params, trackers)


def _step_loss(problem: _Problem, masks: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss ``[A]`` and mean mask ``[A]`` of masks ``[A, C', H, W']`` (or one copy per image,
    ``[A, B, C', H, W']``) on the images ``images`` ``[A, B]``."""
    options = problem.options
    with torch.autocast(problem.device.type, dtype=torch.bfloat16, enabled=problem.amp):
        logits = problem.logits(filter_masked(problem.images[images], masks, options.parametrization))
    shared = masks.mean(1) if masks.dim() == 5 else masks
    mean_mask = (shared * problem.weights).sum((-3, -2, -1)) / problem.bins
    loss = loss_per_seed(options.loss, logits, problem.labels[images], problem.ce_clean[images],
                         problem.logp_clean[images], options.lam, mean_mask)
    return loss, mean_mask


def _model_calls(problem: _Problem, params: torch.Tensor, index: torch.Tensor):
    """``(masks, images)`` of each model call of one step: :meth:`_Problem.seeds_per_call` seeds at a time."""
    per_call = problem.seeds_per_call(index.shape[1])
    return zip(params.split(per_call), index.split(per_call), strict=True)


def _step_gradient(problem: _Problem, params: torch.Tensor, index: torch.Tensor):
    """Loss ``[A]``, mean mask ``[A]``, the loss's gradient w.r.t. ``params`` ``[A, C', H, W']`` of
    one step on the images ``index`` ``[A, B]``, and what Adam's second moment takes in (same shape;
    None for the squared gradient).

    With ``second_moment='per_image'`` each image filters through its own copy of the mask, so
    one backward pass gives every image's gradient ``g_i`` of its own loss; the step's gradient
    is their mean and the second moment takes in the mean of ``g_i ** 2``, as Adam at batch
    size 1 sees the gradients. Otherwise it takes in the squared mean (PyTorch's Adam).
    Each model call (:meth:`_Problem.seeds_per_call` seeds) is differentiated right after its
    forward pass, while its activations are still in cache; a seed's loss depends on its own
    mask only, so this is the gradient of the summed loss.
    """
    batch = index.shape[1]
    per_image = problem.options.second_moment == "per_image" and batch > 1  # at batch size 1 both are grad ** 2
    parts = []
    for masks, images in _model_calls(problem, params, index):
        masks = masks.detach()
        leaf = (masks[:, None].repeat(1, batch, 1, 1, 1) if per_image else masks).requires_grad_(True)
        loss, mean_mask = _step_loss(problem, leaf, images)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
        square = None
        if per_image:  # grad[:, i] is g_i / B
            grad, square = grad.sum(1), grad.square().sum(1) * batch
        parts.append((loss.detach(), mean_mask.detach(), grad, square))
    loss, mean_mask, grad, square = zip(*parts, strict=True)
    return torch.cat(loss), torch.cat(mean_mask), torch.cat(grad), torch.cat(square) if per_image else None


def _jumped(problem: _Problem, state: LearningState, index: torch.Tensor, loss: torch.Tensor) -> torch.Tensor | None:
    """Rows ``[A]`` whose loss jumped (see the module docstring), or None when none did."""
    jump = problem.options.jump
    suspicious = ~torch.isfinite(loss) | (loss > jump * state.running)
    if not bool(suspicious.any()):  # the step's only wait for the device: a comparison of A numbers
        return None
    with torch.no_grad():
        before = torch.cat([_step_loss(problem, masks, images)[0]
                            for masks, images in _model_calls(problem, state.previous[0], index)])
    jumped = suspicious & (~torch.isfinite(loss) | (loss > jump * before))
    return jumped if bool(jumped.any()) else None


def _take_step(problem: _Problem, state: LearningState, index: torch.Tensor):
    """One step of every row on its images ``index`` ``[A, B]``.

    Returns the loss ``[A]``, the mean mask ``[A]`` before the step and the rows whose step
    was undone (bool ``[A]``, or None when none was).
    """
    options = problem.options
    loss, mean_mask, grad, square = _step_gradient(problem, state.params, index)
    jumped = _jumped(problem, state, index, loss) if options.backs_off else None
    state.step += 1
    lr, beta1 = options.learning_rate(state.step - 1, problem.total_steps)
    with torch.no_grad():
        before = [state.params.clone(), state.adam_m.clone(), state.adam_v.clone()] if options.backs_off else None
        if jumped is not None:  # the jumped rows are moved back below
            grad = torch.nan_to_num(grad)
            square = None if square is None else torch.nan_to_num(square)
        projected_adam(state.params, grad, square, state.adam_m, state.adam_v, state.step,
                        (lr * state.lr_scale).view(-1, 1, 1, 1), beta1)
        if options.backs_off:
            undo_jumped(state, before, jumped, loss)
    return loss, mean_mask, jumped


def _run_epoch(problem: _Problem, state: LearningState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over the fitting images for every seed still learning.

    Returns the mean loss of the steps that were not undone ``[A]``, the mean mask density
    before each step ``[A]`` and the number of undone steps ``[A]``, on the device; nothing in
    the loop waits for the device but the back-off check (:func:`_jumped`).
    """
    options, n = problem.options, len(problem.images)
    orders = torch.stack([epoch_order(t.seed, state.epoch, n) for t in state.active]).to(problem.device)
    losses, counted, step_density, undone = (torch.zeros(len(orders), device=problem.device) for _ in range(4))
    for start in range(0, n, options.batch_size):
        index = orders[:, start : start + options.batch_size]
        loss, mean_mask, jumped = _take_step(problem, state, index)
        with torch.no_grad():
            step_density += mean_mask
            if jumped is None:
                losses += loss * index.shape[1]
                counted += index.shape[1]
            else:
                losses += torch.where(jumped, 0.0, loss) * index.shape[1]
                counted += (~jumped) * index.shape[1]
                undone += jumped
    return losses / counted, step_density / problem.steps_per_epoch, undone.long()


def _judges_every_epoch(options: MaskOptions) -> bool:
    """Whether the keep rule is applied after every epoch (else when a seed is done; see SeedTracker)."""
    return options.monitor or options.protocol == "authors"


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
        accuracies = problem.fit_accuracy(effective_masks(params, width, parametrization))
        for tracker, fit_acc in zip(searching, accuracies, strict=True):
            epoch, kept = tracker.judge_newest(fit_acc, problem.clean_acc, problem.options)
            rows[tracker.seed, epoch].update(fit_acc=fit_acc, kept=kept)
        searching = [tracker for tracker in searching if tracker.pending]


def _learn_epoch(problem: _Problem, state: LearningState) -> None:
    """Run one epoch, then apply the keep, halving and stop rules (the keep rule now, or for seeds that are done)."""
    options, start, active = problem.options, time.perf_counter(), state.active
    losses, step_density, undone = _run_epoch(problem, state)
    full = effective_masks(state.params, problem.images.shape[-1], options.parametrization)
    every_epoch = _judges_every_epoch(options)
    fit_acc = problem.fit_accuracy(full) if every_epoch else [math.nan] * len(active)
    densities = [float(mask.mean()) for mask in full.cpu().numpy()]  # float32 means, as the history has them
    losses, step_density, undone = losses.tolist(), step_density.tolist(), undone.tolist()
    state.epoch += 1
    lr = options.learning_rate(state.step - 1, problem.total_steps)[0]
    scales = state.lr_scale.tolist()
    halve = []
    for row, tracker in enumerate(active):
        measured = step_density[row] if options.protocol == "authors" else densities[row]
        accuracy = (fit_acc[row], problem.clean_acc) if every_epoch else None
        mask = state.params[row].detach().to("cpu", copy=True)
        above_floor = losses[row] - LOSS_FLOOR[options.loss]  # what the stop and plateau rules read
        kept, halves = tracker.update(state.epoch, mask, measured, above_floor, undone[row], options, accuracy)
        halve.append(halves)
        state.history.append({
            "seed": tracker.seed, "epoch": state.epoch, "steps": state.step, "lr": lr * scales[row],
            "loss": losses[row], "density": densities[row], "step_density": step_density[row],
            "fit_acc": fit_acc[row], "clean_acc": problem.clean_acc, "kept": kept, "backoffs": undone[row],
        })
    state.lr_scale = state.lr_scale * torch.tensor([0.5 if h else 1.0 for h in halve], device=problem.device)
    _settle(problem, [tracker for tracker in active if not tracker.active], state.history)
    seconds = time.perf_counter() - start
    for row, tracker in zip(state.history[-len(active):], active, strict=True):
        row.update(seconds=seconds, status=tracker.status(options) or "learning")
    log.info("%s", epoch_line(state.history[-len(active):], active, options.epochs,
                              problem.steps_per_epoch, len(problem.images), seconds))
    still = [row for row, tracker in enumerate(active) if tracker.active]
    if len(still) < len(active):
        state.keep_rows(still)


def _checked_seeds(images, labels, seeds) -> list[int]:
    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be a non-empty list of distinct integers, got {seeds}.")
    check_images(images, "mask-fitting images")
    if labels.shape != (images.shape[0],):
        raise InputError(f"labels have shape {tuple(labels.shape)}; expected ({images.shape[0]},).")
    return seeds


def _results(state: LearningState, problem: _Problem) -> tuple[np.ndarray, pd.DataFrame]:
    kept = torch.stack([tracker.kept for tracker in state.trackers])
    masks = to_full_masks(kept, problem.images.shape[-1], problem.options.parametrization)
    history = pd.DataFrame(state.history).astype({"kept": "boolean"})  # <NA>: the keep rule did not judge it
    return np.clip(masks, 0.0, 1.0).astype(np.float32), history


def learn_masks(model, images: torch.Tensor, labels: torch.Tensor, seeds, *, checkpoint=None,
                progress: bool = False, options: MaskOptions | None = None, **mask_keywords):
    """Learn one Fourier mask per seed for a frozen classifier until it converges, all seeds in one pass.

    Parameters
    ----------
    model : ``nn.Module`` taking ``[N, C, H, W]`` in ``[0, 1]``; it is frozen here and moved to
        the device, and runs in its own memory layout (a model file's, see
        :func:`fourier_masks.models.layout.set_layout`).
    images : float ``[N, C, H, W]`` in ``[0, 1]``, the fitting images.
    labels : int64 ``[N]``.
    seeds : ints; each seed sets its data order and (``init='random'``) initial mask.
    checkpoint : optional path. The state is saved there every ``checkpoint_interval``
        seconds and at the end; a checkpoint of the same model, data, options, seeds and
        code is resumed from, ending with the same masks as an uninterrupted run (see
        :mod:`fourier_masks.masks.checkpoint`).
    progress : show a progress bar over the epochs (``tqdm.auto``: a widget in notebooks),
        with the seeds still learning; the log lines of :mod:`logging` are written either way.
    options : a :class:`MaskOptions`, e.g. ``MaskOptions.from_config`` of a checked config;
        or, instead, the options as keywords (``mask`` config keys and ``device``), the
        ones left out taken from the config schema (:func:`mask_options`).

    Returns
    -------
    masks : float32 numpy ``[S, C', H, W]``, full unshifted layout, values in ``[0, 1]``;
        ``C' = C`` with ``per_channel=True`` else 1. Each is the last mask that met the
        keep rule (the initial mask if none did).
    history : DataFrame, one row per seed and epoch: ``seed, epoch, steps, lr, loss,
        density, step_density, fit_acc, clean_acc, kept, backoffs, seconds, status``.
        ``lr`` is the seed's rate at the end of the epoch, ``loss`` the mean over its
        accepted steps, ``density`` the mask's at the end of the epoch, ``step_density`` the
        mean before each step, ``backoffs`` the steps undone, ``seconds`` the wall time of
        the epoch's joint pass over all seeds still learning (with the keep-rule passes made
        after it). ``status`` is ``learning``, and on a seed's last row how it ended
        (:data:`fourier_masks.masks.protocol.STATUSES`; ``protocol.unconverged`` lists those
        that are not converged results). ``fit_acc`` (masked accuracy on the fitting images) and
        ``kept`` (nullable boolean) are measured after every epoch with ``protocol='authors'``
        or ``monitor=True``; otherwise only for the epochs the keep rule judged when the seed
        was done (its newest back to the kept one), NaN and ``<NA>`` elsewhere.
    """
    if options is None:
        options = mask_options(**mask_keywords)
    elif mask_keywords:
        raise InputError(f"pass the options either as options= or as keywords, not both ({sorted(mask_keywords)}).")
    seeds = _checked_seeds(images, labels, seeds)
    problem = _Problem.build(model, images, labels, options)
    state = _initial_state(seeds, problem)
    decisive = {key: value for key, value in dataclasses.asdict(options).items()
                if key not in ("device", "checkpoint_interval")}
    saver = mask_checkpoint.Checkpointer(checkpoint, options.checkpoint_interval, problem.model, images, labels,
                                         seeds, {**decisive, "device": problem.device.type})
    state = saver.resume(state)
    with tqdm(total=options.epochs, initial=state.epoch, desc="mask epochs", unit="epoch",
              disable=not progress) as bar:
        while state.active:
            _learn_epoch(problem, state)
            bar.update(1)
            bar.set_postfix(seeds_learning=len(state.active))
            saver.save(state, due_only=bool(state.active))  # always the last
    return _results(state, problem)
