"""Learn the Fourier masks of one model for its seeds (rule learn_masks)."""

from pathlib import Path

from fourier_masks.data.dataset import load_split
from fourier_masks.device import configure_cpu
from fourier_masks.io import logged, save_mask, write_table
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.options import MaskOptions
from fourier_masks.masks.protocol import raise_unconverged, unconverged
from fourier_masks.models.files import load_model

with logged(snakemake.log[0]) as log:
    configure_cpu(snakemake.threads)
    settings = snakemake.params.mask
    images, labels = load_split(snakemake.params.data_folder, settings["fit_split"])
    if settings["fit_images"]:
        images, labels = images[: settings["fit_images"]], labels[: settings["fit_images"]]
    options = MaskOptions.from_config(settings, snakemake.params.device)
    checkpoint = Path(snakemake.params.checkpoint)
    log.info("learning masks of %s for seeds %s on %d images: %s", snakemake.wildcards.model,
             snakemake.params.seeds, len(images), options)
    model = load_model(snakemake.input.model, imports=snakemake.params.imports)
    masks, history = learn_masks(model, images, labels, snakemake.params.seeds, checkpoint=checkpoint,
                                 options=options)
    log.info("history:\n%s", history.to_string())
    for row in unconverged(history).itertuples():
        log.warning("the mask of %s seed %d is not a converged result: %s (see the history).",
                    snakemake.wildcards.model, row.seed, row.status)
    if settings["require_converged"]:
        raise_unconverged(history, snakemake.wildcards.model)
    for seed, mask, mask_path, history_path in zip(snakemake.params.seeds, masks, snakemake.output.masks,
                                                   snakemake.output.histories, strict=True):
        save_mask(mask, mask_path)
        write_table(history[history.seed == seed], history_path)
    checkpoint.unlink(missing_ok=True)
