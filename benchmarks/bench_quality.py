"""Time to a mask of equal quality: ``learn_masks`` at the config's defaults against the naive loop.

On the same model and the same fitting images, in one run, between two timings of the fixed
yardstick: ``learn_masks`` at the config's defaults (all config seeds in one pass), run to
completion, against the naive loop (``tests/reference_loop.py``) with the paper's protocol
(keep rule, early stopping, capped at ``naive_epoch_cap`` epochs; its schedule still spans 100).
"Equal quality": every ``learn_masks`` mask keeps >= 99% of the clean accuracy on the fitting
images, and the naive loop has a kept mask whose density is within 0.05 of every one of them.
The ratio is the naive loop's wall time to its *first* such mask (set-up included) over
``learn_masks``' wall time per mask; it favours the naive loop, which is stopped at its first match.

Usage: ``python -m benchmarks.bench_quality [--device cpu|cuda] [--quick] [--threads N] [--reuse-memory]
[--out FILE.json]`` (from the repository root). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import numpy as np
import torch

from benchmarks import _harness as harness
from benchmarks import _workloads as work
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import masked_accuracy

#: Bar: the naive loop's time to its first equal-quality mask over learn_masks' time per mask.
QUALITY_BAR = 3.0


@dataclasses.dataclass(frozen=True)
class Size:
    """How much work the measurement does."""

    model: work.ModelSize
    fit_images: int         # fitting images of both
    naive_epoch_cap: int    # the naive run stops here at the latest (its schedule spans PAPER epochs)


FULL = Size(work.FULL_MODEL, 500, 30)
QUICK = Size(work.QUICK_MODEL, 64, 2)


def learn_masks_quality(model, x, y, device) -> dict:
    """``learn_masks`` at the config's defaults on ``x``: seconds, densities, retention of each mask."""
    options, seeds = work.mask_defaults(device)
    start = time.perf_counter()
    masks, history = learn_masks(model, x, y, seeds, options=options)
    seconds = time.perf_counter() - start
    clean = float(history["clean_acc"].iloc[0])
    retention = masked_accuracy(model, x.to(device), y.to(device), masks, options.model_batch_size) / clean
    return {"seconds": seconds, "seeds": len(seeds), "epochs": int(history["epoch"].max()), "clean_acc": clean,
            "density": masks.reshape(len(masks), -1).mean(1).tolist(), "retention": retention.tolist()}


def measure_quality(model, images, labels, size: Size, device: torch.device) -> dict:
    """Wall time per mask of ``learn_masks`` against the naive loop's to its first kept mask within 0.05
    density of every ``learn_masks`` mask."""
    x, y = images[: size.fit_images], labels[: size.fit_images]
    fast = learn_masks_quality(model, x, y, device)
    clean = fast.pop("clean_acc")
    mask, naive = work.naive_mask(work.nchw_copy(model), x, y, seed=work.mask_defaults(device)[1][0],
                                  epoch_cap=size.naive_epoch_cap, device=device, **work.PAPER)
    gap = np.abs(naive["density"].to_numpy()[:, None] - np.array(fast["density"])[None]).max(1)
    matched = naive[naive["kept"].to_numpy() & (gap <= 0.05)]
    kept = naive[naive["kept"].to_numpy()]
    result = {
        "fit_images": len(x),
        "learn_masks": fast,
        "naive": {"seconds": float(naive["elapsed"].iloc[-1]), "epochs": len(naive), "epoch_cap": size.naive_epoch_cap,
                  "early_stopped": len(naive) < min(work.PAPER["epochs"], size.naive_epoch_cap),
                  "density": float(mask.mean()),
                  "retention": float(kept["fit_acc"].iloc[-1] / clean) if len(kept) else float("nan"),
                  "density_per_epoch": naive["density"].tolist(), "kept_per_epoch": naive["kept"].tolist()},
        "equal_quality": min(fast["retention"]) >= 0.99 and not matched.empty,
        "ratio": None,
    }
    if result["equal_quality"]:
        first = matched.iloc[0]
        result["naive"]["matched"] = {"epoch": int(first["epoch"]), "seconds": float(first["elapsed"]),
                                      "density": float(first["density"]),
                                      "retention": float(first["fit_acc"] / clean)}
        result["ratio"] = float(first["elapsed"]) / (fast["seconds"] / fast["seeds"])  # per mask: one seed each
    return result


def measure(size: Size, device: torch.device) -> dict:
    model, images, labels, train_seconds = work.benchmark_model(size.model, device)
    quality = measure_quality(model, images, labels, size, device)
    name = "time to an equal-quality mask, naive loop over learn_masks (per mask)"
    return {"size": dataclasses.asdict(size), "train_seconds": train_seconds, "quality": quality,
            "verdicts": {name: harness.verdict(quality["ratio"], QUALITY_BAR)}}


def run_benchmark(size: Size = FULL, device: str = "cpu", yardstick: dict = harness.YARDSTICK) -> dict:
    """Every figure for one device, between two timings of the yardstick, as a JSON-ready dict."""
    return harness.run_measured(partial(measure, size), device, yardstick)


def report(results: dict) -> str:
    """Human-readable summary of :func:`run_benchmark`'s results."""
    q, over, fmt = results["quality"], harness.over_yardstick, harness.fmt
    fast, naive = q["learn_masks"], q["naive"]
    lines = [
        *harness.header_lines(results),
        f"time to a mask of equal quality, {q['fit_images']} fitting images",
        f"   learn_masks defaults: {over(fast['seconds'], results)} for {fast['seeds']} seeds, "
        f"{fast['epochs']} epochs; density {fmt(fast['density'])}, retention {fmt(fast['retention'])}",
        f"   naive, paper protocol: {over(naive['seconds'], results)} for 1 seed, {naive['epochs']} epochs "
        f"({'early-stopped' if naive['early_stopped'] else 'cap ' + str(naive['epoch_cap'])}); "
        f"last kept mask: density {naive['density']:.3f}, retention {naive['retention']:.3f}",
    ]
    if q["equal_quality"]:
        first = naive["matched"]
        lines += [f"   naive first matches in epoch {first['epoch']}: {first['seconds']:.1f} s, "
                  f"density {first['density']:.3f}, retention {first['retention']:.3f}",
                  f"   per mask: naive {first['seconds']:.1f} s / learn_masks {fast['seconds'] / fast['seeds']:.1f} s"]
    else:
        lines.append("   equal quality: NOT reached (no kept naive mask within 0.05 density of every learn_masks "
                     "mask, or a learn_masks mask below 99% retention)")
    return "\n".join([*lines, *harness.verdict_lines(results["verdicts"])])


def main(argv=None) -> dict:
    return harness.script_main(__doc__, run_benchmark, report, FULL, QUICK, argv)


if __name__ == "__main__":
    main()
