"""Download a model file given by url, kept only if its SHA-256 matches (rule download_model)."""

from fourier_masks.io import logged
from fourier_masks.models.sources import download

with logged(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    download(spec["url"], spec["sha256"], snakemake.output[0], where=f"models[{spec['name']}]")
    log.info("downloaded %s to %s", spec["url"], snakemake.output[0])
