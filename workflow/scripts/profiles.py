"""Radial and angular profiles and frequency-bias metrics of every mask (rule profiles)."""

import pandas as pd

from fourier_masks.analysis.metrics import frequency_bias, profile
from fourier_masks.io import load_mask, logged, write_table

with logged(snakemake.log[0]):
    settings = snakemake.params.analysis
    radial, angular, bias = [], [], []
    for (model, seed), path in zip(snakemake.params.sources, snakemake.input.masks):
        mask = load_mask(path)
        keys = {"model": model, "seed": seed}
        radial.append(profile(mask, settings["radial_bands"], "radial").assign(**keys))
        angular.append(profile(mask, settings["angular_bands"], "angular").assign(**keys))
        bias.append({**keys, **frequency_bias(mask, settings["low_freq_cutoff"])})
    first = ["model", "seed"]
    radial = pd.concat(radial, ignore_index=True).rename(columns={"lo": "r_lo", "hi": "r_hi"})
    angular = pd.concat(angular, ignore_index=True).rename(columns={"lo": "theta_lo", "hi": "theta_hi"})
    write_table(radial[first + [c for c in radial if c not in first]], snakemake.output.radial)
    write_table(angular[first + [c for c in angular if c not in first]], snakemake.output.angular)
    write_table(pd.DataFrame(bias), snakemake.output.bias)
