"""The memory layout a model runs in: channels-last (NHWC) only where it is known to work.

Channels-last makes convolutions about 1.5-2x faster on CPUs, but a published forward pass
that flattens with ``x.view(x.size(0), -1)`` fails on a channels-last activation, and a
custom layer may compute something else in it. :func:`choose_layout` tries the layout on a
few fixed images and accepts it only when the logits equal the default layout's within float
tolerance. The decision is made once per model, when it is trained or acquired, and recorded
in its model file (:mod:`.files`); :func:`set_layout` applies it, after which the
:class:`~fourier_masks.models.networks.Normalized` model converts its inputs itself, so that
training, evaluation, heat maps and mask learning all run in the same layout.

>>> import torch
>>> from fourier_masks.models.networks import Normalized
>>> class Flatten(torch.nn.Module):
...     def forward(self, x):
...         return torch.nn.functional.max_pool2d(x, 2).view(x.size(0), -1)
>>> runs_channels_last(Flatten(), torch.rand(2, 3, 8, 8))
False
>>> choose_layout(Normalized(Flatten()), (3, 8, 8), wanted=True)
False
"""

from __future__ import annotations

import logging

import torch

__all__ = ["PROBE_IMAGES", "adopt_layout", "choose_layout", "disagreement", "probe_images", "runs_channels_last",
           "set_layout"]

log = logging.getLogger(__name__)

#: Fixed uniform images ``[PROBE_IMAGES, C, H, W]`` in ``[0, 1]`` that :func:`choose_layout` compares logits on.
PROBE_IMAGES = 8


@torch.no_grad()
def runs_channels_last(model: torch.nn.Module, images: torch.Tensor, rtol: float = 1e-3,
                       atol: float = 1e-4) -> bool:
    """Whether ``model`` runs on channels-last ``images`` ``[N, C, H, W]`` and gives the same logits.

    The model is left in its default layout either way; a refusal is logged once per call.
    """
    images = images.float()
    model.to(memory_format=torch.contiguous_format)
    reference = model(images.contiguous()).float()
    try:
        reason = disagreement(lambda: model.to(memory_format=torch.channels_last)(
            images.contiguous(memory_format=torch.channels_last)), reference, rtol, atol)
    finally:
        model.to(memory_format=torch.contiguous_format)
    if reason:
        log.info("running %s in the default memory layout: %s.", type(model).__name__, reason)
    return reason is None


def disagreement(run, reference: torch.Tensor, rtol: float = 1e-3, atol: float = 1e-4) -> str | None:
    """Why the logits ``run()`` gives differ from ``reference`` beyond float tolerance, or None where they agree."""
    try:
        logits = run().float()
    except Exception as error:  # noqa: BLE001 - any failure there means: not this way
        return f"its forward pass fails there ({type(error).__name__}: {str(error).splitlines()[0]})"
    if logits.shape == reference.shape and torch.allclose(logits, reference, rtol=rtol, atol=atol):
        return None
    return "its logits would differ"


def choose_layout(model: torch.nn.Module, input_shape, wanted: bool) -> bool:
    """Whether ``model`` should run channels-last: ``wanted`` and it does so with the same logits.

    ``input_shape``: ``[C, H, W]`` of the model's images; the check runs on
    :data:`PROBE_IMAGES` seeded uniform images of that shape, on the model's device.
    """
    if not wanted:
        return False
    return runs_channels_last(model, probe_images(input_shape, next(iter(model.parameters()), torch.empty(0)).device))


def probe_images(input_shape, device) -> torch.Tensor:
    """:data:`PROBE_IMAGES` fixed (seeded) uniform images ``[PROBE_IMAGES, C, H, W]`` in ``[0, 1]`` on ``device``."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(PROBE_IMAGES, *input_shape, generator=generator).to(device)


def set_layout(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """Put ``model`` (weights and, for a ``Normalized`` model, its inputs) in the chosen layout; returns it."""
    model.channels_last = bool(channels_last)
    return model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def adopt_layout(model: torch.nn.Module, input_shape, wanted: bool) -> torch.nn.Module:
    """:func:`choose_layout` and :func:`set_layout` in one: the decision made when a model is trained or acquired.

    ``model`` should be in eval mode (the probe runs it); returns it.
    """
    return set_layout(model, choose_layout(model, input_shape, wanted))
