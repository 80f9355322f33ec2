"""Spread over seeds and comparison with the reference model of every bias metric (rule frequency_bias_stats)."""

from fourier_masks.io import logged, read_table, write_table
from fourier_masks.analysis import bias_statistics

with logged(snakemake.log[0]):
    settings = snakemake.params.statistics
    table = bias_statistics(read_table(snakemake.input.bias), snakemake.params.reference,
                            n_boot=settings["bootstrap"], n_perm=settings["permutations"])
    write_table(table, snakemake.output[0])
