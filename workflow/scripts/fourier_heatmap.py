"""Fourier heat map of one model on its first test images (rule fourier_heatmap).

One row per frequency bin: ``model, fy, fx`` (cycles per image), ``error`` (NaN where the
stride skips the bin) and the map's split-half ``reliability`` (one value per model).
"""

from fourier_masks.analysis.anchors import heatmap_table
from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged, write_table
from fourier_masks.models.files import load_model

with logged(snakemake.log[0]):
    configure_cpu(snakemake.threads)
    params = snakemake.params
    model = load_model(snakemake.input.model, resolve_device(params.device),
                       imports=snakemake.params.imports)
    images, labels = load_split(params.data_folder, "test")
    table = heatmap_table(model, images[: params.n_images], labels[: params.n_images], params.norm,
                          noise=params.noise, stride=params.stride, batch_size=params.batch_size)
    write_table(table.assign(model=snakemake.wildcards.model)[["model", *table.columns]], snakemake.output.table)
