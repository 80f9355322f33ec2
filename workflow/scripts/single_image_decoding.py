"""Whether a linear classifier reads the class from single-image masks (rule single_image_decoding).

Per model and kind of mask (clean, adversarial images): cross-validated accuracy, the
scrambled-label control and chance; classes with fewer than two images are left out.
"""

import numpy as np
import pandas as pd

from fourier_masks.analysis.single_image import mask_decodability
from fourier_masks.io import logged, read_table, write_table

with logged(snakemake.log[0]):
    rows = []
    for model, masks_path, images_path in zip(snakemake.params.models, snakemake.input.masks,
                                              snakemake.input.images):
        masks, images = np.load(masks_path), read_table(images_path)
        for kind in ("clean", "adversarial"):
            labels = images.loc[images["kind"] == kind].sort_values("image")["label"].to_numpy()
            keep = np.bincount(labels)[labels] >= 2
            rows.append({"model": model, "kind": kind, "n_images": int(keep.sum()),
                         **mask_decodability(masks[kind][keep], labels[keep])})
    write_table(pd.DataFrame(rows), snakemake.output[0])
