"""A staged RobustBench model through the whole workflow, offline, on a staged tiny CIFAR-10.

The zoo checkpoint (Wong2020Fast's real architecture, random weights) is loaded by
RobustBench's own loader inside the workflow's acquire rule. torchvision checks the md5 of
each CIFAR batch file, which staged files cannot pass, so this test materialises the dataset
in-process with the check patched out (tests only) and the workflow starts from its arrays.
"""

import pandas as pd
import pytest
import torch
import yaml
from runs import snakemake
from test_external_data import _cifar10, no_md5  # noqa: F401  (fixture)
from test_zoo import DATASET, NAME, THREAT, _random_network

from fourier_masks.config import check_config
from fourier_masks.data.dataset import save_dataset
from fourier_masks.data.registry import load_dataset
from fourier_masks.models.zoo_cache import cache_path

CONFIG = {
    "device": "cpu",
    "offline": True,
    "dataset": {"name": "cifar10", "n_train": 24, "n_test": 12, "download": False},
    "models": [{"name": "wong", "source": "robustbench", "zoo_name": NAME, "threat_model": THREAT,
                "chance_check": False}],  # random weights: chance-level accuracy is expected
    "seeds": [1],
    "mask": {"epochs": 1, "batch_size": 8, "fit_images": 16},
    "analysis": {"radial_bands": 8, "angular_bands": 8, "example_images": 2,
                 "robust_eval": {"norm": "linf", "eps": 0.03, "steps": 1, "n_images": 4},
                 "statistics": {"bootstrap": 20, "permutations": 20}},
}


@pytest.fixture
def staged(tmp_path, no_md5):  # noqa: F811
    """A work folder with the zoo file in RobustBench's layout and the dataset's arrays."""
    path = cache_path(tmp_path / "resources", DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in _random_network().state_dict().items()}}, path)
    _cifar10(tmp_path / "resources" / "data" / "cifar10", per_batch=8, n_test=12)
    save_dataset(load_dataset(check_config(CONFIG)["dataset"], tmp_path / "resources"), tmp_path / "results" / "data")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    return tmp_path, config, path


def test_zoo_model_runs_through_the_workflow_to_the_tables(staged):
    workdir, config, _ = staged
    targets = [f"results/tables/{t}.parquet" for t in ("models", "masks", "transfer", "frequency_bias")]
    snakemake(workdir, *targets, config=config)
    record = torch.load(workdir / "results/models/wong/model.pt", weights_only=True)
    assert record["arch"] == f"robustbench:{DATASET}/{THREAT}/{NAME}" and record["source"] == "robustbench"
    masks = pd.read_parquet(workdir / "results/tables/masks.parquet")
    assert masks[["model", "seed"]].values.tolist() == [["wong", 1]] and masks["density"].between(0, 1).all()
    assert len(pd.read_parquet(workdir / "results/tables/transfer.parquet")) == 1
    # analysis.robust_eval.threat per_model: the zoo entry is attacked under its leaderboard budget, not eps 0.03
    (model,) = pd.read_parquet(workdir / "results/tables/models.parquet").to_dict("records")
    assert model["robust_attack"] == "pgd" and model["robust_norm"] == "linf" and model["robust_eps"] == 8 / 255
    assert model["robust_budget"] == "RobustBench cifar10 Linf leaderboard" and model["robust_images"] == 4


def test_wrong_zoo_name_stops_before_any_job_with_suggestions(staged):
    workdir, config, _ = staged
    bad = {**CONFIG, "models": [{**CONFIG["models"][0], "zoo_name": "Wong2020Fst"}]}
    config.write_text(yaml.safe_dump(bad))
    result = snakemake(workdir, "-n", config=config, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Wong2020Fst" in output and "Wong2020Fast" in output


def test_offline_missing_files_are_listed_before_any_job(staged):
    workdir, config, path = staged
    path.unlink()
    result = snakemake(workdir, "-n", config=config, check=False)
    assert result.returncode != 0 and str(path.relative_to(workdir)) in result.stdout + result.stderr
