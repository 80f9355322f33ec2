"""Whether a linear classifier reads the class from single-image masks (rule single_image_decoding).

Per model and kind of mask (clean, adversarial images): cross-validated accuracy, the
scrambled-label control and chance; classes with fewer than two images are left out.
"""

import numpy as np

from fourier_masks.analysis.single_image import decoding_table
from fourier_masks.io import logged, read_table, write_table

with logged(snakemake.log[0]):
    models = snakemake.params.models
    masks = {model: np.load(path) for model, path in zip(models, snakemake.input.masks, strict=True)}
    images = {model: read_table(path) for model, path in zip(models, snakemake.input.images, strict=True)}
    write_table(decoding_table(masks, images), snakemake.output.table)
