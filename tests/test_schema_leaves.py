"""Every key of the config schema is read, and every param a rule passes reaches its script.

A key that is accepted and ignored gives silently wrong results. For each leaf of
fourier_masks/config/config.schema.yaml the test changes that one value, in a small config that
allows it, and builds the job graph in-process with Snakemake's API before and after: some
job must get other inputs, outputs or params. That is what Snakemake's rerun triggers
compare with the record of a finished run, so the change would rerun that job
(test_workflow.py shows it with dry runs after a real run). The provenance job is left out
of the comparison: it records the whole config, so it would hide an ignored key.
"""

import ast
import copy
import functools
import hashlib
import math
from pathlib import Path

import pytest
import yaml
from runs import REPO, TINY

from fourier_masks.config import check_config, load_schema
from fourier_masks.models.regimes import REGIMES

SCRIPTS = REPO / "workflow" / "scripts"
# Rules whose params record the config as a whole rather than read keys of it.
WHOLE_CONFIG_RULES = {"provenance"}
# Keys read at parse time only, that no job's inputs, outputs or params show: none so far.
# An entry names the key and why, e.g. ("offline",): "refuses a run with missing files".
READ_AT_PARSE_TIME: dict[tuple, str] = {}


def schema_leaves(node: dict, path: tuple = ()) -> list[tuple]:
    """Dotted paths of the schema's leaves (``[]`` stands for an item of an array of objects)."""
    if "properties" in node:
        return [leaf for key, child in node["properties"].items() for leaf in schema_leaves(child, (*path, key))]
    if "properties" in node.get("items", {}):
        return schema_leaves(node["items"], (*path, "[]"))
    return [path]


def leaf_schema(path: tuple) -> dict:
    node = load_schema()
    for key in path:
        node = node["items"] if key == "[]" else node["properties"][key]
    return node


# Small configs that allow every leaf between them (the key's variant picks one).
def _tiny(**changes):
    config = yaml.safe_load(TINY.read_text())
    config["analysis"]["single_image"] = {"enabled": True}  # every optional analysis on
    config.update(changes)
    return config


#: The class folders the imagenette variant's dataset.classes names (its default, the paper's five).
IMAGENETTE_CLASSES = ("n02102040", "n03000684", "n03028079", "n03394916", "n03417042")


def variants(files: Path) -> tuple[dict, dict]:
    """The configs by name, and the values of the leaves that name files (in ``files``)."""
    own, other = files / "own.pt", files / "other.pt"
    for path in (own, other):
        path.write_bytes(path.name.encode())  # not read while the graph is built
    imagenette = [f"imagenette/{split}/{wnid}" for split in ("train", "val") for wnid in IMAGENETTE_CLASSES]
    for folder in ("cifar", "cifar_copy", "imagenet/val", *imagenette, "folder/train", "folder/test"):
        (files / folder).mkdir(parents=True)
    cifar = {"name": "cifar10", "root": str(files / "cifar"), "n_train": 100, "n_test": 50, "download": False}
    tiny = _tiny()
    checkpoint = {"name": "own", "source": "checkpoint", "arch": "small_cnn", "path": str(own)}
    file_values = {
        ("dataset", "root"): str(files / "cifar_copy"),
        ("models", "[]", "path"): str(other),
        ("models", "[]", "url"): other.as_uri(),
        ("models", "[]", "sha256"): hashlib.sha256(own.read_bytes()).hexdigest(),
    }
    return {
        "tiny": tiny,
        "planted": _tiny(dataset={"name": "planted", "image_size": 16, "n_classes": 3, "n_train": 120, "n_test": 60}),
        "regimes": _tiny(models=[{"name": regime, "source": "train", "regime": regime, "arch": "small_cnn"}
                                 for regime in REGIMES],  # steps left to the schema: attack may become fgsm_rs
                         training={**tiny["training"], "pgd_linf": {"eps": 0.0157}}),
        "cifar10": _tiny(dataset=cifar),
        "imagenet": _tiny(dataset={"name": "imagenet", "root": str(files / "imagenet"), "n_test": 20,
                                   "image_size": 32}),
        "imagenette": _tiny(dataset={"name": "imagenette", "root": str(files / "imagenette"), "image_size": 32}),
        "folder": _tiny(dataset={"name": "folder", "root": str(files / "folder"), "image_size": 16,
                                 "channels": 1}),
        "checkpoint": _tiny(models=[*tiny["models"], {**checkpoint, "mean": [0.5], "std": [0.25]}]),
        "import": _tiny(models=[*tiny["models"], {**checkpoint, "arch": "import:mine.nets:small",
                                                  "python_path": ["lib"]}]),
        "url": _tiny(models=[*tiny["models"], {**checkpoint, "path": None, "url": own.as_uri(),
                                               "sha256": file_values[("models", "[]", "sha256")]}]),
        "torchscript": _tiny(models=[*tiny["models"], {"name": "own", "source": "torchscript", "path": str(own)}]),
        "onecycle": _tiny(mask={**tiny["mask"], "schedule": "onecycle"}),  # the schedule that reads warmup
        "gpu": _tiny(device="auto"),  # under device: cpu no job asks for a GPU
        "robustbench": _tiny(dataset=cifar, models=[*tiny["models"], {"name": "rb", "source": "robustbench",
                                                                      "zoo_name": "Standard"}]),
    }, file_values


# The variant each leaf is changed in (default: tiny) and, where the schema does not give
# another valid value (enum, boolean, number), the value it is changed to.
MODEL_VARIANT = {"regime": "tiny", "name": "tiny", "zoo_name": "robustbench", "dataset": "robustbench",
                 "threat_model": "robustbench", "url": "url", "source": "torchscript", "python_path": "import"}
DATASET_VARIANT = {"radius": "planted", "orientation": "planted", "snr": "planted", "root": "cifar10",
                   "download": "cifar10", "robustbench_subset": "imagenet", "classes": "imagenette",
                   "resize": "folder", "resize_size": "folder"}
VALUES = {
    ("device",): "auto",
    ("output_dir",): "elsewhere",
    ("seeds",): [1, 3],
    ("reference_model",): "adv_linf",
    ("dataset", "radius"): [4.0, 7.0],
    ("dataset", "orientation"): [0.0, 90.0],
    ("dataset", "classes"): ["n02102040", "n03000684"],
    ("dataset", "resize_size"): 20,
    ("training", "scale"): [0.6, 1.5],
    ("models", "[]", "name"): "renamed",
    ("models", "[]", "source"): "exported",
    ("models", "[]", "arch"): "resnet8",
    ("models", "[]", "arch_kwargs"): {"width": 8},
    ("models", "[]", "python_path"): ["lib", "more"],
    ("models", "[]", "zoo_name"): "Carmon2019Unlabeled",
    ("models", "[]", "expected_accuracy"): 0.5,
    ("models", "[]", "num_classes"): 3,
    ("models", "[]", "input_shape"): [1, 16, 16],
    ("models", "[]", "mean"): [0.4],
    ("models", "[]", "std"): [0.3],
    ("analysis", "retrain", "models"): ["adv_linf"],
}


def variant_of(path: tuple) -> str:
    if path == ("offline",):
        return "checkpoint"  # offline: a model file is staged, not downloaded
    if path == ("mask", "warmup"):
        return "onecycle"
    if path == ("analysis", "robust_eval", "threat"):
        return "robustbench"  # only a zoo entry has a threat model of its own
    if path[0] == "cluster":
        return "gpu"
    if path[0] == "models":
        return MODEL_VARIANT.get(path[-1], "checkpoint")
    if path[0] == "dataset":
        return DATASET_VARIANT.get(path[-1], "tiny")
    if path[0] == "training":
        return "regimes"  # each regime's keys reach its own models' jobs only
    return "tiny"


def get(config, path: tuple):
    for key in path:
        config = config[-1 if key == "[]" else key]  # a model key: the last (acquired) entry
    return config


def changed(config: dict, path: tuple, value) -> dict:
    config = copy.deepcopy(config)
    parent = config
    for key in path[:-1]:
        parent = parent[-1] if key == "[]" else parent.setdefault(key, {})
    parent[path[-1]] = value
    return config


def other_value(path: tuple, current, values: dict):
    """A valid value other than ``current`` for the leaf ``path`` (``values``, or from its schema)."""
    if path in values:
        return values[path]
    schema = leaf_schema(path)
    others = [value for value in schema.get("enum", []) if value not in (current, None)]
    if others:
        return others[0]
    if schema.get("type") == "boolean":
        return not current
    if schema.get("type") in ("integer", "number") and current is not None:
        step = 1 if schema["type"] == "integer" else 0.01
        top = min(schema.get("maximum", math.inf), schema.get("exclusiveMaximum", math.inf) - step / 2)
        return current + step if current + step <= top else current - step
    raise AssertionError(f"add a value for {'.'.join(path)} to VALUES (its schema gives none)")


def job_graph(config: dict, workdir: Path) -> dict:
    """``{(rule, outputs): (inputs, params as Snakemake records them)}`` of every job of a run of ``config``."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, Quietness, ResourceSettings

    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile",
                                    config_settings=ConfigSettings(configfiles=[path]), workdir=workdir)
        workflow_api.dag(DAGSettings())
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        # persistence._params is what the params trigger compares with a finished run's record; the
        # GPU request (cluster.gpu_request) reaches a job as its resources
        return {(job.rule.name, tuple(sorted(job.output))): (tuple(sorted(job.input)),
                                                             tuple(workflow.persistence._params(job)),
                                                             requested(job), job)
                for job in workflow.dag.jobs}


def requested(job) -> tuple:
    """The GPU a job asks for, as ``(resource, value)`` pairs."""
    return tuple((key, job.resources.get(key)) for key in ("gpu", "gres") if job.resources.get(key))


def differences(before: dict, after: dict) -> list[str]:
    """Jobs (other than WHOLE_CONFIG_RULES) that are new, gone, or get other inputs, params or GPU requests."""
    keys = {key for key in before.keys() | after.keys() if key[0] not in WHOLE_CONFIG_RULES}
    return sorted(key[0] for key in keys if before.get(key, (None,) * 4)[:3] != after.get(key, (None,) * 4)[:3])


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """``{variant: (config, its job graph)}``, the values to change leaves to, and a working directory."""
    files, workdir = tmp_path_factory.mktemp("files"), tmp_path_factory.mktemp("workdir")
    for folder in ("lib", "more"):  # the python_path folders of the import variant, in the working directory
        (workdir / folder).mkdir()
    configs, file_values = variants(files)
    baselines = {name: (config, job_graph(config, workdir)) for name, config in configs.items()}
    return baselines, {**VALUES, **file_values}, workdir


LEAVES = schema_leaves(load_schema())


def test_the_walk_finds_every_section():
    assert {leaf[0] for leaf in LEAVES} == set(load_schema()["properties"])
    assert ("analysis", "statistics", "bootstrap") in LEAVES and ("models", "[]", "zoo_name") in LEAVES


def test_every_schema_leaf_changes_a_job(graphs):
    baselines, values, workdir = graphs
    unread, problems = [], []
    for path in LEAVES:
        dotted = ".".join(path)
        if path in READ_AT_PARSE_TIME:
            continue
        config, before = baselines[variant_of(path)]
        current = get(check_config(copy.deepcopy(config), memory=None), path)
        try:
            after = job_graph(changed(config, path, other_value(path, current, values)), workdir)
        except (Exception, SystemExit) as error:  # an invalid change: the case must be fixed
            problems.append(f"{dotted}: {type(error).__name__} {error}")
            continue
        if not differences(before, after):
            unread.append(dotted)
    assert not problems, "changing these keys gave no valid config:\n" + "\n".join(problems)
    assert not unread, f"no job reads these config keys (accepted and ignored): {unread}"


def _names(node) -> str:
    """``snakemake.params`` for the expression ``snakemake.params`` (dotted names), else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_names(node.value)}.{node.attr}"
    return ""


@functools.cache
def reads(path: str, of: str) -> frozenset[str]:
    """Keys a script reads from an object whose dotted name ends in ``of`` (``params`` or
    ``settings``): ``x.key`` and ``x["key"]`` in its code (comments and docstrings do not count)."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Attribute) and _names(node.value).split(".")[-1] == of:
            found.add(node.attr)
        elif (isinstance(node, ast.Subscript) and _names(node.value).split(".")[-1] == of
              and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            found.add(node.slice.value)
    return frozenset(found)


def test_every_param_is_read_by_its_script(graphs):
    baselines = graphs[0]
    unread = set()
    for _, graph in baselines.values():
        for (rule, _), (_, _, _, job) in graph.items():
            if job.rule.script is None:
                continue
            read = reads(str(SCRIPTS / Path(job.rule.script).name), "params")
            unread |= {f"{rule}: params.{name}" for name in job.params.keys() if name not in read}
    assert not unread, f"params passed but never read: {sorted(unread)}"


def test_the_mask_settings_are_the_options_of_learn_masks(graphs):
    """learn_masks gets the mask section as one dict: each key must be an option or a key its script reads."""
    from fourier_masks.masks.options import MaskOptions

    _, graph = graphs[0]["tiny"]
    job = next(job for (rule, _), (_, _, _, job) in graph.items() if rule == "learn_masks")
    passed, options = set(job.params.mask), set(MaskOptions.config_keys()) - {"device"}
    ignored = passed - options - reads(str(SCRIPTS / "learn_masks.py"), "settings")
    assert not ignored, f"mask keys passed to learn_masks that neither MaskOptions nor its script reads: {ignored}"
    assert options <= passed, f"options learn_masks does not get from the config: {options - passed}"


def test_a_param_named_only_in_a_comment_or_docstring_is_not_read(tmp_path):
    script = tmp_path / "script.py"
    script.write_text('"""Reads params.doc."""\nx = 1  # params.comment\ny = snakemake.params.real\n'
                      'z = snakemake.params["indexed"]\nw = "params.text"\nv = params.short\n')
    assert reads(str(script), "params") == {"real", "indexed", "short"}
