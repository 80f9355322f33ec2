"""One row per model and seed: accuracies, controls, density and cost (rule masks_table)."""

import itertools

import pandas as pd

from fourier_masks.analysis.metrics import mask_summary
from fourier_masks.io import load_mask, logged, read_table, write_table

with logged(snakemake.log[0]):
    pairs = list(itertools.product(snakemake.params.models, snakemake.params.seeds))
    histories = {pair: read_table(path) for pair, path in zip(pairs, snakemake.input.histories, strict=True)}
    densities = {pair: float(load_mask(path).mean()) for pair, path in zip(pairs, snakemake.input.masks, strict=True)}
    controls = pd.concat([read_table(path) for path in snakemake.input.controls], ignore_index=True)
    write_table(mask_summary(histories, densities, controls), snakemake.output.table)
