"""``python -m fourier_masks.config FILE [FILE ...]``: check config files without running any code in them.

Imports only the standard library and :mod:`fourier_masks.config` (no torch, no numpy), so
``make run`` checks a config before Snakemake reads it.
"""

from __future__ import annotations

import sys

from ..errors import InputError
from .check import check_config
from .reader import read_config_file


def _merged(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, nested mappings merged key by key (as Snakemake merges config files)."""
    merged = dict(base)
    for key, value in update.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merged(merged[key], value) if both else value
    return merged


def main(argv=None) -> int:
    """Check the config files ``argv`` (default: the command line's) merged in order, as
    ``snakemake --configfile FILE ...`` merges them.

    Prints ``OK`` and returns 0, or prints the problem and returns 1 (2 without files).
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


if __name__ == "__main__":
    sys.exit(main())
