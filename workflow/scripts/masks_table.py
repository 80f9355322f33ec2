"""One row per model and seed: accuracies, controls, density and cost (rule masks_table)."""

import itertools

import pandas as pd

from fourier_masks.analysis.metrics import learning_summary
from fourier_masks.io import load_mask, logged, read_table, write_table

COLUMNS = ["model", "seed", "clean_acc", "masked_acc", "complement_acc", "random_acc", "random_acc_sd",
           "lowpass_acc", "density", "steps", "epochs", "kept_epoch", "seconds", "fit_clean_acc", "fit_masked_acc"]

with logged(snakemake.log[0]):
    pairs = itertools.product(snakemake.params.models, snakemake.params.seeds)
    rows = [{"model": model, "seed": seed, "density": float(load_mask(mask).mean()),
             **learning_summary(read_table(history))}
            for (model, seed), history, mask in zip(pairs, snakemake.input.histories, snakemake.input.masks)]
    controls = pd.concat([read_table(path) for path in snakemake.input.controls], ignore_index=True)
    table = pd.DataFrame(rows).merge(controls, on=["model", "seed"], validate="one_to_one")
    write_table(table[COLUMNS], snakemake.output[0])
