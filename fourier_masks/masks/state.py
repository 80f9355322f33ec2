"""What changes while masks are learned, and the arithmetic of one update: projected Adam and back-offs.

Rows are the seeds still learning; mask parameters are ``[A, C', H, W']`` (see
:mod:`fourier_masks.masks.objective`).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .protocol import SeedTracker

__all__ = ["RUNNING_STEPS", "LearningState", "projected_adam", "undo_jumped"]

#: Steps a seed's running loss (the back-off rule's level) averages over: the newest step weighs 1/RUNNING_STEPS.
RUNNING_STEPS = 10


@dataclasses.dataclass
class LearningState:
    """What changes while learning, per seed still learning (rows): masks, Adam moments, rate scales.

    ``previous`` holds each row's mask and moments before its latest update, for back-offs;
    ``running`` its running loss (inf before its first step).
    """

    epoch: int
    step: int
    params: torch.Tensor
    adam_m: torch.Tensor
    adam_v: torch.Tensor
    previous: list[torch.Tensor]
    lr_scale: torch.Tensor
    running: torch.Tensor
    trackers: list[SeedTracker]
    history: list[dict]

    ROWS = ("params", "adam_m", "adam_v", "lr_scale", "running")

    @classmethod
    def start(cls, params: torch.Tensor, trackers: list[SeedTracker]) -> LearningState:
        """The state before the first step from initial masks ``params`` ``[S, C', H, W']``."""
        zeros = [torch.zeros_like(params) for _ in range(4)]
        ones = torch.ones(len(params), device=params.device)
        return cls(0, 0, params, zeros[0], zeros[1], [params.clone(), *zeros[2:]], ones, ones * math.inf, trackers, [])

    @property
    def active(self) -> list[SeedTracker]:
        return [tracker for tracker in self.trackers if tracker.active]

    def keep_rows(self, rows: list[int]) -> None:
        """Keep only the given rows (the seeds still learning)."""
        index = torch.tensor(rows, dtype=torch.long, device=self.params.device)
        for name in self.ROWS:
            setattr(self, name, getattr(self, name).index_select(0, index))
        self.previous = [tensor.index_select(0, index) for tensor in self.previous]

    def payload(self) -> dict:
        """Tensors (on the CPU) and plain values, for a checkpoint."""
        return {"epoch": self.epoch, "step": self.step, **{name: getattr(self, name).cpu() for name in self.ROWS},
                "previous": [tensor.cpu() for tensor in self.previous],
                "trackers": [vars(t) for t in self.trackers], "history": self.history}

    @classmethod
    def from_payload(cls, saved: dict, like: LearningState) -> LearningState:
        """The state in a checkpoint's payload, checked against a fresh state ``like`` it must fit."""
        trackers = [SeedTracker.from_state(entry) for entry in saved["trackers"]]
        rows = sum(tracker.active for tracker in trackers)
        tensors = {name: saved[name].to(getattr(like, name)) for name in cls.ROWS}
        previous = [tensor.to(like.params) for tensor in saved["previous"]]
        if ([t.seed for t in trackers] != [t.seed for t in like.trackers]
                or any(len(t) != rows for t in [*tensors.values(), *previous])
                or any(t.shape[1:] != like.params.shape[1:] for t in [tensors["params"], *previous])
                or any(mask.shape != like.params.shape[1:] for t in trackers
                       for mask in [t.kept, *(pending for _, pending in t.pending)])):
            raise ValueError("its seeds or tensor shapes do not fit this run")
        return cls(int(saved["epoch"]), int(saved["step"]), previous=previous, trackers=trackers,
                   history=list(saved["history"]), **tensors)


def projected_adam(params, grad, square, adam_m, adam_v, step: int, lr, beta1: float,
                    beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One in-place Adam update of ``params`` (``step`` counts from 1), clamped to ``[0, 1]``.

    ``square`` is what the second moment takes in: None for ``grad * grad`` (PyTorch's Adam), or
    the mean over the batch's images of each image's squared gradient (``second_moment='per_image'``).
    ``lr`` is a number, or a tensor broadcasting to ``params`` (one rate per seed).
    """
    adam_m.mul_(beta1).add_(grad, alpha=1 - beta1)
    if square is None:
        adam_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    else:
        adam_v.mul_(beta2).add_(square, alpha=1 - beta2)
    denominator = (adam_v / (1 - beta2**step)).sqrt_().add_(eps)
    params.sub_(adam_m / denominator * (lr / (1 - beta1**step))).clamp_(0.0, 1.0)


def undo_jumped(state: LearningState, before: list[torch.Tensor], jumped: torch.Tensor | None,
                loss: torch.Tensor) -> None:
    """Move the rows that ``jumped`` back to before their previous update; the others' ``previous``
    becomes ``before`` (their state before this update) and their running loss takes in ``loss``."""
    accepted = torch.ones_like(loss, dtype=torch.bool) if jumped is None else ~jumped
    rows = accepted.view(-1, 1, 1, 1)
    for now, old, new in zip((state.params, state.adam_m, state.adam_v), state.previous, before, strict=True):
        now.copy_(torch.where(rows, now, old))
        old.copy_(torch.where(rows, new, old))
    first = torch.isinf(state.running)
    level = torch.where(first, loss, state.running + (loss - state.running) / RUNNING_STEPS)
    state.running = torch.where(accepted, level, state.running)
    if jumped is not None:
        state.lr_scale = torch.where(jumped, state.lr_scale / 2, state.lr_scale)
