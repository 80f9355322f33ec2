"""The mask-learning work the benchmark scripts time, and what they time it against.

* the benchmark model: the standard ``small_cnn`` trained on the embedded photo patches;
* ``learn_masks`` at the paper's settings (batch 1, one seed) and at the config's defaults;
* the naive loop: the tests' plain authors-style loop (``tests/reference_loop.py``, :func:`naive_mask`);
* the bare model: the frozen model's forward + input-gradient backward on the same images, with no
  mask, FFT or optimiser, the floor of a mask-learning step (:func:`bare_step`).

Only public API is timed: a step's cost is read from ``learn_masks``' own history (``seconds``
of an epoch), nothing is wrapped or patched.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import torch
import torch.nn.functional as F

from benchmarks._harness import REPO, synchronize, tests_module
from fourier_masks.config import load_config
from fourier_masks.data.dataset import to_float
from fourier_masks.data.photos import photo_patches
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.options import MaskOptions
from fourier_masks.models.fusion import folded
from fourier_masks.models.layout import adopt_layout, probe_images, set_layout
from fourier_masks.models.networks import freeze, make_model
from fourier_masks.models.training import train_model

CONFIG = REPO / "config" / "config.yaml"

#: The authors' protocol (method.md): lambda, lr, epoch cap and one-cycle warm-up at batch size 1.
PAPER = {"lam": 0.2, "lr": 1e-3, "epochs": 100, "warmup": 0.1}

naive_mask = tests_module("reference_loop").naive_mask


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """The benchmark model: training images, image side, training epochs."""

    n_train: int
    image_size: int
    train_epochs: int


FULL_MODEL = ModelSize(5000, 32, 4)
QUICK_MODEL = ModelSize(1500, 32, 1)


def mask_defaults(device) -> tuple[MaskOptions, list[int]]:
    """The embedded default's mask options (on ``device``) and seeds."""
    config = load_config(CONFIG)
    return MaskOptions.from_config(config["mask"], str(device)), list(config["seeds"])


def paper_options(options: MaskOptions) -> MaskOptions:
    """``options`` at the paper's settings: batch size 1, the paper's loss and the authors' lambda and lr."""
    return dataclasses.replace(options, loss="paper", batch_size=1, lam=PAPER["lam"], lr=PAPER["lr"])


def benchmark_model(size: ModelSize, device: torch.device):
    """The standard small CNN trained on photo patches, frozen as ``load_model`` gives it to the jobs
    (batch norm folded, :func:`~fourier_masks.models.fusion.folded`): ``(model, images, labels, training seconds)``."""
    start = time.perf_counter()
    config = load_config(CONFIG)
    dataset, training = config["dataset"], config["training"]
    data = photo_patches(n_classes=dataset["n_classes"], n_train=size.n_train, n_test=100, image_size=size.image_size,
                         channels=dataset["channels"], seed=dataset["seed"])
    images, labels = to_float(data.train_images), torch.from_numpy(data.train_labels)
    model = make_model("small_cnn", 3, dataset["n_classes"], images.mean((0, 2, 3)).tolist(),
                       images.std((0, 2, 3)).clamp_min(1e-3).tolist(), seed=training["seed"])
    adopt_layout(model.eval(), images.shape[1:], config["channels_last"])
    train_model(model, images, labels, "standard", device=device, **{**training, "epochs": size.train_epochs})
    model = set_layout(folded(freeze(model), probe_images(images.shape[1:], device)), model.channels_last)
    return model, images, labels, time.perf_counter() - start


def learn_masks_steps(model, images, labels, seeds, options: MaskOptions) -> float:
    """Seconds of one ``learn_masks`` epoch of steps and per-epoch upkeep, without a keep-rule pass.

    The call runs two epochs with the keep rule judged only once a seed is done (``monitor`` off,
    no early stop); the first epoch's ``seconds`` in the history is then its steps alone. Under
    ``protocol: authors`` every epoch has a keep-rule pass, and it is counted.
    """
    options = dataclasses.replace(options, epochs=2, patience=10**6, monitor=False)
    _, history = learn_masks(model, images, labels, seeds, options=options)
    return float(history.loc[history["epoch"] == 1, "seconds"].iloc[0])


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


def bare_step(model, images: torch.Tensor, labels: torch.Tensor, amp: bool = False) -> torch.Tensor:
    """Forward and input-gradient backward of the (frozen) model on ``images``; the gradient."""
    images = images.detach().requires_grad_(True)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(images)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits.float(), labels), images)
    return grad


def bare_seconds(model, images, labels, calls: int, amp: bool) -> float:
    """Seconds of ``calls`` bare forward + input-gradient backward steps on ``images``."""
    synchronize(images.device)
    start = time.perf_counter()
    for _ in range(calls):
        bare_step(model, images, labels, amp)
    synchronize(images.device)
    return time.perf_counter() - start


def step_runs(model, batch1: tuple, batched: tuple, options: MaskOptions, seeds: list[int], device: torch.device,
              naive_model) -> dict:
    """``name -> (run(images, labels) -> seconds of its steps, images, labels)`` of one step comparison.

    ``naive``: the naive loop (on ``naive_model``) and ``paper``: ``learn_masks`` at the paper's settings
    (first seed), both on ``batch1``; ``batched``: ``learn_masks`` with ``options`` and all ``seeds`` on
    ``batched``; ``bare_1`` and ``bare_batched``: the bare model on as many steps of 1 and of
    ``batch_size x seeds`` images, in the layout ``learn_masks`` runs ``model`` in.
    """
    layout, batch = memory_format(model), options.batch_size
    amp = device.type == "cuda" and options.amp in ("auto", True)
    (x1, y1), (xb, yb) = batch1, batched
    model.to(memory_format=layout)
    step = torch.arange(batch * len(seeds)) % len(xb)  # one batched step's images (cycled if there are fewer)
    bare1 = (x1[:1].to(device, memory_format=layout), y1[:1].to(device))
    bare_b = (xb[step].to(device, memory_format=layout), yb[step].to(device))
    return {
        "naive": (runner("naive", naive_model, device), x1, y1),
        "paper": (lambda x, y: learn_masks_steps(model, x, y, seeds[:1], paper_options(options)), x1, y1),
        "bare_1": (lambda x, y: bare_seconds(model, *bare1, len(x), amp), x1, y1),
        "batched": (lambda x, y: learn_masks_steps(model, x, y, seeds, options), xb, yb),
        "bare_batched": (lambda x, y: bare_seconds(model, *bare_b, -(-len(x) // batch), amp), xb, yb),
    }


def step_figures(median: dict, batch1_images: int, batched_images: int, batched_steps: int, seeds: int) -> dict:
    """Throughput (image-seed steps per second), speed-up over the naive loop, seconds per step and the bare
    model's share of a step, from the median seconds of the :func:`step_runs`."""
    work = {"naive": batch1_images, "paper": batch1_images, "batched": batched_images * seeds}
    throughput = {name: work[name] / median[name] for name in work}
    step = {"paper": median["paper"] / batch1_images, "bare_1": median["bare_1"] / batch1_images,
            "batched": median["batched"] / batched_steps, "bare_batched": median["bare_batched"] / batched_steps}
    return {
        "throughput": throughput,
        "speedup": {name: throughput[name] / throughput["naive"] for name in ("paper", "batched")},
        "step_seconds": step,
        "share": {"paper": step["bare_1"] / step["paper"], "batched": step["bare_batched"] / step["batched"]},
    }
