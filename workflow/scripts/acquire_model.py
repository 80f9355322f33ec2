"""Fetch or convert a published or user model into the shared model-file format (rule acquire_model)."""

from fourier_masks.io import logged
from fourier_masks.models.acquire import acquire

with logged(snakemake.log[0]) as log:
    log.info("model file and architecture source digest %s", snakemake.params.content)
    acquire(snakemake.params.spec, snakemake.params.resources_dir, snakemake.output.model,
            offline=snakemake.params.offline, dataset=snakemake.params.dataset,
            channels_last=snakemake.params.channels_last)
