"""Materialise the configured dataset as .npy arrays (rule prepare_dataset)."""

from fourier_masks.data.dataset import save_dataset
from fourier_masks.data.registry import load_dataset
from fourier_masks.io import logged

with logged(snakemake.log[0]) as log:
    dataset = load_dataset(snakemake.params.dataset, snakemake.params.resources_dir)
    save_dataset(dataset, snakemake.params.data_folder)
    log.info("train %s, test %s, classes %s; source files digest %s", dataset.train_images.shape,
             dataset.test_images.shape, dataset.class_names, snakemake.params.source_digest)
