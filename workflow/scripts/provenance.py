"""Record package versions, git commit and config hash (rule provenance)."""

import json

from fourier_masks.io import logged
from fourier_masks.provenance import provenance_record

with logged(snakemake.log[0]):
    with open(snakemake.output[0], "w") as handle:
        json.dump(provenance_record(snakemake.params.config), handle, indent=2, sort_keys=True)
