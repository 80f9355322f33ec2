"""Heat map of every mask applied to every model (rule figure_transfer)."""

from fourier_masks.figures import save_figure, transfer_heatmap
from fourier_masks.io import logged, read_table

with logged(snakemake.log[0]):
    save_figure(transfer_heatmap(read_table(snakemake.input.transfer)), snakemake.output.png, snakemake.output.pdf)
