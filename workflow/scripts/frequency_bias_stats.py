"""Spread over seeds and comparison with the reference model of every bias metric and of the
angular profile's direction dependence (rule frequency_bias_stats)."""

from fourier_masks.analysis.metrics import bias_statistics
from fourier_masks.io import logged, read_table, write_table

with logged(snakemake.log[0]):
    params = snakemake.params
    table = bias_statistics(read_table(snakemake.input.bias), read_table(snakemake.input.angular),
                            params.reference, n_boot=params.bootstrap, n_perm=params.permutations)
    write_table(table, snakemake.output.stats)
