"""Fetch or convert a published model into the shared model-file format (rule acquire_model)."""

from pathlib import Path

from fourier_masks.io import logged
from fourier_masks.zoo import acquire

with logged(snakemake.log[0]):
    data_folder = Path(snakemake.input.data[0]).parent
    acquire(snakemake.params.spec, snakemake.params.resources_dir, snakemake.output.model,
            offline=snakemake.params.offline, dataset=data_folderset)
