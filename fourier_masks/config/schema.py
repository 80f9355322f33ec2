"""The config schema: where it is read from, and checking a config against it while filling in its defaults.

The schema, ``config.schema.yaml`` beside this module, ships as package data and is read with
:mod:`importlib.resources` (:data:`SCHEMA_PATH`); it is the one list of allowed keys, values and
defaults. :func:`filled` reports keys that are not names, then unknown keys (with the closest
allowed key), then up to :data:`MAX_REPORTED` schema violations; numbers must be finite and
within float32, integers within signed 64 bits. Imports jsonschema, :mod:`.messages` and
:mod:`.reader` (and through them PyYAML, :mod:`fourier_masks.errors` and
:mod:`fourier_masks.template_guard`).
"""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources
from pathlib import Path

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from ..errors import InputError
from .messages import FLOAT32_MAX, INT64_LIMIT, dotted, fail, schema_problems
from .reader import read_yaml

#: The config schema, package data of :mod:`fourier_masks.config`.
SCHEMA_PATH = resources.files(__package__).joinpath("config.schema.yaml")

#: Most schema problems listed in one message.
MAX_REPORTED = 5


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


def load_schema(path=None) -> dict:
    """The config schema as a dict (from ``path``, default :data:`SCHEMA_PATH`).

    The parsed file is cached by path, inode, modification and change times and size (parsing
    it takes tens of milliseconds, and every keyword call of ``learn_masks`` checks its
    options); a file replaced in place, even with its old modification time, has a new change
    time. Each caller gets its own copy.
    """
    if path:
        return _schema_file(Path(path))
    with resources.as_file(SCHEMA_PATH) as shipped:
        return _schema_file(Path(shipped))


def _schema_file(path: Path) -> dict:
    """A copy of the (cached) parsed schema file ``path``."""
    if not path.is_file():
        raise InputError(f"config schema {path} does not exist; pass schema_path to check_config.")
    stat = path.stat()
    identity = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
    return copy.deepcopy(_parsed_schema(path.resolve(), identity))


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: Path, identity: tuple) -> dict:
    """The schema file at ``path`` parsed; ``identity`` (inode, times, size) only keys the cache."""
    return read_yaml(path, "config schema")


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
            fail(f"{dotted(path) if path else 'the top level'} has the key {key!r}, which is not a name; "
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
        where = dotted(path) if path else "the top level"
        if key in schema["properties"]:
            problem = f"not used when {dotted((*path, condition))}" if condition else "not allowed here"
        else:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            problem = "unknown key" + (f"; did you mean {dotted((*path, close[0]))}?" if close else "")
        stop = " " if problem.endswith("?") else ". "
        fail(f"{dotted((*path, key))}: {problem}{stop}Allowed keys at {where}: {', '.join(allowed)}.")


def filled(config: dict, schema_path=None) -> dict:
    """A copy of ``config`` with every default of the schema (at ``schema_path``, default the shipped one) filled in.

    Raises ``Invalid config:`` for a config that is not a mapping, a key that is not a name,
    an unknown key, or schema violations (the first :data:`MAX_REPORTED` of them).
    """
    if not isinstance(config, dict):
        fail(f"the config must be a mapping of keys to values, got {type(config).__name__}.")
    _check_key_types(config)
    schema = load_schema(schema_path)
    result = copy.deepcopy(config)
    problems = schema_problems(_DefaultingValidator(schema).iter_errors(result))
    _check_unknown_keys(result, schema)
    if problems:
        more = f" ({len(problems) - MAX_REPORTED} more not shown.)" if len(problems) > MAX_REPORTED else ""
        fail(" ".join(problems[:MAX_REPORTED]) + more)
    return result
