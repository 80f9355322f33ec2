"""Spread over seeds and comparison with the reference model of every bias metric and of the
angular profile's direction dependence (rule frequency_bias_stats)."""

from fourier_masks.analysis.metrics import bias_statistics
from fourier_masks.io import logged, read_table, write_table

with logged(snakemake.log[0]):
    settings = snakemake.params.statistics
    table = bias_statistics(read_table(snakemake.input.bias), read_table(snakemake.input.angular),
                            snakemake.params.reference, n_boot=settings["bootstrap"],
                            n_perm=settings["permutations"])
    write_table(table, snakemake.output[0])
