"""Single-image masks of one model's first test images and of their PGD images (rule single_image_masks).

Writes the masks (``clean`` and ``adversarial``, float32 ``[N, 1, H, W]`` each) and one
row per mask: ``model, kind, image, label`` and the learning bookkeeping.
"""

import numpy as np
import torch

from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged, write_table
from fourier_masks.masks.single_image import learn_single_image_masks
from fourier_masks.models.attacks import pgd
from fourier_masks.models.files import load_model

with logged(snakemake.log[0]) as log:
    configure_cpu(snakemake.threads)
    params = snakemake.params
    device = resolve_device(params.device)
    model = load_model(snakemake.input.model, device, imports=snakemake.params.imports)
    images, labels = load_split(params.data_folder, "test")
    images, labels = images[: params.n_images], labels[: params.n_images]
    n = len(images)
    adversarial = pgd(model, images.to(device), labels.to(device), norm=params.attack_norm, eps=params.attack_eps,
                      steps=params.attack_steps, generator=torch.Generator().manual_seed(0)).cpu()
    masks, table = learn_single_image_masks(model, torch.cat([images, adversarial]), lam=params.lam, lr=params.lr,
                                            steps=params.steps, patience=params.patience, device=device)
    table = table.assign(model=snakemake.wildcards.model, kind=["clean"] * n + ["adversarial"] * n,
                         image=np.tile(np.arange(n), 2), label=np.tile(labels.numpy(), 2))
    log.info("masks per kind:\n%s", table.groupby("kind")[["kept", "density", "steps", "converged"]].mean())
    np.savez(snakemake.output.masks, clean=masks[:n], adversarial=masks[n:])
    write_table(table, snakemake.output.images)
