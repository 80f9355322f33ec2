"""The validation rules (validation.smk) end to end on the tiny config with their switches on."""

import numpy as np
import pandas as pd
import pytest
import yaml
from runs import TINY, snakemake

from fourier_masks.data.dataset import load_split
from fourier_masks.models.files import load_model
from fourier_masks.models.networks import accuracy
from fourier_masks.spectrum import corner_radius

SWITCHES = {
    "fourier_heatmap": {"enabled": True, "n_images": 30, "stride": 2},
    "cutoff_curves": {"enabled": True, "n_radii": 5, "n_images": 40},
    "single_image": {"enabled": True, "n_images": 12, "steps": 40, "patience": 10, "radial_bands": 4},
    "retrain": {"enabled": True},
}
TABLES = ["fourier_heatmap", "cutoff_curves", "single_image_bands", "single_image_decoding", "retrain"]
RULES = ["fourier_heatmap", "cutoff_curves", "single_image_masks", "retrain"]


def switched_config(path, enabled=True):
    config = yaml.safe_load(TINY.read_text())
    for section, settings in SWITCHES.items():
        config["analysis"][section] = {**settings, "enabled": enabled}
    path.write_text(yaml.safe_dump(config))
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("validation")
    config = switched_config(workdir / "config.yaml")
    targets = [f"results/tables/{name}.parquet" for name in TABLES]
    targets += [f"results/figures/{name}.{ext}" for name in TABLES for ext in ("png", "pdf")]
    result = snakemake(workdir, *targets, config=workdir / "config.yaml", check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, config


def table(workdir, name):
    return pd.read_parquet(workdir / "results" / "tables" / f"{name}.parquet")


def test_switches_decide_what_the_default_target_plans(tmp_path):
    for enabled in (True, False):
        switched_config(tmp_path / "config.yaml", enabled)
        plan = snakemake(tmp_path, "-n", "--quiet", "rules", config=tmp_path / "config.yaml").stdout
        assert all((rule in plan) is enabled for rule in RULES), plan


def test_fourier_heatmap_covers_the_spectrum(run):
    workdir, config = run
    heat, side = table(workdir, "fourier_heatmap"), config["dataset"]["image_size"]
    assert list(heat.columns) == ["model", "fy", "fx", "error", "reliability"]
    for _, rows in heat.groupby("model"):
        assert rows["reliability"].nunique() == 1 and rows["reliability"].between(-1, 1).all()
        assert len(rows) == side * side and rows[["fy", "fx"]].drop_duplicates().shape[0] == side * side
        assert rows["fy"].between(-side // 2, side // 2 - 1).all()
        evaluated = rows.dropna(subset=["error"])
        # stride 2: every other frequency per axis, and the reflections of those.
        assert len(evaluated) == (side // 2) ** 2 and evaluated["error"].between(0, 1).all()
    assert set(heat["model"]) == {model["name"] for model in config["models"]}


def test_cutoff_curves_end_at_the_clean_accuracy(run):
    workdir, config = run
    curves = table(workdir, "cutoff_curves")
    assert list(curves.columns) == ["model", "radius", "lowpass_acc", "highpass_acc"]
    images, labels = load_split(workdir / "results" / "data", "test")
    n = SWITCHES["cutoff_curves"]["n_images"]
    for model, rows in curves.groupby("model"):
        assert np.allclose(rows["radius"], np.linspace(0, corner_radius(*images.shape[-2:]), 5))
        assert rows[["lowpass_acc", "highpass_acc"]].stack().between(0, 1).all()
        network = load_model(workdir / "results" / "models" / model / "model.pt")
        clean = accuracy(network, images[:n], labels[:n], batch_size=64)
        assert rows["lowpass_acc"].iloc[-1] == pytest.approx(clean)  # nothing filtered out


def test_single_image_tables(run):
    workdir, config = run
    models = [model["name"] for model in config["models"]]
    n = SWITCHES["single_image"]["n_images"]
    bands = table(workdir, "single_image_bands")
    assert {"model", "comparison", "versus", "band", "r_lo", "r_hi", "share_a_greater"} <= set(bands.columns)
    assert bands["share_a_greater"].between(0, 1).all() and (bands["n_images"] == n).all()
    by_comparison = bands.groupby("comparison")["model"].unique()
    assert set(by_comparison["adversarial_vs_clean"]) == set(models)
    assert set(by_comparison["vs_reference"]) == set(models) - {config["reference_model"]}
    assert len(bands) == (2 * len(models) - 1) * SWITCHES["single_image"]["radial_bands"]
    decoding = table(workdir, "single_image_decoding")
    assert len(decoding) == 2 * len(models) and set(decoding["kind"]) == {"clean", "adversarial"}
    assert decoding[["accuracy", "scrambled_accuracy", "chance"]].stack().between(0, 1).all()
    assert (decoding["n_images"] <= n).all()
    masks = np.load(workdir / "results" / "validation" / models[0] / "single_image_masks.npz")
    side = config["dataset"]["image_size"]
    assert masks["clean"].shape == masks["adversarial"].shape == (n, 1, side, side)
    assert 0 <= masks["clean"].min() and masks["clean"].max() <= 1


def test_retrain_reports_original_and_retrained_accuracy(run):
    workdir, config = run
    retrain = table(workdir, "retrain")
    reference = config["reference_model"]
    assert list(retrain["trained_on"]) == ["original", "masked"] and set(retrain["model"]) == {reference}
    assert retrain[["clean_acc", "masked_acc", "mask_density"]].stack().between(0, 1).all()
    images, labels = load_split(workdir / "results" / "data", "test")
    original = load_model(workdir / "results" / "models" / reference / "model.pt")
    assert retrain["clean_acc"].iloc[0] == pytest.approx(accuracy(original, images, labels, batch_size=64))
    mask = np.load(workdir / "results" / "masks" / reference / f"seed{config['seeds'][0]}.npy")
    assert retrain["mask_density"].iloc[0] == pytest.approx(mask.mean())
    retrained = load_model(workdir / "results" / "validation" / reference / "retrained_model.pt")
    assert retrain["clean_acc"].iloc[1] == pytest.approx(accuracy(retrained, images, labels, batch_size=64))
    history = pd.read_parquet(workdir / "results" / "validation" / reference / "retrained_training.parquet")
    assert len(history) == config["training"]["epochs"]  # the original's training settings


def test_figures_are_written(run):
    workdir, _ = run
    for name in TABLES:
        for ext in ("png", "pdf"):
            assert (workdir / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
