"""Rules across config keys that a JSON schema cannot state, run on a config whose defaults are filled in.

Model names unique ignoring case and matchable by Snakemake, ``reference_model`` among the
models, retrained models trained here, attack steps and mask keys only where they are read,
ranges ``[lo, hi]`` ordered, at least one image per class and split, and a dataset that fits
in this machine's memory.

The rules about models and data (a RobustBench model's zoo dataset, a model file's path, url,
sha256 and normalisation, the memory planted images take to generate) live here rather than
beside :mod:`fourier_masks.models` and :mod:`fourier_masks.data`: those import torch and numpy,
and the config check must not. This module imports only the standard library and, of the
package, :mod:`.messages` (and through it :mod:`fourier_masks.errors`).
"""

from __future__ import annotations

import json
import math
import os
import re

from .messages import either, fail, suggestion

#: Snakemake refuses a wildcard value that ends in a substring repeated 20 times or more
#: (``snakemake.io.PeriodicityDetector``): the jobs of such a model name would not run.
_PERIODIC = re.compile(r"(.+)\1{19,}$")

#: Bytes per pixel while planted images are generated (float64 noise and gains, complex128
#: spectra), and per pixel and channel of an image a job holds as float32.
PLANTED_BYTES_PER_PIXEL = 48
FLOAT32_BYTES = 4

#: Channels of the datasets whose config has no ``channels`` key: CIFAR and ImageNet are RGB.
RGB = 3

#: Mask keys read only under some settings: key -> (setting, values that read it).
_CONDITIONAL_MASK_KEYS = {
    "warmup": ("schedule", ("onecycle",)),
    "plateau": ("schedule", ("plateau",)),
    "jump": ("protocol", ("default",)),
    "max_backoffs": ("protocol", ("default",)),
}


def check_rules(given: dict, filled: dict, memory: int | None = None) -> None:
    """Raise ``Invalid config:`` for the first rule ``filled`` (``given`` with its defaults) breaks.

    ``given`` is the config as written, for keys that must not be given where they are not
    read; ``memory`` is the bytes the dataset must fit in (default: this machine's).
    """
    _check_model_names(filled)
    _check_attack_steps(given, filled)
    _check_mask_keys(given, filled)
    _check_models(filled)
    _check_ranges(filled)
    _check_sizes(filled)
    _check_memory(filled, memory or physical_memory())


def _check_attack_steps(given: dict, filled: dict) -> None:
    """Refuse ``training.pgd_*.steps`` given with ``attack: fgsm_rs``, which takes one step and ignores them."""
    training = given.get("training") or {}
    ignored = [f"training.{budget}.steps" for budget in ("pgd_linf", "pgd_l2")
               if isinstance(training.get(budget), dict) and "steps" in training[budget]]
    if ignored and filled["training"]["attack"] == "fgsm_rs":
        fail(f"{' and '.join(ignored)} given, but training.attack = 'fgsm_rs' (the default) takes one step of "
             "1.25 eps and reads no steps; remove them, or set training.attack: pgd for multi-step PGD training.")


def _check_mask_keys(given: dict, filled: dict) -> None:
    """Refuse ``mask`` keys given where the chosen schedule or protocol reads none of them."""
    mask, chosen = given.get("mask") or {}, filled["mask"]
    for key, (setting, readers) in _CONDITIONAL_MASK_KEYS.items():
        if isinstance(mask, dict) and key in mask and chosen[setting] not in readers:
            fail(f"mask.{key} is given, but mask.{setting} = {chosen[setting]!r} reads no {key} (only "
                 f"{either([repr(r) for r in readers])} does); remove mask.{key}, or set mask.{setting}.")
    if isinstance(mask, dict) and "loss_tolerance" in mask and chosen["protocol"] == "authors" \
            and chosen["schedule"] != "plateau":
        fail("mask.loss_tolerance is given, but protocol 'authors' stops on the density alone and schedule "
             f"{chosen['schedule']!r} has no plateaus; remove it, or set mask.protocol: default.")


def retrained_models(config: dict) -> list[str]:
    """Models the retrain analysis trains again on masked images (when ``analysis.retrain`` is
    enabled): ``analysis.retrain.models``, or else the reference model when it is trained here."""
    trained = [model["name"] for model in config["models"] if model["source"] == "train"]
    return config["analysis"]["retrain"]["models"] or [name for name in [config["reference_model"]] if name in trained]


def _check_models(config: dict) -> None:
    """Unique model names, reference_model among them, retrained models trained here, entries that fit the dataset."""
    names = [model["name"] for model in config["models"]]
    if config["reference_model"] not in names:
        fail(f"reference_model = {config['reference_model']!r} is not the name of a model in models; "
             f"use one of {', '.join(names)}.{suggestion(config['reference_model'], names)}")
    retrain = config["analysis"]["retrain"]
    trained = [model["name"] for model in config["models"] if model["source"] == "train"]
    for i, name in enumerate(retrain["models"] or [] if retrain["enabled"] else []):
        if name not in trained:
            fail(f"analysis.retrain.models[{i}] = {name!r} is not a model with source: train, so it cannot be "
                 f"retrained; use one of {', '.join(trained) or '(none in this config)'}."
                 f"{suggestion(name, trained)}")
    dataset = config["dataset"]
    for i, model in enumerate(config["models"]):
        if model["source"] == "robustbench":
            _check_robustbench(model, dataset["name"], f"models[{i}]")
        elif model["source"] != "train":
            _check_checkpoint(model, dataset, f"models[{i}]")


def _check_model_names(config: dict) -> None:
    """Names unique ignoring case (folders on macOS and Windows) and matchable by Snakemake."""
    seen = {}
    for i, name in enumerate(model["name"] for model in config["models"]):
        if name.lower() in seen:
            first = seen[name.lower()]
            fail(f"models[{i}].name = {name!r} repeats models[{first}].name = {config['models'][first]['name']!r} "
                 "(compared ignoring case); model names must be unique, as they name the result folders.")
        seen[name.lower()] = i
        periodic = _PERIODIC.search(name)
        if periodic:
            fail(f"models[{i}].name = {name!r} ends in {periodic.group(1)!r} repeated "
                 f"{len(periodic.group(0)) // len(periodic.group(1))} times; Snakemake refuses such names (it "
                 "takes them for an endless recursion) and would silently skip the model's jobs. Choose a name "
                 "without a part repeated 20 times or more.")


def _check_sizes(config: dict) -> None:
    """Each split holds at least one image per class (datasets whose config sets n_classes)."""
    dataset = config["dataset"]
    if "n_classes" not in dataset:
        return
    for key in ("n_train", "n_test"):
        if dataset[key] < dataset["n_classes"]:
            fail(f"dataset.{key} = {dataset[key]} is smaller than dataset.n_classes = {dataset['n_classes']}; "
                 "every class needs at least one image in each split.")


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine, or None where the system does not tell."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def dataset_memory(dataset: dict) -> tuple[int, str]:
    """Estimated peak bytes of holding (and, for planted, generating) the dataset, and how it was counted.

    Jobs hold images as float32 (4 bytes per pixel and channel, both splits); generating
    planted images takes about 48 bytes per pixel of the larger split. Splits given as 0
    (all images of an external dataset) are not counted.
    """
    size = dataset.get("image_size")
    if size is None:
        return 0, ""
    n_train, n_test = dataset["n_train"], dataset["n_test"]
    pixels = size * size
    held = (n_train + n_test) * dataset.get("channels", RGB) * pixels * FLOAT32_BYTES
    if dataset["name"] == "planted":
        made = max(n_train, n_test) * pixels * PLANTED_BYTES_PER_PIXEL
        if made > held:
            return made, (f"{max(n_train, n_test)} planted images generated in float64, "
                          f"{PLANTED_BYTES_PER_PIXEL} bytes per pixel")
    return held, f"{n_train + n_test} images held as float32"


def _check_memory(config: dict, memory: int | None) -> None:
    """The dataset fits in ``memory`` bytes (None: unknown, not checked)."""
    needed, counted = dataset_memory(config["dataset"])
    if memory and needed > memory:
        dataset = config["dataset"]
        fail(f"dataset.image_size = {dataset['image_size']} with dataset.n_train = {dataset['n_train']} and "
             f"dataset.n_test = {dataset['n_test']} needs about {needed / 2**30:.1f} GiB of memory "
             f"({counted}), more than this machine's {memory / 2**30:.1f} GiB; use a smaller image_size or "
             "fewer images.")


def _check_robustbench(model: dict, dataset: str, where: str) -> None:
    """A RobustBench model needs dataset.name to be its zoo dataset."""
    zoo = ("cifar10", "cifar100", "imagenet")
    if dataset not in zoo:
        fail(f"{where}.source = 'robustbench' needs dataset.name to be cifar10, cifar100 or imagenet "
             f"(the zoo's datasets), but dataset.name = {dataset!r}.")
    if model["dataset"] not in (None, dataset):
        fail(f"{where}.dataset = {model['dataset']!r} differs from dataset.name = {dataset!r}; "
             "a RobustBench model is evaluated on dataset.name, so set both alike (or omit the former).")


def _check_checkpoint(model: dict, dataset: dict, where: str) -> None:
    """A model file entry (checkpoint, torchscript, exported): one of path and url, url with sha256,
    mean and std with one value per input channel, python_path only where something is imported."""
    if (model["path"] is None) == (model["url"] is None):
        fail(f"{where} needs exactly one of path (a local model file) and url (downloaded to "
             f"resources/models/{model['name']}/); it sets {'both' if model['path'] else 'neither'}.")
    if model["url"] is not None and model["sha256"] is None:
        fail(f"{where}.sha256 is needed with url = {model['url']!r}: a download is kept only if its SHA-256 "
             "matches (sha256sum FILE prints it).")
    channels = model["input_shape"][0] if model["input_shape"] else dataset.get("channels", RGB)
    for key in ("mean", "std"):
        if model[key] is not None and len(model[key]) != channels:
            fail(f"{where}.{key} = {json.dumps(model[key])} needs one value per input channel "
                 f"({channels}, from input_shape or dataset.channels).")
    if (model["mean"] is None) != (model["std"] is None):
        fail(f"{where} sets only one of mean and std; give both or neither.")
    imports = model.get("arch", "").startswith("import:") or model.get("trust_pickle")
    if model.get("python_path") and not imports:
        fail(f"{where}.python_path is used only with arch: 'import:package.module:factory' or trust_pickle: true; "
             "remove it.")


def _check_range(config: dict, section: str, key: str, strict: bool, unit: str) -> None:
    """A ``[lo, hi]`` pair ``config[section][key]`` with ``lo < hi`` (strict) or ``lo <= hi``."""
    if key not in config[section]:
        return
    lo, hi = config[section][key]
    if lo > hi or (strict and lo == hi):
        need = "lo < hi" if strict else "lo <= hi"
        fail(f"{section}.{key} = [{lo:g}, {hi:g}] is {'backwards' if lo > hi else 'empty'}; "
             f"it needs {need} ({unit}).")


def _check_ranges(config: dict) -> None:
    """Ranges ordered lo <= hi, and the planted radius inside the spectrum."""
    _check_range(config, "dataset", "radius", True, "cycles per image")
    _check_range(config, "dataset", "orientation", True, "degrees")
    _check_range(config, "training", "scale", False, "zoom factors")
    dataset = config["dataset"]
    if "radius" in dataset:
        corner = math.hypot(dataset["image_size"] / 2, dataset["image_size"] / 2)
        if dataset["radius"][1] > corner:
            fail(f"dataset.radius = {json.dumps(dataset['radius'])} reaches beyond the spectrum: at "
                 f"dataset.image_size = {dataset['image_size']} the corner radius is {corner:.2f} cycles per image.")
