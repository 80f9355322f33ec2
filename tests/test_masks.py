"""Mask learning: equivalences, protocol rules, resume after a kill, determinism, NaN diagnosis."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from fourier_masks.errors import InputError, NumericalError
from fourier_masks.masks import learn_masks, masked_accuracy, resolve_options
from fourier_masks.spectrum import reflect

FAST = {"epochs": 3, "batch_size": 16, "lr": 0.05}


def test_masks_have_the_promised_shape_range_and_symmetry(tiny_model, tiny_data):
    x, y = tiny_data[0][:64], tiny_data[1][:64]
    masks, history = learn_masks(tiny_model, x, y, seeds=[1, 2], keep_threshold=0.0, **FAST)
    assert masks.shape == (2, 1, 16, 16) and masks.dtype == np.float32
    assert masks.min() >= 0 and masks.max() <= 1
    np.testing.assert_allclose(masks, reflect(masks), atol=1e-7)
    assert set(history["seed"]) == {1, 2}
    assert {"seed", "epoch", "steps", "loss", "density", "fit_acc", "clean_acc", "kept"} <= set(history)
    assert masks.mean() < 0.99, "with lambda > 0 the mask must move away from all-pass"


def test_per_channel_masks_have_one_mask_per_channel(tiny_model, tiny_data):
    x = tiny_data[0][:32].repeat(1, 3, 1, 1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1), tiny_model)
    masks, _ = learn_masks(model, x, tiny_data[1][:32], seeds=[1], per_channel=True, **FAST)
    assert masks.shape == (1, 3, 16, 16)


def test_seeds_learned_together_equal_seeds_learned_alone(tiny_model, tiny_data):
    x, y = tiny_data[0][:64], tiny_data[1][:64]
    together, _ = learn_masks(tiny_model, x, y, seeds=[1, 2], init="random", **FAST)
    alone = np.concatenate([learn_masks(tiny_model, x, y, seeds=[s], init="random", **FAST)[0] for s in (1, 2)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[0], together[1]), "different seeds must give different masks"


def test_half_spectrum_parametrisation_learns_the_same_function_as_full_fft(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    options = {**FAST, "epochs": 1, "batch_size": 32, "schedule": "constant", "lr": 1e-3}
    half, _ = learn_masks(tiny_model, x, y, seeds=[1], parametrization="rfft", **options)
    full, _ = learn_masks(tiny_model, x, y, seeds=[1], parametrization="fft", **options)
    acc_half = masked_accuracy(tiny_model, x, y, half)
    acc_full = masked_accuracy(tiny_model, x, y, full)
    assert abs(acc_half[0] - acc_full[0]) <= 1 / 32
    assert np.abs(half - full).max() < 5e-3


def test_keep_rule_returns_a_mask_that_meets_it_on_the_fitting_images(tiny_model, tiny_data):
    x, y = tiny_data[0][:96], tiny_data[1][:96]
    masks, history = learn_masks(tiny_model, x, y, seeds=[3], epochs=6, batch_size=16, lr=0.05, keep_threshold=0.99)
    clean = history["clean_acc"].iloc[0]
    assert masked_accuracy(tiny_model, x, y, masks)[0] >= 0.99 * clean - 1e-9


def test_early_stopping_stops_when_density_stops_moving(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    _, history = learn_masks(tiny_model, x, y, seeds=[1], epochs=20, batch_size=32, lr=1e-9,
                             schedule="constant", patience=2, tolerance=1e-3)
    assert history["epoch"].max() == 2


def test_same_seed_gives_bit_identical_masks(tiny_model, tiny_data):
    x, y = tiny_data[0][:48], tiny_data[1][:48]
    first, h1 = learn_masks(tiny_model, x, y, seeds=[5], init="random", **FAST)
    second, h2 = learn_masks(tiny_model, x, y, seeds=[5], init="random", **FAST)
    assert np.array_equal(first, second)
    assert h1.drop(columns="seconds").equals(h2.drop(columns="seconds"))


def test_divergence_fails_with_a_diagnosis(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    with pytest.raises(NumericalError, match="lower mask.lr"):
        learn_masks(tiny_model, x, y, seeds=[1], epochs=1, batch_size=32, lr=float("nan"), schedule="constant")


def test_lambda_zero_and_huge_lambda_work(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    keep_all, _ = learn_masks(tiny_model, x, y, seeds=[1], **{**FAST, "lambda": 0.0})
    assert keep_all.mean() > 0.9
    empty, _ = learn_masks(tiny_model, x, y, seeds=[1], keep_threshold=0.0, epochs=4, batch_size=8, lr=0.1, loss="ce",
                           schedule="constant", **{"lambda": 1e6})
    assert empty.max() == 0.0


@pytest.mark.parametrize("options, key", [({"loss": "mse"}, "mask.loss"), ({"lambda": -1}, "mask.lambda"),
                                          ({"lamda": 0.1}, "lamda"), ({"epochs": 0}, "mask.epochs")])
def test_bad_options_name_the_key(options, key):
    with pytest.raises(InputError, match=key):
        resolve_options(options)


def test_bad_images_are_refused_before_learning(tiny_model):
    with pytest.raises(InputError, match="range"):
        learn_masks(tiny_model, torch.full((4, 1, 16, 16), 2.0), torch.zeros(4, dtype=torch.long), seeds=[1])
    with pytest.raises(InputError, match="shape"):
        learn_masks(tiny_model, torch.rand(4, 16, 16), torch.zeros(4, dtype=torch.long), seeds=[1])


RESUME_SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np, torch
    import fourier_masks.masks as fm
    from fourier_masks.data import photo_patches, to_float
    from fourier_masks.models import make_model
    torch.set_num_threads(1)
    data = photo_patches(n_classes=3, n_train=96, n_test=6, image_size=16, channels=1, seed=0)
    torch.manual_seed(0)
    model = make_model("small_cnn", 1, 3, [0.5], [0.25]).eval()
    save = fm._save_checkpoint
    def slow_save(*args):
        save(*args)
        time.sleep(float(sys.argv[3]))
    fm._save_checkpoint = slow_save
    masks, _ = fm.learn_masks(model, to_float(data.train_images), torch.from_numpy(data.train_labels), [1, 2],
                              checkpoint=sys.argv[1] or None, epochs=6, batch_size=16, lr=0.05, init="random",
                              patience=100)
    np.save(sys.argv[2], masks)
""")


def test_killed_mask_job_resumes_to_the_same_mask(tmp_path):
    script = tmp_path / "learn.py"
    script.write_text(RESUME_SCRIPT)
    checkpoint, resumed, reference = tmp_path / "ck.pt", tmp_path / "resumed.npy", tmp_path / "ref.npy"
    subprocess.run([sys.executable, script, "", reference, "0"], check=True)
    job = subprocess.Popen([sys.executable, script, checkpoint, resumed, "2"], start_new_session=True)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert checkpoint.exists() and not resumed.exists(), "the job must die after its first checkpoint"
    saved = torch.load(checkpoint, weights_only=False)["state"]["epoch"]
    assert 1 <= saved < 6
    subprocess.run([sys.executable, script, checkpoint, resumed, "0"], check=True)
    np.testing.assert_allclose(np.load(resumed), np.load(reference), atol=1e-6)


def test_one_cycle_schedule_matches_pytorchs_onecycle_lr_with_momentum():
    from fourier_masks.masks import _onecycle

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=100, pct_start=0.1)
    for step in range(100):
        lr, beta1 = _onecycle(step, 100, 0.05, 0.1)
        assert lr == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        assert beta1 == pytest.approx(optimizer.param_groups[0]["betas"][0], rel=1e-9)
        optimizer.step()
        schedule.step()


def test_adam_update_of_some_seeds_equals_the_update_of_all_on_those_seeds():
    from fourier_masks.masks import _projected_adam

    generator = torch.Generator().manual_seed(0)
    params, grad = torch.rand(3, 1, 4, 3, generator=generator), torch.randn(3, 1, 4, 3, generator=generator)
    state = [params.clone(), torch.zeros_like(params), torch.zeros_like(params)]
    subset = [params.clone(), torch.zeros_like(params), torch.zeros_like(params)]
    for step in (1, 2):
        _projected_adam(*state[:1], grad, *state[1:], None, step, 0.1, 0.9)
        _projected_adam(*subset[:1], grad[[0, 2]], *subset[1:], [0, 2], step, 0.1, 0.9)
    for full, part in zip(state, subset):
        torch.testing.assert_close(part[[0, 2]], full[[0, 2]])
    torch.testing.assert_close(subset[0][1], params[1])  # the stopped seed does not move
    assert state[0].min() >= 0 and state[0].max() <= 1
