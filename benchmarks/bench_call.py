"""The whole ``learn_masks`` call a user makes, against the bare model on the same steps and the naive loop.

Times, in one run (interleaved repeats, ratios taken within a repeat, medians), between two
timings of the fixed yardstick:

* the call ``learn_masks(model, images, labels, seeds, epochs=E, patience=10**6, batch_size=B,
  device=...)`` (schema defaults otherwise): set-up, clean reference, keep-rule passes and
  history included, at a few epoch counts E;
* the bare model on the same image-seed steps: each step's ``seeds x B`` images through forward
  + input-gradient backward in calls of the size ``learn_masks`` makes them (whole seeds up to
  ``model_batch_size``), in its layout; ``bare / call`` is the share of the call's time the model
  alone would need;
* the naive loop's whole call (``tests/reference_loop.py``: one seed, its per-epoch accuracy
  through a batch-1 loader), in image-seed steps per second;

on CPU also by process CPU time (which leaves out the time other jobs held the cores). Then one
more call per epoch count under ``cProfile``: the entries with the most own time and the time of
each phase, read from public names only (the history's per-epoch ``seconds``; the public
``objective.count_correct``, the keep-rule pass, and ``objective.clean_reference``).

Usage: ``python -m benchmarks.bench_call [--device cpu|cuda] [--quick] [--threads N] [--reuse-memory]
[--out FILE.json]`` (from the repository root). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import cProfile
import dataclasses
import inspect
import pstats
import statistics
import time
from functools import partial

import torch

from benchmarks import _harness as harness
from benchmarks import _workloads as work
from fourier_masks.masks import objective
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.options import mask_options

#: Bars: the bare model's share of the whole call per epoch count, and the call's image-seed steps
#: per second over the naive loop's whole call (at every epoch count with a share bar).
SHARE_BARS = {2: 0.75, 20: 0.85}
NAIVE_BAR = 2.0

#: Phases timed by public functions of :mod:`fourier_masks.masks.objective` (cumulative time).
PHASES = {"keep-rule pass": objective.count_correct, "clean reference": objective.clean_reference}


@dataclasses.dataclass(frozen=True)
class Size:
    """How much work the measurement does."""

    model: work.ModelSize
    images: int             # fitting images
    seeds: int              # seeds learned in one call
    batch: int              # images per step and seed
    epochs: tuple           # epoch counts timed
    repeats: int            # interleaved repeats (medians reported)


FULL = Size(work.FULL_MODEL, 512, 4, 128, (2, 20), 3)
QUICK = Size(work.QUICK_MODEL, 256, 4, 64, (2, 4), 1)


def call(model, images, labels, seeds: list[int], epochs: int, batch_size: int, device):
    """One whole ``learn_masks`` call (no early stop, schema defaults otherwise); its history."""
    _, history = learn_masks(model, images, labels, seeds, epochs=epochs, patience=10**6, batch_size=batch_size,
                             device=str(device))
    harness.synchronize(device)
    return history


def call_seconds(*args) -> float:
    """Seconds of :func:`call` with ``args``."""
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def bare_pass(model, images, labels, seeds: int, epochs: int, batch_size: int, per_call: int, amp: bool,
              layout: torch.memory_format) -> float:
    """Seconds of the bare model on the image-seed steps of a whole call: each epoch, each step's
    ``seeds x batch_size`` images go through forward + input-gradient backward in calls of whole
    seeds of at most ``per_call`` images (at least one seed) in memory ``layout``, as ``learn_masks``
    calls the model."""
    stacked, stacked_labels = images.expand(seeds, *images.shape), labels.expand(seeds, *labels.shape)
    harness.synchronize(images.device)
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(images), batch_size):
            step = min(batch_size, len(images) - i)
            group = max(1, per_call // step)
            for first in range(0, seeds, group):
                x = stacked[first : first + group, i : i + step].flatten(0, 1).contiguous(memory_format=layout)
                work.bare_step(model, x, stacked_labels[first : first + group, i : i + step].flatten(), amp)
    harness.synchronize(images.device)
    return time.perf_counter() - start


def _stats_key(function) -> tuple:
    """cProfile's key of a Python function: ``(file, first line, name)``."""
    code = inspect.unwrap(function).__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def profile_call(model, images, labels, seeds, epochs, batch_size, device, top: int = 5) -> dict:
    """Where one whole call spends its time (cProfile): the ``top`` entries by own time; the cumulative time
    of the :data:`PHASES`; the mask steps (the history's per-epoch seconds less the keep-rule passes made
    in them); the rest; and the number of keep-rule passes (calls of ``count_correct``)."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    history = call(model, images, labels, seeds, epochs, batch_size, device)
    profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (primitive calls, calls, own, cumulative, callers)
    own = sum(entry[2] for entry in stats.values())
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    entries = [{"function": pstats.func_std_string(key), "calls": value[1], "seconds": value[2],
                "share": value[2] / own} for key, value in ranked]
    timed = {name: stats.get(_stats_key(function), (0, 0, 0.0, 0.0))[3] for name, function in PHASES.items()}
    epochs_seconds = float(history.groupby("epoch")["seconds"].first().sum())
    phases = {"mask steps": epochs_seconds - timed["keep-rule pass"], **timed}
    phases["the rest (set-up, options, history)"] = total - sum(phases.values())
    passes = stats.get(_stats_key(objective.count_correct), (0, 0))[1]
    return {"total_seconds": total, "top": entries, "phases": phases, "keep_rule_passes": passes}


def _within_repeats(times: dict, epochs: int, images: int, seeds: int, naive_epochs: int) -> dict:
    """``bare / call``, call throughput and speed-up over naive, each taken within a repeat, then the median
    over repeats (robust to load that drifts between repeats)."""
    rate = [images * seeds * epochs / seconds for seconds in times[f"call_{epochs}"]]
    naive_rate = [images * naive_epochs / seconds for seconds in times["naive"]]
    pairs = zip(times[f"bare_{epochs}"], times[f"call_{epochs}"], strict=True)
    return {"share": statistics.median(bare / whole for bare, whole in pairs),
            "throughput": statistics.median(rate),
            "vs_naive": statistics.median(r / n for r, n in zip(rate, naive_rate, strict=True))}


def call_runs(model, x, y, seeds: list[int], size: Size, device: torch.device) -> dict:
    """``name -> run() -> seconds``: the bare model and the call at each epoch count, and the naive loop's call."""
    amp = device.type == "cuda"  # learn_masks' amp='auto'
    per_call, layout = mask_options().model_batch_size, work.memory_format(model)  # what call() runs with
    model.to(memory_format=layout)
    runs = {}
    for epochs in size.epochs:
        runs[f"bare_{epochs}"] = partial(bare_pass, model, x, y, len(seeds), epochs, size.batch, per_call, amp, layout)
        runs[f"call_{epochs}"] = partial(call_seconds, model, x, y, seeds, epochs, size.batch, device)
    paper = {"lam": work.PAPER["lam"], "lr": work.PAPER["lr"]}
    runs["naive"] = lambda: float(work.naive_mask(work.nchw_copy(model), x, y, seed=1, epochs=min(size.epochs),
                                                  device=device, **paper)[1]["elapsed"].iloc[-1])
    return runs


def measure_call(model, images, labels, size: Size, device: torch.device) -> dict:
    """Interleaved repeats of the whole call and the bare model at each epoch count, and the naive loop."""
    seeds, shortest = list(range(1, size.seeds + 1)), min(size.epochs)
    x, y = images[: size.images].to(device), labels[: size.images].to(device)
    runs = call_runs(model, x, y, seeds, size, device)
    call(model, x[: 2 * size.batch], y[: 2 * size.batch], seeds, 1, size.batch, device)  # warm-up
    times, cpu_times = harness.interleaved(runs, size.repeats)
    median = harness.medians(times)
    rows = {str(epochs): {"call_seconds": median[f"call_{epochs}"], "bare_seconds": median[f"bare_{epochs}"],
                          **_within_repeats(times, epochs, len(x), len(seeds), shortest),
                          "profile": profile_call(model, x, y, seeds, epochs, size.batch, device)}
            for epochs in size.epochs}
    if device.type == "cpu":  # a process's CPU time leaves out the time other jobs held the cores
        for epochs in size.epochs:
            rows[str(epochs)]["cpu_time"] = _within_repeats(cpu_times, epochs, len(x), len(seeds), shortest)
    naive_rate = [len(x) * shortest / seconds for seconds in times["naive"]]
    return {"images": len(x), "seeds": len(seeds), "batch_size": size.batch,
            "per_call": mask_options().model_batch_size, "epochs": rows,
            "naive": {"epochs": shortest, "seconds": median["naive"], "throughput": statistics.median(naive_rate)},
            "repeat_seconds": times, "repeat_cpu_seconds": cpu_times}


def verdicts(whole: dict) -> dict:
    result = {}
    for epochs, row in whole["epochs"].items():
        if int(epochs) in SHARE_BARS:
            share = harness.verdict(row["share"], SHARE_BARS[int(epochs)])
            result[f"bare model's share of the whole call at {epochs} epochs"] = share
            naive = harness.verdict(row["vs_naive"], NAIVE_BAR)
            result[f"steps per second vs the naive loop's whole call at {epochs} epochs"] = naive
    return result


def measure(size: Size, device: torch.device) -> dict:
    model, images, labels, train_seconds = work.benchmark_model(size.model, device)
    whole = measure_call(model, images, labels, size, device)
    return {"size": dataclasses.asdict(size), "train_seconds": train_seconds, "call": whole,
            "verdicts": verdicts(whole)}


def run_benchmark(size: Size = FULL, device: str = "cpu", yardstick: dict = harness.YARDSTICK) -> dict:
    """Every figure for one device, between two timings of the yardstick, as a JSON-ready dict."""
    return harness.run_measured(partial(measure, size), device, yardstick)


def _epoch_lines(epochs: str, row: dict, results: dict) -> list[str]:
    profile = row["profile"]
    lines = [f"   {epochs:>3} epochs: call {harness.over_yardstick(row['call_seconds'], results)}, bare "
             f"{row['bare_seconds']:.2f} s, bare/call = {row['share']:.2f}; {row['throughput']:8.1f} image-seed "
             f"steps/s = {row['vs_naive']:.2f}x naive"]
    if "cpu_time" in row:
        lines.append(f"       by process CPU time: bare/call = {row['cpu_time']['share']:.2f}, "
                     f"{row['cpu_time']['vs_naive']:.2f}x naive")
    lines.append("       phases: " + ", ".join(f"{name} {seconds / profile['total_seconds']:.0%}"
                                              for name, seconds in profile["phases"].items())
                 + f"; {profile['keep_rule_passes']} keep-rule pass(es)")
    lines += [(f"       {entry['share']:5.1%} {entry['seconds']:7.2f} s {entry['calls']:>6} calls  "
               f"{entry['function']}") for entry in profile["top"]]
    return lines


def report(results: dict) -> str:
    """Human-readable summary of :func:`run_benchmark`'s results."""
    whole = results["call"]
    lines = [*harness.header_lines(results),
             f"whole learn_masks call vs the bare model on the same image-seed steps ({whole['images']} images, "
             f"{whole['seeds']} seeds, batch {whole['batch_size']}, model calls of {whole['per_call']} images; "
             f"naive: whole call, 1 seed, {whole['naive']['epochs']} epochs, "
             f"{whole['naive']['throughput']:.1f} image steps/s)"]
    for epochs, row in whole["epochs"].items():
        lines += _epoch_lines(epochs, row, results)
    return "\n".join([*lines, *harness.verdict_lines(results["verdicts"])])


def main(argv=None) -> dict:
    return harness.script_main(__doc__, run_benchmark, report, FULL, QUICK, argv)


if __name__ == "__main__":
    main()
