"""What the benchmark scripts share: the yardstick, interleaved repeats, fresh processes, verdicts, the command line.

The project's rule for speed: a target is a ratio of two figures measured side by side in one
run, printed beside a fixed yardstick timed in the same run, never a timed assertion in a test.
Machines here differ several-fold in speed from day to day and are shared, so seconds alone say
little; quote the ratios, and the seconds over the yardstick's.

The yardstick is a fixed small CNN defined here (so that changes to the package never change
it), trained for a fixed number of Adam steps on fixed random images on one thread, timed
before and after what a script measures (:func:`between_yardsticks`).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from fourier_masks.device import keep_freed_memory, resolve_device

REPO = Path(__file__).resolve().parents[1]

#: The yardstick's workload: images per step, Adam steps, image side, repeats before and after.
YARDSTICK = {"batch": 64, "steps": 120, "size": 32, "repeats": 3}

MET = {True: "met", False: "MISSED"}


def tests_module(name: str):
    """``tests/NAME.py`` (the tests' reference loop, say), loaded by its path and shared with the tests.

    ``tests/`` is no package (and RobustBench installs a ``tests`` package of its own), so it is
    loaded from its file and registered as ``NAME``: the name the tests import it by, since
    ``tests/`` is on their path.
    """
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def yardstick_network() -> nn.Module:
    """A fixed small CNN (three conv layers, batch norm, global pooling), seeded weights."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )


def yardstick_seconds(batch: int, steps: int, size: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``steps`` Adam steps of :func:`yardstick_network` on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(batch, 3, size, size, generator=generator)
        labels = torch.randint(0, 10, (batch,), generator=generator)
        network = yardstick_network()
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = nn.functional.cross_entropy(network(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)


def measure_yardstick(repeats: int, **workload) -> dict:
    """``repeats`` wall and CPU timings of the yardstick (after an untimed warm-up of a few steps)."""
    yardstick_seconds(workload["batch"], 3, workload["size"])
    wall, cpu = zip(*(yardstick_seconds(**workload) for _ in range(repeats)), strict=True)
    return {"wall": list(wall), "cpu": list(cpu)}


def between_yardsticks(measure, yardstick: dict = YARDSTICK, stage: str = "measured"):
    """``measure()``'s result, timed between two rounds of the yardstick, and the yardstick's figures:
    its workload, the timings ``before`` and ``after``, ``seconds`` and ``cpu_seconds`` (mean of the two
    medians) and the load average at each stage (``STAGE_start``, ``STAGE_end``)."""
    workload = {key: yardstick[key] for key in ("batch", "steps", "size")}
    load = {"start": os.getloadavg()}
    before = measure_yardstick(yardstick["repeats"], **workload)
    load[f"{stage}_start"] = os.getloadavg()
    result = measure()
    load[f"{stage}_end"] = os.getloadavg()
    after = measure_yardstick(yardstick["repeats"], **workload)
    load["end"] = os.getloadavg()
    stick = {kind: statistics.mean([statistics.median(before[kind]), statistics.median(after[kind])])
             for kind in ("wall", "cpu")}
    return result, {**yardstick, "before": before, "after": after, "seconds": stick["wall"],
                    "cpu_seconds": stick["cpu"], "load_average": load}


def yardstick_line(stick: dict) -> str:
    """The yardstick's workload and timings in one line."""
    return (f"yardstick ({stick['steps']} Adam steps of a fixed small CNN, batch {stick['batch']}, {stick['size']} px, "
            f"1 thread): before {statistics.median(stick['before']['wall']):.2f} s, after "
            f"{statistics.median(stick['after']['wall']):.2f} s (medians of {stick['repeats']}), mean "
            f"{stick['seconds']:.2f} s wall, {stick['cpu_seconds']:.2f} s CPU")


def interleaved(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Wall and process CPU seconds of ``repeats`` rounds of every run in turn (``name -> run()``, which
    returns the seconds of the part it times), so that load drifting during the run falls on all alike."""
    times, cpu_times = {name: [] for name in runs}, {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.process_time()
            times[name].append(run())
            cpu_times[name].append(time.process_time() - start)
    return times, cpu_times


def medians(times: dict) -> dict:
    return {name: statistics.median(values) for name, values in times.items()}


def in_fresh_process(target, *args):
    """What ``target(*args, queue)`` puts on its queue, run in a fresh (spawned) process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def machine(device: torch.device) -> dict:
    """What the figures were measured on."""
    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg(), "device": str(device),
            "processor": platform.processor() or platform.machine()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_measured(measure, device: str, yardstick: dict = YARDSTICK) -> dict:
    """``measure(device)``'s figures (a dict) on the resolved device, between two rounds of the yardstick,
    with the machine they were measured on."""
    device = resolve_device(device)
    results = {"machine": machine(device)}
    figures, results["yardstick"] = between_yardsticks(lambda: measure(device), yardstick)
    results["machine"]["load_average_end"] = os.getloadavg()
    return {**results, **figures}


def verdict(value: float | None, bar: float) -> dict:
    """A ratio against its bar (at least ``bar``); ``value`` None where it could not be measured."""
    return {"value": value, "bar": bar, "met": value is not None and value >= bar}


def verdict_lines(verdicts: dict) -> list[str]:
    """One line per verdict: what it measures, the ratio, the bar and whether it is met (none: no lines)."""
    lines = ["verdicts (ratios measured side by side in this run):"] if verdicts else []
    for name, entry in verdicts.items():
        value = "not measured" if entry["value"] is None else f"{entry['value']:.2f}"
        lines.append(f"   {name}: {value} (bar {entry['bar']}: {MET[entry['met']]})")
    return lines


def header_lines(results: dict) -> list[str]:
    """The machine and the yardstick, the first lines of every report."""
    m = results["machine"]
    return [f"machine: {m['processor']}, {m['cpu_count']} CPUs ({m['cpus_usable']} usable), torch {m['torch']}, "
            f"{m['torch_threads']} threads, device {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''}; "
            f"load average {m['load_average'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end"
            f"{'; memory reuse as in the jobs (--reuse-memory)' if m.get('reuse_memory') else ''}",
            yardstick_line(results["yardstick"])]


def over_yardstick(seconds: float, results: dict) -> str:
    """``seconds`` and what they are in yardsticks timed in the same run."""
    return f"{seconds:.3g} s = {seconds / results['yardstick']['seconds']:.3g} yardsticks"


def fmt(values) -> str:
    return "/".join(f"{v:.3f}" for v in values)


def script_main(doc: str, run, report, full, quick, argv=None) -> dict:
    """The command line every mask benchmark script has: ``run(size, device, yardstick)``'s figures at the
    ``full`` size (``--quick``: ``quick``, one yardstick repeat), printed by ``report`` and written as JSON."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="a smoke run at small sizes")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reuse-memory", action="store_true",
                        help="run everything with the jobs' memory reuse (fourier_masks.device.keep_freed_memory)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.reuse_memory and not keep_freed_memory():
        parser.error("--reuse-memory needs glibc's mallopt, which this C library lacks")
    yardstick = {**YARDSTICK, "repeats": 1} if args.quick else YARDSTICK
    results = run(quick if args.quick else full, args.device, yardstick)
    results["machine"]["reuse_memory"] = args.reuse_memory
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return results
