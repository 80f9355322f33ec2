"""Accept an acquired model only if it sees the test images as it was trained (rule check_model)."""

import shutil

from fourier_masks.atomic import write_atomic
from fourier_masks.data.dataset import load_class_names, load_split
from fourier_masks.device import configure_cpu, resolve_device
from fourier_masks.io import logged
from fourier_masks.models.acquire import check_accuracy
from fourier_masks.models.files import load_model

with logged(snakemake.log[0]) as log:
    data_folder = snakemake.params.data_folder
    configure_cpu(snakemake.threads)
    spec = snakemake.params.spec
    model = load_model(snakemake.input.model, resolve_device(snakemake.params.device),
                       imports=snakemake.params.imports)
    images, labels = load_split(data_folder, "test")
    measured = check_accuracy(model, images, labels, load_class_names(data_folder), where=f"models[{spec['name']}]",
                              chance_check=spec["chance_check"], expected_accuracy=spec["expected_accuracy"],
                              accuracy_tolerance=spec["accuracy_tolerance"], batch_size=snakemake.params.batch_size)
    log.info("clean accuracy %.4f on %d test images: accepted", measured, len(labels))
    with write_atomic(snakemake.output.model) as partial:
        shutil.copyfile(snakemake.input.model, partial)
