"""Estimated GPU-hours and peak GPU memory of a config, from FLOP counts and CPU-measured ratios.

No GPU is needed to run it: every figure is an **estimate**, calibrated by ``make gpu-check``
on one NVIDIA H200 (2026-11-27, see :data:`GPU`). For each model of the config it

1. counts the forward FLOPs of one image (``torch.utils.flop_counter``), the parameters and
   the activation elements of one forward pass (outputs of every leaf module);
2. measures on the CPU, per architecture, how much a training step, a forward + input-gradient
   backward and a mask-learning step cost relative to a bare forward pass (``--no-ratios``:
   the textbook 3, 2 and 2);
3. counts, per rule family, the work the config asks for in *forward equivalents* (one image
   through one model once) and the optimiser steps (each pays a kernel-launch floor on a GPU);
4. converts to GPU seconds at an assumed sustained throughput (:data:`GPU`: a range, since
   eager PyTorch on small images reaches a fraction of a GPU's peak) plus the launch floor.

Peak memory is the largest of: batch x activation elements x bytes x 2 (saved activations and
their gradients) + weights (+ Adam state for training), over the rule families' batches.

Usage: ``python -m benchmarks.scale_estimate CONFIG [CONFIG ...] [--no-ratios] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks._workloads import bare_step
from benchmarks.gpu_check import forward_flops
from fourier_masks.analysis.anchors import heatmap_bins
from fourier_masks.config import load_config, retrained_models
from fourier_masks.data.preflight import dataset_shape
from fourier_masks.masks.objective import filter_masked
from fourier_masks.models.networks import Normalized, build_network, freeze, make_model

#: Sustained GPU throughput (bf16 autocast, eager PyTorch), TFLOP/s, and the floor of one
#: optimiser step (kernel launches of a forward, a backward and the update), seconds. Measured by
#: ``make gpu-check`` on one H200 (2026-11-27): batched mask steps ran at about 33 TFLOP/s for
#: ResNet-18 at 128 px (96 images a step) and 250 for WideResNet-28-10 at 32 px (384 images a
#: step), counting 3 forward FLOPs per image-step; a batch-1 mask step took 9.3 ms (ResNet-18) and
#: 12.6 ms (WideResNet-28-10), far above the kernels' arithmetic: launches and Python bound it.
GPU = {"tflops_low": 30.0, "tflops_high": 250.0, "step_floor": 1e-2}

#: Images per split when a config asks for all (0): the paper's five Imagenette classes
#: (imagenette2, about 4700 train and 1950 validation images) and CIFAR-10.
FULL_SPLITS = {"imagenette": (4700, 1950), "cifar10": (50000, 10000), "cifar100": (50000, 10000)}

#: Textbook costs relative to one forward pass, used with ``--no-ratios``.
TEXTBOOK = {"train": 3.0, "input_grad": 2.0, "mask": 2.0}


@dataclasses.dataclass
class Network:
    """What the estimate needs to know of one model."""

    name: str
    arch: str
    source: str
    regime: str | None
    gflops: float           # forward, one image
    params: int
    activations: int        # elements of all leaf-module outputs, one image
    largest: int            # elements of the largest leaf-module output, one image
    ratios: dict            # train / input_grad / mask step per image, relative to a forward


def build(spec: dict, config: dict) -> torch.nn.Module:
    """The untrained network of model ``spec`` of ``config``, pixels in ``[0, 1]``."""
    channels, classes = image_shape(config)[0], num_classes(config)
    if spec["source"] == "robustbench":
        from fourier_masks.models.zoo import build_architecture

        dataset = spec.get("dataset") or config["dataset"]["name"]
        return Normalized(build_architecture(f"{dataset}/{spec['threat_model']}/{spec['zoo_name']}"))
    if spec["source"] == "checkpoint":
        return Normalized(build_network(spec["arch"], num_classes=classes))
    return make_model(spec["arch"], channels, classes, [0.5] * channels, [0.25] * channels, seed=0)


def image_shape(config: dict) -> tuple[int, int, int]:
    """``(C, H, W)`` of the config's images."""
    return tuple(dataset_shape(config["dataset"])[0])


def num_classes(config: dict) -> int:
    """Classes of the config's dataset (10 for a folder dataset whose class folders are not there)."""
    return dataset_shape(config["dataset"])[1] or 10


def split_sizes(config: dict) -> tuple[int, int]:
    """Train and test images of the config (``0`` = the whole split)."""
    dataset = config["dataset"]
    full = FULL_SPLITS.get(dataset["name"], (dataset.get("n_train", 0), dataset.get("n_test", 0)))
    return dataset.get("n_train") or full[0], dataset.get("n_test") or full[1]


def activation_elements(model, image: torch.Tensor) -> tuple[int, int]:
    """Sum and largest of the leaf modules' output elements in one forward pass of ``image`` ``[1, C, H, W]``."""
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel()))
             for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(image)
    for hook in hooks:
        hook.remove()
    return sum(sizes), max(sizes)


def cpu_ratios(model, shape, batch: int = 2) -> dict:
    """CPU seconds of a training step, a forward + input gradient and a mask step, per forward pass."""
    images, labels = torch.rand(batch, *shape), torch.zeros(batch, dtype=torch.long)
    mask = torch.ones(1, 1, shape[1], shape[2] // 2 + 1, requires_grad=True)

    def forward():
        with torch.no_grad():
            model.eval()(images)

    def train_step():
        loss = F.cross_entropy(model.train()(images), labels)
        torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])

    def mask_step():
        masked = filter_masked(images[None], mask, "rfft")[0]
        torch.autograd.grad(F.cross_entropy(model(masked), labels), mask)

    seconds = {"forward": _cpu_seconds(forward), "train": _cpu_seconds(train_step)}
    freeze(model)
    seconds["mask"] = _cpu_seconds(mask_step)
    seconds["input_grad"] = _cpu_seconds(lambda: bare_step(model, images, labels))
    return {name: seconds[name] / seconds["forward"] for name in ("train", "input_grad", "mask")}


def _cpu_seconds(run, repeats: int = 2) -> float:
    run()  # warm-up
    start = time.process_time()
    for _ in range(repeats):
        run()
    return (time.process_time() - start) / repeats


def describe(config: dict, measure: bool) -> list[Network]:
    """A :class:`Network` per model of ``config``; ratios measured once per architecture."""
    shape, networks, cache = image_shape(config), [], {}
    for spec in config["models"]:
        model = build(spec, config).eval()
        arch = spec.get("arch") or type(model.network).__name__
        image = torch.rand(1, *shape)
        total, largest = activation_elements(model, image)
        network = Network(spec["name"], arch, spec["source"], spec.get("regime"), forward_flops(model, image) / 1e9,
                          sum(p.numel() for p in model.parameters()), total, largest, {})
        if arch not in cache:
            cache[arch] = cpu_ratios(model, shape) if measure else dict(TEXTBOOK)
        network.ratios = cache[arch]
        networks.append(network)
    return networks


@dataclasses.dataclass
class Work:
    """Work of one rule job: forward equivalents, optimiser steps, and its largest batch."""

    forwards: float
    steps: float = 0.0
    batch: int = 0               # images of the largest batch that keeps activations for a backward
    training: bool = False       # Adam state of the weights too
    amp: bool = False            # bf16 autocast (learn_masks on CUDA with mask.amp auto or true)


def rule_work(net: Network, config: dict) -> dict[str, Work]:
    """The work each rule family does for model ``net`` under ``config``."""
    n_train, n_test = split_sizes(config)
    mask, analysis, r = config["mask"], config["analysis"], net.ratios
    seeds, models = len(config["seeds"]), len(config["models"])
    fit = min(mask["fit_images"] or (n_train if mask["fit_split"] == "train" else n_test),
              n_train if mask["fit_split"] == "train" else n_test)
    robust = analysis["robust_eval"]
    n_robust = min(robust["n_images"], n_test)
    work = {
        "evaluate_model": Work(n_test + n_robust * robust["steps"] * r["input_grad"],
                               robust["steps"] * -(-n_robust // 256), min(n_robust, 256)),
        "learn_masks": Work(seeds * fit * (mask["epochs"] * r["mask"] + keep_rule_passes(mask)) + fit,
                            mask["epochs"] * -(-fit // mask["batch_size"]), mask["batch_size"] * seeds,
                            amp=mask["amp"] in ("auto", True)),
        "evaluate_masks": Work(n_test * (1 + models * seeds + 3 * seeds)),
    }
    if net.source == "train":
        work["train_model"] = training_work(net, config, n_train)
    if analysis["fourier_heatmap"]["enabled"]:
        heat = analysis["fourier_heatmap"]
        bins = heatmap_bins(*image_shape(config)[1:], heat["stride"], None)
        work["fourier_heatmap"] = Work(min(heat["n_images"], n_test) * len(bins))
    if analysis["cutoff_curves"]["enabled"]:
        curves = analysis["cutoff_curves"]
        work["cutoff_curves"] = Work(2 * curves["n_radii"] * min(curves["n_images"], n_test))
    if analysis["single_image"]["enabled"]:
        single = analysis["single_image"]
        images = 2 * min(single["n_images"], n_test)
        work["single_image_masks"] = Work(images * single["steps"] * r["mask"], single["steps"] * -(-images // 256),
                                          min(images, 256))
    if analysis["retrain"]["enabled"] and net.name in retrained_models(config):
        retrain = training_work(net, config, n_train)
        work["retrain"] = Work(retrain.forwards + 2 * n_test, retrain.steps, retrain.batch, True)
    return work


def keep_rule_passes(mask: dict) -> int:
    """Forward passes over the fitting images per seed for the keep rule: every epoch under
    ``protocol: authors`` or ``monitor``, else once when the seed is done (newest mask first)."""
    return mask["epochs"] if mask["protocol"] == "authors" or mask["monitor"] else 1


def training_work(net: Network, config: dict, n_train: int) -> Work:
    """Training of ``net`` in its regime: a weight step per batch, plus the attack's input-gradient steps."""
    training, r = config["training"], net.ratios
    attack_steps = 0
    if net.regime in ("adv_linf", "adv_l2"):
        budget = training["pgd_linf" if net.regime == "adv_linf" else "pgd_l2"]
        attack_steps = 1 if training.get("attack") == "fgsm_rs" else budget["steps"]
    batches = -(-n_train // training["batch_size"])
    return Work(training["epochs"] * n_train * (r["train"] + attack_steps * r["input_grad"]),
                training["epochs"] * batches * (1 + attack_steps), training["batch_size"], True)


def gpu_seconds(work: Work, net: Network, tflops: float) -> float:
    """Compute time at ``tflops`` or the launch floor of the steps, whichever is longer."""
    return max(work.forwards * net.gflops / (tflops * 1e3), work.steps * GPU["step_floor"])


def peak_gib(work: Work, net: Network, config: dict) -> float:
    """Saved activations and their gradients of the largest batch, the largest layer of an
    evaluation batch, weights (and Adam state when training), GiB."""
    width = 2 if work.amp else 4
    saved = 2 * work.batch * net.activations * width
    evaluation = 3 * config["mask"]["eval_batch_size"] * net.largest * width
    weights = net.params * 4 * (4 if work.training else 1)
    return (max(saved, evaluation) + weights) / 2**30


def estimate(config_path: Path, measure: bool = True) -> dict:
    """Per rule family and in total: GPU-hours (low and high) and the largest peak memory."""
    config = load_config(config_path)
    networks = describe(config, measure)
    rules: dict[str, dict] = {}
    for net in networks:
        for rule, work in rule_work(net, config).items():
            row = rules.setdefault(rule, {"jobs": 0, "hours_low": 0.0, "hours_high": 0.0, "peak_gib": 0.0,
                                          "longest_job_hours": 0.0})
            fast, slow = (gpu_seconds(work, net, GPU[k]) / 3600 for k in ("tflops_high", "tflops_low"))
            row["jobs"] += 1
            row["hours_low"] += fast
            row["hours_high"] += slow
            row["longest_job_hours"] = max(row["longest_job_hours"], slow)
            row["peak_gib"] = max(row["peak_gib"], peak_gib(work, net, config))
    return {"config": str(config_path), "gpu_assumptions": GPU, "ratios_measured": measure,
            "networks": [dataclasses.asdict(n) for n in networks], "rules": rules,
            "total_hours": [sum(r["hours_low"] for r in rules.values()), sum(r["hours_high"] for r in rules.values())],
            "peak_gib": max(r["peak_gib"] for r in rules.values())}


def report(result: dict) -> str:
    """A markdown table of :func:`estimate`'s result."""
    nets = {}
    for n in result["networks"]:
        nets.setdefault(n["arch"], n)
    lines = [f"{result['config']}: {len(result['networks'])} models; estimated (calibrated on one H200) at "
             f"{GPU['tflops_high']:.0f}-{GPU['tflops_low']:.0f} TFLOP/s sustained, step floor "
             f"{1e3 * GPU['step_floor']:.1f} ms; "
             f"ratios {'measured on this CPU' if result['ratios_measured'] else 'textbook'}",
             "architectures: " + "; ".join(
                 f"{a} {n['gflops']:.2f} GFLOP/image, {n['params'] / 1e6:.1f} M parameters, ratios train "
                 f"{n['ratios']['train']:.1f} / input grad {n['ratios']['input_grad']:.1f} "
                 f"/ mask {n['ratios']['mask']:.1f}"
                 for a, n in nets.items()),
             "", "| rule | jobs | GPU-minutes | longest job, minutes | peak memory, GiB |", "|---|---|---|---|---|"]
    for rule, row in sorted(result["rules"].items(), key=lambda item: -item[1]["hours_high"]):
        lines.append(f"| {rule} | {row['jobs']} | {60 * row['hours_low']:.1f}-{60 * row['hours_high']:.1f} | "
                     f"{60 * row['longest_job_hours']:.1f} | {row['peak_gib']:.1f} |")
    low, high = result["total_hours"]
    lines.append(f"| **total** | | **{60 * low:.0f}-{60 * high:.0f}** ({low:.2f}-{high:.2f} GPU-hours) | | "
                 f"{result['peak_gib']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--no-ratios", action="store_true", help="textbook cost ratios instead of CPU-measured ones")
    parser.add_argument("--out", type=Path, help="also write the estimates to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = [estimate(path, measure=not args.no_ratios) for path in args.configs]
    print("\n\n".join(report(result) for result in results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
