"""The pipeline at the mask defaults over the MNIST networks trained elsewhere (../shared/external).

Five checkpoints as their owners published them (CUDA-saved, ``.view``-flattening forward
passes, their own architecture files) go through ``import:`` entries on a folder of real MNIST
digits written as PNG. The run must complete, every mask must have converged, and each
model's clean accuracy in ``models.parquet`` must equal what plain PyTorch with the owners'
classes gives on the same images. Skips where the folder is absent.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from test_external_models import EXTERNAL, PANEL, mnist

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not EXTERNAL.is_dir(), reason="../shared/external is absent")]
MNIST_MODELS = {name: factory for name, (factory, _, dataset, _) in PANEL.items() if dataset == "mnist"}
SPLITS = {"train": slice(0, 300), "test": slice(5000, 5300)}


def _write_digits(root: Path) -> None:
    images, labels = mnist()
    for split, part in SPLITS.items():
        for i, (image, label) in enumerate(zip(images[part], labels[part], strict=True)):
            folder = root / split / str(int(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((image[0] * 255).round().byte().numpy(), mode="L").save(folder / f"{i:04d}.png")


def _config(root: Path) -> dict:
    models = [{"name": Path(name).stem, "source": "checkpoint", "path": str(EXTERNAL / "models" / name),
               "arch": f"import:{factory}", "python_path": [str(EXTERNAL / "models")]}
              for name, factory in MNIST_MODELS.items()]
    return {
        "device": "cpu",
        "dataset": {"name": "folder", "root": str(root), "image_size": 28, "channels": 1, "resize": "none"},
        "models": models,
        "reference_model": "deeprobust_mnist_standard",
        "seeds": [1, 2],
        "analysis": {"robust_eval": {"norm": "linf", "eps": 0.1, "steps": 5, "n_images": 50},
                     "statistics": {"bootstrap": 50, "permutations": 50},
                     "fourier_heatmap": {"enabled": False}, "cutoff_curves": {"enabled": False}},
    }


def _owners_accuracy(name: str, factory: str, root: Path) -> float:
    """Plain PyTorch: the owners' class, ``torch.load`` with ``map_location``, the PNGs / 255."""
    module, attribute = factory.split(":")
    sys.path.insert(0, str(EXTERNAL / "models"))
    try:
        network = getattr(importlib.import_module(module), attribute)()
    finally:
        sys.path.remove(str(EXTERNAL / "models"))
    state = torch.load(EXTERNAL / "models" / name, map_location="cpu", weights_only=True)
    network.load_state_dict({key.removeprefix("module."): value for key, value in state.items()})
    network.eval()
    paths = sorted((root / "test").glob("*/*.png"))
    images = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in paths])).float()[:, None] / 255
    labels = torch.tensor([int(p.parent.name) for p in paths])
    with torch.no_grad():
        return float((network(images).argmax(1) == labels).double().mean())


def test_the_pipeline_runs_the_mnist_panel_at_the_mask_defaults(tmp_path):
    root = tmp_path / "digits"
    _write_digits(root)
    config = tmp_path / "panel.yaml"
    config.write_text(yaml.safe_dump(_config(root)))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path / "run"), "--configfile", str(config), "--cores", "2"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    tables = tmp_path / "run" / "results" / "tables"
    masks = pd.read_parquet(tables / "masks.parquet")
    assert len(masks) == 2 * len(MNIST_MODELS)
    assert set(masks["status"]) <= {"converged", "recovered"}, masks[["model", "seed", "status"]]
    assert (masks["masked_acc"] / masks["clean_acc"] >= 0.95).all(), masks[["model", "seed", "masked_acc"]]
    models = pd.read_parquet(tables / "models.parquet").set_index("model")
    for name, factory in MNIST_MODELS.items():
        row = models.loc[Path(name).stem]
        assert row["clean_acc"] == pytest.approx(_owners_accuracy(name, factory, root), abs=1e-6), name  # float32
        assert not row["channels_last"], f"{name} flattens with .view: it must run in the default layout"
