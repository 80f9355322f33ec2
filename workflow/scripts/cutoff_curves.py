"""Accuracy of one model on low- and high-pass filtered test images (rule cutoff_curves).

One row per cut-off radius (cycles per image, evenly spaced from 0 to the corner radius):
``model, radius, lowpass_acc, highpass_acc``.
"""

import numpy as np

from fourier_masks.analysis.anchors import cutoff_curves
from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged, write_table
from fourier_masks.models.files import load_model
from fourier_masks.spectrum import corner_radius

with logged(snakemake.log[0]):
    configure_cpu(snakemake.threads)
    params = snakemake.params
    model = load_model(snakemake.input.model, resolve_device(params.device),
                       imports=snakemake.params.imports)
    images, labels = load_split(params.data_folder, "test")
    images, labels = images[: params.n_images], labels[: params.n_images]
    radii = np.linspace(0.0, corner_radius(*images.shape[-2:]), params.n_radii)
    table = cutoff_curves(model, images, labels, radii, batch_size=params.batch_size)
    write_table(table.assign(model=snakemake.wildcards.model)[["model", *table.columns]], snakemake.output.table)
