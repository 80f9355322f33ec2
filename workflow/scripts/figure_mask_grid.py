"""Grid of learned masks, the ones that are not converged results marked (rule figure_mask_grid)."""

from fourier_masks.figures import mask_grid, save_figure
from fourier_masks.io import load_mask, logged, read_table

with logged(snakemake.log[0]):
    keys = [tuple(key) for key in snakemake.params.sources]
    masks = {key: load_mask(path) for key, path in zip(keys, snakemake.input.masks, strict=True)}
    statuses = {key: str(read_table(path)["status"].iloc[-1])
                for key, path in zip(keys, snakemake.input.histories, strict=True)}
    figure = mask_grid(masks, snakemake.params.models, snakemake.params.seeds, statuses)
    save_figure(figure, snakemake.output.png, snakemake.output.pdf)
