"""Retrain one model from scratch on training images seen through its mask (rule retrain).

Writes the retrained model, its training history and a summary: for the original and the
retrained model (``trained_on`` = original, masked), test accuracy on clean and on masked
test images.
"""

from fourier_masks.analysis.evaluation import retrain_summary
from fourier_masks.data.dataset import load_class_names, load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import load_mask, logged, write_table
from fourier_masks.models.files import load_model, save_model
from fourier_masks.models.training import train_from_scratch
from fourier_masks.spectrum import apply_mask

with logged(snakemake.log[0]) as log:
    data_folder = snakemake.params.data_folder
    configure_cpu(snakemake.threads)
    params, device = snakemake.params, resolve_device(snakemake.params.device)
    train_images, train_labels = load_split(data_folder, "train")
    test_images, test_labels = load_split(data_folder, "test")
    num_classes = len(load_class_names(data_folder))
    mask = load_mask(snakemake.input.mask, train_images.shape[1:])
    retrained, history = train_from_scratch(params.spec["arch"], params.spec["regime"],
                                            apply_mask(train_images, mask), train_labels, num_classes,
                                            dict(params.training), device, channels_last=params.channels_last)
    log.info("training history:\n%s", history.to_string())
    models = {"original": load_model(snakemake.input.model, device), "masked": retrained}
    summary = retrain_summary(models, test_images, test_labels, mask, params.batch_size, name=params.spec["name"],
                              mask_seed=params.mask_seed)
    save_model(snakemake.output.model, retrained.cpu(), arch=params.spec["arch"],
               input_shape=train_images.shape[1:], num_classes=num_classes, source="train")
    write_table(history, snakemake.output.history)
    write_table(summary, snakemake.output.summary)
