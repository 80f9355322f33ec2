"""Single-image Fourier masks and what they say (method.md, analyses 5 and 6).

:func:`learn_single_image_masks` learns one mask per image, all images at once: every image
has its own mask parameter, the model sees the whole batch in one call, and Adam acts
element-wise, so this equals learning the masks one by one. The loss of image ``i`` is the
paper's::

    exp((CE(f(x~_i), t_i) - CE(f(x_i), t_i))^2) + lam * mean(M_i)

with ``t_i`` the model's own clean prediction, minimised by projected Adam (clamp to
``[0, 1]`` after every step) at a constant learning rate. The authors pass lr 0.2 to a
one-cycle schedule that is stepped once per step but sized for 200 steps per epoch, so their
rate stays near its starting value 0.2 / 25 = 0.008; that is the default here.

:func:`band_share_table` compares two sets of masks of the same images band by band, and
:func:`mask_decodability` asks whether a linear classifier can read the class from masks.

Example
-------
>>> import torch
>>> from fourier_masks.models import make_model
>>> model = make_model("small_cnn", 1, 3)
>>> masks, table = learn_single_image_masks(model, torch.rand(4, 1, 8, 8), steps=5)
>>> masks.shape, list(table.columns)
((4, 1, 8, 8), ['image', 'target', 'kept', 'density', 'steps', 'converged'])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .data import check_images
from .device import resolve_device
from .errors import InputError
from .masks import bin_weights, clean_reference, filter_masked, loss_per_seed, to_full_masks
from .models import freeze, predict
from .spectrum import band_energies, radial_band_index, radial_band_index_of_edges

__all__ = ["learn_single_image_masks", "band_share_table", "mask_decodability"]


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


def learn_single_image_masks(model, images: torch.Tensor, *, lam: float = 0.07, lr: float = 0.008,
                             steps: int = 20000, patience: int = 300, targets: torch.Tensor | None = None,
                             batch_size: int = 256, device: str = "auto"):
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
        targets = predict(model, images)
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


def _radial_index(height: int, width: int, radial_edges) -> tuple[np.ndarray, np.ndarray]:
    """Band of each bin ``[H, W]`` (``-1`` for bins outside, decided exactly) and the edges."""
    if np.isscalar(radial_edges):
        if int(radial_edges) != radial_edges or radial_edges < 1:
            raise InputError(f"radial_edges = {radial_edges!r}: give increasing edges or a band count >= 1.")
        return radial_band_index(height, width, int(radial_edges))
    edges = np.asarray(radial_edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise InputError(f"radial_edges = {list(edges)} must be at least two strictly increasing radii "
                         "(cycles per image).")
    return radial_band_index_of_edges(height, width, edges), edges


def band_share_table(masks_a, masks_b, radial_edges=8) -> pd.DataFrame:
    """Per radial band, the share of images whose mask A has more energy there than mask B.

    Energies are those of :func:`fourier_masks.spectrum.band_energies`: the L2 norm inside
    the band of the mask divided by its whole L2 norm, so masks of different density compare
    by where their energy sits (method.md, analyses 3 and 5).

    Parameters
    ----------
    masks_a, masks_b : ``[N, C', H, W]`` full-layout masks of the same ``N`` images, e.g. a
        robust and a standard model's single-image masks.
    radial_edges : strictly increasing band edges in cycles per image, or a number of
        equal annuli from 0 to the corner radius. Band ``b`` holds ``[e_b, e_b+1)`` (the
        last band includes its outer edge); bins outside all bands are ignored.

    Returns
    -------
    DataFrame, one row per band: ``band``, ``r_lo``, ``r_hi``, ``share_a_greater``,
    ``mean_energy_a``, ``mean_energy_b``, ``n_images``.
    """
    a, b = np.asarray(masks_a), np.asarray(masks_b)
    if a.shape != b.shape or a.ndim != 4:
        raise InputError(f"masks_a {a.shape} and masks_b {b.shape} must both be [N, C', H, W] of one shape.")
    index, edges = _radial_index(a.shape[-2], a.shape[-1], radial_edges)
    n_bands = len(edges) - 1
    energy_a = np.stack([band_energies(m, index, n_bands) for m in a])
    energy_b = np.stack([band_energies(m, index, n_bands) for m in b])
    return pd.DataFrame({
        "band": np.arange(n_bands), "r_lo": edges[:-1], "r_hi": edges[1:],
        "share_a_greater": (energy_a > energy_b).mean(0), "mean_energy_a": energy_a.mean(0),
        "mean_energy_b": energy_b.mean(0), "n_images": len(a),
    })


def mask_decodability(masks, labels, seed: int = 0, n_splits: int = 5) -> dict:
    """Cross-validated accuracy of a linear classifier reading the class from masks.

    A standardised logistic regression on the flattened masks, scored by stratified
    ``n_splits``-fold cross-validation (fewer folds if a class has fewer images), and the
    same with the labels randomly permuted (scrambled control; method.md analysis 6).

    Parameters
    ----------
    masks : ``[N, C', H, W]`` masks; labels : int ``[N]`` classes of the images.

    Returns
    -------
    dict with ``accuracy``, ``scrambled_accuracy``, ``chance`` (share of the most frequent
    class) and ``n_splits`` (folds used).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(masks, dtype=np.float64).reshape(len(masks), -1)
    labels = np.asarray(labels)
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    if labels.shape != (len(features),) or len(counts) < 2 or counts.min() < 2:
        raise InputError(f"labels must give each of the {len(features)} masks a class, with at least two "
                         f"classes of at least two images each; got class counts {counts.tolist()}.")
    folds = int(min(n_splits, counts.min()))
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    def score(y):
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        return float(cross_val_score(classifier, features, y, cv=splitter).mean())

    scrambled = np.random.default_rng(seed).permutation(labels)
    return {"accuracy": score(labels), "scrambled_accuracy": score(scrambled),
            "chance": float(counts.max() / counts.sum()), "n_splits": folds}
