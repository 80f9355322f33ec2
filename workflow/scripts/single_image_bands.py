"""Band-by-band comparison of single-image masks (rule single_image_bands).

``vs_reference``: each model's clean-image masks (A) against the reference model's (B) on
the same images; ``adversarial_vs_clean``: each model's masks of PGD images (A) against
those of the clean images (B).
"""

import numpy as np
import pandas as pd

from fourier_masks.analysis.single_image import band_share_table
from fourier_masks.io import logged, write_table

with logged(snakemake.log[0]):
    params = snakemake.params
    masks = {model: np.load(path) for model, path in zip(params.models, snakemake.input.masks)}
    reference = masks[params.reference]["clean"]
    parts = []
    for model, kinds in masks.items():
        if model != params.reference:
            parts.append(band_share_table(kinds["clean"], reference, params.radial_bands)
                         .assign(model=model, comparison="vs_reference", versus=params.reference))
        parts.append(band_share_table(kinds["adversarial"], kinds["clean"], params.radial_bands)
                     .assign(model=model, comparison="adversarial_vs_clean", versus=model))
    table = pd.concat(parts, ignore_index=True)
    keys = ["model", "comparison", "versus"]
    write_table(table[keys + [column for column in table if column not in keys]], snakemake.output[0])
