"""The library from a wheel, without the repository: the schema ships as package data.

The wheel is built from a copy of the package (nothing is written into the checkout) and
installed with pip into a fresh venv, which finds torch and the other dependencies in the
project's own venv through a path entry (site-packages without its .pth files, so the
editable install of the checkout stays out of sight), and runs outside the repository.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

LEARN = textwrap.dedent("""
    import torch
    import fourier_masks
    from fourier_masks.config import check_config
    from fourier_masks.masks.learning import learn_masks
    from fourier_masks.models.networks import Normalized, SmallCNN

    print("package", fourier_masks.__file__)
    print("mask epochs by default", check_config({})["mask"]["epochs"])
    torch.manual_seed(0)
    model = Normalized(SmallCNN(3, 4))
    images, labels = torch.rand(16, 3, 16, 16), torch.randint(0, 4, (16,))
    masks, history = learn_masks(model, images, labels, seeds=[1], epochs=2, batch_size=8)
    print("masks", masks.shape, "status", history["status"].iloc[-1])
""")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(REPO / "fourier_masks", source / "fourier_masks",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("fourier_masks-*.whl")
    return path


def test_the_wheel_holds_the_schema(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "fourier_masks/config/config.schema.yaml" in names and "fourier_masks/py.typed" in names


def test_a_mask_is_learned_with_defaults_from_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    (purelib,) = Path(venv / "lib").glob("python3*/site-packages")
    (purelib / "project_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    run = subprocess.run([str(python), "-c", LEARN], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    print(run.stdout)
    assert f"package {purelib / 'fourier_masks' / '__init__.py'}" in run.stdout
    assert "masks (1, 1, 16, 16) status" in run.stdout
