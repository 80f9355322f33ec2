"""Per-step cost of mask learning: ``learn_masks``' steps against the naive batch-1 loop and the bare model.

Prints, measured side by side in one run (interleaved repeats, medians), between two timings of
the fixed yardstick (:mod:`benchmarks._harness`):

1. throughput in image-seed steps per second of the naive loop (``tests/reference_loop.py``),
   ``learn_masks`` at the paper's settings (batch 1, one seed) and at the config's defaults
   (batch 32, all config seeds in one pass), with ratios against the naive loop;
2. the step time against the bare model: ``bare / mask step``, where ``bare`` is the frozen
   model's forward + input-gradient backward on the same number of images.

Only steps are counted: for ``learn_masks`` the first epoch's ``seconds`` of a two-epoch call
(the keep rule is judged after the last), for the naive loop its epoch's step loop.

Usage: ``python -m benchmarks.bench_steps [--device cpu|cuda] [--quick] [--threads N] [--reuse-memory]
[--out FILE.json]`` (from the repository root). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import torch

from benchmarks import _harness as harness
from benchmarks import _workloads as work

#: Bars per device type: learn_masks' image-seed steps per second over the naive loop's, and the
#: bare model's share of a mask step at the config's defaults.
BARS = {"cpu": {"speedup": 1.2, "share": 0.85}, "cuda": {"speedup": 20.0, "share": 0.8}}


@dataclasses.dataclass(frozen=True)
class Size:
    """How much work the measurement does."""

    model: work.ModelSize
    batch1_images: int      # images per timed repeat at batch size 1
    batched_images: int     # images per timed repeat at the default batch size
    repeats: int            # interleaved repeats; medians are reported


FULL = Size(work.FULL_MODEL, 200, 480, 5)
QUICK = Size(work.QUICK_MODEL, 12, 96, 3)


def measure_steps(model, images, labels, size: Size, device: torch.device) -> dict:
    """Interleaved repeats of the naive loop, ``learn_masks`` (paper settings, defaults) and the bare model."""
    options, seeds = work.mask_defaults(device)
    batch1 = (images[: size.batch1_images], labels[: size.batch1_images])
    batched = (images[: size.batched_images], labels[: size.batched_images])
    runs = work.step_runs(model, batch1, batched, options, seeds, device, work.nchw_copy(model))
    for run, x, y in runs.values():  # warm-up: first calls pay for kernel selection and caches
        run(x[: 2 * options.batch_size], y[: 2 * options.batch_size])
    times, _ = harness.interleaved({name: partial(run, x, y) for name, (run, x, y) in runs.items()}, size.repeats)
    steps = -(-size.batched_images // options.batch_size)
    figures = work.step_figures(harness.medians(times), size.batch1_images, size.batched_images, steps, len(seeds))
    return {**figures, "repeat_seconds": times, "batch_size": options.batch_size, "seeds": len(seeds)}


def verdicts(steps: dict, device_type: str) -> dict:
    bar, speedup, share = BARS.get(device_type, BARS["cpu"]), steps["speedup"], steps["share"]
    return {
        "steps per second vs the naive loop, learn_masks at the paper's settings":
            harness.verdict(speedup["paper"], bar["speedup"]),
        "steps per second vs the naive loop, learn_masks at the defaults":
            harness.verdict(speedup["batched"], bar["speedup"]),
        "bare model's share of a mask step at the defaults": harness.verdict(share["batched"], bar["share"]),
    }


def measure(size: Size, device: torch.device) -> dict:
    model, images, labels, train_seconds = work.benchmark_model(size.model, device)
    steps = measure_steps(model, images, labels, size, device)
    return {"size": dataclasses.asdict(size), "train_seconds": train_seconds, "steps": steps,
            "verdicts": verdicts(steps, device.type)}


def run_benchmark(size: Size = FULL, device: str = "cpu", yardstick: dict = harness.YARDSTICK) -> dict:
    """Every figure for one device, between two timings of the yardstick, as a JSON-ready dict."""
    return harness.run_measured(partial(measure, size), device, yardstick)


def report(results: dict) -> str:
    """Human-readable summary of :func:`run_benchmark`'s results."""
    s, repeats = results["steps"], results["size"]["repeats"]
    t, ms = s["throughput"], {name: 1e3 * seconds for name, seconds in s["step_seconds"].items()}
    return "\n".join([
        *harness.header_lines(results),
        f"1. throughput (image-seed steps/s, median of {repeats} interleaved repeats, steps only)",
        f"   naive loop (batch 1, 1 seed, fft2, torch Adam)   {t['naive']:9.1f}   1.00x",
        f"   learn_masks, paper settings (batch 1, 1 seed)    {t['paper']:9.1f}   {s['speedup']['paper']:.2f}x",
        f"   learn_masks, defaults (batch {s['batch_size']}, {s['seeds']} seeds)        {t['batched']:9.1f}   "
        f"{s['speedup']['batched']:.2f}x",
        "2. step time vs bare model (forward + input-gradient backward, same images)",
        f"   batch 1, 1 seed:    mask step {ms['paper']:8.2f} ms, bare {ms['bare_1']:8.2f} ms, "
        f"bare/mask = {s['share']['paper']:.2f}",
        f"   batch {s['batch_size']}, {s['seeds']} seeds:  mask step {ms['batched']:8.2f} ms, bare "
        f"{ms['bare_batched']:8.2f} ms, bare/mask = {s['share']['batched']:.2f}",
        f"   a batched mask step: {harness.over_yardstick(s['step_seconds']['batched'], results)}",
        *harness.verdict_lines(results["verdicts"]),
    ])


def main(argv=None) -> dict:
    return harness.script_main(__doc__, run_benchmark, report, FULL, QUICK, argv)


if __name__ == "__main__":
    main()
