"""Single-image Fourier masks (docs/method.md, analysis 5).

:func:`learn_single_image_masks` learns one mask per image, all images at once: every image
has its own mask parameter, the model sees the whole batch in one call, and Adam acts
element-wise, so this equals learning the masks one by one. The loss of image ``i`` is the
paper's::

    exp((CE(f(x~_i), t_i) - CE(f(x_i), t_i))^2) + lam * mean(M_i)

with ``t_i`` the model's own clean prediction, minimised by projected Adam (clamp to
``[0, 1]`` after every step) at a constant learning rate. The authors pass lr 0.2 to a
one-cycle schedule that is stepped once per step but sized for 200 steps per epoch, so their
rate stays near its starting value 0.2 / 25 = 0.008, which the config's ``analysis.single_image.lr``
follows.

:mod:`fourier_masks.analysis.single_image` compares and decodes them.

Example
-------
>>> import torch
>>> from fourier_masks.models.networks import make_model
>>> model = make_model("small_cnn", 1, 3, seed=0)
>>> masks, table = learn_single_image_masks(model, torch.rand(4, 1, 8, 8), lam=0.1, lr=0.01, steps=5,
...                                         patience=3, device="cpu")
>>> masks.shape, list(table.columns)
((4, 1, 8, 8), ['image', 'target', 'kept', 'density', 'steps', 'converged'])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..data.dataset import check_images
from ..device import resolve_device
from ..errors import InputError
from ..models.networks import freeze, predict
from .objective import bin_weights, clean_reference, filter_masked, loss_per_seed, to_full_masks

__all__ = ["learn_single_image_masks"]


def _learn_chunk(model, images, targets, lam, lr, steps, patience, device):
    """Masks (rfft half layout ``[N, 1, H, W//2+1]``) and per-image bookkeeping for one chunk."""
    n, channels, height, width = images.shape
    ce_clean, logp_clean, _ = clean_reference(model, images, targets, len(images), device)
    params = torch.ones(n, 1, height, width // 2 + 1, device=device, requires_grad=True)
    weights = bin_weights(height, width, "rfft").to(device)
    optimizer = torch.optim.Adam([params], lr=lr)
    kept = params.detach().clone()
    found = torch.zeros(n, dtype=torch.bool, device=device)
    active = torch.ones(n, dtype=torch.bool, device=device)
    calm = torch.zeros(n, dtype=torch.long, device=device)
    done_at = torch.full((n,), steps, dtype=torch.long, device=device)
    last_invariance = torch.full((n,), float("nan"), device=device)
    last_density = torch.full((n,), float("nan"), device=device)
    for step in range(steps):
        index = active.nonzero().squeeze(1)
        if len(index) == 0:
            break
        batch = params[index]
        masked = filter_masked(images[index].unsqueeze(1), batch, "rfft")
        logits = model(masked.flatten(0, 1)).view(len(index), 1, -1)
        mean_mask = (batch * weights).sum((-3, -2, -1)) / (height * width)
        loss = loss_per_seed("paper", logits, targets[index, None], ce_clean[index, None],
                              logp_clean[index, None], lam, mean_mask)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        with torch.no_grad():
            # Bookkeeping for the masks just evaluated, before the step moves them.
            ce = F.cross_entropy(logits[:, 0].float(), targets[index], reduction="none")
            invariance = (ce - ce_clean[index]) ** 2
            density = mean_mask.detach()
            same = logits[:, 0].argmax(-1) == targets[index]
            kept[index[same]] = batch[same].detach()
            found[index[same]] = True
            still = (invariance - last_invariance[index]).abs() <= 1e-6
            still &= (density - last_density[index]).abs() <= 1e-5
            calm[index] = torch.where(same & still, calm[index] + 1, 0)
            last_invariance[index], last_density[index] = invariance, density
            finished = index[calm[index] >= patience]
            active[finished] = False
            done_at[finished] = step + 1
            optimizer.step()
            params.clamp_(0.0, 1.0)
    return kept, found, done_at


def learn_single_image_masks(model, images: torch.Tensor, *, lam: float, lr: float, steps: int, patience: int,
                             device: str | torch.device, targets: torch.Tensor | None = None,
                             batch_size: int = 256):
    """Learn one Fourier mask per image for a frozen classifier (the authors' protocol).

    Parameters
    ----------
    model : classifier taking ``[N, C, H, W]`` in ``[0, 1]``; it is frozen here.
    images : float ``[N, C, H, W]`` in ``[0, 1]``.
    lam : sparsity weight on ``mean(M)``; lr : constant Adam learning rate.
    steps : most Adam steps per image. patience : an image stops after this many
        consecutive steps in which its prediction is ``t_i``, ``(CE~ - CE)^2`` moved by at
        most 1e-6 and its density by at most 1e-5 (the authors' rule).
    targets : int64 ``[N]``; defaults to the model's clean predictions.
    batch_size : images optimised together (memory); chunks run one after another.

    Returns
    -------
    masks : float32 numpy ``[N, 1, H, W]``, full unshifted layout, symmetric, in ``[0, 1]``:
        per image the last mask under which the model still predicted ``t_i`` (all-pass
        if none did).
    table : DataFrame, one row per image: ``image``, ``target``, ``kept`` (a mask keeping
        ``t_i`` was found), ``density`` (mean of the returned mask), ``steps`` (steps run)
        and ``converged`` (stopped by the patience rule before ``steps``).
    """
    check_images(images, "single-image mask images")
    for key, value in (("lam", lam), ("lr", lr), ("steps", steps), ("patience", patience),
                       ("batch_size", batch_size)):
        if not value >= 0 or (key != "lam" and value == 0):
            raise InputError(f"{key} = {value!r} must be {'>= 0' if key == 'lam' else 'positive'}.")
    device = resolve_device(device)
    model = freeze(model).to(device)
    images = images.float()
    if targets is None:
        targets = predict(model, images, batch_size=batch_size)
    if targets.shape != (len(images),):
        raise InputError(f"targets have shape {tuple(targets.shape)}; expected ({len(images)},).")
    parts = []
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        parts.append(_learn_chunk(model, images[chunk].to(device), targets[chunk].to(device),
                                  lam, lr, steps, patience, device))
    kept, found, done_at = (torch.cat([p[i] for p in parts]).cpu() for i in range(3))
    masks = np.clip(to_full_masks(kept, images.shape[-1], "rfft"), 0.0, 1.0).astype(np.float32)
    table = pd.DataFrame({
        "image": np.arange(len(images)), "target": targets.cpu().numpy(), "kept": found.numpy(),
        "density": masks.reshape(len(masks), -1).mean(1), "steps": done_at.numpy(),
        "converged": (done_at < steps).numpy(),
    })
    return masks, table
