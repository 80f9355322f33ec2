"""Adversarial attacks in pixel space, images in ``[0, 1]``: PGD and fast FGSM with a random start."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ATTACKS", "NORMS", "fgsm_rs", "pgd"]

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
