"""Radial and angular profiles and frequency-bias metrics of every mask (rule profiles)."""

from fourier_masks.analysis.metrics import mask_profiles
from fourier_masks.io import load_mask, logged, write_table

with logged(snakemake.log[0]):
    params = snakemake.params
    sources = zip(params.sources, snakemake.input.masks, strict=True)
    masks = {(model, seed): load_mask(path) for (model, seed), path in sources}
    radial, angular, bias = mask_profiles(masks, params.radial_bands, params.angular_bands, params.low_freq_cutoff)
    write_table(radial, snakemake.output.radial)
    write_table(angular, snakemake.output.angular)
    write_table(bias, snakemake.output.bias)
