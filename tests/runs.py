"""Running the workflow from tests: the repository, the tiny config and one Snakemake call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(workdir, *args, config=TINY, check=True, **kwargs) -> subprocess.CompletedProcess:
    """``snakemake --directory workdir --configfile config --cores 2 *args``, output captured."""
    command = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(config), "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, check=check, **kwargs)
