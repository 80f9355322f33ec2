"""The mask benchmark runs, and its naive reference learns the same mask as learn_masks (no timings asserted)."""

import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package lives at the root

from benchmarks.bench_masks import Size, report, run_benchmark  # noqa: E402
from benchmarks.naive import naive_mask  # noqa: E402
from fourier_masks.masks.learning import learn_masks  # noqa: E402
from fourier_masks.spectrum import apply_mask, symmetrize  # noqa: E402


def test_naive_reference_learns_the_mask_learn_masks_learns(tiny_model, tiny_data):
    x, y = tiny_data[0][:12], tiny_data[1][:12]
    options = {"lr": 0.01, "epochs": 2}
    naive, history = naive_mask(copy.deepcopy(tiny_model), x, y, seed=1, lam=0.2, schedule="constant",
                                evaluate=False, **options)
    package, _ = learn_masks(copy.deepcopy(tiny_model), x, y, seeds=[1], batch_size=1, parametrization="fft",
                             schedule="constant", init="ones", keep_threshold=0.0, device="cpu",
                             **{"lambda": 0.2}, **options)
    assert naive.shape == (16, 16) and 0 <= naive.min() and naive.max() <= 1
    assert naive.mean() < 0.99 and list(history["epoch"]) == [1, 2], "the naive loop must learn"
    np.testing.assert_allclose(symmetrize(naive), package[0, 0], atol=1e-4)
    np.testing.assert_allclose(apply_mask(x, naive), apply_mask(x, package[0]), atol=1e-4)


def test_smallest_benchmark_runs_and_reports_every_figure():
    results = run_benchmark(Size(n_train=200, image_size=16, train_epochs=1, batch1_images=3, batched_images=32,
                                 repeats=1, fit_images=8, naive_epoch_cap=1, memory_images=4, e2e_images=16,
                                 e2e_seeds=2, e2e_batch=8, e2e_epochs=(1, 2), e2e_repeats=1), "cpu")
    steps = results["steps"]
    assert set(steps["throughput"]) == {"naive", "paper", "default"}
    assert all(value > 0 for value in steps["throughput"].values())
    assert set(results["memory"]["peak"]) == {"naive", "paper", "default"}
    assert set(results["bars"]) == {"share_default", "speedup_paper", "speedup_default", "time_to_quality",
                                    "end_to_end_2"}
    end_to_end = results["end_to_end"]["epochs"]
    assert set(end_to_end) == {"1", "2"}
    assert all(row["share"] > 0 and row["vs_naive"] > 0 for row in end_to_end.values())
    profile = end_to_end["2"]["profile"]
    assert len(profile["top"]) == 5 and profile["phases"]["mask steps"] > 0 and profile["phases"]["keep-rule pass"] > 0
    assert profile["keep_rule_passes"] >= 1 and all(row["cpu_time"]["share"] > 0 for row in end_to_end.values())
    assert results["job_setup"]["speedup"] > 0 and len(results["job_setup"]["repeat_seconds"]["reuse"]) == 1
    text = report(results)
    for heading in ("1. throughput", "2. step time", "3. time to a mask", "4. extra peak memory", "5. end to end",
                    "6. job set-up"):
        assert heading in text



def test_scale_estimate_counts_the_work_of_each_rule_family():
    """The GPU-time estimate of the embedded default (textbook ratios: no timing in the test)."""
    from benchmarks.scale_estimate import Network, estimate, load_config, rule_work

    path = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
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
