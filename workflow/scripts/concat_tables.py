"""Stack per-model tables into one (the rules named *_table that have no script of their own)."""

import pandas as pd

from fourier_masks.io import logged, read_table, write_table

with logged(snakemake.log[0]):
    write_table(pd.concat([read_table(path) for path in snakemake.input.tables], ignore_index=True),
                snakemake.output.table)
