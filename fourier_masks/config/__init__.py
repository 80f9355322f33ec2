"""Checking the pipeline config: unknown keys, the JSON schema, and rules a schema cannot state.

:func:`check_config` returns the config with every default filled in, or raises
:class:`~fourier_masks.errors.InputError` with one paragraph that starts with
``Invalid config:`` and names the offending key by its dotted path (``mask.lambda``,
``models[2].regime``). The schema, ``config.schema.yaml`` in this package (:data:`SCHEMA_PATH`),
is the one list of allowed keys, values and defaults.

Modules: :mod:`.reader` (config files as plain data: repeated keys, tags and templates
refused), :mod:`.schema` (the shipped schema, validation and default filling),
:mod:`.messages` (wording of errors), :mod:`.rules` (cross-key rules), :mod:`.check`
(:func:`check_config`, :func:`load_config`, :func:`config_hash`) and :mod:`.__main__` (the
command line). Importing the package imports PyYAML, jsonschema and the standard library and,
of the rest of the package, only :mod:`fourier_masks.errors` and
:mod:`fourier_masks.template_guard`: no torch, no numpy.

Example
-------
>>> config = check_config({"seeds": [7]})
>>> config["seeds"], config["reference_model"] == config["models"][0]["name"]
([7], True)
>>> sorted(config["analysis"]["statistics"])  # every key filled in, from the schema's defaults
['bootstrap', 'permutations']
"""

from ..template_guard import TEMPLATES_OPT_IN
from .check import check_config, config_hash, load_config
from .reader import read_config_file
from .rules import dataset_memory, retrained_models
from .schema import SCHEMA_PATH, load_schema

__all__ = [
    "SCHEMA_PATH",
    "TEMPLATES_OPT_IN",
    "check_config",
    "config_hash",
    "dataset_memory",
    "load_config",
    "load_schema",
    "read_config_file",
    "retrained_models",
]
