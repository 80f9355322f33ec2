"""Adversarial attacks in pixel space, images in ``[0, 1]``: PGD, fast FGSM with a random start, and
the accuracy under PGD or AutoAttack."""

from __future__ import annotations

import itertools
import logging
import math

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["ATTACKS", "NORMS", "autoattack_accuracy", "fgsm_rs", "pgd", "robust_accuracy", "robustness"]

LOG = logging.getLogger(__name__)

NORMS = ("linf", "l2")

#: Attacks of adversarial training (config ``training.attack``).
ATTACKS = ("pgd", "fgsm_rs")


def _l2_normalize(tensor: torch.Tensor) -> torch.Tensor:
    norm = tensor.flatten(1).norm(dim=1).clamp_min(1e-12)
    return tensor / norm.view(-1, *([1] * (tensor.dim() - 1)))


def _project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


def pgd(model, images: torch.Tensor, labels: torch.Tensor, *, norm: str, eps: float, steps: int,
        step_size: float | None = None, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted PGD maximising cross-entropy within an ``eps`` ball (Madry et al. 2018).

    Parameters
    ----------
    model : classifier taking ``[N, C, H, W]`` in ``[0, 1]``; its mode is left as is.
    images : float ``[N, C, H, W]`` in ``[0, 1]``; labels : int64 ``[N]``.
    norm : ``linf`` or ``l2``; eps : radius of the ball in pixel units (``[0, 1]`` scale).
    steps : gradient steps; step_size : defaults to ``2.5 * eps / steps``.
    random_start : start from a uniform point of the ball (``linf``) or a random direction.

    Returns
    -------
    Adversarial images, same shape, in ``[0, 1]``, detached.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if eps == 0 or steps == 0:
        return images.detach().clone()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    delta = torch.zeros_like(images)
    if random_start:
        noise = torch.rand(images.shape, generator=generator, device="cpu").to(images.device)
        if norm == "linf":
            delta = (2 * noise - 1) * eps
        else:
            delta = _l2_normalize(noise - 0.5) * eps * torch.rand(
                images.shape[0], generator=generator).to(images.device).view(-1, 1, 1, 1)
    delta = ((images + delta).clamp(0, 1) - images).detach()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(images + delta), labels)
        (grad,) = torch.autograd.grad(loss, delta)
        step = grad.sign() if norm == "linf" else _l2_normalize(grad)
        delta = _project(delta.detach() + step_size * step, norm, eps)
        delta = ((images + delta).clamp(0, 1) - images).detach()
    return (images + delta).detach()


def fgsm_rs(model, images: torch.Tensor, labels: torch.Tensor, *, norm: str, eps: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One gradient step of ``1.25 * eps`` from a random point of the ``eps`` ball, projected back.

    The attack of fast adversarial training (FGSM with random start, Wong, Rice and Kolter
    2020, "Fast is better than free"): :func:`pgd` with one step, about ``steps`` times
    cheaper than a ``steps``-step PGD. Same arguments and result as :func:`pgd`.
    """
    return pgd(model, images, labels, norm=norm, eps=eps, steps=1, step_size=1.25 * eps, random_start=True,
               generator=generator)


def _autoattack(model, norm: str, eps: float, seed: int, device, n_classes: int):
    """pyautoattack's standard AutoAttack, its targeted attacks fitted to ``n_classes`` outputs."""
    try:
        from pyautoattack import AutoAttack
    except ImportError as error:
        raise InputError("analysis.robust_eval.attack = autoattack needs the pyautoattack package "
                         "(pip install 'fourier-masks[zoo]', or the workflow's conda env)") from error
    attack = AutoAttack(model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, version="standard", seed=seed,
                        device=device)
    attack.logger = LOG  # its warnings (e.g. Square succeeding where the gradient attacks failed) reach the job log
    # standard: 9 target classes each, the other classes of a 10-class problem
    attack.apgd_targeted.n_target_classes = min(attack.apgd_targeted.n_target_classes, n_classes - 1)
    attack.fab.n_target_classes = min(attack.fab.n_target_classes, n_classes - 1)
    if n_classes < 4:  # the targeted DLR loss of APGD-T reads the 3rd and 4th largest logits
        attack.attacks_to_run = [name for name in attack.attacks_to_run if name != "apgd-t"]
    return attack


def autoattack_accuracy(model, images: torch.Tensor, labels: torch.Tensor, *, norm: str, eps: float,
                        batch_size: int = 256, seed: int = 0) -> float:
    """Accuracy under AutoAttack (Croce and Hein 2020), the attack of the RobustBench leaderboards.

    The standard version of ``pyautoattack``: APGD-CE, APGD-T, FAB-T and Square in turn, each on
    the images the ones before left correctly classified, seeded with ``seed``, on the device of
    ``model``. With fewer than 10 classes the targeted attacks target every other class (instead
    of 9), and with fewer than 4 APGD-T, whose loss needs 4 logits, is left out. Arguments as
    :func:`pgd`; the model's mode is left as is.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if len(images) == 0:
        return 0.0
    device = next(itertools.chain(model.parameters(), model.buffers()), images).device
    images, labels = images.to(device), labels.to(device)
    with torch.no_grad():
        n_classes = model(images[:1]).shape[1]
    attack = _autoattack(model, norm, eps, seed, device, n_classes)
    _, predicted = attack.run_standard_evaluation(images, labels, batch_size=batch_size)
    return int((predicted == labels).sum()) / len(labels)


def robust_accuracy(model, images: torch.Tensor, labels: torch.Tensor, *, norm: str, eps: float,
                    steps: int, batch_size: int = 256, seed: int = 0) -> float:
    """Accuracy under a PGD attack of the given budget (pixel units), on all ``images``."""
    generator = torch.Generator().manual_seed(seed)
    device = next(iter(model.buffers()), images).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x, y = images[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)
        adversarial = pgd(model, x, y, norm=norm, eps=eps, steps=steps, generator=generator)
        with torch.no_grad():
            correct += int((model(adversarial).argmax(1) == y).sum())
    return correct / max(len(images), 1)


def robustness(model, images: torch.Tensor, labels: torch.Tensor, threat: dict) -> dict:
    """The ``robust_*`` columns of the ``models`` table: accuracy under ``threat`` on its first ``n_images`` images.

    ``threat`` is :func:`fourier_masks.models.threat.robust_threat`'s: ``attack`` pgd, autoattack
    or none (``robust_acc`` NaN), ``budget``, and otherwise ``norm``, ``eps``, ``n_images`` (and
    ``steps`` for pgd). Also says what was measured: attack, norm, eps, steps, images, budget.
    """
    attack = threat["attack"]
    row = {"robust_acc": math.nan, "robust_attack": attack, "robust_norm": threat.get("norm"),
           "robust_eps": threat.get("eps", math.nan), "robust_steps": threat.get("steps", math.nan),
           "robust_images": 0, "robust_budget": threat["budget"]}
    if attack == "none":
        return row
    n = min(threat["n_images"], len(images))
    x, y = images[:n], labels[:n]
    if attack == "pgd":
        row["robust_acc"] = robust_accuracy(model, x, y, norm=threat["norm"], eps=threat["eps"], steps=threat["steps"])
    else:
        row["robust_acc"] = autoattack_accuracy(model, x, y, norm=threat["norm"], eps=threat["eps"])
    return {**row, "robust_images": n}
