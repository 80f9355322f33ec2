"""The user's own model, trained elsewhere, through the whole workflow on real photographs.

One network (its own architecture file in a package outside fourier_masks, trained by its
own torchvision code) is given three ways: a training checkpoint fetched by URL from a
local HTTP server (state dict nested under ``model`` with ``module._orig_mod.`` prefixes and
its normalisation stored beside it), a TorchScript archive and a torch.export program. The
clean accuracy in ``models.parquet`` must be the one the model's own evaluation code
measures on the same image folders, the same for all three, and their masks must agree.
"""

import hashlib
import shutil

import numpy as np
import own_model as om
import pandas as pd
import pytest
import torch
import yaml
from runs import snakemake

from fourier_masks.errors import InputError
from fourier_masks.models.files import load_model, read_record

FORMS = ("state_dict", "torchscript", "exported")
ANALYSIS = {"radial_bands": 8, "angular_bands": 8, "example_images": 2,
            "robust_eval": {"norm": "linf", "eps": 0.01, "steps": 1, "n_images": 8},
            "fourier_heatmap": {"enabled": False}, "cutoff_curves": {"enabled": False},
            "retrain": {"enabled": False}, "statistics": {"bootstrap": 20, "permutations": 20}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(work folder, network, model files)``: the package, photos and model files, paths relative to it."""
    workdir = tmp_path_factory.mktemp("own")
    code = om.write_package(workdir / "code")
    photos = om.write_photos(workdir / "photos")
    network = om.train(code, photos)
    return workdir, network, om.save_forms(network, workdir / "models")


def _config(workdir, url, sha256, classes=om.CLASSES, models=FORMS):
    entries = {
        "state_dict": {"source": "checkpoint", "arch": om.ARCH, "arch_kwargs": om.ARCH_KWARGS,
                       "python_path": ["code"], "url": url, "sha256": sha256},
        "torchscript": {"source": "torchscript", "path": "models/tinynet_ts.pt", "mean": om.MEAN, "std": om.STD},
        "exported": {"source": "exported", "path": "models/tinynet.pt2", "mean": om.MEAN, "std": om.STD},
    }
    config = {
        "device": "cpu",
        "dataset": {"name": "folder", "root": "photos", "image_size": om.IMAGE_SIZE, "classes": list(classes)},
        "models": [{"name": name, **entries[name]} for name in models],
        "seeds": [1],
        "mask": {"epochs": 3, "batch_size": 16, "patience": 2},
        "analysis": ANALYSIS,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def workflow_run(trained):
    """The three forms through the workflow to the models and masks tables."""
    workdir, network, paths = trained
    sha256 = hashlib.sha256(paths["checkpoint"].read_bytes()).hexdigest()
    with om.serve(paths["checkpoint"].parent) as base:
        config = _config(workdir, f"{base}/{paths['checkpoint'].name}", sha256)
        result = snakemake(workdir, "results/tables/models.parquet", "results/tables/masks.parquet",
                           config=config, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, network


def test_clean_accuracy_is_the_models_own(workflow_run):
    workdir, network = workflow_run
    table = pd.read_parquet(workdir / "results/tables/models.parquet").set_index("model")
    own = om.own_accuracy(network, workdir / "photos")
    assert own > 0.75  # the network learned something: the comparison below is not between chance levels
    for form in FORMS:
        assert abs(table.loc[form, "clean_acc"] - own) < 1e-6, (form, table.loc[form, "clean_acc"], own)
    assert table.loc["state_dict", "arch"] == om.ARCH and table.loc["exported", "arch"] == "exported"


def test_three_forms_give_the_same_masks_that_keep_accuracy(workflow_run):
    workdir, _ = workflow_run
    masks = {form: np.load(workdir / f"results/masks/{form}/seed1.npy") for form in FORMS}
    reference = masks["state_dict"]
    assert 0.05 < reference.mean() < 0.99, "the mask is trivial: the comparison would say nothing"
    # The state-dict form runs with its batch norm folded into the convolutions (load_model), the
    # programs as their owners saved them: the same maths rounded otherwise, which the Adam steps
    # carry into the masks (7.8e-4 seen; without the fold they agreed to 1e-4).
    for form in FORMS[1:]:
        np.testing.assert_allclose(masks[form], reference, atol=2e-3, err_msg=form)
    table = pd.read_parquet(workdir / "results/tables/masks.parquet").set_index("model")
    assert (table["masked_acc"] >= 0.95 * table["clean_acc"]).all(), table[["clean_acc", "masked_acc"]]


def test_model_files_record_how_to_rebuild(workflow_run, trained):
    workdir, network, paths = *workflow_run, trained[2]
    downloaded = workdir / "resources/models/state_dict/tinynet.pth"
    assert downloaded.read_bytes() == paths["checkpoint"].read_bytes()
    model_file = workdir / "results/models/state_dict/model.pt"
    record = read_record(model_file)
    assert record["arch"] == om.ARCH and record["python_path"] == [str(workdir / "code")]
    assert record["mean"] == pytest.approx(om.MEAN) and record["std"] == pytest.approx(om.STD)  # from the file
    assert not (workdir / "results/models/state_dict/acquired.pt").exists()
    with pytest.raises(InputError, match=r"runs only on request: load_model\(.*imports="):
        load_model(model_file)
    model = load_model(model_file, imports={om.ARCH: [str(workdir / "code")]})
    images = torch.rand(5, 3, om.IMAGE_SIZE, om.IMAGE_SIZE)
    normalised = (images - torch.tensor(om.MEAN).view(1, 3, 1, 1)) / torch.tensor(om.STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network(normalised))
        for form in FORMS[1:]:
            other = load_model(workdir / f"results/models/{form}/model.pt")
            torch.testing.assert_close(other(images), network(normalised), rtol=1e-4, atol=1e-5)


def test_nothing_reruns_once_the_temporary_acquired_files_are_gone(workflow_run):
    workdir, _ = workflow_run
    plan = snakemake(workdir, "-n", "results/tables/models.parquet", "results/tables/masks.parquet",
                     config=workdir / "config.yaml")
    assert "Nothing to be done" in plan.stdout, plan.stdout[-2000:]


def test_wrong_class_order_stops_before_masks(trained, tmp_path):
    workdir, _, _ = trained
    for name in ("code", "photos", "models"):
        shutil.copytree(workdir / name, tmp_path / name)
    config = _config(tmp_path, None, None, classes=om.CLASSES[::-1], models=["exported"])
    result = snakemake(tmp_path, "results/tables/masks.parquet", config=config, check=False)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/check_model/exported.log").read_text()
    assert "at or below 1.5 x chance" in log and "class order (dataset.classes)" in log
    assert not (tmp_path / "results/models/exported/model.pt").exists()
    assert not (tmp_path / "results/masks").exists()
