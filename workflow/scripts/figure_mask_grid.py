"""Grid of learned masks (rule figure_mask_grid)."""

import itertools

from fourier_masks.figures import mask_grid, save_figure
from fourier_masks.io import load_mask, logged

with logged(snakemake.log[0]):
    models, seeds = snakemake.params.models, snakemake.params.seeds
    keys = itertools.product(models, seeds)
    masks = {key: load_mask(path) for key, path in zip(keys, snakemake.input.masks, strict=True)}
    save_figure(mask_grid(masks, models, seeds), snakemake.output.png, snakemake.output.pdf)
