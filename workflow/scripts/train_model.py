"""Train one model of the config in its regime (rule train_model)."""

from fourier_masks.data.dataset import load_class_names, load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged, write_table
from fourier_masks.models.files import save_model
from fourier_masks.models.training import train_from_scratch

with logged(snakemake.log[0]) as log:
    data_folder = snakemake.params.data_folder
    configure_cpu(snakemake.threads)
    spec = snakemake.params.spec
    images, labels = load_split(data_folder, "train")
    num_classes = len(load_class_names(data_folder))
    model, history = train_from_scratch(spec["arch"], spec["regime"], images, labels, num_classes,
                                        dict(snakemake.params.training), resolve_device(snakemake.params.device),
                                        channels_last=snakemake.params.channels_last)
    log.info("training history:\n%s", history.to_string())
    save_model(snakemake.output.model, model.cpu(), arch=spec["arch"], input_shape=images.shape[1:],
               num_classes=num_classes, source="train")
    write_table(history, snakemake.output.history)
