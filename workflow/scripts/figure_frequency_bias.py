"""Frequency-bias metrics and accuracy retention per model and seed (rule figure_frequency_bias)."""

from fourier_masks.figures import bias_summary, save_figure
from fourier_masks.io import logged, read_table

with logged(snakemake.log[0]):
    figure = bias_summary(read_table(snakemake.input.bias), read_table(snakemake.input.masks),
                          snakemake.params.reference)
    save_figure(figure, snakemake.output.png, snakemake.output.pdf)
