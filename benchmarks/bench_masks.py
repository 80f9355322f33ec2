"""Benchmark of :func:`fourier_masks.masks.learning.learn_masks` against a naive batch-1 loop.

Prints, measured side by side in one run:

1. throughput in image-seed steps per second of the naive loop (:mod:`benchmarks.naive`),
   ``learn_masks`` at the paper's settings (batch 1, one seed) and at the config's defaults
   (batch 32, all config seeds in one pass), with ratios against the naive loop;
2. the share of a mask-learning step spent in the model: ``bare / mask step``, where
   ``bare`` is the frozen model's forward + input-gradient backward on the same images;
3. the time to a mask of equal quality: the naive loop with the paper's protocol vs
   ``learn_masks`` at the config's defaults, on the same model and fitting images;
4. the peak memory of each configuration;
5. end to end (tracker issue 15): the whole ``learn_masks`` call, set-up, clean reference,
   keep-rule passes and all, against the bare model on the same image-seed steps in calls of
   the same size, at a few epoch counts, against the naive loop's whole call, with where the
   time goes (cProfile: top entries, time per phase, number of keep-rule passes);
6. on CPU, the pipeline's job set-up: ``learn_masks`` at the config's defaults in fresh processes
   with and without :func:`fourier_masks.device.keep_freed_memory`, which every torch job calls.

Usage: ``python -m benchmarks.bench_masks [--device cpu|cuda] [--quick] [--threads N] [--reuse-memory]
[--out FILE.json]``
(from the repository root). See ``benchmarks/README.md`` for what each figure counts.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import pstats
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.naive import bare_step, naive_mask, synchronize
from fourier_masks.config import load_config
from fourier_masks.data.dataset import to_float
from fourier_masks.data.photos import photo_patches
from fourier_masks.device import keep_freed_memory, resolve_device
from fourier_masks.masks import checkpoint as mask_checkpoint
from fourier_masks.masks import learning as mask_module
from fourier_masks.masks import objective as objective_module
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import masked_accuracy
from fourier_masks.masks.options import MaskOptions, mask_options
from fourier_masks.models.layout import adopt_layout, set_layout
from fourier_masks.models.networks import freeze, make_model
from fourier_masks.models.training import train_model

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"

#: The authors' protocol (method.md): lambda, lr, epoch cap and one-cycle warm-up at batch size 1.
PAPER = {"lam": 0.2, "lr": 1e-3, "epochs": 100, "warmup": 0.1}

#: Bars of tracker issue 6 per device type.
BARS = {"cpu": {"share": 0.85, "speedup": 1.2}, "cuda": {"share": 0.8, "speedup": 20.0}}
QUALITY_BAR = 3.0
#: Bars of tracker issue 15 (end to end): share of the bare model per epoch count, and speed-up over naive.
END_TO_END_BARS = {"share": {2: 0.75, 20: 0.85}, "naive": 2.0}


@dataclasses.dataclass(frozen=True)
class Size:
    """How much work each measurement does."""

    n_train: int            # training images of the benchmark model
    image_size: int
    train_epochs: int
    batch1_images: int      # images per timed repeat at batch size 1
    batched_images: int     # images per timed repeat at the default batch size
    repeats: int            # interleaved repeats; medians are reported
    fit_images: int         # fitting images of the time-to-quality comparison
    naive_epoch_cap: int    # the naive run stops here at the latest (its schedule spans PAPER epochs)
    memory_images: int      # images per configuration in the memory probe
    e2e_images: int         # end to end (issue 15): fitting images,
    e2e_seeds: int          # seeds learned in one call,
    e2e_batch: int          # images per step and seed,
    e2e_epochs: tuple       # epoch counts timed,
    e2e_repeats: int        # interleaved repeats (medians reported)


FULL = Size(5000, 32, 4, 200, 480, 5, 500, 30, 96, 512, 4, 128, (2, 20), 3)
QUICK = Size(1500, 32, 1, 12, 96, 3, 64, 2, 32, 256, 4, 64, (2, 4), 1)


def mask_defaults(device) -> tuple[MaskOptions, list[int]]:
    """The embedded default's mask options (on ``device``) and seeds."""
    config = load_config(CONFIG)
    return MaskOptions.from_config(config["mask"], str(device)), list(config["seeds"])


def paper_options(options: MaskOptions) -> MaskOptions:
    """``options`` at the paper's settings: batch size 1 and the authors' lambda and lr."""
    return dataclasses.replace(options, batch_size=1, lam=PAPER["lam"], lr=PAPER["lr"])


def benchmark_model(size: Size, device: torch.device):
    """The standard small CNN trained on photo patches; returns ``(model, images, labels)``."""
    config = load_config(CONFIG)
    dataset, training = config["dataset"], config["training"]
    data = photo_patches(n_classes=dataset["n_classes"], n_train=size.n_train, n_test=100, image_size=size.image_size,
                         channels=dataset["channels"], seed=dataset["seed"])
    images, labels = to_float(data.train_images), torch.from_numpy(data.train_labels)
    model = make_model("small_cnn", 3, dataset["n_classes"], images.mean((0, 2, 3)).tolist(),
                       images.std((0, 2, 3)).clamp_min(1e-3).tolist(), seed=training["seed"])
    adopt_layout(model.eval(), images.shape[1:], config["channels_last"])
    train_model(model, images, labels, "standard", device=device, **{**training, "epochs": size.train_epochs})
    return freeze(model), images, labels


@contextlib.contextmanager
def evaluation_clock():
    """Time spent in ``learn_masks``' keep-rule passes: yields a list that collects seconds."""
    spent, original = [], mask_module.count_correct

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = original(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return result

    mask_module.count_correct = timed
    try:
        yield spent
    finally:
        mask_module.count_correct = original


def learn_masks_steps(model, images, labels, seeds, options: MaskOptions) -> float:
    """Seconds of one ``learn_masks`` epoch without its keep-rule pass (steps and per-epoch upkeep)."""
    with evaluation_clock() as spent:
        _, history = learn_masks(model, images, labels, seeds, options=dataclasses.replace(options, epochs=1))
    return float(history["seconds"].iloc[0]) - sum(spent)


def naive_steps(model, images, labels, device) -> float:
    """Seconds of one naive epoch's steps (no evaluation)."""
    _, history = naive_mask(model, images, labels, seed=1, lam=PAPER["lam"], lr=PAPER["lr"], epochs=1,
                            evaluate=False, device=device)
    return float(history["step_seconds"].iloc[0])


def runner(kind: str, model, device: torch.device):
    """``(images, labels) -> seconds of the steps`` of one configuration: ``naive``, ``paper`` or ``default``."""
    options, seeds = mask_defaults(device)
    if kind == "naive":
        return lambda x, y: naive_steps(model, x, y, device)
    if kind == "paper":
        return lambda x, y: learn_masks_steps(model, x, y, seeds[:1], paper_options(options))
    return lambda x, y: learn_masks_steps(model, x, y, seeds, options)


def memory_format(model) -> torch.memory_format:
    """The layout ``learn_masks`` runs ``model`` in (its own): the bare model is timed in it too."""
    return torch.channels_last if getattr(model, "channels_last", False) else torch.contiguous_format


def nchw_copy(model) -> torch.nn.Module:
    """A copy of ``model`` in the default layout, as the authors' naive loop runs it."""
    return set_layout(copy.deepcopy(model), False)


def bare_seconds(model, images, labels, calls: int, amp: bool) -> float:
    """Seconds of ``calls`` bare forward + input-gradient backward steps on ``images``."""
    synchronize(images.device)
    start = time.perf_counter()
    for _ in range(calls):
        bare_step(model, images, labels, amp)
    synchronize(images.device)
    return time.perf_counter() - start


def measure_steps(model, images, labels, size: Size, device: torch.device) -> dict:
    """Figures 1 and 2: interleaved repeats of the naive loop, learn_masks and the bare model."""
    options, seeds = mask_defaults(device)
    batch, layout = options.batch_size, memory_format(model)
    amp = options.amp in ("auto", True) and device.type == "cuda"
    x1, y1 = images[: size.batch1_images], labels[: size.batch1_images]
    xb, yb = images[: size.batched_images], labels[: size.batched_images]
    model.to(memory_format=layout)
    bare1 = (images[:1].to(device, memory_format=layout), labels[:1].to(device))
    bare_b = (images[: batch * len(seeds)].to(device, memory_format=layout), labels[: batch * len(seeds)].to(device))
    steps_b = -(-size.batched_images // batch)
    runs = {
        "naive": runner("naive", nchw_copy(model), device),
        "paper": runner("paper", model, device),
        "bare_1": lambda x, y: bare_seconds(model, *bare1, len(x), amp),
        "default": runner("default", model, device),
        "bare_default": lambda x, y: bare_seconds(model, *bare_b, -(-len(x) // batch), amp),
    }
    data = {"naive": (x1, y1), "paper": (x1, y1), "bare_1": (x1, y1), "default": (xb, yb), "bare_default": (xb, yb)}
    for name, run in runs.items():  # warm-up: first calls pay for kernel selection and caches
        run(*(t[: min(len(t), 2 * batch)] for t in data[name]))
    times = {name: [] for name in runs}
    for _ in range(size.repeats):
        for name, run in runs.items():
            times[name].append(run(*data[name]))
    median = {name: statistics.median(values) for name, values in times.items()}
    work = {"naive": len(x1), "paper": len(x1), "default": len(xb) * len(seeds)}
    throughput = {name: work[name] / median[name] for name in work}
    step = {"paper": median["paper"] / len(x1), "default": median["default"] / steps_b,
            "bare_1": median["bare_1"] / len(x1), "bare_default": median["bare_default"] / steps_b}
    return {
        "throughput": throughput,
        "speedup": {name: throughput[name] / throughput["naive"] for name in ("paper", "default")},
        "step_seconds": step,
        "share": {"paper": step["bare_1"] / step["paper"], "default": step["bare_default"] / step["default"]},
        "repeat_seconds": times,
        "batch_size": batch,
        "seeds": len(seeds),
    }


def measure_quality(model, images, labels, size: Size, device: torch.device) -> dict:
    """Figure 3: wall time per mask of ``learn_masks`` (config defaults, all seeds in one pass) vs the
    naive loop (paper protocol, one seed) to its first kept mask within 0.05 density of every one of them."""
    options, seeds = mask_defaults(device)
    x, y = images[: size.fit_images], labels[: size.fit_images]
    start = time.perf_counter()
    masks, history = learn_masks(model, x, y, seeds, options=options)
    fast_seconds = time.perf_counter() - start
    clean = float(history["clean_acc"].iloc[0])
    fast_density = masks.reshape(len(masks), -1).mean(1)
    fast_retention = masked_accuracy(model, x.to(device), y.to(device), masks, options.model_batch_size) / clean
    mask, naive = naive_mask(nchw_copy(model), x, y, seed=seeds[0], lam=PAPER["lam"], lr=PAPER["lr"],
                             epochs=PAPER["epochs"], warmup=PAPER["warmup"], epoch_cap=size.naive_epoch_cap,
                             device=device)
    gap = np.abs(naive["density"].to_numpy()[:, None] - fast_density[None]).max(1)
    matched = naive[naive["kept"].to_numpy() & (gap <= 0.05)]
    kept = naive[naive["kept"].to_numpy()]
    fast_ok = bool(fast_retention.min() >= 0.99)
    result = {
        "fit_images": len(x),
        "learn_masks": {"seconds": fast_seconds, "seeds": len(seeds), "epochs": int(history["epoch"].max()),
                        "density": fast_density.tolist(), "retention": fast_retention.tolist()},
        "naive": {"seconds": float(naive["elapsed"].iloc[-1]), "epochs": len(naive), "epoch_cap": size.naive_epoch_cap,
                  "early_stopped": len(naive) < min(PAPER["epochs"], size.naive_epoch_cap),
                  "density": float(mask.mean()),
                  "retention": float(kept["fit_acc"].iloc[-1] / clean) if len(kept) else float("nan"),
                  "density_per_epoch": naive["density"].tolist(), "kept_per_epoch": naive["kept"].tolist()},
        "equal_quality": fast_ok and not matched.empty,
    }
    if result["equal_quality"]:
        first = matched.iloc[0]
        result["naive"]["matched"] = {"epoch": int(first["epoch"]), "seconds": float(first["elapsed"]),
                                      "density": float(first["density"]),
                                      "retention": float(first["fit_acc"] / clean)}
        result["ratio"] = float(first["elapsed"]) / (fast_seconds / len(seeds))  # per mask: one seed each
    return result


def whole_call(model, images, labels, seeds: list[int], epochs: int, batch_size: int, device) -> float:
    """Seconds of one whole ``learn_masks`` call as issue 15 makes it (no early stop, schema defaults otherwise)."""
    start = time.perf_counter()
    learn_masks(model, images, labels, seeds, epochs=epochs, patience=10**6, batch_size=batch_size, device=str(device))
    synchronize(device)
    return time.perf_counter() - start


def bare_pass(model, images, labels, seeds: int, epochs: int, batch_size: int, per_call: int, amp: bool,
              layout: torch.memory_format) -> float:
    """Seconds of the bare model on the image-seed steps of a whole call: each epoch, each step's
    ``seeds x batch_size`` images go through forward + input-gradient backward in calls of whole
    seeds of at most ``per_call`` images (at least one seed) in memory ``layout``, as ``learn_masks``
    calls the model."""
    stacked, stacked_labels = images.expand(seeds, *images.shape), labels.expand(seeds, *labels.shape)
    synchronize(images.device)
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(images), batch_size):
            step = min(batch_size, len(images) - i)
            group = max(1, per_call // step)
            for first in range(0, seeds, group):
                x = stacked[first : first + group, i : i + step].flatten(0, 1).contiguous(memory_format=layout)
                bare_step(model, x, stacked_labels[first : first + group, i : i + step].flatten(), amp)
    synchronize(images.device)
    return time.perf_counter() - start


def profile_call(model, images, labels, seeds, epochs, batch_size, device, top: int = 5) -> dict:
    """Where one whole call spends its time (cProfile): the ``top`` entries by own time, the phases and
    the number of keep-rule passes."""
    profiler = cProfile.Profile()
    profiler.enable()
    whole_call(model, images, labels, seeds, epochs, batch_size, device)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, primitive, own, cumulative, callers)
    total = sum(entry[2] for entry in stats.values())
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    entries = [{"function": pstats.func_std_string(key), "calls": value[1], "seconds": value[2],
                "share": value[2] / total} for key, value in ranked]
    phase_of = {(mask_module.__file__, "_run_epoch"): "mask steps",
                (objective_module.__file__, "count_correct"): "keep-rule pass",
                (objective_module.__file__, "clean_reference"): "clean reference",
                (mask_checkpoint.__file__, "save"): "checkpoint writes"}
    phases, passes = {name: 0.0 for name in phase_of.values()}, 0
    for (file, _, name), value in stats.items():
        if (file, name) in phase_of:
            phases[phase_of[file, name]] += value[3]
            passes += value[1] if name == "count_correct" else 0
    phases["the rest (set-up, options, history)"] = total - sum(phases.values())
    return {"total_seconds": total, "top": entries, "phases": phases, "keep_rule_passes": passes}


def measure_end_to_end(model, images, labels, size: Size, device: torch.device) -> dict:
    """Figure 5: interleaved repeats of the whole call and the bare model at each epoch count, and the naive loop."""
    seeds, batch = list(range(1, size.e2e_seeds + 1)), size.e2e_batch
    x, y = images[: size.e2e_images].to(device), labels[: size.e2e_images].to(device)
    amp = device.type == "cuda"  # learn_masks' amp='auto'
    defaults = mask_options()  # what whole_call runs with
    per_call, layout = defaults.model_batch_size, memory_format(model)
    model.to(memory_format=layout)
    shortest = min(size.e2e_epochs)
    runs = {}
    for epochs in size.e2e_epochs:
        runs[f"bare_{epochs}"] = lambda e=epochs: bare_pass(model, x, y, len(seeds), e, batch, per_call, amp,
                                                                   layout)
        runs[f"call_{epochs}"] = lambda e=epochs: whole_call(model, x, y, seeds, e, batch, device)
    runs["naive"] = lambda: float(naive_mask(nchw_copy(model), x, y, seed=1, lam=PAPER["lam"], lr=PAPER["lr"],
                                             epochs=shortest, device=device)[1]["elapsed"].iloc[-1])
    whole_call(model, x[: 2 * batch], y[: 2 * batch], seeds, 1, batch, device)  # warm-up
    times, cpu_times = {name: [] for name in runs}, {name: [] for name in runs}
    for _ in range(size.e2e_repeats):
        for name, run in runs.items():
            start = time.process_time()
            times[name].append(run())
            cpu_times[name].append(time.process_time() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    rows = {str(epochs): {"call_seconds": median[f"call_{epochs}"], "bare_seconds": median[f"bare_{epochs}"],
                          **_within_repeats(times, epochs, len(x), len(seeds), shortest),
                          "profile": profile_call(model, x, y, seeds, epochs, batch, device)}
            for epochs in size.e2e_epochs}
    if device.type == "cpu":  # a process's CPU time leaves out the time other jobs held the cores
        for epochs in size.e2e_epochs:
            rows[str(epochs)]["cpu_time"] = _within_repeats(cpu_times, epochs, len(x), len(seeds), shortest)
    naive_rate = [len(x) * shortest / seconds for seconds in times["naive"]]
    return {"images": len(x), "seeds": len(seeds), "batch_size": batch, "per_call": per_call, "epochs": rows,
            "naive": {"epochs": shortest, "seconds": median["naive"], "throughput": statistics.median(naive_rate)},
            "repeat_seconds": times, "repeat_cpu_seconds": cpu_times}


def _within_repeats(times: dict, epochs: int, images: int, seeds: int, naive_epochs: int) -> dict:
    """``bare / call``, call throughput and speed-up over naive, each taken within a repeat, then the median
    over repeats (robust to load that drifts between repeats)."""
    rate = [images * seeds * epochs / seconds for seconds in times[f"call_{epochs}"]]
    naive_rate = [images * naive_epochs / seconds for seconds in times["naive"]]
    pairs = zip(times[f"bare_{epochs}"], times[f"call_{epochs}"], strict=True)
    return {"share": statistics.median(bare / call for bare, call in pairs),
            "throughput": statistics.median(rate),
            "vs_naive": statistics.median(r / n for r, n in zip(rate, naive_rate, strict=True))}


def _peak_rss_kib(reset: bool = False) -> int:
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
    run = runner(kind, model, device)
    run(images[:2], labels[:2])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    base_rss = _peak_rss_kib(reset=True)
    run(images, labels)
    if device.type == "cuda":
        queue.put((torch.cuda.max_memory_allocated(device) - base) / 2**20)
    else:
        queue.put((_peak_rss_kib() - base_rss) / 1024)


def _in_fresh_process(context, target, *args):
    """What ``target(*args, queue)`` puts on its queue, run in a fresh process of ``context``."""
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def measure_memory(model, images, labels, size: Size, device: torch.device) -> dict:
    """Figure 4: extra peak memory (MiB) of each configuration, each in its own fresh process."""
    context = multiprocessing.get_context("spawn")
    x, y = images[: size.memory_images], labels[: size.memory_images]
    peaks = {}
    for kind in ("naive", "paper", "default"):
        peaks[kind] = _in_fresh_process(context, _memory_child, kind, copy.deepcopy(model).cpu(), x, y, str(device),
                                        torch.get_num_threads())
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
    options, seeds = mask_defaults("cpu")
    learn_masks(model, images[:2], labels[:2], seeds, options=options)
    start = time.perf_counter()
    learn_masks(model, images, labels, seeds, options=options)
    queue.put(time.perf_counter() - start)


def measure_job_setup(model, images, labels, size: Size) -> dict | None:
    """Figure 6 (CPU): a fresh process's ``learn_masks`` call at the defaults on the fitting images, glibc's
    ``malloc`` settings against the jobs' memory reuse, interleaved; None where ``mallopt`` is missing."""
    context = multiprocessing.get_context("spawn")
    x, y = images[: size.fit_images], labels[: size.fit_images]
    times = {"glibc": [], "reuse": []}
    for _ in range(min(3, size.repeats)):
        for name in times:
            times[name].append(_in_fresh_process(context, _setup_child, name == "reuse", copy.deepcopy(model).cpu(),
                                                  x, y, torch.get_num_threads()))
    if None in times["reuse"]:
        return None
    ratios = [plain / reuse for plain, reuse in zip(times["glibc"], times["reuse"], strict=True)]
    return {"images": len(x), "seconds": {name: statistics.median(values) for name, values in times.items()},
            "speedup": statistics.median(ratios), "repeat_seconds": times}


def machine(device: torch.device) -> dict:
    """What the figures were measured on."""
    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg(), "device": str(device),
            "processor": platform.processor() or platform.machine()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_benchmark(size: Size, device: str = "cpu") -> dict:
    """All the figures for one device; returns them as a JSON-ready dict."""
    device = resolve_device(device)
    start = time.perf_counter()
    model, images, labels = benchmark_model(size, device)
    results = {"machine": machine(device), "size": dataclasses.asdict(size),
               "train_seconds": time.perf_counter() - start}
    results["steps"] = measure_steps(model, images, labels, size, device)
    results["quality"] = measure_quality(model, images, labels, size, device)
    results["memory"] = measure_memory(model, images, labels, size, device)
    results["end_to_end"] = measure_end_to_end(model, images, labels, size, device)
    if device.type == "cpu":
        results["job_setup"] = measure_job_setup(model, images, labels, size)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["bars"] = bars(results, device.type)
    return results


def bars(results: dict, device_type: str) -> dict:
    """Whether each bar of tracker issue 6 is met."""
    bar = BARS.get(device_type, BARS["cpu"])
    steps = results["steps"]
    return {"share_default": steps["share"]["default"] >= bar["share"],
            "speedup_paper": steps["speedup"]["paper"] >= bar["speedup"],
            "speedup_default": steps["speedup"]["default"] >= bar["speedup"],
            "time_to_quality": results["quality"]["equal_quality"] and results["quality"]["ratio"] >= QUALITY_BAR,
            **{f"end_to_end_{epochs}": row["share"] >= END_TO_END_BARS["share"][int(epochs)]
               and row["vs_naive"] >= END_TO_END_BARS["naive"]
               for epochs, row in results["end_to_end"]["epochs"].items() if int(epochs) in END_TO_END_BARS["share"]}}


def report(results: dict) -> str:
    """Human-readable summary of :func:`run_benchmark`'s results."""
    m, s, q, mem = results["machine"], results["steps"], results["quality"], results["memory"]
    bar = BARS.get(m["device"].split(":")[0], BARS["cpu"])
    met = {True: "met", False: "MISSED"}
    lines = [
        f"machine: {m['processor']}, {m['cpu_count']} CPUs ({m['cpus_usable']} usable), torch {m['torch']}, "
        f"{m['torch_threads']} threads, device {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''}; "
        f"load average {m['load_average'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end"
        f"{'; memory reuse as in the jobs (--reuse-memory)' if m.get('reuse_memory') else ''}",
        "",
        f"1. throughput (image-seed steps/s, median of {results['size']['repeats']} interleaved repeats, steps only)",
        f"   naive loop (batch 1, 1 seed, fft2, torch Adam)   {s['throughput']['naive']:9.1f}   1.00x",
        f"   learn_masks, paper settings (batch 1, 1 seed)    {s['throughput']['paper']:9.1f}   "
        f"{s['speedup']['paper']:.2f}x  (bar {bar['speedup']}x: {met[results['bars']['speedup_paper']]})",
        f"   learn_masks, defaults (batch {s['batch_size']}, {s['seeds']} seeds)        "
        f"{s['throughput']['default']:9.1f}   {s['speedup']['default']:.2f}x  "
        f"(bar {bar['speedup']}x: {met[results['bars']['speedup_default']]})",
        "2. step time vs bare model (forward + input-gradient backward, same images)",
        f"   batch 1, 1 seed:    mask step {1e3 * s['step_seconds']['paper']:8.2f} ms, bare "
        f"{1e3 * s['step_seconds']['bare_1']:8.2f} ms, bare/mask = {s['share']['paper']:.2f}",
        f"   batch {s['batch_size']}, {s['seeds']} seeds:  "
        f"mask step {1e3 * s['step_seconds']['default']:8.2f} ms, bare "
        f"{1e3 * s['step_seconds']['bare_default']:8.2f} ms, bare/mask = {s['share']['default']:.2f}  "
        f"(bar {bar['share']}: {met[results['bars']['share_default']]})",
        f"3. time to a mask of equal quality, {q['fit_images']} fitting images",
        f"   learn_masks defaults: {q['learn_masks']['seconds']:8.1f} s for {q['learn_masks']['seeds']} seeds, "
        f"{q['learn_masks']['epochs']} epochs; density {_fmt(q['learn_masks']['density'])}, "
        f"retention {_fmt(q['learn_masks']['retention'])}",
        f"   naive, paper protocol: {q['naive']['seconds']:8.1f} s for 1 seed, {q['naive']['epochs']} epochs "
        f"({'early-stopped' if q['naive']['early_stopped'] else 'cap ' + str(q['naive']['epoch_cap'])}); "
        f"last kept mask: density {q['naive']['density']:.3f}, retention {q['naive']['retention']:.3f}",
        *_quality_verdict(q, met[results["bars"]["time_to_quality"]]),
        f"4. extra peak memory ({mem['measure']}, {mem['images']} images, fresh process each): "
        + ", ".join(f"{k} {v:.1f} {mem['unit']}" for k, v in mem["peak"].items()),
        *_end_to_end_lines(results["end_to_end"], results["bars"], met),
        *_job_setup_lines(results.get("job_setup")),
    ]
    return "\n".join(lines)


def _job_setup_lines(setup: dict | None) -> list[str]:
    if setup is None:
        return []
    seconds = setup["seconds"]
    return [f"6. job set-up: learn_masks at the defaults on {setup['images']} images in a fresh process, "
            f"glibc malloc {seconds['glibc']:.2f} s, with the jobs' memory reuse {seconds['reuse']:.2f} s: "
            f"{setup['speedup']:.2f}x"]


def _end_to_end_lines(e2e: dict, bars: dict, met: dict) -> list[str]:
    lines = [(f"5. end to end: whole learn_masks call vs the bare model on the same image-seed steps "
              f"({e2e['images']} images, {e2e['seeds']} seeds, batch {e2e['batch_size']}, model calls of "
              f"{e2e['per_call']} images; naive: whole call, 1 seed, {e2e['naive']['epochs']} epochs, "
              f"{e2e['naive']['throughput']:.1f} image steps/s)")]
    for epochs, row in e2e["epochs"].items():
        bar = END_TO_END_BARS["share"].get(int(epochs))
        verdict = f"  (bar {bar} and {END_TO_END_BARS['naive']}x: {met[bars[f'end_to_end_{epochs}']]})" if bar else ""
        lines.append(f"   {epochs:>3} epochs: call {row['call_seconds']:7.2f} s, bare {row['bare_seconds']:7.2f} s, "
                     f"bare/call = {row['share']:.2f}; {row['throughput']:8.1f} image-seed steps/s = "
                     f"{row['vs_naive']:.2f}x naive{verdict}")
        if "cpu_time" in row:
            lines.append(f"       by process CPU time: bare/call = {row['cpu_time']['share']:.2f}, "
                         f"{row['cpu_time']['vs_naive']:.2f}x naive")
        profile = row["profile"]
        lines.append("       phases: " + ", ".join(f"{name} {seconds / profile['total_seconds']:.0%}"
                                                  for name, seconds in profile["phases"].items())
                     + f"; {profile['keep_rule_passes']} keep-rule pass(es)")
        lines += [(f"       {entry['share']:5.1%} {entry['seconds']:7.2f} s {entry['calls']:>6} calls  "
                   f"{entry['function']}") for entry in profile["top"]]
    return lines


def _quality_verdict(q: dict, met: str) -> list[str]:
    if not q["equal_quality"]:
        return ["   equal quality: NOT reached (no kept naive mask within 0.05 density of every learn_masks mask, "
                "or a learn_masks mask below 99% retention)"]
    first = q["naive"]["matched"]
    per_mask = q["learn_masks"]["seconds"] / q["learn_masks"]["seeds"]
    return [f"   naive first matches in epoch {first['epoch']}: {first['seconds']:.1f} s, "
            f"density {first['density']:.3f}, retention {first['retention']:.3f}",
            f"   per mask: naive {first['seconds']:.1f} s / learn_masks {per_mask:.1f} s"
            f" = {q['ratio']:.2f}x  (bar {QUALITY_BAR}x: {met})"]


def _fmt(values) -> str:
    return "/".join(f"{v:.3f}" for v in values)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="a smoke run of under about two minutes")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reuse-memory", action="store_true",
                        help="run everything with the jobs' memory reuse (fourier_masks.device.keep_freed_memory)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.reuse_memory and not keep_freed_memory():
        parser.error("--reuse-memory needs glibc's mallopt, which this C library lacks")
    results = run_benchmark(QUICK if args.quick else FULL, args.device)
    results["machine"]["reuse_memory"] = args.reuse_memory
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
