# Config validation, model and seed lists, input functions. No rules here.
import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from fourier_masks.config import check_config, read_config_file, retrained_models
from fourier_masks.errors import InputError, exit_on_input_error
from fourier_masks.models.preflight import check_sources
from fourier_masks.models.sources import entry_digest, imports_of
from fourier_masks.models.threat import robust_threat
from fourier_masks.models.zoo_cache import zoo_digest
from fourier_masks.requests import gpu_request, network_env
from fourier_masks.models.regimes import regime_settings
from fourier_masks.template_guard import templates_allowed

# A bad config ends in one paragraph naming the key or file, without a traceback. The
# config files are read again as plain YAML: repeated keys and YTE templates are refused.
with exit_on_input_error():
    for path in workflow.configfiles:
        read_config_file(path, templates_allowed=templates_allowed())
    checked_config = check_config(config)
    config.clear()
    config.update(checked_config)
    check_sources(config, "resources")
    OUTPUT = config["output_dir"]
    if os.path.lexists(OUTPUT) and not os.path.isdir(OUTPUT):
        raise InputError(
            f"output_dir = {OUTPUT!r} ({os.path.abspath(OUTPUT)}) is not a folder; the run writes its results, "
            "logs and benchmarks there. Move it away or choose another output_dir."
        )


# Every output, log and benchmark of a run lives under output_dir (<results>, <logs>,
# <benchmarks> in the rules), so runs of two configs can share a clone.
pathvars:
    results=OUTPUT,
    logs=f"{OUTPUT}/logs",
    benchmarks=f"{OUTPUT}/benchmarks",


MODELS = {model["name"]: model for model in config["models"]}
TRAINED = [name for name, model in MODELS.items() if model["source"] == "train"]
ACQUIRED = [name for name, model in MODELS.items() if model["source"] != "train"]
SEEDS = config["seeds"]
# (model, seed) of each file of mask_files(), in that order.
MASK_SOURCES = [(model, seed) for model in MODELS for seed in SEEDS]
# The dataset arrays (rule prepare_dataset).
DATA_FILES = expand(
    "<results>/data/{split}_{kind}.npy",
    split=["train", "test"],
    kind=["images", "labels"],
) + ["<results>/data/classes.parquet"]
# The model file of every model, trained here or acquired and checked.
MODEL_FILE = "<results>/models/{model}/model.pt"


def _alternatives(names):
    """Regex matching exactly one of ``names`` (or nothing when empty)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    model=_alternatives(MODELS),
    seed=r"\d+",


def mask_files(models=MODELS, seeds=SEEDS):
    """Mask arrays of the given models and seeds."""
    return expand("<results>/masks/{model}/seed{seed}.npy", model=models, seed=seeds)


def history_files(models=MODELS, seeds=SEEDS):
    """Mask-learning histories of the given models and seeds."""
    return expand(
        "<results>/masks/{model}/seed{seed}_history.parquet", model=models, seed=seeds
    )


def data_folder(wildcards, input):
    """Folder of the dataset arrays of input ``data``, where the job reads them (load_split)."""
    return os.path.dirname(input.data[0])


def model_spec(wildcards):
    """Config entry of the model named by the ``model`` wildcard."""
    return MODELS[wildcards.model]


def regime_training(wildcards):
    """The training settings that the regime of the ``model`` wildcard's model reads."""
    return regime_settings(config["training"], MODELS[wildcards.model]["regime"])


def model_threat(wildcards):
    """Attack and budget of the robust accuracy of the ``model`` wildcard's model."""
    return robust_threat(
        MODELS[wildcards.model],
        config["analysis"]["robust_eval"],
        config["dataset"]["name"],
    )


def model_content(wildcards):
    """Content digest of the files the ``model`` wildcard's entry is acquired from (model file, code, zoo files)."""
    spec = MODELS[wildcards.model]
    if spec["source"] == "robustbench":
        dataset = spec["dataset"] or config["dataset"]["name"]
        return zoo_digest("resources", dataset, spec["threat_model"], spec["zoo_name"])
    return entry_digest(spec, "resources")


def model_imports(wildcards):
    """What load_model may import to rebuild the model named by the ``model`` wildcard."""
    return imports_of([MODELS[wildcards.model]])


# Rules that run a network: their conda env and their GPU request, chosen here alone.
NETWORK_ENV = network_env(config["device"])
GPU_REQUEST = gpu_request(config["device"], config["cluster"]["gpu_request"])


def mem_mb(base):
    """Memory request growing with each retry (``attempt`` = 1, 2, ...)."""
    return lambda wildcards, attempt: base * attempt


def runtime_min(base):
    """Run-time request in minutes growing with each retry, as memory does."""
    return lambda wildcards, attempt: base * attempt


TABLES = [
    "models",
    "masks",
    "seed_agreement",
    "radial_profile",
    "angular_profile",
    "frequency_bias",
    "frequency_bias_stats",
    "transfer",
]
FIGURES = ["mask_grid", "profiles", "frequency_bias", "transfer", "examples"]
# Models retrained on masked images (validation.smk).
RETRAIN = retrained_models(config)
# Optional analyses (validation.smk): switch analysis.<key>.enabled -> the names of their
# tables and figures.
OPTIONAL_OUTPUTS = {
    "fourier_heatmap": ["fourier_heatmap"],
    "cutoff_curves": ["cutoff_curves"],
    "single_image": ["single_image_bands", "single_image_decoding"],
    "retrain": ["retrain"] if RETRAIN else [],
}
ENABLED_OUTPUTS = [
    name
    for key, names in OPTIONAL_OUTPUTS.items()
    if config["analysis"][key]["enabled"]
    for name in names
]


def final_outputs():
    """Every table and figure of a full run (optional analyses if enabled), and the provenance record."""
    return (
        expand("<results>/tables/{table}.parquet", table=TABLES + ENABLED_OUTPUTS)
        + expand(
            "<results>/figures/{figure}.{ext}",
            figure=FIGURES + ENABLED_OUTPUTS,
            ext=["png", "pdf"],
        )
        + ["<results>/provenance.json"]
    )


def check_before_jobs(jobs, local):
    """Stop before the first job if an output folder is not writable, or (local runs) the device is absent."""
    from fourier_masks.io import unwritable_folders

    paths = [
        str(f) for job in jobs for f in [*job.output, *job.log, job.benchmark] if f
    ]
    blocked = unwritable_folders(paths)
    if blocked:
        raise InputError(
            f"cannot write the outputs of this run: {', '.join(blocked)} is not a writable folder; make it writable "
            "(or set output_dir to another folder) and rerun. Nothing was changed."
        )
    if local and config["device"] not in ("auto", "cpu"):
        from fourier_masks.device import resolve_device

        resolve_device(config["device"])


onstart:
    with exit_on_input_error():
        check_before_jobs(workflow.dag.needrun_jobs(), workflow.local_exec)


def warn_unconverged(table):
    """At the end of a run, name on the console every mask of ``table`` that is not a converged result."""
    if os.path.isfile(table):
        import pandas as pd
        from fourier_masks.analysis.metrics import convergence_report

        if text := convergence_report(pd.read_parquet(table)):
            print(f"WARNING: {text}", file=sys.stderr)
