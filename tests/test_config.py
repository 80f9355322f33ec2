"""Config validation: the schema, fourier_masks.config.check_config and the workflow's parse-time check."""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from fourier_masks.config import (
    SCHEMA_PATH,
    TEMPLATES_OPT_IN,
    check_config,
    config_hash,
    dataset_memory,
    load_config,
    load_schema,
    read_config_file,
)
from fourier_masks.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "config" / "config.yaml"
CONFIG_FILES = sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "tests" / "configs").glob("*.yaml"))


@pytest.fixture
def default():
    return yaml.safe_load(DEFAULT.read_text())


# --- good configs ------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_pass(path):
    config = load_config(path)
    assert config["reference_model"] in [model["name"] for model in config["models"]]


def test_empty_config_is_the_embedded_default():
    assert check_config({}) == load_config(DEFAULT)


def test_defaults_are_filled_without_changing_the_input(default):
    del default["mask"]["lambda"], default["analysis"]["robust_eval"], default["reference_model"]
    before = copy.deepcopy(default)
    config = check_config(default)
    assert default == before
    assert config["mask"]["lambda"] == 0.05
    assert config["analysis"]["robust_eval"] == {"attack": "pgd", "threat": "per_model", "norm": "linf", "eps": 0.0157,
                                                 "steps": 10, "n_images": 250}
    assert config["analysis"]["random_shuffles"] == 8
    assert config["reference_model"] == "standard"  # null means the first model


def test_reference_model_defaults_to_the_first_model():
    config = check_config({"models": [{"name": "b"}, {"name": "a"}]})
    assert config["reference_model"] == "b"
    assert config["models"][0] == {"name": "b", "source": "train", "regime": "standard", "arch": "small_cnn"}


DATASET_KEYS = {
    "photos": {"name", "image_size", "channels", "n_classes", "n_train", "n_test", "seed"},
    "planted": {"name", "image_size", "channels", "n_classes", "n_train", "n_test", "radius", "orientation",
                "seed", "snr"},
    "cifar10": {"name", "root", "n_train", "n_test", "download", "seed"},
    "cifar100": {"name", "root", "n_train", "n_test", "download", "seed"},
    "imagenet": {"name", "root", "n_test", "n_train", "robustbench_subset", "image_size", "seed"},
    "imagenette": {"name", "root", "classes", "channels", "image_size", "n_train", "n_test", "seed"},
    "folder": {"name", "root", "classes", "resize", "resize_size", "image_size", "channels", "n_train", "n_test",
               "seed"},
}


@pytest.mark.parametrize("name", DATASET_KEYS)
def test_each_dataset_gets_all_its_keys_from_defaults(name):
    dataset = {"name": name, "root": "data/x"} if name == "folder" else {"name": name}
    assert set(check_config({"dataset": dataset})["dataset"]) == DATASET_KEYS[name]


CHECKS = ("chance_check", "expected_accuracy", "accuracy_tolerance")


@pytest.mark.parametrize(
    "model, keys",
    [
        ({"name": "m", "source": "train"}, {"name", "source", "regime", "arch"}),
        ({"name": "m", "source": "robustbench", "zoo_name": "Standard"},
         {"name", "source", "zoo_name", "dataset", "threat_model", "trust_pickle", *CHECKS}),
        ({"name": "m", "source": "checkpoint", "path": "m.pt", "arch": "timm:resnet18"},
         {"name", "source", "path", "url", "sha256", "arch", "arch_kwargs", "python_path", "trust_pickle",
          "num_classes", "input_shape", "mean", "std", *CHECKS}),
        ({"name": "m", "source": "exported", "path": "m.pt2"},
         {"name", "source", "path", "url", "sha256", "num_classes", "input_shape", "mean", "std", *CHECKS}),
    ],
)
def test_each_model_source_gets_all_its_keys_from_defaults(model, keys):
    config = check_config({"dataset": {"name": "cifar10"}, "models": [model]})
    assert set(config["models"][0]) == keys


def test_the_schema_ships_in_the_package_and_the_workflow_checks_once():
    """The schema is package data of fourier_masks.config; check_config is the workflow's one validation."""
    assert Path(str(SCHEMA_PATH)).resolve().is_relative_to(ROOT / "fourier_masks" / "config")
    assert load_schema() == load_schema(str(SCHEMA_PATH))
    rules = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    assert not [path.name for path in rules if "validate(" in path.read_text()]


# --- the schema and the package agree --------------------------------------------------


def _property_schemas(schema, path=""):
    """(dotted path, schema) of every key declared in a ``properties`` map, at any depth."""
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _property_schemas(sub, f"{path}{key}.")
        if isinstance(sub.get("items"), dict):
            yield from _property_schemas(sub["items"], f"{path}{key}[].")


def test_schema_is_valid_and_every_key_has_type_and_description():
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    keys = list(_property_schemas(schema))
    assert len(keys) > 80
    for path, sub in keys:
        assert sub.get("description"), f"{path} has no description"
        assert "type" in sub or "enum" in sub, f"{path} has no type"


def test_a_schema_replaced_with_its_old_time_and_size_is_read_again(tmp_path):
    """The parse cache is keyed by more than modification time and size (``cp -p``, ``rsync -t``)."""
    path, other = tmp_path / "schema.yaml", tmp_path / "other.yaml"
    path.write_text("a: 2\n")
    assert load_schema(path) == {"a": 2}
    other.write_text("a: 3\n")
    os.utime(other, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    os.replace(other, path)
    assert load_schema(path) == {"a": 3}


def test_schema_choices_match_the_package():
    from fourier_masks.data.photos import PHOTOGRAPHS
    from fourier_masks.data.registry import DATASETS
    from fourier_masks.masks.options import MaskOptions
    from fourier_masks.models.networks import ARCHITECTURES
    from fourier_masks.models.regimes import COMMON_SETTINGS, REGIME_SETTINGS, REGIMES
    from fourier_masks.models.zoo import ZOO_CLASSES

    props = load_schema()["properties"]
    dataset, model = props["dataset"], props["models"]["items"]["properties"]
    assert set(dataset["properties"]["name"]["enum"]) == set(DATASETS)
    photos = dataset["allOf"][0]["then"]["properties"]["n_classes"]
    assert photos["maximum"] == len(PHOTOGRAPHS)
    assert tuple(model["regime"]["enum"]) == REGIMES
    assert model["arch"]["anyOf"][0]["enum"] == list(ARCHITECTURES)
    assert set(model["dataset"]["enum"]) - {None} == set(ZOO_CLASSES)
    read = set(COMMON_SETTINGS).union(*REGIME_SETTINGS.values())
    assert read == set(props["training"]["properties"]), "every training key is read by some regime"
    pipeline_only = {"fit_split", "fit_images", "vectorize_seeds", "eval_batch_size", "require_converged"}
    assert set(props["mask"]["properties"]) - pipeline_only == set(MaskOptions.config_keys()) - {"device"}


# --- bad configs ---------------------------------------------------------------------------


def test_pgd_steps_with_the_one_step_attack_are_refused():
    """fgsm_rs takes one step: steps given beside it would be accepted and ignored."""
    with pytest.raises(InputError, match=r"training.pgd_l2.steps given, but training.attack = 'fgsm_rs'"):
        check_config({"training": {"pgd_l2": {"eps": 0.5, "steps": 7}}})
    assert check_config({"training": {"attack": "pgd", "pgd_l2": {"steps": 7}}})["training"]["pgd_l2"]["steps"] == 7


def test_each_regime_gets_only_the_training_settings_it_reads():
    from fourier_masks.models.regimes import regime_settings

    training = check_config({"training": {"attack": "pgd"}})["training"]
    assert "pgd_linf" not in regime_settings(training, "standard")
    assert "attack" not in regime_settings(training, "noise")
    assert regime_settings(training, "adv_l2")["pgd_l2"] == {"eps": 0.5, "steps": 4}
    one_step = check_config({})["training"]
    assert regime_settings(one_step, "adv_l2")["pgd_l2"] == {"eps": 0.5}
    assert regime_settings(one_step, "rotate") == {**{key: one_step[key] for key in
                                                      ("epochs", "batch_size", "lr", "seed")},
                                                   "rotate": 180}


def _parent(config, path):
    """The container holding the last part of the dotted ``path`` (``models.1.regime``), and that part."""
    *parents, last = path.split(".")
    for part in parents:
        config = config[int(part)] if isinstance(config, list) else config.setdefault(part, {})
    return config, int(last) if isinstance(config, list) else last


def _set(path, value):
    """Mutation setting the dotted ``path`` of the config to ``value``."""
    def mutate(config):
        parent, key = _parent(config, path)
        parent[key] = value
    return mutate


def _drop(path):
    """Mutation deleting the dotted ``path`` of the config."""
    def mutate(config):
        parent, key = _parent(config, path)
        del parent[key]
    return mutate


def _models(*models, dataset=None, reference=None):
    """Mutation replacing the model list (and the dataset, reference model)."""
    def mutate(config):
        config["models"] = list(models)
        config["reference_model"] = reference or models[0]["name"]
        if dataset:
            config["dataset"] = dataset
    return mutate


CIFAR = {"name": "cifar10"}
RB = {"name": "rb", "source": "robustbench", "zoo_name": "Standard"}
CK = {"name": "ck", "source": "checkpoint", "path": "m.pt", "arch": "resnet8"}
PLANTED = {"name": "planted", "image_size": 16}

BAD = [
    # unknown keys, at several levels, with the suggestion
    ("typo-top", _set("devise", "cpu"), ["devise: unknown key; did you mean device?"]),
    ("typo-mask", _set("mask.lamda", 0.1), ["mask.lamda: unknown key; did you mean mask.lambda?"]),
    ("typo-nested", _set("training.pgd_linf.epss", 0.1),
     ["training.pgd_linf.epss: unknown key; did you mean training.pgd_linf.eps?"]),
    ("typo-deep", _set("analysis.robust_eval.n_image", 9),
     ["analysis.robust_eval.n_image: unknown key; did you mean analysis.robust_eval.n_images?"]),
    ("typo-model", _set("models.2.regim", "noise"), ["models[2].regim: unknown key; did you mean models[2].regime?"]),
    ("typo-dataset", _set("dataset.n_clases", 3), ["dataset.n_clases: unknown key; did you mean dataset.n_classes?"]),
    ("typo-stats", _set("analysis.statistics.bootstraps", 9), ["did you mean analysis.statistics.bootstrap?"]),
    ("typo-case", _set("Mask", {}), ["Mask: unknown key; did you mean mask?"]),
    ("key-of-other-dataset", _set("dataset.root", "x"), ["dataset.root: not used when dataset.name = 'photos'"]),
    ("key-of-other-source", _models({**RB, "regime": "standard"}, dataset=CIFAR),
     ["models[0].regime: not used when models[0].source = 'robustbench'"]),
    ("mask-device", _set("mask.device", "cpu"), ["mask.device: unknown key"]),
    # wrong types
    ("section-not-mapping", _set("mask", 5), ["mask = 5 has the wrong type; it must be object"]),
    ("string-int", _set("training.epochs", "ten"), ["training.epochs = 'ten' has the wrong type"]),
    ("float-int", _set("mask.epochs", 2.5), ["mask.epochs = 2.5 has the wrong type"]),
    ("string-bool", _set("offline", "no"), ["offline = 'no' has the wrong type; it must be boolean"]),
    ("string-bool-nested", _set("analysis.single_image.enabled", "yes"), ["analysis.single_image.enabled = 'yes'"]),
    ("model-not-mapping", _set("models.0", "standard"), ["models[0] = 'standard' has the wrong type"]),
    # models
    ("empty-models", _set("models", []), ["models = [] has too few items"]),
    ("duplicate-names", lambda c: c["models"].append(dict(c["models"][0])),
     ["models[7].name = 'standard' repeats models[0].name"]),
    ("missing-name", _drop("models.1.name"), ["models[1].name is missing"]),
    ("name-space", _set("models.1.name", "adv linf"), ["models[1].name = 'adv linf' is not allowed"]),
    ("name-slash", _set("models.1.name", "adv/linf"), ["models[1].name = 'adv/linf'"]),
    ("reference-not-model", _set("reference_model", "standrd"),
     ["reference_model = 'standrd' is not the name of a model", "Did you mean 'standard'?"]),
    ("retrain-unknown-model", _set("analysis.retrain.models", ["adv_lnf"]),
     ["analysis.retrain.models[0] = 'adv_lnf' is not a model with source: train", "Did you mean 'adv_linf'?"]),
    ("unknown-source", _set("models.1.source", "zoo"), ["models[1].source = 'zoo' is not allowed"]),
    ("unknown-regime", _set("models.1.regime", "adv_lnf"),
     ["models[1].regime = 'adv_lnf'", "Did you mean 'adv_linf'?"]),
    ("unknown-arch", _set("models.0.arch", "smallcnn"), ["models[0].arch = 'smallcnn'", "Did you mean 'small_cnn'?"]),
    ("arch-empty-family-name", _set("models.0.arch", "torchvision:"), ["models[0].arch = 'torchvision:'"]),
    ("robustbench-on-photos", _models(RB), ["models[0].source = 'robustbench' needs dataset.name"]),
    ("robustbench-no-zoo-name", _models({"name": "rb", "source": "robustbench"}, dataset=CIFAR),
     ["models[0].zoo_name is missing"]),
    ("robustbench-other-dataset", _models({**RB, "dataset": "cifar100"}, dataset=CIFAR),
     ["models[0].dataset = 'cifar100' differs from dataset.name = 'cifar10'"]),
    ("robustbench-threat", _models({**RB, "threat_model": "linf"}, dataset=CIFAR),
     ["models[0].threat_model = 'linf'", "Did you mean 'Linf'?"]),
    ("checkpoint-no-path", _models({k: v for k, v in CK.items() if k != "path"}),
     ["models[0] needs exactly one of path (a local model file) and url", "it sets neither"]),
    ("checkpoint-mean-length", _models({**CK, "mean": [0.5], "std": [0.2]}),
     ["models[0].mean = [0.5] needs one value per input channel (3"]),
    ("checkpoint-path-and-url", _models({**CK, "url": "https://x.org/m.pt", "sha256": "0" * 64}),
     ["models[0] needs exactly one of path (a local model file) and url"]),
    # seeds
    ("seeds-empty", _set("seeds", []), ["seeds = [] has too few items"]),
    ("seed-float", _set("seeds", [1, 2.0]), ["seeds[1] = 2.0 has the wrong type; it must be integer"]),
    ("seed-fraction", _set("seeds", [1, 2.5]), ["seeds[1] = 2.5 has the wrong type"]),
    ("seed-bool", _set("seeds", [True, 2]), ["seeds[0] = true has the wrong type"]),
    ("seed-duplicate", _set("seeds", [1, 2, 1]), ["seeds = [1, 2, 1] repeats 1"]),
    ("seed-negative", _set("seeds", [-1]), ["seeds[0] = -1 is out of range; it must be >= 0"]),
    ("seeds-string", _set("seeds", "1,2"), ["seeds = '1,2' has the wrong type; it must be array"]),
    # numbers and choices
    ("negative-lambda", _set("mask.lambda", -0.1), ["mask.lambda = -0.1 is out of range; it must be >= 0"]),
    ("negative-epochs", _set("training.epochs", -1), ["training.epochs = -1 is out of range; it must be >= 1"]),
    ("negative-fit-images", _set("mask.fit_images", -1), ["mask.fit_images = -1 is out of range"]),
    ("keep-threshold", _set("mask.keep_threshold", 1.5),
     ["mask.keep_threshold = 1.5 is out of range; it must be <= 1"]),
    ("bad-loss", _set("mask.loss", "papr"), ["mask.loss = 'papr' is not allowed", "Did you mean 'paper'?"]),
    ("bad-fit-split", _set("mask.fit_split", "val"), ["mask.fit_split = 'val' is not allowed"]),
    ("bad-amp", _set("mask.amp", "yes"), ["mask.amp = 'yes' is not allowed"]),
    ("bad-norm", _set("analysis.robust_eval.norm", "L2"), ["analysis.robust_eval.norm = 'L2'"]),
    ("bad-device", _set("device", "gpu"), ["device = 'gpu' is not allowed"]),
    ("bad-device-index", _set("device", "cuda:x"), ["device = 'cuda:x'"]),
    ("translate-too-big", _set("training.translate", 2), ["training.translate = 2 is out of range"]),
    # dataset
    ("unknown-dataset", _set("dataset", {"name": "cifar"}), ["dataset.name = 'cifar'", "Did you mean 'cifar10'?"]),
    ("too-many-classes", _set("dataset.n_classes", 18), ["dataset.n_classes = 18 is out of range; it must be <= 17"]),
    ("too-few-classes", _set("dataset.n_classes", 1), ["dataset.n_classes = 1 is out of range; it must be >= 2"]),
    ("bad-channels", _set("dataset.channels", 2), ["dataset.channels = 2 is not allowed; use 1 or 3."]),
    ("folder-no-root", _set("dataset", {"name": "folder"}), ["dataset.root is missing"]),
    ("radius-backwards", _set("dataset", {**PLANTED, "radius": [8, 4]}),
     ["dataset.radius = [8, 4] is backwards; it needs lo < hi"]),
    ("radius-empty", _set("dataset", {**PLANTED, "radius": [4, 4]}), ["dataset.radius = [4, 4] is empty"]),
    ("radius-outside", _set("dataset", {**PLANTED, "radius": [4, 12]}), ["dataset.radius = [4, 12] reaches beyond"]),
    ("radius-one-value", _set("dataset", {**PLANTED, "radius": [4]}), ["dataset.radius = [4] has too few items"]),
    ("orientation-backwards", _set("dataset", {**PLANTED, "orientation": [90, 10]}),
     ["dataset.orientation = [90, 10] is backwards"]),
    ("orientation-range", _set("dataset", {**PLANTED, "orientation": [0, 400]}),
     ["dataset.orientation[1] = 400 is out of range; it must be <= 360"]),
    ("scale-backwards", _set("training.scale", [1.5, 0.5]), ["training.scale = [1.5, 0.5] is backwards"]),
    ("controls-switch-removed", _set("analysis.controls", False), ["analysis.controls: unknown key"]),
    # NaN and infinities (YAML .nan, .inf) in every kind of number
    ("nan-keep-threshold", _set("mask.keep_threshold", float("nan")),
     ["mask.keep_threshold = nan is not a finite number"]),
    ("inf-training-lr", _set("training.lr", float("inf")), ["training.lr = inf is not a finite number"]),
    ("nan-mask-lr", _set("mask.lr", float("nan")), ["mask.lr = nan is not a finite number"]),
    ("minus-inf-norm", _set("analysis.fourier_heatmap.norm", float("-inf")),
     ["analysis.fourier_heatmap.norm = -inf is not a finite number"]),
    ("nan-lambda", _set("mask.lambda", float("nan")), ["mask.lambda = nan is not a finite number"]),
    ("nan-tolerance", _set("mask.tolerance", float("nan")), ["mask.tolerance = nan"]),
    ("nan-eps", _set("training.pgd_linf.eps", float("nan")), ["training.pgd_linf.eps = nan"]),
    ("inf-rotate", _set("training.rotate", float("inf")), ["training.rotate = inf is not a finite number"]),
    ("nan-in-scale", _set("training.scale", [float("nan"), 1.0]), ["training.scale[0] = nan is not a finite"]),
    ("nan-radius", _set("dataset", {**PLANTED, "radius": [float("nan"), 4]}), ["dataset.radius[0] = nan"]),
    ("nan-snr", _set("dataset", {**PLANTED, "snr": float("nan")}), ["dataset.snr = nan is not a finite number"]),
    ("inf-snr", _set("dataset", {**PLANTED, "snr": float("inf")}), ["dataset.snr = inf is not a finite number"]),
    ("nan-checkpoint-std", _models({**CK, "mean": [0.5] * 3, "std": [0.2, float("nan"), 0.2]}),
     ["models[0].std[1] = nan is not a finite number"]),
    ("beyond-float32", _set("mask.lr", 1e308), ["mask.lr = 1e+308 is not a finite number", "at most 3.4e38"]),
    ("huge-int-as-number", _set("mask.lr", 10**400), ["mask.lr = 100000000000... (401 digits) is not a finite number"]),
    # integers beyond 64 bits
    ("seed-beyond-64-bits", _set("seeds", [1, 2**64]),
     ["seeds[1] = 18446744073709551616 does not fit in a signed 64-bit integer"]),
    ("seed-2-63", _set("seeds", [2**63]), ["seeds[0] = 9223372036854775808 does not fit"]),
    ("training-seed-huge", _set("training.seed", 2**70), ["training.seed = 1180591620717411303424 does not fit"]),
    ("dataset-seed-huge", _set("dataset.seed", -(2**63) - 1), ["dataset.seed = -9223372036854775809 does not fit"]),
    ("epochs-huge", _set("mask.epochs", 10**30), ["mask.epochs = 1000000000000000000000000000000 does not fit"]),
    # sizes that cannot work
    ("n-test-below-classes", _set("dataset.n_test", 9),
     ["dataset.n_test = 9 is smaller than dataset.n_classes = 10"]),
    ("n-train-below-classes", _set("dataset.n_train", 3),
     ["dataset.n_train = 3 is smaller than dataset.n_classes = 10"]),
    ("planted-n-test-below-classes", _set("dataset", {**PLANTED, "n_test": 3}),
     ["dataset.n_test = 3 is smaller than dataset.n_classes = 4"]),
    ("cifar-n-train-beyond-the-split", _set("dataset", {"name": "cifar100", "n_train": 60000}),
     ["dataset.n_train = 60000 is out of range; it must be <= 50000"]),
    ("cifar-n-test-beyond-the-split", _set("dataset", {"name": "cifar10", "n_test": 10001}),
     ["dataset.n_test = 10001 is out of range; it must be <= 10000"]),
    ("planted-image-size-beyond-memory", _set("dataset", {"name": "planted", "image_size": 4096}),
     ["dataset.image_size = 4096 with dataset.n_train = 2000 and dataset.n_test = 500 needs about 1500.0 GiB",
      "2000 planted images generated in float64", "more than this machine's"]),
    ("photos-image-size-beyond-memory", _set("dataset.image_size", 8192),
     ["dataset.image_size = 8192", "4500 images held as float32"]),
    ("imagenet-beyond-memory", _set("dataset", {"name": "imagenet", "image_size": 8192}),
     ["dataset.image_size = 8192 with dataset.n_train = 0 and dataset.n_test = 5000"]),
    # model names
    ("name-300-characters", _set("models.1.name", "a" * 300),
     ["models[1].name = 'aaaa", "is 300 characters long; at most 64"]),
    ("name-65-characters", _set("models.1.name", "adv" + "x1" * 31), ["is 65 characters long; at most 64"]),
    ("name-case-duplicate", _set("models.1.name", "Standard"),
     ["models[1].name = 'Standard' repeats models[0].name = 'standard' (compared ignoring case)"]),
    ("name-periodic", _set("models.1.name", "x_" + "ab" * 25),
     ["models[1].name = 'x_abab", "ends in 'ab' repeated 25 times; Snakemake refuses such names"]),
    ("name-trailing-newline", _set("models.1.name", "adv_linf\n"), ["models[1].name = 'adv_linf\\n' is not allowed"]),
    ("device-trailing-newline", _set("device", "cpu\n"), ["device = 'cpu\\n' is not allowed"]),
    ("arch-trailing-newline", _models({**CK, "arch": "timm:resnet18\n"}), ["models[0].arch = 'timm:resnet18\\n'"]),
    ("key-not-a-name", lambda c: c["mask"].update({1: 2}), ["mask has the key 1, which is not a name"]),
    ("key-null", lambda c: c.update({None: 1}), ["the top level has the key None, which is not a name"]),
    ("name-one-letter-repeated", _set("models.1.name", "adv_" + "l" * 20), ["ends in 'l' repeated 20 times"]),
]


def test_bad_table_is_large_and_unique():
    ids = [case[0] for case in BAD]
    assert len(ids) >= 90 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("mutate, expected", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_config_names_the_key(default, mutate, expected):
    mutate(default)
    with pytest.raises(InputError) as caught:
        check_config(default)
    message = str(caught.value)
    assert message.startswith("Invalid config: ")
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_config_must_be_a_mapping():
    with pytest.raises(InputError, match="Invalid config: the config must be a mapping"):
        check_config([1, 2])


# --- files and hashes ----------------------------------------------------------------------


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seeds: [1, 2\nmask:\n  lambda: 0.2\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith("Invalid config: ") and str(path) in message and "line " in message


def test_missing_file_empty_file_and_list_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="list.yaml must hold a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert load_config(tmp_path / "empty.yaml") == check_config({})


@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("seeds: [1]\nmask:\n  lambda: 0.1\n  lr: 0.05\n  lambda: 0.2\n", "lambda", (3, 5)),
        ("device: cpu\nseeds: [1]\ndevice: cuda\n", "device", (1, 3)),
        ("models:\n  - {name: a, source: train, name: b}\n", "name", (2, 2)),
        ("mask: {lr: 0.1}\nmask: {lambda: 0.2}\n", "mask", (1, 2)),
        ('{"seeds": [1], "offline": true, "seeds": [2]}\n', "seeds", (1, 1)),
    ],
    ids=["nested", "top-level", "flow-mapping-in-list", "section", "json"],
)
def test_duplicate_keys_name_the_key_and_both_lines(tmp_path, text, key, lines):
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith("Invalid config: ") and str(path) in message
    assert f"key {key!r} is given twice, at line {lines[0]} and at line {lines[1]}" in message


def test_json_that_yaml_cannot_read_is_read_as_json(tmp_path):
    path = tmp_path / "tabs.json"
    path.write_text('{\n\t"seeds": [5, 6],\n\t"device": "cpu"\n}\n')
    assert load_config(path)["seeds"] == [5, 6]
    path.write_text('{\n\t"seeds": [5],\n\t"seeds": [6]\n}\n')
    with pytest.raises(InputError, match="key 'seeds' is given twice in one object"):
        load_config(path)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("seeds: " + "[" * 3000 + "]" * 3000 + "\n", "nests lists or mappings too deeply"),
        ('{"seeds": ' + "[" * 3000 + "]" * 3000 + "}", "nests lists or mappings too deeply"),
        ("a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
         + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 6)), "expands to more than"),
        (bytes(range(256)), "cannot be read as UTF-8 text"),
        (None, "is a folder, not a file"),
    ],
    ids=["deep-yaml", "deep-json", "alias-bomb", "binary", "folder"],
)
def test_hostile_config_files_are_refused_quickly(tmp_path, content, expected):
    path = tmp_path / "hostile.yaml"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value).startswith("Invalid config: ") and str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {lr: 0.1, epochs: 2}\n")
    assert read_config_file(path) == {"base": {"lr": 0.1, "epochs": 2}}
    path.write_text("mask:\n  <<: {lr: 0.1, epochs: 2}\n  epochs: 3\n")
    assert load_config(path)["mask"]["epochs"] == 3 and load_config(path)["mask"]["lr"] == 0.1


def _payload(marker: Path) -> str:
    """Python that, if anything evaluates it, writes ``marker``."""
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"


def test_yte_template_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "template.yaml"
    path.write_text(f'__use_yte__: true\ndevice: ?{_payload(marker)} and "cpu"\n')
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "__use_yte__" in message and TEMPLATES_OPT_IN in message
    assert not marker.exists()
    # The opt-in lets the file through (Snakemake evaluates it); this loader still runs nothing.
    assert read_config_file(path, templates_allowed=True)["device"].startswith("?__import__")
    assert not marker.exists()


def test_yte_switched_off_is_plain_yaml(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("__use_yte__: false\nseeds: [4]\n")
    assert load_config(path)["seeds"] == [4]


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/name:os.system", "!!python/module:os"])
def test_python_tags_are_refused_without_running_them(tmp_path, tag):
    marker = tmp_path / "MARKER"
    path = tmp_path / "tagged.yaml"
    path.write_text(f"device: {tag} [\"touch {marker}\"]\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and "only plain values are allowed" in str(caught.value)
    assert not marker.exists()


def test_command_line_check_runs_no_code_and_merges_like_snakemake(tmp_path):
    marker = tmp_path / "MARKER"
    (tmp_path / "template.yaml").write_text(f"__use_yte__: true\nseeds: ?[{_payload(marker)}]\n")
    (tmp_path / "models.yaml").write_text("models: [{name: a}, {name: b}]\nreference_model: b\n")
    (tmp_path / "more.yaml").write_text("mask: {lr: 0.01}\n")
    check = [sys.executable, "-m", "fourier_masks.config"]
    refused = subprocess.run([*check, "template.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "template.yaml sets __use_yte__: true" in refused.stderr
    assert "Traceback" not in refused.stderr and not marker.exists()
    merged = subprocess.run([*check, "models.yaml", "more.yaml"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert merged.returncode == 0, merged.stderr
    (tmp_path / "bad.yaml").write_text("reference_model: c\n")
    wrong = subprocess.run([*check, "models.yaml", "bad.yaml"], cwd=tmp_path, capture_output=True, text=True,
                           check=False)
    assert wrong.returncode == 1 and "reference_model = 'c' is not the name of a model" in wrong.stderr


def test_refused_model_names_are_those_snakemake_cannot_match():
    """Our rule against periodic names agrees with Snakemake's own detector (the oracle)."""
    from snakemake.io import PeriodicityDetector

    detector = PeriodicityDetector()
    names = ["standard", "adv_linf", "a" * 19, "a" * 20, "x_" + "ab" * 19, "x_" + "ab" * 20, "abc" * 20,
             "ab" * 10 + "c", "l" * 25 + "x", "m" + "1" * 21, "resnet18_" + "ab12" * 13]
    for name in names:
        config = {"models": [{"name": "ref"}, {"name": name}]}
        try:
            check_config(config)
            refused = False
        except InputError as error:
            assert "Snakemake refuses such names" in str(error)
            refused = True
        assert refused == (detector.is_periodic(name) is not None), name


def test_dataset_memory_counts_float32_copies_and_planted_generation():
    photos = check_config({})["dataset"]
    assert dataset_memory(photos)[0] == (photos["n_train"] + photos["n_test"]) * 3 * 32 * 32 * 4
    planted = check_config({"dataset": {"name": "planted", "image_size": 64}})["dataset"]
    assert dataset_memory(planted)[0] == 2000 * 64 * 64 * 48
    assert dataset_memory(check_config({"dataset": CIFAR})["dataset"]) == (0, "")
    small = {"dataset": {"name": "planted", "image_size": 64}}
    with pytest.raises(InputError, match="more than this machine's 0.2 GiB"):
        check_config(small, memory=2**28)
    assert check_config(small, memory=2**30)["dataset"]["image_size"] == 64


def test_config_hash_is_canonical(default):
    digest = config_hash(default)
    assert re.fullmatch(r"[0-9a-f]{64}", digest), digest
    assert config_hash(dict(reversed(list(default.items())))) == digest
    default["mask"]["lambda"] = 0.21
    assert config_hash(default) != digest


# --- the workflow stops at parse time --------------------------------------------------------


def _dry_run(tmp_path, text):
    """``snakemake -n`` of the real Snakefile with the extra config ``text``; (returncode, output)."""
    snakemake = shutil.which("snakemake", path=str(Path(sys.executable).parent))
    (tmp_path / "bad.yaml").write_text(text)
    result = subprocess.run(
        [snakemake, "-n", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile", "bad.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.slow
def test_dry_run_stops_before_any_job_on_a_cross_key_error(tmp_path):
    code, output = _dry_run(tmp_path, "reference_model: standrd\n")
    assert code != 0
    assert "Invalid config: reference_model = 'standrd' is not the name of a model" in output
    assert "Job stats" not in output and not (tmp_path / "results").exists()
    assert "Traceback" not in output and 'File "' not in output


@pytest.mark.slow
def test_dry_run_reports_a_typo_with_its_suggestion(tmp_path):
    code, output = _dry_run(tmp_path, "mask:\n  lamda: 0.1\n")
    assert code != 0
    assert "Invalid config: mask.lamda: unknown key; did you mean mask.lambda?" in output
    assert "Job stats" not in output


def test_too_many_seeds_are_refused_in_a_short_paragraph():
    """20 000 seeds would take Snakemake about an hour to plan: refused at once, the list cut short."""
    with pytest.raises(InputError) as caught:
        check_config({"seeds": list(range(20_000))})
    message = str(caught.value)
    assert "seeds = [0, 1, 2" in message and "20000 items) has too many items; it allows at most 500" in message
    assert len(message) < 800
