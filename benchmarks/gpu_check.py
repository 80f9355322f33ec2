"""Proof that a GPU machine runs the pipeline right, and how fast it learns masks there.

``make gpu-check`` (``DEVICE=cuda`` unless given) runs, on one device, in at most about
8 minutes on one GPU:

1. **end to end**: the tiny test config (``tests/configs/tiny.yaml``) through Snakemake with
   ``device: DEVICE``, in a fresh working directory;
2. **agreement**: masks of that run's standard model, learned on its training images in fp32
   on the CPU and on DEVICE (TF32 off), same seeds: largest absolute difference of any bin and
   density difference, against :data:`TOLERANCE`;
3. **bf16 autocast vs fp32** on DEVICE, same model, images and seeds: density,
   low_freq_fraction and retention (masked / clean accuracy on the held-out images);
4. **scales**: the naive batch-1 loop (``tests/reference_loop.py``) against ``learn_masks`` at
   batch 1 and batched, for random-weight networks at three scales (small_cnn at 32 px,
   ResNet-18 grayscale at 128 px as in the paper, WideResNet-28-10 at 32 px as in RobustBench):
   image-seed steps per second, seconds per mask of the scale's protocol, the share of a step
   spent in the frozen model's bare forward + input-gradient backward, peak GPU memory and the
   forward FLOPs per image (``torch.utils.flop_counter``).

It writes ``results/benchmarks/gpu_check.json`` and ``gpu_check.txt`` (a readable summary,
also printed) and exits with status 1 when the pipeline fails or a result is beyond its
tolerance. With ``--device cpu`` the same checks run at tiny sizes (seconds), so the script
itself is tested everywhere (``tests/test_workflow.py``, on the tiny run the workflow tests
make: ``--tiny-run``); the agreement check then compares two CPU runs, which must be identical.

Usage: ``python -m benchmarks.gpu_check [--device cuda|cuda:N|cpu] [--out DIR] [--tiny-run DIR]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._harness import interleaved, machine, medians, synchronize
from benchmarks._workloads import mask_defaults, step_figures, step_runs
from fourier_masks.analysis.metrics import frequency_bias
from fourier_masks.config import load_config
from fourier_masks.data.dataset import load_split
from fourier_masks.device import resolve_device
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import masked_accuracy
from fourier_masks.masks.options import MaskOptions
from fourier_masks.models.files import load_model
from fourier_masks.models.networks import Normalized, accuracy, freeze, make_model

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"

#: Largest disagreements accepted. ``fp32``: masks learned on DEVICE vs on the CPU; kernels
#: round differently, but on the CPU a relative perturbation of 1e-6 of the tiny run's images
#: moved no bin by more than 7e-5 and the density by less than 1e-7 (tiny settings and twice
#: them), so 1e-3 and 1e-4 leave a margin above rounding and far below a real fault.
#: ``bf16``: autocast vs fp32 on DEVICE (on the CPU: density 2e-4 apart, bins up to 0.02);
#: retention is counted on the tiny run's 60 test images, 0.017 per image.
TOLERANCE = {
    "fp32": {"max_abs": 1e-3, "density": 1e-4},
    "bf16": {"density": 0.02, "low_freq_fraction": 0.02, "retention": 0.05},
}

#: Wall-clock budget of the whole check on one GPU, seconds.
BUDGET_SECONDS = 480


@dataclasses.dataclass(frozen=True)
class Scale:
    """One network size of the speed measurements, and the protocol a mask of it follows."""

    name: str
    arch: str               # small_cnn, resnet18 or wrn-28-10
    channels: int
    image_size: int
    classes: int
    batch_size: int         # learn_masks' batch at this scale (3 seeds in one pass)
    protocol_images: int    # fitting images x epochs of one mask in the config of this scale
    protocol: str


SCALES = (
    Scale("small_cnn 32 px", "small_cnn", 3, 32, 10, 32, 800 * 4, "embedded default: 800 images x 4 epochs"),
    Scale("resnet18 gray 128 px", "resnet18", 1, 128, 5, 32, 1950 * 100, "paper: 1950 images x 100 epochs"),
    Scale("wrn-28-10 32 px", "wrn-28-10", 3, 32, 10, 128, 5000 * 30, "zoo: 5000 images x 30 epochs"),
)


@dataclasses.dataclass(frozen=True)
class Size:
    """How much work the speed measurements do per scale."""

    batch1_images: int      # images per timed repeat at batch size 1 (naive and learn_masks)
    batched_steps: int      # steps per timed repeat of batched learn_masks
    repeats: int            # interleaved repeats; medians are reported
    max_side: int           # image side at most this
    max_batch: int          # cap on the batched learn_masks batch size
    wrn_widen: int          # widening factor of the WideResNet-28 (10 as in RobustBench)


GPU_SIZE = Size(batch1_images=100, batched_steps=4, repeats=3, max_side=128, max_batch=128, wrn_widen=10)
CPU_SIZE = Size(batch1_images=2, batched_steps=1, repeats=1, max_side=32, max_batch=2, wrn_widen=1)


def run_tiny_pipeline(device: str, workdir: Path) -> dict:
    """Snakemake on the tiny config with ``device``; returns its seconds, exit status and log tail."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(TINY), "--config", f"device={device}", "--cores", str(min(os.cpu_count() or 1, 4))]
    python_path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": python_path},
                            check=False)
    return {"seconds": time.perf_counter() - start, "returncode": result.returncode,
            "ok": result.returncode == 0 and (workdir / "results" / "provenance.json").is_file(),
            "log_tail": (result.stdout + result.stderr)[-3000:]}


def finished_run(workdir: Path) -> dict:
    """A tiny run made before (``--tiny-run``): complete if its provenance record exists; not timed."""
    return {"seconds": None, "reused": str(workdir), "ok": (workdir / "results" / "provenance.json").is_file()}


def tiny_mask_options() -> tuple[MaskOptions, list[int], int]:
    """The tiny config's mask options, seeds and number of fitting images.

    ``keep_threshold`` is 0, so that the masks compared are the learned ones, never the
    all-pass mask the keep rule falls back on.
    """
    config = load_config(TINY)
    options = MaskOptions.from_config(config["mask"], "cpu")
    return dataclasses.replace(options, keep_threshold=0.0), config["seeds"], config["mask"]["fit_images"]


def learn(model, images, labels, seeds, device, amp: bool, options: MaskOptions) -> np.ndarray:
    """Masks ``[S, C', H, W]`` of ``model`` on ``device`` in fp32 (TF32 off) or bf16 autocast."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        options = dataclasses.replace(options, device=str(device), amp=amp)
        masks, _ = learn_masks(copy.deepcopy(model), images, labels, seeds, options=options)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return masks


def mask_quality(model, masks: np.ndarray, test_images, test_labels, low_freq_cutoff: float, batch_size: int) -> dict:
    """Per mask: density, low_freq_fraction (below ``low_freq_cutoff`` x Nyquist) and retention on the
    held-out images, measured ``batch_size`` images per model call."""
    clean = accuracy(model, test_images, test_labels, batch_size=batch_size)
    masked = masked_accuracy(model, test_images, test_labels, masks, batch_size)
    bias = [frequency_bias(mask, low_freq_cutoff) for mask in masks]
    return {"density": [b["density"] for b in bias], "low_freq_fraction": [b["low_freq_fraction"] for b in bias],
            "retention": (masked / clean).tolist(), "clean_acc": clean}


def check_agreement(results: Path, device: torch.device) -> dict:
    """Items 2 and 3: CPU vs DEVICE masks in fp32, and bf16 autocast vs fp32 on DEVICE."""
    model = load_model(results / "models" / "standard" / "model.pt")
    images, labels = load_split(results / "data", "train")
    test_images, test_labels = load_split(results / "data", "test")
    options, seeds, fit_images = tiny_mask_options()
    images, labels = images[:fit_images], labels[:fit_images]
    cpu = learn(model, images, labels, seeds, torch.device("cpu"), False, options)
    fp32 = learn(model, images, labels, seeds, device, False, options)
    bf16 = learn(model, images, labels, seeds, device, True, options)
    fp32_density, cpu_density = fp32.reshape(len(seeds), -1).mean(1), cpu.reshape(len(seeds), -1).mean(1)
    agreement = {"max_abs": float(np.abs(fp32 - cpu).max()),
                 "density": float(np.abs(fp32_density - cpu_density).max()),
                 "cpu_density": cpu_density.tolist(), "device_density": fp32_density.tolist()}
    config = load_config(TINY)
    cutoff, batch_size = config["analysis"]["low_freq_cutoff"], config["mask"]["eval_batch_size"]
    summaries = {name: mask_quality(model, masks, test_images, test_labels, cutoff, batch_size)
                 for name, masks in (("fp32", fp32), ("bf16", bf16))}
    bf16_gap = {key: float(np.abs(np.subtract(summaries["bf16"][key], summaries["fp32"][key])).max())
                for key in TOLERANCE["bf16"]}
    passed = {"fp32": all(agreement[k] <= v for k, v in TOLERANCE["fp32"].items()),
              "bf16": all(bf16_gap[k] <= v for k, v in TOLERANCE["bf16"].items())}
    return {"seeds": seeds, "fit_images": len(images), "fp32_vs_cpu": agreement, "bf16_vs_fp32": bf16_gap,
            "masks": summaries, "tolerance": TOLERANCE, "passed": passed}


def wide_resnet_28(widen: int, num_classes: int) -> torch.nn.Module:
    """RobustBench's WideResNet-28-``widen`` (28-10 is the CIFAR-10 zoo's most common architecture)."""
    from fourier_masks.models.zoo import import_robustbench

    import_robustbench()
    from robustbench.model_zoo.architectures.wide_resnet import WideResNet

    return WideResNet(depth=28, widen_factor=widen, num_classes=num_classes)


def scale_model(scale: Scale, size: Size) -> torch.nn.Module:
    """A frozen random-weight network of ``scale`` taking pixels in ``[0, 1]``."""
    if scale.arch == "wrn-28-10":
        torch.manual_seed(0)
        network = wide_resnet_28(size.wrn_widen, scale.classes)
        return freeze(Normalized(network, [0.5] * scale.channels, [0.25] * scale.channels))
    return freeze(make_model(scale.arch, scale.channels, scale.classes, [0.5] * scale.channels,
                             [0.25] * scale.channels, seed=0))


def forward_flops(model, image: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on ``image`` ``[1, C, H, W]``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    return int(counter.get_total_flops())


def peak_memory_mib(run, device: torch.device) -> float | None:
    """Peak GPU memory (MiB) that ``run()`` allocates above what was allocated before; None off CUDA."""
    if device.type != "cuda":
        run()
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    run()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def measure_scale(scale: Scale, size: Size, device: torch.device) -> dict:
    """Naive loop vs learn_masks (batch 1 and batched, 3 seeds) vs the bare model at one scale."""
    side = min(scale.image_size, size.max_side)
    batch = min(scale.batch_size, size.max_batch)
    options, seeds = mask_defaults(device)
    batched = dataclasses.replace(options, batch_size=batch)
    model = scale_model(scale, size).to(device)
    generator = torch.Generator().manual_seed(0)
    n = max(size.batch1_images, batch * size.batched_steps)
    images = torch.rand(n, scale.channels, side, side, generator=generator)
    labels = torch.randint(0, scale.classes, (n,), generator=generator)
    batch1 = (images[: size.batch1_images], labels[: size.batch1_images])
    runs = step_runs(model, batch1, (images[: batch * size.batched_steps], labels[: batch * size.batched_steps]),
                     batched, seeds, device, copy.deepcopy(model))
    runs = {name: partial(run, x, y) for name, (run, x, y) in runs.items()}
    memory = {name: peak_memory_mib(runs[name], device) for name in ("naive", "paper", "batched")}  # also warms up
    times, _ = interleaved(runs, size.repeats)
    figures = step_figures(medians(times), size.batch1_images, batch * size.batched_steps, size.batched_steps,
                           len(seeds))
    return {
        "scale": dataclasses.asdict(scale), "image_size": side, "wrn_widen": size.wrn_widen, "batch_size": batch,
        "seeds": len(seeds),
        "forward_gflops": forward_flops(model, images[:1].to(device)) / 1e9,
        **figures,
        "seconds_per_mask": {name: scale.protocol_images / value for name, value in figures["throughput"].items()},
        "peak_memory_mib": memory, "repeat_seconds": times,
    }


def run_check(device: str, workdir: Path, reuse: bool = False) -> dict:
    """Every item; ``passed`` is False when the pipeline failed or a tolerance was exceeded.

    ``workdir`` is where the tiny run goes, or with ``reuse`` a finished tiny run of ``device``.
    """
    start = time.perf_counter()
    resolved = resolve_device(device)
    size = GPU_SIZE if resolved.type == "cuda" else CPU_SIZE
    results = {"machine": machine(resolved), "size": dataclasses.asdict(size)}
    results["pipeline"] = finished_run(workdir) if reuse else run_tiny_pipeline(str(resolved), workdir)
    if results["pipeline"]["ok"]:
        results["agreement"] = check_agreement(workdir / "results", resolved)
    results["scales"] = [measure_scale(scale, size, resolved) for scale in SCALES]
    results["seconds"] = time.perf_counter() - start
    results["machine"]["load_average_end"] = os.getloadavg()
    agreed = results.get("agreement", {"passed": {"_": False}})["passed"]
    results["passed"] = results["pipeline"]["ok"] and all(agreed.values())
    return results


def summary(results: dict) -> str:
    """A readable summary of :func:`run_check`'s results."""
    m, pipe = results["machine"], results["pipeline"]
    verdict = {True: "ok", False: "FAILED"}
    lines = [f"device {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''}; torch {m['torch']}; {m['cpu_count']} CPUs; "
             f"load average {m['load_average'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end; "
             f"{results['seconds']:.0f} s in all (budget on one GPU {BUDGET_SECONDS} s)",
             f"1. tiny config end to end on {m['device']}: {verdict[pipe['ok']]} "
             + (f"in {pipe['seconds']:.1f} s" if pipe["seconds"] is not None else f"(finished run {pipe['reused']})")]
    if "log_tail" in pipe and not pipe["ok"]:
        lines.append("   " + pipe["log_tail"].replace("\n", "\n   "))
    if "agreement" in results:
        lines += _agreement_lines(results["agreement"], verdict)
    lines.append("4. mask learning speed (random weights; steps/s = image-seed steps per second, steps only)")
    for scale in results["scales"]:
        lines += _scale_lines(scale)
    lines.append(f"overall: {verdict[results['passed']]}")
    return "\n".join(lines)


def _agreement_lines(agreement: dict, verdict: dict) -> list[str]:
    fp32, gap, tol = agreement["fp32_vs_cpu"], agreement["bf16_vs_fp32"], agreement["tolerance"]
    masks = agreement["masks"]

    def fmt(values):
        return "/".join(f"{v:.3f}" for v in values)

    return [
        f"2. fp32 masks on the device vs CPU ({len(agreement['seeds'])} seeds, {agreement['fit_images']} images): "
        f"max |difference| {fp32['max_abs']:.2e} (tolerance {tol['fp32']['max_abs']}), density difference "
        f"{fp32['density']:.2e} (tolerance {tol['fp32']['density']}): {verdict[agreement['passed']['fp32']]}",
        f"3. bf16 autocast vs fp32 on the device: density {fmt(masks['bf16']['density'])} vs "
        f"{fmt(masks['fp32']['density'])}, low_freq_fraction {fmt(masks['bf16']['low_freq_fraction'])} vs "
        f"{fmt(masks['fp32']['low_freq_fraction'])}, retention {fmt(masks['bf16']['retention'])} vs "
        f"{fmt(masks['fp32']['retention'])}; largest gaps "
        + ", ".join(f"{k} {v:.3f} (tolerance {tol['bf16'][k]})" for k, v in gap.items())
        + f": {verdict[agreement['passed']['bf16']]}",
    ]


def _scale_lines(scale: dict) -> list[str]:
    t, s, mem, per_mask = scale["throughput"], scale["share"], scale["peak_memory_mib"], scale["seconds_per_mask"]
    memory = ("n/a (CPU)" if mem["naive"] is None
              else " / ".join(f"{mem[k]:.0f}" for k in ("naive", "paper", "batched")) + " MiB")
    arch = f", WRN widened {scale['wrn_widen']}x" if scale["scale"]["arch"] == "wrn-28-10" else ""
    return [
        f"   {scale['scale']['name']} (measured at {scale['image_size']} px{arch}, {scale['forward_gflops']:.3f} GFLOP "
        f"forward per image): naive {t['naive']:.1f}, learn_masks batch 1 {t['paper']:.1f} "
        f"({scale['speedup']['paper']:.2f}x), batch {scale['batch_size']} x {scale['seeds']} seeds {t['batched']:.1f} "
        f"({scale['speedup']['batched']:.2f}x) steps/s",
        f"      bare/mask step: batch 1 {s['paper']:.2f}, batched {s['batched']:.2f}; peak memory naive / batch 1 / "
        f"batched: {memory}; per mask of the {scale['scale']['protocol']}: naive {per_mask['naive']:.0f} s, "
        f"batched {per_mask['batched']:.0f} s ({3600 / per_mask['batched']:.1f} masks/h)",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (tiny sizes)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks"), help="folder of gpu_check.json/.txt")
    parser.add_argument("--workdir", type=Path, help="working directory of the tiny run (default: temporary)")
    parser.add_argument("--tiny-run", type=Path, help="check this finished tiny run of DEVICE instead of running one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        workdir = args.tiny_run or args.workdir or Path(scratch)
        results = run_check(args.device, workdir.resolve(), reuse=args.tiny_run is not None)
    text = summary(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    (args.out / "gpu_check.txt").write_text(text + "\n")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
