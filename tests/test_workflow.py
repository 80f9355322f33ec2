"""The workflow end to end on the tiny config, its conventions, and reruns after faults."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from runs import REPO, SNAKEMAKE, TINY, snakemake

TIMING_COLUMNS = ["seconds"]

TABLE_COLUMNS = {
    "models": {"model", "regime", "arch", "clean_acc", "robust_acc", "robust_attack", "robust_norm", "robust_eps",
               "robust_steps", "robust_images", "robust_budget", "channels_last"},
    "masks": {"model", "seed", "status", "clean_acc", "masked_acc", "complement_acc", "random_acc", "random_acc_sd",
              "lowpass_acc", "density", "steps", "backoffs", "seconds"},
    "seed_agreement": {"model", "seeds", "converged", "mask_correlation", "density_sd", "low_freq_fraction_sd"},
    "radial_profile": {"model", "seed", "band", "r_lo", "r_hi", "energy"},
    "angular_profile": {"model", "seed", "band", "theta_lo", "theta_hi", "energy"},
    "frequency_bias": {"model", "seed", "low_freq_fraction", "radial_centroid", "anisotropy"},
    "frequency_bias_stats": {"model", "metric", "mean", "sd", "ci_lo", "ci_hi", "p_value"},
    "transfer": {"source_model", "source_seed", "target_model", "clean_acc", "masked_acc"},
    "fourier_heatmap": {"model", "fy", "fx", "error", "reliability"},
}


def tables(workdir):
    """Every final table, timing columns dropped, sorted rows."""
    out = {}
    for name in TABLE_COLUMNS:
        table = pd.read_parquet(workdir / "results" / "tables" / f"{name}.parquet")
        table = table.drop(columns=[c for c in TIMING_COLUMNS if c in table])
        out[name] = table.sort_values(list(table.columns[:3])).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_every_table_has_its_columns(tiny_run):
    config = yaml.safe_load(TINY.read_text())
    n_masks = len(config["models"]) * len(config["seeds"])
    for name, columns in TABLE_COLUMNS.items():
        table = pd.read_parquet(tiny_run / "results" / "tables" / f"{name}.parquet")
        assert columns <= set(table.columns), f"{name} lacks {columns - set(table.columns)}"
        assert len(table) > 0 and not table[list(columns & {"energy", "masked_acc", "clean_acc"})].isna().any().any()
    assert len(pd.read_parquet(tiny_run / "results/tables/transfer.parquet")) == n_masks * len(config["models"])
    masks = pd.read_parquet(tiny_run / "results/tables/masks.parquet")
    assert len(masks) == n_masks and masks["density"].between(0, 1).all()
    assert (masks["random_acc_sd"] >= 0).all()
    stats = pd.read_parquet(tiny_run / "results/tables/frequency_bias_stats.parquet")
    direction = stats[stats["metric"] == "direction_dependence"]
    assert set(direction["model"]) == {m["name"] for m in config["models"]} - {config["reference_model"]}
    assert direction["p_value"].between(0, 1).all()


def test_masks_and_figures_are_written(tiny_run):
    for path in (tiny_run / "results" / "masks").rglob("seed*.npy"):
        mask = np.load(path)
        assert mask.dtype == np.float32 and mask.ndim == 3 and 0 <= mask.min() and mask.max() <= 1
    for figure in ("mask_grid", "profiles", "frequency_bias", "transfer", "examples"):
        for ext in ("png", "pdf"):
            assert (tiny_run / "results" / "figures" / f"{figure}.{ext}").stat().st_size > 1000


def test_results_match_the_stored_fingerprint(tiny_run):
    """Masks and tables equal the stored fingerprint: a refactor must not change a number."""
    from fingerprint import differences, platform

    found = differences(tiny_run / "results")
    if found is None:
        pytest.skip(f"tests/data/tiny_fingerprint has no copy for {platform()['cpu_capability']}: take one with "
                    "python tests/fingerprint.py --retake")
    assert not found, "results differ from tests/data/tiny_fingerprint (refresh it with tests/fingerprint.py " \
        "only for a change meant to alter results):\n" + "\n".join(found)


def test_provenance_records_versions_commit_and_config_hash(tiny_run):
    record = json.loads((tiny_run / "results" / "provenance.json").read_text())
    for package in ("torch", "torchvision", "robustbench", "snakemake", "fourier-masks"):
        assert record["packages"][package], package
    assert len(record["config_sha256"]) == 64 and "git_commit" in record


def test_rerun_after_an_analysis_change_touches_only_analyses(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["analysis"]["radial_bands"] = 6
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    plan = snakemake(tiny_run, "-n", "--quiet", "rules", config=changed).stdout
    assert "profiles" in plan
    for upstream in ("prepare_dataset", "train_model", "learn_masks", "evaluate_model", "evaluate_masks"):
        assert upstream not in plan, f"{upstream} would rerun after an analysis-only change"


def planned_rules(stdout: str) -> set[str]:
    """Rules of the job table a dry run prints."""
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.strip()}


# One config key changed alone (to this value) -> exactly the rules that must rerun, besides
# provenance, which records the whole config, and the default target.
RERUNS = {
    ("analysis", "statistics", "bootstrap"): (60, {"frequency_bias_stats", "figure_profiles"}),
    ("analysis", "statistics", "permutations"): (60, {"frequency_bias_stats", "figure_profiles"}),
    ("analysis", "low_freq_cutoff"): (0.4, {"profiles", "masks_table", "frequency_bias_stats", "figure_profiles",
                                            "figure_frequency_bias"}),
    ("analysis", "example_images"): (3, {"figure_examples"}),
    ("analysis", "robust_eval", "n_images"): (30, {"evaluate_model", "models_table"}),
    ("training", "noise_sigma"): (0.2, set()),  # the tiny run trains no noise model
}


@pytest.mark.parametrize("key", RERUNS, ids=".".join)
def test_a_changed_key_reruns_only_the_rules_that_read_it(tiny_run, tmp_path, key):
    config = yaml.safe_load(TINY.read_text())
    section = config
    for name in key[:-1]:
        section = section.setdefault(name, {})
    value, rules = RERUNS[key]
    section[key[-1]] = value
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    plan = planned_rules(snakemake(tiny_run, "-n", "--quiet", "rules", config=changed).stdout)
    assert plan == rules | {"provenance", "all"}


def _folder_dataset(root, shade):
    """Two classes of 16 x 16 grey PNGs in train/ and test/; class k has the value shade + 60 k."""
    from PIL import Image

    for split in ("train", "test"):
        for k, name in enumerate(("dark", "light")):
            for j in range(3):
                path = root / split / name / f"{j}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("L", (16, 16), shade + 60 * k).save(path)


def test_changed_dataset_images_rebuild_the_arrays(tmp_path):
    """A folder dataset's images are not rule inputs; their content digest (a param) reruns prepare_dataset."""
    _folder_dataset(tmp_path / "images", shade=10)
    config = yaml.safe_load(TINY.read_text())
    config["dataset"] = {"name": "folder", "root": str(tmp_path / "images"), "image_size": 16, "channels": 1}
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir, target = tmp_path / "run", "results/data/classes.parquet"
    snakemake(workdir, target, config=path)
    assert "Nothing to be done" in snakemake(workdir, "-n", target, config=path).stdout
    before = np.load(workdir / "results/data/train_images.npy")
    _folder_dataset(tmp_path / "images", shade=20)
    plan = snakemake(workdir, "-n", target, config=path).stdout
    assert planned_rules(plan) == {"prepare_dataset"} and "Params have changed" in plan
    snakemake(workdir, target, config=path)
    np.testing.assert_array_equal(np.load(workdir / "results/data/train_images.npy"), before + 10)
    # two images of the same size swapped between classes, their modification times put back
    swapped = [tmp_path / "images/train" / name / "0.png" for name in ("dark", "light")]
    contents, times = [p.read_bytes() for p in swapped], [(p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in swapped]
    assert len(contents[0]) == len(contents[1])
    time.sleep(0.05)  # file times are kept to a few milliseconds
    for p, content, stamp in zip(swapped, reversed(contents), times, strict=True):
        p.write_bytes(content)
        os.utime(p, ns=stamp)
    assert planned_rules(snakemake(workdir, "-n", target, config=path).stdout) == {"prepare_dataset"}


def test_results_load_in_one_call(tiny_run, tmp_path):
    """fourier_masks.results.load: every table, every mask by (model, seed), a per-model summary, the provenance."""
    from fourier_masks.errors import InputError
    from fourier_masks.results import load

    run, config = load(tiny_run / "results"), yaml.safe_load(TINY.read_text())
    assert set(TABLE_COLUMNS) <= set(run.tables) and run.provenance["config_sha256"]
    models = [model["name"] for model in config["models"]]
    assert set(run.masks) == {(model, seed) for model in models for seed in config["seeds"]}
    np.testing.assert_array_equal(run.masks["standard", 1], np.load(tiny_run / "results/masks/standard/seed1.npy"))
    summary = run.summary().set_index("model")
    masks = run.tables["masks"]
    retention = (masks["masked_acc"] / masks["clean_acc"]).groupby(masks["model"]).min()
    np.testing.assert_allclose(summary.loc[retention.index, "retention_min"], retention)
    np.testing.assert_allclose(summary.loc[models, "density"], masks.groupby("model")["density"].mean()[models])
    assert list(summary.index) == list(run.tables["models"]["model"]) and summary["converged"].notna().all()
    with pytest.raises(InputError, match="holds no result tables"):
        load(tmp_path)


def test_the_results_notebook_runs_on_a_finished_run(tiny_run):
    """docs/results.ipynb, executed in a kernel from the run's folder: no cell fails, and it draws its figure."""
    import nbclient
    import nbformat

    notebook = nbformat.read(REPO / "docs" / "results.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tiny_run)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)
    shown = "".join(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                    for output in outputs)
    assert "low_freq_fraction" in shown and "masks, " in shown


def test_two_configs_with_their_own_output_dir_share_a_working_directory(tmp_path):
    """Each run's outputs, logs and benchmarks under its output_dir; neither overwrites nor reruns the other."""
    config = yaml.safe_load(TINY.read_text())
    other = tmp_path / "other.yaml"
    dataset = {**config["dataset"], "n_train": 40}
    other.write_text(yaml.safe_dump({**config, "output_dir": "results/other", "dataset": dataset}))
    workdir = tmp_path / "run"
    snakemake(workdir, "results/data/classes.parquet")
    first = np.load(workdir / "results/data/train_images.npy")
    snakemake(workdir, "results/other/data/classes.parquet", config=other)
    assert len(np.load(workdir / "results/other/data/train_images.npy")) == 40 != len(first)
    np.testing.assert_array_equal(np.load(workdir / "results/data/train_images.npy"), first)
    for root in ("results", "results/other"):
        assert (workdir / root / "logs" / "prepare_dataset.log").is_file()
        assert (workdir / root / "benchmarks" / "prepare_dataset.tsv").is_file()
    assert "Nothing to be done" in snakemake(workdir, "-n", "results/data/classes.parquet").stdout


def test_nothing_reruns_without_a_change(tiny_run):
    assert "Nothing to be done" in snakemake(tiny_run, "-n").stdout


def test_report_is_built(tiny_run):
    snakemake(tiny_run, "--report", str(tiny_run / "report.zip"))
    assert (tiny_run / "report.zip").stat().st_size > 10_000


def test_gpu_check_on_cpu_passes_and_writes_every_figure(tiny_run, tmp_path):
    """``make gpu-check DEVICE=cpu`` on the tiny run above (tiny sizes; no timings asserted)."""
    sys.path.insert(0, str(REPO))  # the benchmarks package lives at the root
    from benchmarks.gpu_check import SCALES, main

    status = main(["--device", "cpu", "--out", str(tmp_path), "--tiny-run", str(tiny_run)])
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert status == 0 and results["passed"] and results["pipeline"]["ok"], (tmp_path / "gpu_check.txt").read_text()
    agreement = results["agreement"]
    # the CPU against itself: learning is deterministic, so the masks are identical
    assert agreement["fp32_vs_cpu"]["max_abs"] == 0.0 and agreement["fp32_vs_cpu"]["density"] == 0.0
    for kind in ("fp32", "bf16"):
        masks = agreement["masks"][kind]
        assert len(masks["density"]) == len(agreement["seeds"]) and max(masks["density"]) < 1, "masks must learn"
        assert all(0 <= r <= 1.5 for r in masks["retention"])
    assert all(np.isfinite(v) for v in agreement["bf16_vs_fp32"].values())
    assert [s["scale"]["name"] for s in results["scales"]] == [s.name for s in SCALES]
    for scale in results["scales"]:
        assert all(v > 0 for v in scale["throughput"].values()) and scale["forward_gflops"] > 0
        assert scale["peak_memory_mib"]["batched"] is None  # GPU memory only
    text = (tmp_path / "gpu_check.txt").read_text()
    for heading in ("1. tiny config end to end", "2. fp32 masks", "3. bf16 autocast", "4. mask learning speed"):
        assert heading in text


def test_killed_run_recovers_with_identical_tables(tiny_run, tmp_path):
    command = [*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(TINY), "--cores", "2"]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list((tmp_path / "results" / "masks").rglob("*.npy")) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not (tmp_path / "results" / "tables" / "masks.parquet").exists(), "killed too late to test recovery"
    snakemake(tmp_path, "--unlock")  # kill -9 leaves Snakemake's lock behind
    snakemake(tmp_path, "--rerun-incomplete")
    resumed, reference = tables(tmp_path), tables(tiny_run)
    for name in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(resumed[name], reference[name], check_exact=True, obj=name)


def test_lint_and_format_are_clean():
    lint = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout[-3000:]
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent))
    formatted = subprocess.run([snakefmt, "--check", "Snakefile", "workflow/rules"], cwd=REPO,
                               capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stderr


def test_python_code_passes_ruff():
    """The Python files pass pyproject's [tool.ruff] rules (make lint runs the same check)."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    checked = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", "."], cwd=REPO,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr


@pytest.mark.parametrize("config", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_dry_run(config, tmp_path):
    if config.name == "own-model.yaml":  # a template: the dry run names its folders until they exist
        refused = snakemake(tmp_path, "-n", config=config, check=False)
        assert refused.returncode != 0 and "dataset.root = 'resources/data/my-photos' does not exist" in refused.stderr
        for folder in ("code/my-repo", *(f"resources/data/my-photos/{split}/{name}" for split in ("train", "test")
                                         for name in ("cat", "dog", "horse"))):
            (tmp_path / folder).mkdir(parents=True)
    plan = snakemake(tmp_path, "-n", config=config).stdout
    assert "learn_masks" in plan and "all" in plan
