"""Folding eval-mode batch norm into the convolution before it, for frozen models.

In eval mode ``BatchNorm2d`` is a fixed per-channel affine map, so a ``Conv2d`` followed
by one equals a single convolution with rescaled weights and a bias. Frozen models (mask
learning, evaluation, heat maps, attacks) then skip one pass over every activation: mask
learning on the package's small CNNs runs about 1.3x faster. :func:`fold_batch_norm` folds
only pairs that follow each other in a plain ``nn.Sequential`` (whose forward applies its
children in order, by definition), and builds new modules rather than changing shared ones;
:func:`folded` keeps the fold only where the logits on fixed probe images equal the
original's within float tolerance, so a model whose forward uses its layers in some other way
runs unchanged.

>>> import torch
>>> block = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).eval()
>>> [type(m).__name__ for m in fold_batch_norm(block)]
['Conv2d', 'Identity']
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .layout import disagreement

__all__ = ["fold_batch_norm", "folded"]

log = logging.getLogger(__name__)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and type(norm) is nn.BatchNorm2d and not norm.training
            and norm.running_mean is not None and conv.out_channels == norm.num_features
            and not (conv._forward_hooks or conv._forward_pre_hooks or norm._forward_hooks
                     or norm._forward_pre_hooks))


def fold_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with each eval-mode ``Conv2d`` -> ``BatchNorm2d`` pair of a plain ``nn.Sequential``
    replaced by one ``Conv2d`` and an ``nn.Identity`` (in place, new modules); returns it."""
    for child in module.children():
        fold_batch_norm(child)
    if type(module) is nn.Sequential:
        for i in range(len(module) - 1):
            if _foldable(module[i], module[i + 1]):
                module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                module[i + 1] = nn.Identity()
    return module


@torch.no_grad()
def folded(model: nn.Module, images: torch.Tensor, rtol: float = 1e-3, atol: float = 1e-4) -> nn.Module:
    """A copy of eval-mode ``model`` with batch norm folded (:func:`fold_batch_norm`) if its logits
    on ``images`` ``[N, C, H, W]`` equal ``model``'s within tolerance, else ``model`` itself
    (also when any of its modules is in training mode)."""
    modules = list(model.modules())
    if any(m.training for m in modules) or not any(type(m) is nn.BatchNorm2d for m in modules):
        return model  # not frozen (a probe would update its statistics), or nothing to fold
    try:
        reference = model(images).float()
    except Exception:  # noqa: BLE001 - the model's own checks report a forward pass that fails
        return model
    candidate = fold_batch_norm(copy.deepcopy(model))
    reason = disagreement(lambda: candidate(images), reference, rtol, atol)
    if reason:
        log.info("batch norm left unfolded in %s: %s.", type(model).__name__, reason)
        return model
    return candidate
