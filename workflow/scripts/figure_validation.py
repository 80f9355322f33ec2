"""One figure of the validation analyses from its table (rules figure_fourier_heatmap,
figure_cutoff_curves, figure_single_image_bands, figure_single_image_decoding, figure_retrain)."""

from fourier_masks import figures
from fourier_masks.io import logged, read_table

with logged(snakemake.log[0]):
    figure = getattr(figures, snakemake.params.function)(read_table(snakemake.input.table))
    figures.save_figure(figure, snakemake.output.png, snakemake.output.pdf)
