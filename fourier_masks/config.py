"""Checking the pipeline config: unknown keys, the JSON schema, and rules a schema cannot state.

:func:`check_config` returns the config with every default filled in, or raises
:class:`~fourier_masks.errors.InputError` with one paragraph that starts with
``Invalid config:`` and names the offending key by its dotted path (``mask.lambda``,
``models[2].regime``). The schema, ``workflow/schemas/config.schema.yaml``, is the one list
of allowed keys, values and defaults; this module imports nothing else of the package.

Example
-------
>>> config = check_config({"seeds": [7]})
>>> config["seeds"], config["reference_model"] == config["models"][0]["name"]
([7], True)
>>> sorted(config["analysis"]["statistics"])  # every key filled in, from the schema's defaults
['bootstrap', 'permutations']
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from .errors import InputError
from .template_guard import TEMPLATES_OPT_IN, refusal

__all__ = [
    "SCHEMA_PATH",
    "TEMPLATES_OPT_IN",
    "check_config",
    "config_hash",
    "load_config",
    "load_schema",
    "read_config_file",
    "retrained_models",
]

#: The config schema shipped with the workflow.
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"

#: Most schema problems listed in one message.
MAX_REPORTED = 5

#: Largest float32; numbers end up in float32 tensors.
FLOAT32_MAX = 3.4028234663852886e38

#: Integers must fit a signed 64-bit integer (seeds go to torch and numpy generators).
INT64_LIMIT = 2**63

#: Snakemake refuses a wildcard value that ends in a substring repeated 20 times or more
#: (``snakemake.io.PeriodicityDetector``): the jobs of such a model name would not run.
_PERIODIC = re.compile(r"(.+)\1{19,}$")

#: Bytes per pixel while planted images are generated (float64 noise and gains, complex128
#: spectra), and per pixel and channel of an image a job holds as float32.
PLANTED_BYTES_PER_PIXEL = 48
FLOAT32_BYTES = 4

#: Channels of the datasets whose config has no ``channels`` key: CIFAR and ImageNet are RGB.
RGB = 3

#: Most values a config file may hold, YAML aliases expanded (a few aliases can stand for billions).
MAX_CONFIG_VALUES = 100_000


def _strict_integer(checker, instance) -> bool:
    """JSON integers without floats like ``2.0``, without booleans, within signed 64 bits."""
    return isinstance(instance, int) and not isinstance(instance, bool) and -INT64_LIMIT <= instance < INT64_LIMIT


def _finite_number(checker, instance) -> bool:
    """JSON numbers without booleans, NaN, infinities and magnitudes beyond float32 (the tensors' type)."""
    if isinstance(instance, bool) or not isinstance(instance, (int, float)):
        return False
    try:
        return abs(float(instance)) <= FLOAT32_MAX
    except OverflowError:
        return False


def _fill_defaults(validator, properties, instance, schema):
    """The ``properties`` keyword that first sets each absent key's (copied) default."""
    if isinstance(instance, dict):
        for key, subschema in properties.items():
            if "default" in subschema and key not in instance:
                instance[key] = copy.deepcopy(subschema["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


def _whole_string_pattern(validator, pattern, instance, schema):
    """The ``pattern`` keyword, where ``$`` does not match before a final newline (as in JSON Schema, not Python)."""
    if isinstance(instance, str) and pattern.endswith("$") and instance.endswith("\n"):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")
    else:
        yield from Draft202012Validator.VALIDATORS["pattern"](validator, pattern, instance, schema)


_DefaultingValidator = validators.extend(
    Draft202012Validator,
    validators={"properties": _fill_defaults, "pattern": _whole_string_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _strict_integer, "number": _finite_number}),
)


def _fail(message: str):
    raise InputError(f"Invalid config: {message}")


def _suggestion(word, choices) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _either(words: list[str]) -> str:
    """``a, b or c``."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def _dotted(path) -> str:
    """``('models', 2, 'regime')`` -> ``models[2].regime``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the config"


def load_schema(path=None) -> dict:
    """The config schema as a dict (from ``path``, default :data:`SCHEMA_PATH`).

    The parsed file is cached by path, inode, modification and change times and size (parsing
    it takes tens of milliseconds, and every keyword call of ``learn_masks`` checks its
    options); a file replaced in place, even with its old modification time, has a new change
    time. Each caller gets its own copy.
    """
    path = Path(path or SCHEMA_PATH)
    if not path.is_file():
        raise InputError(f"config schema {path} does not exist; pass schema_path to check_config.")
    stat = path.stat()
    identity = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
    return copy.deepcopy(_parsed_schema(path.resolve(), identity))


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: Path, identity: tuple) -> dict:
    """The schema file at ``path`` parsed; ``identity`` (inode, times, size) only keys the cache."""
    return _read_yaml(path, "config schema")


class _RepeatedKey(yaml.YAMLError):
    """A key given twice in one YAML mapping."""


class _PlainLoader(yaml.SafeLoader):
    """Safe YAML (plain values, no tags that build Python objects) that refuses repeated keys."""

    def construct_mapping(self, node, deep=False):
        lines = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else []:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                repeated = key in lines
            except TypeError:  # an unhashable key: the base class explains
                break
            if repeated:
                raise _RepeatedKey(f"key {key!r} is given twice, at line {lines[key]} and at line {line} (YAML "
                                   "would silently keep the last); remove one of them")
            lines[key] = line
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs: list) -> dict:
    """A JSON object from its ``pairs``, refusing a key given twice."""
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise InputError(f"key {key!r} is given twice in one object (JSON would silently keep the last); "
                             "remove one of them")
    return dict(pairs)


def _expanded_size(data, sizes: dict) -> int:
    """Number of values in ``data`` with every shared (YAML alias) part counted each time it appears."""
    if id(data) not in sizes:
        children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
        sizes[id(data)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(data)]


def _read_yaml(path: Path, what: str):
    """Plain data of the YAML (or JSON) file ``path``; an :class:`InputError` naming it and the line if not."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_PlainLoader)
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"Invalid config: {what} {path} cannot be read as UTF-8 text: {error}.") from None
    except RecursionError:
        raise InputError(f"Invalid config: {what} {path} nests lists or mappings too deeply to be read.") from None
    except _RepeatedKey as error:
        raise InputError(f"Invalid config: {what} {path}: {error}.") from None
    except (yaml.scanner.ScannerError, yaml.parser.ParserError) as error:
        data = _read_json_instead(text, path, what, error)
    except yaml.YAMLError as error:
        raise InputError(f"Invalid config: {what} {path} is not valid YAML{_yaml_problem(error)}.") from None
    try:
        size = _expanded_size(data, {})
    except RecursionError:
        raise InputError(f"Invalid config: {what} {path} nests lists or mappings too deeply to be read.") from None
    if size > MAX_CONFIG_VALUES:
        raise InputError(f"Invalid config: {what} {path} expands to more than {MAX_CONFIG_VALUES} values through "
                         "YAML aliases (*name); write the values out.")
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    """`` at line L, column C: problem`` of a YAML error."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(error, "problem", None) or str(error)
    if "constructor for the tag" in problem:
        problem += " (only plain values are allowed: numbers, strings, true/false, null, lists and mappings)"
    return f"{where}: {problem}"


def _read_json_instead(text: str, path: Path, what: str, yaml_error: yaml.YAMLError):
    """``text`` as JSON (which YAML does not fully cover, e.g. tab indentation), else the YAML error."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except InputError as error:
        raise InputError(f"Invalid config: {what} {path}: {error}.") from None
    except (ValueError, RecursionError):
        raise InputError(f"Invalid config: {what} {path} is not valid YAML{_yaml_problem(yaml_error)}.") from None


def read_config_file(path, templates_allowed: bool = False) -> dict:
    """The mapping in the YAML or JSON config file ``path``, as plain values, unchecked.

    Raises :class:`InputError` naming the file for a missing or unreadable file, YAML
    errors (with the line), a key given twice in one mapping (with both lines), tags that
    would build Python objects, a top level that is not a mapping, and YTE templating
    (``__use_yte__: true``) unless ``templates_allowed``. A file that sets ``__use_yte__``
    false is read without it, as Snakemake does. Templates are never evaluated here.
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InputError(f"Invalid config: config file {path} {problem}.")
    config = _read_yaml(path, "config file")
    if not isinstance(config, (dict, type(None))):
        raise InputError(f"Invalid config: {path} must hold a mapping of keys to values, not a "
                         f"{type(config).__name__}.")
    config = config or {}
    if config.get("__use_yte__") and not templates_allowed:
        raise InputError(refusal(path))
    config.pop("__use_yte__", None)
    return config


def _allowed_keys(schema: dict, instance: dict) -> tuple[list[str], str]:
    """Keys ``schema`` allows in ``instance``, narrowed by the ``if/then`` branch that applies.

    Also returns the condition of that branch (``"name = 'photos'"``), or ``""``.
    """
    allowed, condition = list(schema.get("properties", {})), ""
    for branch in schema.get("allOf", []):
        names = branch.get("then", {}).get("propertyNames", {}).get("enum")
        if names and "if" in branch and Draft202012Validator(branch["if"]).is_valid(instance):
            allowed = [key for key in allowed if key in names]
            condition = " and ".join(f"{key} = {instance[key]!r}" for key in branch["if"].get("required", []))
    return allowed, condition


def _check_key_types(instance, path: tuple = ()) -> None:
    """Raise for the first mapping key that is not a string (YAML allows numbers, null, dates)."""
    if isinstance(instance, dict):
        items = instance.items()
    else:
        items = enumerate(instance) if isinstance(instance, list) else []
    for key, value in items:
        if isinstance(instance, dict) and not isinstance(key, str):
            _fail(f"{_dotted(path) if path else 'the top level'} has the key {key!r}, which is not a name; "
                  "keys are names like lambda (quote them in YAML if they look like numbers).")
        _check_key_types(value, (*path, key))


def _check_unknown_keys(instance, schema: dict, path: tuple = ()) -> None:
    """Raise for the first key that ``schema`` does not allow, suggesting the closest allowed one."""
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            _check_unknown_keys(item, schema["items"], (*path, i))
    if not isinstance(instance, dict) or "properties" not in schema:
        return
    allowed, condition = _allowed_keys(schema, instance)
    for key, value in instance.items():
        if key in allowed:
            _check_unknown_keys(value, schema["properties"][key], (*path, key))
            continue
        where = _dotted(path) if path else "the top level"
        if key in schema["properties"]:
            problem = f"not used when {_dotted((*path, condition))}" if condition else "not allowed here"
        else:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            problem = "unknown key" + (f"; did you mean {_dotted((*path, close[0]))}?" if close else "")
        stop = " " if problem.endswith("?") else ". "
        _fail(f"{_dotted((*path, key))}: {problem}{stop}Allowed keys at {where}: {', '.join(allowed)}.")


def _allowed_values(schema: dict) -> list[str]:
    """What ``schema`` or any of its ``anyOf`` parts allows: enum values, then patterns."""
    parts = [schema, *schema.get("anyOf", [])]
    values = [v if isinstance(v, str) else json.dumps(v) for part in parts for v in part.get("enum", [])]
    return values + [f"a string matching {part['pattern']}" for part in parts if "pattern" in part]


def _describe_type(key: str, value, types: str) -> str:
    """Why ``value`` of ``key`` is not of ``types``: not finite, beyond 64 bits, or another type."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if whole and "integer" in types and not -INT64_LIMIT <= value < INT64_LIMIT:
        return (f"{key} = {value} does not fit in a signed 64-bit integer; it must be between -2^63 and "
                f"2^63 - 1 = {INT64_LIMIT - 1}.")
    if (whole and "number" in types) or (isinstance(value, float) and not abs(value) <= FLOAT32_MAX):
        shown = f"{str(value)[:12]}... ({len(str(value))} digits)" if whole else str(value)
        return (f"{key} = {shown} is not a finite number; it must be of type {types}, at most 3.4e38 in "
                "magnitude (float32; NaN and infinities are refused).")
    shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return f"{key} = {shown} has the wrong type; it must be {types}."


def _shown(value, most: int = 120) -> str:
    """``value`` as the config wrote it, cut to about ``most`` characters (a list of 20 000 seeds, say)."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= most:
        return text
    size = f", {len(value)} items" if isinstance(value, list | dict) else ""
    return f"{text[:most]}... ({len(text)} characters{size})"


def _describe(error: ValidationError) -> str:
    """One sentence naming the key of ``error``, its value and what is allowed."""
    key, value, rule = _dotted(error.absolute_path), error.instance, error.validator_value
    shown = _shown(value)
    kind = error.validator
    if kind == "required":
        missing = [name for name in rule if name not in value][0]
        about = error.schema.get("properties", {}).get(missing, {}).get("description", "")
        return f"{_dotted((*error.absolute_path, missing))} is missing; it is required here. {about}".rstrip()
    if kind in ("enum", "anyOf", "pattern"):
        allowed = _allowed_values(error.schema)
        return f"{key} = {shown} is not allowed; use {_either(allowed)}.{_suggestion(value, allowed)}"
    if kind == "type":
        return _describe_type(key, value, " or ".join([rule] if isinstance(rule, str) else rule))
    limits = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in limits:
        return f"{key} = {shown} is out of range; it must be {limits[kind]} {rule}."
    if kind == "minItems":
        return f"{key} = {shown} has too few items; it needs at least {rule}."
    if kind == "maxItems":
        return f"{key} = {shown} has too many items; it allows at most {rule}."
    if kind == "uniqueItems":
        repeated = [v for v, n in Counter(json.dumps(v, default=str) for v in value).items() if n > 1]
        return f"{key} = {shown} repeats {', '.join(repeated)}; its items must be unique."
    if kind == "minLength":
        return f"{key} = {shown} is empty; it needs a non-empty string."
    if kind == "maxLength":
        return f"{key} = {repr(value)[:40]}... is {len(value)} characters long; at most {rule} are allowed."
    return f"{key}: {error.message}."


def _schema_problems(config: dict, schema: dict) -> list[str]:
    """Fill defaults into ``config`` in place and describe each schema violation."""
    errors = sorted(_DefaultingValidator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    sentences = []
    for error in errors:
        sentence = _describe(error)
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        if description and error.validator != "required":
            sentence += f" ({description})"
        if sentence not in sentences:
            sentences.append(sentence)
    return sentences


def _check_attack_steps(given: dict, filled: dict) -> None:
    """Refuse ``training.pgd_*.steps`` given with ``attack: fgsm_rs``, which takes one step and ignores them."""
    training = given.get("training") or {}
    ignored = [f"training.{budget}.steps" for budget in ("pgd_linf", "pgd_l2")
               if isinstance(training.get(budget), dict) and "steps" in training[budget]]
    if ignored and filled["training"]["attack"] == "fgsm_rs":
        _fail(f"{' and '.join(ignored)} given, but training.attack = 'fgsm_rs' (the default) takes one step of "
              "1.25 eps and reads no steps; remove them, or set training.attack: pgd for multi-step PGD training.")


#: Mask keys read only under some settings: key -> (setting, values that read it).
_CONDITIONAL_MASK_KEYS = {
    "warmup": ("schedule", ("onecycle",)),
    "plateau": ("schedule", ("plateau",)),
    "jump": ("protocol", ("default",)),
    "max_backoffs": ("protocol", ("default",)),
}


def _check_mask_keys(given: dict, filled: dict) -> None:
    """Refuse ``mask`` keys given where the chosen schedule or protocol reads none of them."""
    mask, chosen = given.get("mask") or {}, filled["mask"]
    for key, (setting, readers) in _CONDITIONAL_MASK_KEYS.items():
        if isinstance(mask, dict) and key in mask and chosen[setting] not in readers:
            _fail(f"mask.{key} is given, but mask.{setting} = {chosen[setting]!r} reads no {key} (only "
                  f"{_either([repr(r) for r in readers])} does); remove mask.{key}, or set mask.{setting}.")
    if isinstance(mask, dict) and "loss_tolerance" in mask and chosen["protocol"] == "authors" \
            and chosen["schedule"] != "plateau":
        _fail("mask.loss_tolerance is given, but protocol 'authors' stops on the density alone and schedule "
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
        _fail(f"reference_model = {config['reference_model']!r} is not the name of a model in models; "
              f"use one of {', '.join(names)}.{_suggestion(config['reference_model'], names)}")
    retrain = config["analysis"]["retrain"]
    trained = [model["name"] for model in config["models"] if model["source"] == "train"]
    for i, name in enumerate(retrain["models"] or [] if retrain["enabled"] else []):
        if name not in trained:
            _fail(f"analysis.retrain.models[{i}] = {name!r} is not a model with source: train, so it cannot be "
                  f"retrained; use one of {', '.join(trained) or '(none in this config)'}."
                  f"{_suggestion(name, trained)}")
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
            _fail(f"models[{i}].name = {name!r} repeats models[{first}].name = {config['models'][first]['name']!r} "
                  "(compared ignoring case); model names must be unique, as they name the result folders.")
        seen[name.lower()] = i
        periodic = _PERIODIC.search(name)
        if periodic:
            _fail(f"models[{i}].name = {name!r} ends in {periodic.group(1)!r} repeated "
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
            _fail(f"dataset.{key} = {dataset[key]} is smaller than dataset.n_classes = {dataset['n_classes']}; "
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
        _fail(f"dataset.image_size = {dataset['image_size']} with dataset.n_train = {dataset['n_train']} and "
              f"dataset.n_test = {dataset['n_test']} needs about {needed / 2**30:.1f} GiB of memory "
              f"({counted}), more than this machine's {memory / 2**30:.1f} GiB; use a smaller image_size or "
              "fewer images.")


def _check_robustbench(model: dict, dataset: str, where: str) -> None:
    """A RobustBench model needs dataset.name to be its zoo dataset."""
    zoo = ("cifar10", "cifar100", "imagenet")
    if dataset not in zoo:
        _fail(f"{where}.source = 'robustbench' needs dataset.name to be cifar10, cifar100 or imagenet "
              f"(the zoo's datasets), but dataset.name = {dataset!r}.")
    if model["dataset"] not in (None, dataset):
        _fail(f"{where}.dataset = {model['dataset']!r} differs from dataset.name = {dataset!r}; "
              "a RobustBench model is evaluated on dataset.name, so set both alike (or omit the former).")


def _check_checkpoint(model: dict, dataset: dict, where: str) -> None:
    """A model file entry (checkpoint, torchscript, exported): one of path and url, url with sha256,
    mean and std with one value per input channel, python_path only where something is imported."""
    if (model["path"] is None) == (model["url"] is None):
        _fail(f"{where} needs exactly one of path (a local model file) and url (downloaded to "
              f"resources/models/{model['name']}/); it sets {'both' if model['path'] else 'neither'}.")
    if model["url"] is not None and model["sha256"] is None:
        _fail(f"{where}.sha256 is needed with url = {model['url']!r}: a download is kept only if its SHA-256 "
              "matches (sha256sum FILE prints it).")
    channels = model["input_shape"][0] if model["input_shape"] else dataset.get("channels", RGB)
    for key in ("mean", "std"):
        if model[key] is not None and len(model[key]) != channels:
            _fail(f"{where}.{key} = {json.dumps(model[key])} needs one value per input channel "
                  f"({channels}, from input_shape or dataset.channels).")
    if (model["mean"] is None) != (model["std"] is None):
        _fail(f"{where} sets only one of mean and std; give both or neither.")
    imports = model.get("arch", "").startswith("import:") or model.get("trust_pickle")
    if model.get("python_path") and not imports:
        _fail(f"{where}.python_path is used only with arch: 'import:package.module:factory' or trust_pickle: true; "
              "remove it.")


def _check_range(config: dict, section: str, key: str, strict: bool, unit: str) -> None:
    """A ``[lo, hi]`` pair ``config[section][key]`` with ``lo < hi`` (strict) or ``lo <= hi``."""
    if key not in config[section]:
        return
    lo, hi = config[section][key]
    if lo > hi or (strict and lo == hi):
        need = "lo < hi" if strict else "lo <= hi"
        _fail(f"{section}.{key} = [{lo:g}, {hi:g}] is {'backwards' if lo > hi else 'empty'}; "
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
            _fail(f"dataset.radius = {json.dumps(dataset['radius'])} reaches beyond the spectrum: at "
                  f"dataset.image_size = {dataset['image_size']} the corner radius is {corner:.2f} cycles per image.")


def check_config(config: dict, schema_path=None, memory: int | None = None) -> dict:
    """Validate ``config``; return a copy with all defaults filled and keys sorted (``config`` is not changed).

    Order: unknown keys (with the closest allowed key), then the schema (types, choices,
    limits; numbers finite, integers within signed 64 bits), then cross-key rules: model
    names unique ignoring case and matchable by Snakemake, ``reference_model`` among the
    models (``null`` = the first model), ranges ``[lo, hi]`` ordered, model sources that fit
    the dataset, at least one image per class and split, and a dataset that fits in
    ``memory`` bytes (default: this machine's physical memory). Raises :class:`InputError`
    starting ``Invalid config:``.
    """
    if not isinstance(config, dict):
        _fail(f"the config must be a mapping of keys to values, got {type(config).__name__}.")
    _check_key_types(config)
    schema = load_schema(schema_path)
    filled = copy.deepcopy(config)
    problems = _schema_problems(filled, schema)
    _check_unknown_keys(filled, schema)
    if problems:
        more = f" ({len(problems) - MAX_REPORTED} more not shown.)" if len(problems) > MAX_REPORTED else ""
        _fail(" ".join(problems[:MAX_REPORTED]) + more)
    if filled["reference_model"] is None:
        filled["reference_model"] = filled["models"][0]["name"]
    _check_model_names(filled)
    _check_attack_steps(config, filled)
    _check_mask_keys(config, filled)
    _check_models(filled)
    _check_ranges(filled)
    _check_sizes(filled)
    _check_memory(filled, memory or physical_memory())
    return _sorted_keys(filled)


def _sorted_keys(value):
    """``value`` with the keys of every mapping in sorted order.

    Snakemake compares a rule's params by their text, so a canonical order keeps a
    reordered but equal config from rerunning jobs.
    """
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def load_config(path, schema_path=None, templates_allowed: bool = False) -> dict:
    """Read the YAML config file ``path`` (:func:`read_config_file`) and return :func:`check_config` of it."""
    return check_config(read_config_file(path, templates_allowed), schema_path)


def _merged(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, nested mappings merged key by key (as Snakemake merges config files)."""
    merged = dict(base)
    for key, value in update.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merged(merged[key], value) if both else value
    return merged


def main(argv=None) -> int:
    """``python -m fourier_masks.config FILE [FILE ...]``: check config files without running any code in them.

    The files are merged in order, as ``snakemake --configfile FILE ...`` merges them.
    Prints ``OK`` and returns 0, or prints the problem and returns 1.
    """
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m fourier_masks.config FILE [FILE ...]", file=sys.stderr)
        return 2
    try:
        config = {}
        for path in paths:
            config = _merged(config, read_config_file(path))
        check_config(config)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"OK: {', '.join(paths)}")
    return 0


def config_hash(config: dict) -> str:
    """SHA-256 hex digest of ``config`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
