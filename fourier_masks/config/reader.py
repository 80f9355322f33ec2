"""Reading a config (or schema) file as plain data, without running anything in it.

Safe YAML only (tags that build Python objects are refused), a key given twice in one mapping
refused with both lines, JSON accepted where YAML is not (tab indentation), YAML aliases that
expand beyond :data:`MAX_CONFIG_VALUES` values refused, and YTE templates (``__use_yte__: true``)
refused unless allowed. Imports PyYAML and, of the package, only :mod:`fourier_masks.errors`
and :mod:`fourier_masks.template_guard`.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import InputError
from ..template_guard import refusal

#: Most values a config file may hold, YAML aliases expanded (a few aliases can stand for billions).
MAX_CONFIG_VALUES = 100_000


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


def read_yaml(path: Path, what: str):
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
    config = read_yaml(path, "config file")
    if not isinstance(config, (dict, type(None))):
        raise InputError(f"Invalid config: {path} must hold a mapping of keys to values, not a "
                         f"{type(config).__name__}.")
    config = config or {}
    if config.get("__use_yte__") and not templates_allowed:
        raise InputError(refusal(path))
    config.pop("__use_yte__", None)
    return config
