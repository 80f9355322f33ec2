"""The log line of an epoch of mask learning: its speed, and each seed's progress and how it ended."""

from __future__ import annotations

import math

from .protocol import SeedTracker

__all__ = ["epoch_line"]


def _seed_progress(row: dict, tracker: SeedTracker) -> str:
    """One seed's part of an epoch's line: density, loss, fit accuracy where measured, how it ended."""
    text = f"seed {row['seed']}: density {row['density']:.4f}, loss {row['loss']:.4f}"
    if row["backoffs"]:
        text += f", {row['backoffs']} steps undone"
    if not math.isnan(row["fit_acc"]):
        text += f", fit acc {row['fit_acc']:.4f}{', kept' if row['kept'] else ''}"
    if not tracker.active:
        text += f", {row['status']} with the mask of epoch {tracker.kept_epoch}"
    return text


def epoch_line(rows: list[dict], trackers: list[SeedTracker], epochs: int, steps: int, images: int,
               seconds: float) -> str:
    """The line of one epoch (of at most ``epochs``) from its history ``rows``, one per seed learned
    in it, with their ``trackers``: ``steps`` steps over ``images`` images per seed in ``seconds``."""
    seeds = "; ".join(_seed_progress(row, tracker) for row, tracker in zip(rows, trackers, strict=True))
    return (f"epoch {rows[0]['epoch']} (at most {epochs}): {seconds:.1f} s, "
            f"{steps / seconds:.1f} steps/s ({images * len(trackers) / seconds:.0f} "
            f"image-seed steps/s); {seeds}")
