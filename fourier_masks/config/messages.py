"""Wording of config errors: dotted key paths, values cut to size, suggestions, one sentence per schema violation.

Every message of the config check starts ``Invalid config:`` (:func:`fail`). The numeric limits
live here because the sentences quote them; :mod:`.schema`'s type checkers enforce them.
Imports jsonschema's error class and, of the package, only :mod:`fourier_masks.errors`.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter

from jsonschema.exceptions import ValidationError

from ..errors import InputError

#: Largest float32; numbers end up in float32 tensors.
FLOAT32_MAX = 3.4028234663852886e38

#: Integers must fit a signed 64-bit integer (seeds go to torch and numpy generators).
INT64_LIMIT = 2**63


def fail(message: str):
    """Raise :class:`InputError` ``Invalid config: message``."""
    raise InputError(f"Invalid config: {message}")


def suggestion(word, choices) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def either(words: list[str]) -> str:
    """``a, b or c``."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def dotted(path) -> str:
    """``('models', 2, 'regime')`` -> ``models[2].regime``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the config"


def shown(value, most: int = 120) -> str:
    """``value`` as the config wrote it, cut to about ``most`` characters (a list of 20 000 seeds, say)."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= most:
        return text
    size = f", {len(value)} items" if isinstance(value, list | dict) else ""
    return f"{text[:most]}... ({len(text)} characters{size})"


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
        text = f"{str(value)[:12]}... ({len(str(value))} digits)" if whole else str(value)
        return (f"{key} = {text} is not a finite number; it must be of type {types}, at most 3.4e38 in "
                "magnitude (float32; NaN and infinities are refused).")
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return f"{key} = {text} has the wrong type; it must be {types}."


def describe(error: ValidationError) -> str:
    """One sentence naming the key of ``error``, its value and what is allowed."""
    key, value, rule = dotted(error.absolute_path), error.instance, error.validator_value
    text = shown(value)
    kind = error.validator
    if kind == "required":
        missing = [name for name in rule if name not in value][0]
        about = error.schema.get("properties", {}).get(missing, {}).get("description", "")
        return f"{dotted((*error.absolute_path, missing))} is missing; it is required here. {about}".rstrip()
    if kind in ("enum", "anyOf", "pattern"):
        allowed = _allowed_values(error.schema)
        return f"{key} = {text} is not allowed; use {either(allowed)}.{suggestion(value, allowed)}"
    if kind == "type":
        return _describe_type(key, value, " or ".join([rule] if isinstance(rule, str) else rule))
    limits = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in limits:
        return f"{key} = {text} is out of range; it must be {limits[kind]} {rule}."
    if kind == "minItems":
        return f"{key} = {text} has too few items; it needs at least {rule}."
    if kind == "maxItems":
        return f"{key} = {text} has too many items; it allows at most {rule}."
    if kind == "uniqueItems":
        repeated = [v for v, n in Counter(json.dumps(v, default=str) for v in value).items() if n > 1]
        return f"{key} = {text} repeats {', '.join(repeated)}; its items must be unique."
    if kind == "minLength":
        return f"{key} = {text} is empty; it needs a non-empty string."
    if kind == "maxLength":
        return f"{key} = {repr(value)[:40]}... is {len(value)} characters long; at most {rule} are allowed."
    return f"{key}: {error.message}."


def schema_problems(errors) -> list[str]:
    """One sentence per schema violation in ``errors`` (sorted by key path), each once, with the key's description."""
    sentences = []
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        sentence = describe(error)
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        if description and error.validator != "required":
            sentence += f" ({description})"
        if sentence not in sentences:
            sentences.append(sentence)
    return sentences
