"""Low- and high-pass accuracy curves of one model (rule cutoff_curves)."""

from pathlib import Path

import numpy as np

from fourier_masks.anchors import cutoff_curves
from fourier_masks.data import load_split
from fourier_masks.device import resolve_device, set_threads
from fourier_masks.io import logged, write_table
from fourier_masks.models import load_model
from fourier_masks.spectrum import corner_radius

with logged(snakemake.log[0]):
    data_folder = Path(snakemake.input.data[0]).parent
    set_threads(snakemake.threads)
    params = snakemake.params
    model = load_model(snakemake.input.model, resolve_device(params.device))
    images, labels = load_split(data_folder, "test")
    radii = np.linspace(0.0, corner_radius(*images.shape[-2:]), params.n_radii)
    curves = cutoff_curves(model, images[: params.n_images], labels[: params.n_images], radii, params.batch_size)
    write_table(curves.assign(model=snakemake.wildcards.model)[["model", *curves.columns]], snakemake.output[0])
