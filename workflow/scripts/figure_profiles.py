"""Radial and angular profiles as differences from the reference model (rule figure_profiles)."""

from fourier_masks.figures import profile_differences, save_figure
from fourier_masks.io import logged, read_table

with logged(snakemake.log[0]):
    stats = read_table(snakemake.input.stats)
    figure = profile_differences(read_table(snakemake.input.radial), read_table(snakemake.input.angular),
                                 snakemake.params.reference, stats[stats["metric"] == "direction_dependence"])
    save_figure(figure, snakemake.output.png, snakemake.output.pdf)
