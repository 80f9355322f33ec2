"""Fingerprint of the tiny config's results: every mask and every table, timing columns dropped.

The stored copies in ``tests/data/tiny_fingerprint/{CPU capability}/`` were taken from the
results of ``tests/configs/tiny.yaml``; ``tests/test_workflow.py`` compares each new tiny run
with them, so a refactor that changes a number fails. A change that is meant to alter results
refreshes the copies and says why in its commit message::

    python tests/fingerprint.py --retake      # runs the tiny config, stores every copy this CPU can make
    python tests/fingerprint.py RESULTS_DIR   # stores this machine's copy from a tiny run's results

Floating-point kernels round differently on CPUs with different vector units (AVX2, AVX512),
and three epochs of Adam carry that rounding into the masks (4e-4 seen), so each capability
needs its own copy (stored now: AVX2). Equality is exact (bit for bit) against the copy made with the same torch
version on the same capability, and to ``rtol=1e-4, atol=1e-5`` with another torch; a CPU
capability with no copy skips the comparison (another capability's copy is no reference).
An AVX512 machine also makes the AVX2 copy: ``--retake`` runs the
tiny config a second time with torch, oneDNN, MKL, NumPy and OpenBLAS held to AVX2
(:data:`HELD_TO`), which reproduced the AVX2 copy of an AVX2 machine bit for bit (2026-12-02).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

STORED = Path(__file__).resolve().parent / "data" / "tiny_fingerprint"
TIMING_COLUMNS = ("seconds",)

#: Environment that holds every numerical library of a more capable CPU to one capability.
HELD_TO = {"AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                    "MKL_CBWR": "AVX2", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL",
                    "OPENBLAS_CORETYPE": "Haswell"}}


def platform() -> dict:
    """What decides whether two runs can be bit-identical."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def outputs(results: Path) -> dict[str, Path]:
    """Masks and tables of a results folder, keyed by their path relative to it."""
    files = sorted(results.glob("masks/*/seed*.npy")) + sorted(results.glob("tables/*.parquet"))
    return {str(path.relative_to(results)): path for path in files}


def canonical(path: Path):
    """A mask array, or a table without timing columns and with rows in a fixed order."""
    if path.suffix == ".npy":
        return np.load(path)
    table = pd.read_parquet(path)
    table = table.drop(columns=[c for c in TIMING_COLUMNS if c in table])
    return table.sort_values(list(table.columns)).reset_index(drop=True)


def copy_for(machine: dict, root: Path = STORED) -> tuple[Path | None, bool]:
    """The stored copy of ``machine``'s CPU capability (:func:`platform`), or None, and whether it
    is exact (same torch). Another capability's copy is no reference: its rounding moves the masks
    by up to 4e-4 and ill-conditioned statistics (Cohen's d over near-equal seeds) by 0.4."""
    own = root / machine["cpu_capability"]
    if (own / "platform.json").is_file():
        return own, json.loads((own / "platform.json").read_text()) == machine
    return None, False


def save(results: Path, root: Path = STORED) -> None:
    """Replace this machine's stored fingerprint with the canonical outputs of ``results``."""
    stored = root / platform()["cpu_capability"]
    shutil.rmtree(stored, ignore_errors=True)
    for name, path in outputs(results).items():
        target = stored / name
        target.parent.mkdir(parents=True, exist_ok=True)
        value = canonical(path)
        if isinstance(value, np.ndarray):
            np.save(target, value)
        else:
            value.to_parquet(target, index=False)
    (stored / "platform.json").write_text(json.dumps(platform(), indent=1) + "\n")


def differences(results: Path, root: Path = STORED) -> list[str] | None:
    """Outputs that differ from this CPU capability's stored fingerprint (exactly, or beyond float
    tolerance with another torch); None where it has none."""
    stored, exact = copy_for(platform(), root)
    if stored is None:
        return None
    new, old = outputs(results), outputs(stored)
    found = [f"{name}: only in {'the new run' if name in new else 'the fingerprint'}"
             for name in sorted(set(new) ^ set(old))]
    for name in sorted(set(new) & set(old)):
        a, b = canonical(new[name]), canonical(old[name])
        try:
            if isinstance(a, np.ndarray):
                assert a.shape == b.shape and a.dtype == b.dtype
                assert np.array_equal(a, b) if exact else np.allclose(a, b, rtol=1e-4, atol=1e-5)
            else:
                pd.testing.assert_frame_equal(a, b, check_exact=exact, rtol=1e-4, atol=1e-5)
        except AssertionError as error:
            found.append(f"{name}: {str(error).splitlines()[0] if str(error) else 'values differ'}")
    return found


def retake() -> None:
    """Run the tiny config and store its fingerprint natively and under each capability of :data:`HELD_TO`
    below this CPU's (an AVX512 machine: AVX512 and AVX2)."""
    from runs import snakemake

    own = platform()["cpu_capability"]
    for held in [None, *(c for c in HELD_TO if own == "AVX512" and c != own)]:
        env = {**os.environ, **HELD_TO.get(held, {})}
        with tempfile.TemporaryDirectory() as workdir:
            snakemake(Path(workdir), env=env)
            subprocess.run([sys.executable, __file__, str(Path(workdir) / "results")], env=env, check=True)


if __name__ == "__main__":
    if sys.argv[1] == "--retake":
        retake()
    else:
        save(Path(sys.argv[1]))
        print(f"fingerprint of {sys.argv[1]} stored in {STORED / platform()['cpu_capability']}")
