"""Memory of mask learning: the peak memory of each configuration, and the jobs' memory reuse.

Each measured in fresh processes, in one run, between two timings of the fixed yardstick:

1. the extra peak memory of the naive loop (``tests/reference_loop.py``), ``learn_masks`` at the
   paper's settings and at the config's defaults, each in its own fresh process after a two-image
   warm-up: on CPU the peak resident set size above the RSS at the start of the run (Linux: the
   peak reset through ``/proc/self/clear_refs``), on GPU ``torch.cuda.max_memory_allocated``;
2. on CPU, the pipeline's job set-up: ``learn_masks`` at the config's defaults in fresh processes
   with glibc's own ``malloc`` settings and with :func:`fourier_masks.device.keep_freed_memory`
   (what every torch job of the pipeline calls), interleaved; the median ratio of the two times.

There is no bar: the figures are reported beside each other.

Usage: ``python -m benchmarks.bench_memory [--device cpu|cuda] [--quick] [--threads N] [--out FILE.json]``
(from the repository root). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import resource
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from benchmarks import _harness as harness
from benchmarks import _workloads as work
from fourier_masks.device import keep_freed_memory
from fourier_masks.masks.learning import learn_masks


@dataclasses.dataclass(frozen=True)
class Size:
    """How much work the measurement does."""

    model: work.ModelSize
    memory_images: int      # images per configuration in the memory probe
    setup_images: int       # fitting images of the job set-up comparison
    setup_repeats: int      # its interleaved repeats; medians are reported


FULL = Size(work.FULL_MODEL, 96, 500, 3)
QUICK = Size(work.QUICK_MODEL, 32, 64, 3)


def peak_rss_kib(reset: bool = False) -> int:
    """Peak resident memory of this process in KiB; ``reset`` first lowers the peak to the current RSS.

    Linux resets the peak through ``/proc/self/clear_refs``; elsewhere the peak since the
    process started (``ru_maxrss``) is all there is.
    """
    status = Path("/proc/self/status")
    if not status.is_file():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
    return int(fields["VmHWM"].split()[0])


def _memory_child(kind, model, images, labels, device, threads, queue):
    """Run one configuration in a fresh process; report its extra peak RSS (CPU) or allocation (GPU) in MiB.

    A first run on two images pays for lazy imports and kernel caches before the baseline.
    """
    torch.set_num_threads(threads)
    device = torch.device(device)
    run = work.runner(kind, model, device)
    run(images[:2], labels[:2])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    base_rss = peak_rss_kib(reset=True)
    run(images, labels)
    if device.type == "cuda":
        queue.put((torch.cuda.max_memory_allocated(device) - base) / 2**20)
    else:
        queue.put((peak_rss_kib() - base_rss) / 1024)


def measure_memory(model, images, labels, size: Size, device: torch.device) -> dict:
    """Extra peak memory (MiB) of each configuration, each in its own fresh process."""
    x, y = images[: size.memory_images], labels[: size.memory_images]
    peaks = {kind: harness.in_fresh_process(_memory_child, kind, copy.deepcopy(model).cpu(), x, y, str(device),
                                    torch.get_num_threads())
             for kind in ("naive", "paper", "default")}
    measure = ("torch.cuda.max_memory_allocated" if device.type == "cuda"
               else "peak RSS (VmHWM) above the RSS before the run")
    return {"unit": "MiB", "images": len(x), "peak": peaks, "measure": measure}


def _setup_child(reuse: bool, model, images, labels, threads, queue):
    """Seconds of one ``learn_masks`` call at the defaults in a fresh process, with ``reuse`` of freed memory
    (:func:`fourier_masks.device.keep_freed_memory`) or glibc's own settings; after a two-image warm-up."""
    torch.set_num_threads(threads)
    if reuse and not keep_freed_memory():
        queue.put(None)
        return
    options, seeds = work.mask_defaults("cpu")
    learn_masks(model, images[:2], labels[:2], seeds, options=options)
    start = time.perf_counter()
    learn_masks(model, images, labels, seeds, options=options)
    queue.put(time.perf_counter() - start)


def measure_job_setup(model, images, labels, size: Size) -> dict | None:
    """A fresh process's ``learn_masks`` call at the defaults, glibc's ``malloc`` settings against the jobs'
    memory reuse, interleaved; None where ``mallopt`` is missing."""
    x, y = images[: size.setup_images], labels[: size.setup_images]
    times = {"glibc": [], "reuse": []}
    for _ in range(size.setup_repeats):
        for name in times:
            times[name].append(harness.in_fresh_process(_setup_child, name == "reuse", copy.deepcopy(model).cpu(), x, y,
                                                torch.get_num_threads()))
    if None in times["reuse"]:
        return None
    ratios = [plain / reuse for plain, reuse in zip(times["glibc"], times["reuse"], strict=True)]
    return {"images": len(x), "seconds": {name: statistics.median(values) for name, values in times.items()},
            "speedup": statistics.median(ratios), "repeat_seconds": times}


def measure(size: Size, device: torch.device) -> dict:
    model, images, labels, train_seconds = work.benchmark_model(size.model, device)
    results = {"size": dataclasses.asdict(size), "train_seconds": train_seconds,
               "memory": measure_memory(model, images, labels, size, device), "verdicts": {}}
    if device.type == "cpu":
        results["job_setup"] = measure_job_setup(model, images, labels, size)
    return results


def run_benchmark(size: Size = FULL, device: str = "cpu", yardstick: dict = harness.YARDSTICK) -> dict:
    """Every figure for one device, between two timings of the yardstick, as a JSON-ready dict."""
    return harness.run_measured(partial(measure, size), device, yardstick)


def report(results: dict) -> str:
    """Human-readable summary of :func:`run_benchmark`'s results."""
    mem, setup = results["memory"], results.get("job_setup")
    lines = [*harness.header_lines(results),
             f"1. extra peak memory ({mem['measure']}, {mem['images']} images, fresh process each): "
             + ", ".join(f"{kind} {peak:.1f} {mem['unit']}" for kind, peak in mem["peak"].items())]
    if setup is not None:
        seconds = setup["seconds"]
        lines.append(f"2. job set-up: learn_masks at the defaults on {setup['images']} images in a fresh process, "
                     f"glibc malloc {seconds['glibc']:.2f} s, with the jobs' memory reuse {seconds['reuse']:.2f} s: "
                     f"{setup['speedup']:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> dict:
    return harness.script_main(__doc__, run_benchmark, report, FULL, QUICK, argv)


if __name__ == "__main__":
    main()
