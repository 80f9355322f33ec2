"""Seconds and steps to a converged mask: ``learn_masks`` at its defaults beside the authors' loop.

On the same images of one network, in one run:

1. the yardstick of :mod:`benchmarks._harness` (a fixed small CNN's Adam steps, before);
2. ``learn_masks`` at the schema's defaults (plateau schedule, convergence stop rule), three seeds;
3. the authors' batch-1 loop (``tests/reference_loop.py``, ``naive_mask``: Adam lr 1e-3, one-cycle, their
   keep and stop rules) run to convergence: up to ``--authors-epochs`` epochs (the paper's 100),
   stopping after 7 calm kept epochs (density moving by at most 1e-5), one seed;
4. the yardstick again.

It prints per method the seconds, the optimiser steps (image steps for the authors' batch-1
loop), the density, ``low_freq_fraction`` and the final objective
``mean(phi(CE(x~) - CE(x))) + lambda mean(M)`` on the fitting images, and seconds over the
yardstick's. With ``--lambda 0.2`` the authors' loop learns their objective and ``learn_masks``
its one-sided form (the default ``paper_one_sided``, equal to it wherever masking raises an
image's cross-entropy), so their masks can be compared directly; the objective printed is the
paper's for both.

The network is one of ``../shared/external`` (see its README) when that folder is there
(``--model deeprobust_mnist_pgd.pt``, say), else the embedded default's standard CNN trained here.

    .venv/bin/python -m benchmarks.bench_convergence --model deeprobust_mnist_pgd.pt --lambda 0.2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks._harness import YARDSTICK, between_yardsticks, tests_module
from benchmarks._workloads import naive_mask
from fourier_masks.analysis.metrics import frequency_bias
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import invariance
from fourier_masks.spectrum import symmetrize


def objective(model, images, labels, mask: np.ndarray, lam: float) -> float:
    """``mean(phi(CE(x~) - CE(x))) + lambda mean(M)`` of a full-layout mask ``[C', H, W]`` on all images."""
    with torch.no_grad():
        masked = torch.fft.ifft2(torch.fft.fft2(images) * torch.as_tensor(mask)).real
        gap = F.cross_entropy(model(masked), labels, reduction="none") - F.cross_entropy(model(images), labels,
                                                                                         reduction="none")
        return float(invariance(gap).mean() + lam * float(mask.mean()))


def external_panel_model(name: str):
    """A model of ../shared/external and its first 1000 fitting images (tests' loader)."""
    panel = tests_module("test_external_models")
    images, labels = panel.mnist() if panel.PANEL[name][2] == "mnist" else panel.cifar10("train")
    return panel.external_model(name), images[:1000], labels[:1000]


def embedded_model(config: dict | None = None):
    """The embedded default's standard CNN (trained here, 4 epochs) and 800 fitting images; or those
    of ``config``, a checked config."""
    from fourier_masks.config import check_config
    from fourier_masks.data.dataset import to_float
    from fourier_masks.data.photos import photo_patches
    from fourier_masks.models.networks import make_model
    from fourier_masks.models.training import train_model

    config = config or check_config({})
    keys = ("n_classes", "n_train", "image_size", "channels", "seed")
    data = photo_patches(**{key: config["dataset"][key] for key in keys}, n_test=10)
    images, labels = to_float(data.train_images), torch.from_numpy(data.train_labels)
    model = make_model("small_cnn", images.shape[1], int(labels.max()) + 1, seed=0)
    train_model(model, images, labels, "standard", device="cpu", **config["training"])
    return model.eval(), images[: config["mask"]["fit_images"]], labels[: config["mask"]["fit_images"]]


def summary(model, images, labels, mask: np.ndarray, lam: float, seconds: float, steps: int) -> dict:
    return {"seconds": round(seconds, 1), "steps": steps, "density": round(float(mask.mean()), 4),
            "low_freq_fraction": round(frequency_bias(mask, 0.5)["low_freq_fraction"], 4),
            "objective": round(objective(model, images, labels, mask, lam), 5)}


def timed_runs(model, images, labels, lam: float, authors_epochs: int) -> dict:
    """``learn_masks`` at its defaults (three seeds) and the authors' loop to convergence, each timed."""
    start = time.perf_counter()
    masks, history = learn_masks(model, images, labels, seeds=[1, 2, 3], **{"lambda": lam})
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs, authors = naive_mask(model, images, labels, seed=1, lam=lam, lr=1e-3, epochs=authors_epochs)
    return {"masks": masks, "history": history, "ours_seconds": ours_seconds, "theirs": theirs, "authors": authors,
            "theirs_seconds": time.perf_counter() - start}


def bench(model, images, labels, lam: float, authors_epochs: int, yardstick: dict | None = None) -> dict:
    runs, stick = between_yardsticks(lambda: timed_runs(model, images, labels, lam, authors_epochs),
                                     yardstick or {**YARDSTICK, "repeats": 1})
    masks, history, theirs, authors = runs["masks"], runs["history"], runs["theirs"], runs["authors"]
    ours_seconds, theirs_seconds, yardstick = runs["ours_seconds"], runs["theirs_seconds"], stick["seconds"]
    last = history.groupby("seed").tail(1)
    ours = [summary(model, images, labels, mask, lam, ours_seconds / len(masks), int(row.steps))
            for mask, row in zip(masks, last.sort_values("seed").itertuples(), strict=True)]
    for entry, row in zip(ours, last.sort_values("seed").itertuples(), strict=True):
        entry["status"], entry["epochs"] = row.status, int(row.epoch)
    full = symmetrize(theirs)[None]
    their = summary(model, images, labels, full, lam, theirs_seconds, int(len(authors) * len(images)))
    their["epochs"] = int(len(authors))
    return {"lambda": lam, "images": len(images), "yardstick_seconds": round(yardstick, 3),
            "learn_masks_per_seed": ours, "authors_loop": their,
            "seconds_per_seed_over_yardstick": round(ours_seconds / len(masks) / yardstick, 1),
            "authors_seconds_over_yardstick": round(theirs_seconds / yardstick, 1)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a file of ../shared/external/models (default: embedded CNN)")
    parser.add_argument("--lambda", dest="lam", type=float, default=0.2)
    parser.add_argument("--authors-epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, images, labels = external_panel_model(args.model) if args.model else embedded_model()
    results = {"model": args.model or "embedded standard small_cnn", **bench(model, images, labels, args.lam,
                                                                              args.authors_epochs)}
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as file:
            json.dump(results, file, indent=1)
    return results


if __name__ == "__main__":
    main()
