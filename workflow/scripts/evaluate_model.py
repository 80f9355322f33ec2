"""Clean and PGD-robust test accuracy of one model (rule evaluate_model)."""

import pandas as pd

from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged, write_table
from fourier_masks.models.files import load_model
from fourier_masks.models.networks import accuracy
from fourier_masks.models.training import robust_accuracy

with logged(snakemake.log[0]) as log:
    configure_cpu(snakemake.threads)
    params = snakemake.params
    spec = params.spec
    model = load_model(snakemake.input.model, resolve_device(params.device), imports=params.imports)
    images, labels = load_split(params.data_folder, "test")
    n_robust = min(params.attack_images, len(images))
    row = {
        "model": spec["name"],
        "source": spec["source"],
        "regime": spec.get("regime", spec["source"]),
        "arch": spec.get("arch") or spec.get("zoo_name") or spec["source"],
        "clean_acc": accuracy(model, images, labels, batch_size=params.batch_size),
        "robust_acc": robust_accuracy(model, images[:n_robust], labels[:n_robust], norm=params.attack_norm,
                                      eps=params.attack_eps, steps=params.attack_steps),
        "robust_norm": params.attack_norm,
        "robust_eps": params.attack_eps,
        "robust_steps": params.attack_steps,
        "robust_images": n_robust,
        "channels_last": model.channels_last,
    }
    log.info("%s", row)
    write_table(pd.DataFrame([row]), snakemake.output.summary)
