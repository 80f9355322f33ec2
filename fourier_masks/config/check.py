"""The one config check: the schema with its defaults, then the cross-key rules; and the checked config's digest.

Imports only the standard library and the other modules of :mod:`fourier_masks.config`.
"""

from __future__ import annotations

import hashlib
import json

from .reader import read_config_file
from .rules import check_rules
from .schema import filled


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
    result = filled(config, schema_path)
    if result["reference_model"] is None:
        result["reference_model"] = result["models"][0]["name"]
    check_rules(config, result, memory)
    return _sorted_keys(result)


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


def config_hash(config: dict) -> str:
    """SHA-256 hex digest of ``config`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
