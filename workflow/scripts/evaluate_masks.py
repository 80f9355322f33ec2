"""Every mask on one target model's held-out images, and its own masks' controls (rule evaluate_masks)."""

from fourier_masks.analysis.evaluation import evaluate_controls, evaluate_transfer
from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import load_mask, logged, write_table
from fourier_masks.models.files import load_model

with logged(snakemake.log[0]):
    configure_cpu(snakemake.threads)
    target = snakemake.wildcards.model
    model = load_model(snakemake.input.model, resolve_device(snakemake.params.device),
                       imports=snakemake.params.imports)
    images, labels = load_split(snakemake.params.data_folder, "test")
    masks = {(model_name, seed): load_mask(path, images.shape[1:])
             for (model_name, seed), path in zip(snakemake.params.sources, snakemake.input.masks, strict=True)}
    batch_size = snakemake.params.batch_size
    transfer = evaluate_transfer(model, images, labels, masks, batch_size).assign(target_model=target)
    own = {seed: mask for (model_name, seed), mask in masks.items() if model_name == target}
    controls = evaluate_controls(model, images, labels, own, snakemake.params.threshold,
                                 snakemake.params.random_shuffles, batch_size)
    controls = controls.assign(model=target, clean_acc=transfer["clean_acc"].iloc[0])
    write_table(transfer, snakemake.output.transfer)
    write_table(controls, snakemake.output.controls)
