"""Band-by-band comparison of single-image masks (rule single_image_bands).

``vs_reference``: each model's clean-image masks (A) against the reference model's (B) on
the same images; ``adversarial_vs_clean``: each model's masks of PGD images (A) against
those of the clean images (B).
"""

import numpy as np

from fourier_masks.analysis.single_image import band_comparisons
from fourier_masks.io import logged, write_table

with logged(snakemake.log[0]):
    params = snakemake.params
    masks = {model: np.load(path) for model, path in zip(params.models, snakemake.input.masks, strict=True)}
    write_table(band_comparisons(masks, params.reference, params.radial_bands), snakemake.output.table)
