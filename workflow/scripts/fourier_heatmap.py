"""Fourier heat map of one model on its first test images (rule fourier_heatmap)."""

from pathlib import Path

import pandas as pd

from fourier_masks.anchors import fourier_heatmap
from fourier_masks.data import load_split
from fourier_masks.device import resolve_device, set_threads
from fourier_masks.io import logged, write_table
from fourier_masks.models import load_model
from fourier_masks.spectrum import frequency_grid

with logged(snakemake.log[0]):
    data_folder = Path(snakemake.input.data[0]).parent
    set_threads(snakemake.threads)
    params = snakemake.params
    model = load_model(snakemake.input.model, resolve_device(params.device))
    images, labels = load_split(data_folder, "test")
    heat = fourier_heatmap(model, images[: params.n_images], labels[: params.n_images], params.norm,
                           stride=params.stride, batch_size=params.batch_size)
    fy, fx = frequency_grid(*heat.shape)
    write_table(pd.DataFrame({"model": snakemake.wildcards.model, "fy": fy.ravel(), "fx": fx.ravel(),
                              "error": heat.ravel()}), snakemake.output[0])
