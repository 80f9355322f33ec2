"""Provenance of a run: package versions, git commit and a hash of the config."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "provenance_record"]

#: Distributions whose versions are recorded.
PACKAGES = ("fourier-masks", "torch", "torchvision", "numpy", "pandas", "robustbench", "snakemake")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(folder: Path) -> str | None:
    """HEAD commit of the checkout holding ``folder`` (with ``-dirty`` for local changes), or None."""
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def provenance_record(config: dict) -> dict:
    """Versions of :data:`PACKAGES`, Python and the platform, the git commit and the config hash."""
    from .config import config_hash

    return {
        "packages": {name: _version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(Path(__file__).resolve().parent),
        "config_sha256": config_hash(config),
    }
