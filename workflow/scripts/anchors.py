"""Anchor analyses of one model on its first test images (rules fourier_heatmap, cutoff_curves).

fourier_heatmap: ``model, fy, fx, error`` per frequency bin (cycles per image, NaN where
skipped) and the map's split-half ``reliability`` (one value per model, on every row);
cutoff_curves: ``model, radius, lowpass_acc, highpass_acc`` per cut-off radius.
"""

from pathlib import Path

import numpy as np

from fourier_masks.analysis.anchors import cutoff_curves, heatmap_table
from fourier_masks.data.dataset import load_split
from fourier_masks.device import resolve_device, set_threads
from fourier_masks.io import logged, write_table
from fourier_masks.models.files import imports_of, load_model
from fourier_masks.spectrum import corner_radius

with logged(snakemake.log[0]):
    data_folder = Path(snakemake.input.data[0]).parent
    set_threads(snakemake.threads)
    params, name = snakemake.params, snakemake.wildcards.model
    model = load_model(snakemake.input.model, resolve_device(params.device),
                       imports=imports_of(snakemake.config["models"]))
    images, labels = load_split(data_folder, "test")
    images, labels = images[: params.n_images], labels[: params.n_images]
    if snakemake.rule == "fourier_heatmap":
        table = heatmap_table(model, images, labels, params.norm, noise=params.noise, stride=params.stride,
                              batch_size=params.batch_size)
    else:
        radii = np.linspace(0.0, corner_radius(*images.shape[-2:]), params.n_radii)
        table = cutoff_curves(model, images, labels, radii, params.batch_size)
    write_table(table.assign(model=name)[["model", *table.columns]], snakemake.output[0])
