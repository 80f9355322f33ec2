"""Clean and robust test accuracy of one model (rule evaluate_model).

The attack and its budget come from params.robust (fourier_masks.models.threat.robust_threat):
PGD, AutoAttack, or none (robust_acc NaN, with the reason in robust_budget).
"""

import time

import pandas as pd

from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged, write_table
from fourier_masks.models.attacks import robustness
from fourier_masks.models.files import load_model
from fourier_masks.models.networks import accuracy

with logged(snakemake.log[0]) as log:
    configure_cpu(snakemake.threads)
    params = snakemake.params
    spec = params.spec
    model = load_model(snakemake.input.model, resolve_device(params.device), imports=params.imports)
    images, labels = load_split(params.data_folder, "test")
    row = {
        "model": spec["name"],
        "source": spec["source"],
        "regime": spec.get("regime", spec["source"]),
        "arch": spec.get("arch") or spec.get("zoo_name") or spec["source"],
        "clean_acc": accuracy(model, images, labels, batch_size=params.batch_size),
    }
    start = time.perf_counter()
    row.update(robustness(model, images, labels, params.robust), channels_last=model.channels_last)
    log.info("robust accuracy (%s) in %.1f s", params.robust["budget"], time.perf_counter() - start)
    log.info("%s", row)
    write_table(pd.DataFrame([row]), snakemake.output.summary)
