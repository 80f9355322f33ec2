"""When a seed's mask is kept, when its learning rate halves, when it stops, and how it ended.

After each epoch a :class:`SeedTracker` is given the seed's mask, its density, its mean loss
over the epoch's accepted steps above the loss's floor (``masks.objective.LOSS_FLOOR``: the
paper loss is at least 1, so a relative change of the loss itself would hide the change of
the part that can still fall) and (see below) its masked accuracy on the fitting images.

Keep rule: an epoch's mask is kept if that accuracy is at least ``keep_threshold`` times the
clean accuracy (``protocol='authors'``: never the epoch-1 mask). The result is the last kept
mask (the initial all-pass mask, epoch 0, if none was kept).

Stop rule, ``protocol='default'`` (convergence): an epoch is *calm* when the end-of-epoch density
moved by at most ``tolerance`` and the epoch loss by at most ``loss_tolerance`` (relative) from
the previous epoch; a moving epoch resets the count. The seed has converged after ``patience``
calm epochs in a row. With ``schedule='plateau'`` the seed's learning rate halves whenever its
loss has not improved on its best by more than ``loss_tolerance`` for ``plateau`` epochs, so
the steps shrink until the mask stops moving. A seed whose steps were undone (back-offs, see
:mod:`fourier_masks.masks.learning`) ``max_backoffs`` times stops as diverged.

Stop rule, ``protocol='authors'`` (their ``train_masks.py``): the density is the mean over the
epoch's steps of the mask's density before each step, only kept epochs touch the count (calm:
+1, moving: reset), and the loss plays no part. Both protocols stop at ``epochs`` at the latest.

How a seed ended (:attr:`SeedTracker.status`, one of :data:`STATUSES`):

``converged``   stopped by the stop rule, with a mask kept during its calm run.
``recovered``   the same after one or more back-offs.
``kept_early``  stopped by the stop rule, but the converged mask failed the keep rule; the mask
                is the last one that met it, from before the calm run.
``budget``      reached ``epochs`` while still moving; the mask is the last kept one.
``diverged``    stopped after ``max_backoffs`` back-offs (or a non-finite loss where steps are
                not undone); the mask is the last kept one.
``initial``     no mask met the keep rule: the result is the initial mask, not a learned one.

Under ``default`` the stop rule does not need the accuracy, so the keep rule may wait: an
epoch updated without one joins :attr:`SeedTracker.pending`, and once the seed is done
:meth:`SeedTracker.judge_newest` judges those masks newest first until one is kept. The last
kept mask is the newest that meets the rule, so this ends with the same mask.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import NumericalError

if TYPE_CHECKING:  # this module needs no torch, so tables and the workflow can read the statuses
    import torch

    from .options import MaskOptions

__all__ = ["CONVERGED", "STATUSES", "SeedTracker", "raise_unconverged", "unconverged"]

#: How a seed's learning ended, in the order of the module docstring.
STATUSES = ("converged", "recovered", "kept_early", "budget", "diverged", "initial")
#: The statuses whose mask is a converged result.
CONVERGED = ("converged", "recovered")


class SeedTracker:
    """Keep, halving and stop bookkeeping of one seed (see the module docstring)."""

    def __init__(self, seed: int, mask: torch.Tensor, measured: float):
        self.seed = seed
        self.kept, self.kept_epoch = mask, 0
        self.pending: list[tuple[int, torch.Tensor]] = []  # (epoch, mask) not judged yet, oldest first
        self.active = True
        self.stop = ""  # why it stopped: "", "calm", "budget" or "diverged"
        self.stop_epoch = 0
        self.calm = 0
        self.last_density = measured
        self.last_loss = math.inf
        self.best_loss = math.inf
        self.stall = 0
        self.backoffs = 0

    @staticmethod
    def meets_keep_rule(epoch: int, fit_acc: float, clean_acc: float, options: MaskOptions) -> bool:
        """Whether the mask of ``epoch`` (1-based) with masked accuracy ``fit_acc`` is kept."""
        return fit_acc >= options.keep_threshold * clean_acc and not (options.protocol == "authors" and epoch == 1)

    def _is_calm(self, measured: float, loss: float, options: MaskOptions) -> bool:
        still = abs(measured - self.last_density) <= options.tolerance
        if options.protocol == "authors":
            return still
        return still and abs(loss - self.last_loss) <= options.loss_tolerance * abs(self.last_loss)

    def _stalls(self, loss: float, options: MaskOptions) -> bool:
        """Whether the learning rate halves after an epoch of ``loss`` (``schedule='plateau'``)."""
        if loss < self.best_loss * (1 - options.loss_tolerance):
            self.best_loss, self.stall = loss, 0
            return False
        self.stall += 1
        if self.stall < options.plateau:
            return False
        self.stall = 0
        return True

    def update(self, epoch: int, mask: torch.Tensor, measured: float, loss: float, backoffs: int,
               options: MaskOptions, accuracy: tuple[float, float] | None = None) -> tuple[bool | None, bool]:
        """Apply the rules after ``epoch`` (1-based); returns (whether the mask was kept, whether the rate halves).

        ``measured`` is the density the stop rule reads, ``loss`` the epoch's mean loss and
        ``backoffs`` the steps undone in it. ``accuracy`` is ``(fit_acc, clean_acc)``; without
        it (``protocol='default'`` only) the mask joins :attr:`pending` and None is returned.
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
            self.calm = self.calm + 1 if self._is_calm(measured, loss, options) else 0
        self.last_density, self.last_loss = measured, loss
        self.backoffs += backoffs
        halves = options.schedule == "plateau" and math.isfinite(loss) and self._stalls(loss, options)
        if not math.isfinite(loss) or self.backoffs >= options.max_backoffs:
            self.finish(epoch, "diverged")
        elif self.calm >= options.patience:
            self.finish(epoch, "calm")
        elif epoch >= options.epochs:
            self.finish(epoch, "budget")
        return kept, halves

    def finish(self, epoch: int, reason: str) -> None:
        """Stop the seed after ``epoch`` for ``reason`` (``calm``, ``budget`` or ``diverged``)."""
        self.active, self.stop, self.stop_epoch = False, reason, epoch

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

    def status(self, options: MaskOptions) -> str:
        """How the seed ended (one of :data:`STATUSES`); ``""`` while it is still learning."""
        if self.active:
            return ""
        if self.kept_epoch == 0:
            return "initial"
        if self.stop != "calm":
            return self.stop
        if self.kept_epoch < self.stop_epoch - options.patience:
            return "kept_early"
        return "recovered" if self.backoffs else "converged"

    @classmethod
    def from_state(cls, state: dict) -> SeedTracker:
        """A tracker from its attributes (``vars`` of one, as a checkpoint holds them)."""
        tracker = cls(int(state["seed"]), state["kept"], float(state["last_density"]))
        tracker.active, tracker.stop = bool(state["active"]), str(state["stop"])
        for name in ("calm", "kept_epoch", "stop_epoch", "stall", "backoffs"):
            setattr(tracker, name, int(state[name]))
        for name in ("last_loss", "best_loss"):
            setattr(tracker, name, float(state[name]))
        tracker.pending = [(int(epoch), mask) for epoch, mask in state["pending"]]
        return tracker


def unconverged(history: pd.DataFrame) -> pd.DataFrame:
    """The last history row of each seed whose mask is not a converged result (status not in CONVERGED)."""
    last = history.groupby("seed", sort=False).tail(1)
    return last[~last["status"].isin(CONVERGED)]


def raise_unconverged(history: pd.DataFrame, what: str) -> None:
    """Raise :class:`NumericalError` naming the seeds of ``what`` whose masks are not converged results."""
    bad = unconverged(history)
    if len(bad):
        listed = ", ".join(f"seed {row.seed}: {row.status}" for row in bad.itertuples())
        raise NumericalError(
            f"masks of {what} did not converge ({listed}) and mask.require_converged is true. 'budget' means "
            "mask.epochs ran out while the mask still moved (raise mask.epochs); 'initial' that no mask kept "
            "keep_threshold of the clean accuracy (lower mask.lambda or mask.lr); 'diverged' that steps kept "
            "blowing up the loss (lower mask.lr); 'kept_early' that the converged mask failed the keep rule "
            "(lower mask.lambda). See the history beside each mask.")
