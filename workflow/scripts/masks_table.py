"""One row per model and seed (accuracies, controls, status, cost), and per model the seeds' agreement
(rule masks_table)."""

import pandas as pd

from fourier_masks.analysis.metrics import convergence_report, mask_summary, seed_agreement
from fourier_masks.io import load_mask, logged, read_table, write_table

with logged(snakemake.log[0]) as log:
    pairs = [tuple(pair) for pair in snakemake.params.sources]
    histories = {pair: read_table(path) for pair, path in zip(pairs, snakemake.input.histories, strict=True)}
    masks = {pair: load_mask(path) for pair, path in zip(pairs, snakemake.input.masks, strict=True)}
    controls = pd.concat([read_table(path) for path in snakemake.input.controls], ignore_index=True)
    table = mask_summary(histories, {pair: float(mask.mean()) for pair, mask in masks.items()}, controls)
    statuses = {(row.model, row.seed): row.status for row in table.itertuples()}
    write_table(table, snakemake.output.table)
    write_table(seed_agreement(masks, snakemake.params.low_freq_cutoff, statuses), snakemake.output.agreement)
    if report := convergence_report(table):
        log.warning("%s", report)
