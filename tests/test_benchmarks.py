"""The benchmark scripts run at tiny sizes (real computations, every figure reported) and the reference loop
learns the mask learn_masks learns. No timings are asserted: speed targets are ratios the scripts print."""

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
from reference_loop import naive_mask

from fourier_masks.masks.learning import learn_masks
from fourier_masks.spectrum import apply_mask, symmetrize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks package lives at the root

from benchmarks import bench_call, bench_convergence, bench_memory, bench_quality, bench_steps  # noqa: E402
from benchmarks._workloads import ModelSize  # noqa: E402

TINY_MODEL = ModelSize(n_train=200, image_size=16, train_epochs=1)
TINY_YARDSTICK = {"batch": 4, "steps": 2, "size": 8, "repeats": 1}


def test_naive_reference_learns_the_mask_learn_masks_learns(tiny_model, tiny_data):
    x, y = tiny_data[0][:12], tiny_data[1][:12]
    options = {"lr": 0.01, "epochs": 2}
    naive, history = naive_mask(copy.deepcopy(tiny_model), x, y, seed=1, lam=0.2, schedule="constant",
                                evaluate=False, **options)
    package, _ = learn_masks(copy.deepcopy(tiny_model), x, y, seeds=[1], batch_size=1, parametrization="fft",
                             schedule="constant", init="ones", keep_threshold=0.0, device="cpu",
                             loss="paper", **{"lambda": 0.2}, **options)
    assert naive.shape == (16, 16) and 0 <= naive.min() and naive.max() <= 1
    assert naive.mean() < 0.99 and list(history["epoch"]) == [1, 2], "the naive loop must learn"
    np.testing.assert_allclose(symmetrize(naive), package[0, 0], atol=1e-4)
    np.testing.assert_allclose(apply_mask(x, naive), apply_mask(x, package[0]), atol=1e-4)


def _check_common(results: dict, script, verdicts: set[str]) -> str:
    """The yardstick was timed, the verdicts are the named ones and the report shows them; the report."""
    assert results["yardstick"]["seconds"] > 0 and results["machine"]["load_average_end"]
    assert set(results["verdicts"]) == verdicts
    text = script.report(results)
    assert text.startswith("machine: ") and "yardstick (2 Adam steps" in text
    assert all(name in text for name in verdicts)
    return text


def test_per_step_benchmark_reports_throughput_and_the_bare_model_share():
    results = bench_steps.run_benchmark(bench_steps.Size(TINY_MODEL, batch1_images=3, batched_images=32, repeats=1),
                                        "cpu", TINY_YARDSTICK)
    steps = results["steps"]
    assert set(steps["throughput"]) == {"naive", "paper", "batched"}
    assert all(value > 0 for value in steps["throughput"].values())
    assert all(0 < value for value in steps["share"].values())
    text = _check_common(results, bench_steps, {
        "steps per second vs the naive loop, learn_masks at the paper's settings",
        "steps per second vs the naive loop, learn_masks at the defaults",
        "bare model's share of a mask step at the defaults"})
    assert "1. throughput" in text and "2. step time" in text


def test_quality_benchmark_compares_the_time_to_an_equal_quality_mask():
    results = bench_quality.run_benchmark(bench_quality.Size(TINY_MODEL, fit_images=8, naive_epoch_cap=1), "cpu",
                                          TINY_YARDSTICK)
    quality = results["quality"]
    assert quality["learn_masks"]["seconds"] > 0 and len(quality["learn_masks"]["density"]) == 3
    assert quality["naive"]["epochs"] == 1 and (quality["ratio"] is None) == (not quality["equal_quality"])
    text = _check_common(results, bench_quality, {
        "time to an equal-quality mask, naive loop over learn_masks (per mask)"})
    assert "time to a mask of equal quality" in text


def test_memory_benchmark_measures_each_configuration_in_a_fresh_process():
    results = bench_memory.run_benchmark(bench_memory.Size(TINY_MODEL, memory_images=4, setup_images=8,
                                                           setup_repeats=1), "cpu", TINY_YARDSTICK)
    assert set(results["memory"]["peak"]) == {"naive", "paper", "default"}
    assert results["job_setup"]["speedup"] > 0 and len(results["job_setup"]["repeat_seconds"]["reuse"]) == 1
    text = _check_common(results, bench_memory, set())
    assert "1. extra peak memory" in text and "2. job set-up" in text


def test_whole_call_benchmark_reports_shares_speed_ups_and_phases():
    size = bench_call.Size(TINY_MODEL, images=16, seeds=2, batch=8, epochs=(1, 2), repeats=1)
    results = bench_call.run_benchmark(size, "cpu", TINY_YARDSTICK)
    rows = results["call"]["epochs"]
    assert set(rows) == {"1", "2"}
    assert all(row["share"] > 0 and row["vs_naive"] > 0 and row["cpu_time"]["share"] > 0 for row in rows.values())
    profile = rows["2"]["profile"]
    assert len(profile["top"]) == 5 and profile["keep_rule_passes"] >= 1
    assert profile["phases"]["mask steps"] > 0 and profile["phases"]["keep-rule pass"] > 0
    assert profile["phases"]["clean reference"] > 0
    _check_common(results, bench_call, {"bare model's share of the whole call at 2 epochs",
                                        "steps per second vs the naive loop's whole call at 2 epochs"})


def test_convergence_benchmark_reports_both_methods_on_the_embedded_model():
    """bench_convergence's embedded mode at a tiny size: the model is trained on the photo patches of a
    checked config, and both methods report their seconds, steps, masks and status."""
    from fourier_masks.config import check_config

    config = check_config({"dataset": {"n_train": 120, "image_size": 16, "channels": 1, "n_classes": 3},
                           "training": {"epochs": 1}, "mask": {"fit_images": 24}})
    model, images, labels = bench_convergence.embedded_model(config)
    assert images.shape == (24, 1, 16, 16) and labels.shape == (24,)
    results = bench_convergence.bench(model, images, labels, 0.2, authors_epochs=1, yardstick=TINY_YARDSTICK)
    ours, theirs = results["learn_masks_per_seed"], results["authors_loop"]
    assert len(ours) == 3 and all(entry["status"] in {"converged", "recovered", "budget"} for entry in ours)
    assert all(entry["steps"] > 0 and 0 < entry["density"] <= 1 for entry in ours)
    assert theirs["epochs"] == 1 and theirs["steps"] == 24 and 0 < theirs["density"] <= 1
    assert results["yardstick_seconds"] > 0 and results["seconds_per_seed_over_yardstick"] > 0


def test_scripts_run_as_modules_from_the_repository_root():
    """``python -m benchmarks.NAME`` imports in a fresh interpreter (the reference loop loaded by its file)."""
    for name in ("bench_steps", "bench_quality", "bench_memory", "bench_call"):
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=REPO, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0 and "--quick" in result.stdout, result.stderr


def test_scale_estimate_counts_the_work_of_each_rule_family():
    """The GPU-time estimate of the embedded default (textbook ratios: no timing in the test)."""
    from benchmarks.scale_estimate import Network, estimate, load_config, rule_work

    path = REPO / "config" / "config.yaml"
    result = estimate(path, measure=False)
    assert set(result["rules"]) == {"evaluate_model", "learn_masks", "evaluate_masks", "train_model",
                                    "fourier_heatmap", "cutoff_curves", "retrain"}
    assert result["rules"]["learn_masks"]["jobs"] == 7 and result["rules"]["retrain"]["jobs"] == 1
    assert 0 < result["total_hours"][0] <= result["total_hours"][1]
    config = load_config(path)
    net = Network("standard", "small_cnn", "train", "standard", 0.02, 1, 1, 1, {"train": 3, "input_grad": 2, "mask": 2})
    # 32 px at stride 2: rows 0, 2, ..., 30 by columns 0, 2, ..., 16 of the half plane
    heat = config["analysis"]["fourier_heatmap"]
    assert rule_work(net, config)["fourier_heatmap"].forwards == heat["n_images"] * 16 * 9
