"""Original, masked and complement-masked test images (rule figure_examples)."""

from fourier_masks.analysis.metrics import complement_mask
from fourier_masks.data.dataset import load_split
from fourier_masks.figures import example_images, save_figure
from fourier_masks.io import load_mask, logged
from fourier_masks.spectrum import apply_mask

with logged(snakemake.log[0]):
    images, _ = load_split(snakemake.params.data_folder, "test")
    images = images[: snakemake.params.n_images].numpy()
    masks = {model: load_mask(path) for model, path in zip(snakemake.params.models, snakemake.input.masks, strict=True)}
    masked = {model: apply_mask(images, mask) for model, mask in masks.items()}
    complements = {model: apply_mask(images, complement_mask(mask, snakemake.params.threshold))
                   for model, mask in masks.items()}
    save_figure(example_images(images, masked, complements), snakemake.output.png, snakemake.output.pdf)
