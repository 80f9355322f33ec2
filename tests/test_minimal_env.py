"""Snakemake builds the job graph in an environment of its own, without torch.

With ``--sdm conda`` the rules run in their conda envs, and Snakemake itself runs where the
user installed it: snakemake, the SLURM executor plugin, and what the workflow's parse-time
code needs (pyyaml, jsonschema, pandas). This test makes such a venv (no torch, torchvision,
timm, robustbench, scipy, scikit-image or matplotlib) and dry-runs the embedded default and
the RobustBench config from it, as a user's login node would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: What a minimal Snakemake environment holds (PyPI names), at the versions pyproject.toml pins.
MINIMAL = ("snakemake", "snakemake-executor-plugin-slurm", "PyYAML", "jsonschema", "pandas", "numpy")
HEAVY = ("torch", "torchvision", "timm", "robustbench", "scipy", "skimage", "matplotlib", "PIL")

pytestmark = pytest.mark.slow


def pinned(name: str) -> str:
    """``name==version`` as pyproject.toml pins it (dependencies or any extra)."""
    project = PYPROJECT["project"]
    requirements = project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]
    (pin,) = [r for r in requirements if re.split(r"[=<>]", r)[0].lower() == name.lower()]
    return pin


@pytest.fixture(scope="module")
def minimal_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("minimal") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *map(pinned, MINIMAL)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def test_the_minimal_environment_has_no_torch(minimal_python):
    code = f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"
    found = subprocess.run([str(minimal_python), "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


@pytest.mark.parametrize("config, zoo", [("config.yaml", False), ("robustbench-cifar10.yaml", True)])
def test_dry_run_without_torch(minimal_python, tmp_path, config, zoo):
    done = subprocess.run(
        [str(minimal_python), "-m", "snakemake", "--dry-run", "--cores", "1",
         "--configfile", str(REPO / "config" / config), "--directory", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    print(log[-1500:])  # the job counts, for the record
    assert re.search(r"^learn_masks\s+\d+$", log, re.MULTILINE), log[-2000:]
    # Zoo names are then checked by rule acquire_model, in its own env; the dry run says so.
    assert ("robustbench cannot be imported where Snakemake runs" in log) == zoo
