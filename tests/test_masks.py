"""Mask learning: equivalences, protocol rules, options, resume after a kill, determinism, NaN diagnosis."""

import copy
import logging
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch
from reference_loop import naive_mask

from fourier_masks.analysis.metrics import learning_summary
from fourier_masks.config import check_config
from fourier_masks.errors import InputError
from fourier_masks.masks.learning import learn_masks
from fourier_masks.masks.objective import masked_accuracy
from fourier_masks.masks.options import MaskOptions, mask_options
from fourier_masks.masks.protocol import SeedTracker
from fourier_masks.models.layout import set_layout
from fourier_masks.spectrum import reflect

FAST = {"epochs": 3, "batch_size": 16, "lr": 0.05}


def test_masks_have_the_promised_shape_range_and_symmetry(tiny_model, tiny_data):
    x, y = tiny_data[0][:64], tiny_data[1][:64]
    masks, history = learn_masks(tiny_model, x, y, seeds=[1, 2], keep_threshold=0.0, **FAST)
    assert masks.shape == (2, 1, 16, 16) and masks.dtype == np.float32
    assert masks.min() >= 0 and masks.max() <= 1
    np.testing.assert_allclose(masks, reflect(masks), atol=1e-7)
    assert set(history["seed"]) == {1, 2}
    assert {"seed", "epoch", "steps", "loss", "density", "step_density", "fit_acc", "clean_acc", "kept"} <= set(history)
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


def test_model_calls_split_into_whole_seeds_give_the_same_masks(tiny_model, tiny_data):
    x, y = tiny_data[0][:64], tiny_data[1][:64]
    one_call, h1 = learn_masks(tiny_model, x, y, seeds=[1, 2, 3], model_batch_size=48, **FAST)
    per_seed, h2 = learn_masks(tiny_model, x, y, seeds=[1, 2, 3], model_batch_size=16, **FAST)
    np.testing.assert_allclose(one_call, per_seed, atol=1e-6)
    assert list(h1["kept"]) == list(h2["kept"])


def test_channels_last_layout_learns_the_same_masks(tiny_model, tiny_data):
    """A model in the NHWC layout (the schema default where it runs there) changes float rounding only."""
    x, y = tiny_data[0][:64], tiny_data[1][:64]
    default, h1 = learn_masks(set_layout(copy.deepcopy(tiny_model), False), x, y, seeds=[1, 2], **FAST)
    model = set_layout(copy.deepcopy(tiny_model), True)
    nhwc, h2 = learn_masks(model, x, y, seeds=[1, 2], **FAST)
    np.testing.assert_allclose(default, nhwc, atol=5e-4)  # rounding, carried through the Adam steps
    assert list(h1["kept"]) == list(h2["kept"])
    conv = next(p for p in model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last), "the model keeps its own layout"


def test_half_spectrum_parametrisation_learns_the_same_function_as_full_fft(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    options = {**FAST, "epochs": 1, "batch_size": 32, "schedule": "constant", "lr": 1e-3}
    half, _ = learn_masks(tiny_model, x, y, seeds=[1], parametrization="rfft", **options)
    full, _ = learn_masks(tiny_model, x, y, seeds=[1], parametrization="fft", **options)
    acc_half = masked_accuracy(tiny_model, x, y, half, 64)
    acc_full = masked_accuracy(tiny_model, x, y, full, 64)
    assert abs(acc_half[0] - acc_full[0]) <= 1 / 32
    assert np.abs(half - full).max() < 5e-3


def test_keep_rule_returns_a_mask_that_meets_it_on_the_fitting_images(tiny_model, tiny_data):
    x, y = tiny_data[0][:96], tiny_data[1][:96]
    masks, history = learn_masks(tiny_model, x, y, seeds=[3], epochs=6, batch_size=16, lr=0.05, keep_threshold=0.99)
    clean = history["clean_acc"].iloc[0]
    assert masked_accuracy(tiny_model, x, y, masks, 64)[0] >= 0.99 * clean - 1e-9


def test_early_stopping_stops_when_density_stops_moving(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    _, history = learn_masks(tiny_model, x, y, seeds=[1], epochs=20, batch_size=32, lr=1e-9,
                             schedule="constant", patience=2, tolerance=1e-3)
    assert history["epoch"].max() == 2


_RULES = {"keep_threshold": 0.9, "patience": 2, "tolerance": 0.01}


def _tracker_run(protocol, epochs):
    """Kept flags, the epoch a tracker stops at and its mask, for (fit_acc, density) per epoch; clean acc 1."""
    options = mask_options(protocol=protocol, monitor=True, **_RULES)
    tracker, kept = SeedTracker(1, torch.ones(1), 1.0), []
    for epoch, (fit_acc, measured) in enumerate(epochs, start=1):
        kept.append(tracker.update(epoch, torch.full((1,), float(epoch)), measured, 1.0, 0, options, (fit_acc, 1.0))[0])
        if not tracker.active:
            break
    return kept, epoch, float(tracker.kept[0])


def _deferred_tracker_run(epochs):
    """As :func:`_tracker_run` for protocol default with the keep rule deferred until the seed stops."""
    options, tracker, judged = mask_options(**_RULES), SeedTracker(1, torch.ones(1), 1.0), {}
    for epoch, (_, measured) in enumerate(epochs, start=1):
        assert tracker.update(epoch, torch.full((1,), float(epoch)), measured, 1.0, 0, options)[0] is None
        if not tracker.active:
            break
    while tracker.pending:
        newest = tracker.pending[-1][0]
        judged.update([tracker.judge_newest(epochs[newest - 1][0], 1.0, options)])
    return judged, epoch, float(tracker.kept[0])


def test_protocols_keep_and_stop_as_documented():
    # densities barely move from epoch 2 on; epoch 3 misses the keep threshold
    epochs = [(1.0, 0.9), (1.0, 0.8), (0.5, 0.8), (1.0, 0.8), (1.0, 0.8), (1.0, 0.8)]
    # default: epoch 1 may be kept; every epoch counts (calm after epochs 3 and 4 -> stop at 4)
    assert _tracker_run("default", epochs) == ([True, True, False, True], 4, 4.0)
    # authors: epoch 1 never kept; the missed epoch 3 leaves the count alone (calm at 4 and 5 -> stop at 5)
    assert _tracker_run("authors", epochs) == ([False, True, False, True, True], 5, 5.0)


def test_deferred_keep_rule_walks_back_to_the_same_mask():
    # the newest epoch is kept: one judgement
    epochs = [(1.0, 0.9), (1.0, 0.8), (0.5, 0.8), (1.0, 0.8), (1.0, 0.8)]
    assert _deferred_tracker_run(epochs) == ({4: True}, 4, 4.0)
    # epochs 3 and 4 miss: judged newest first back to epoch 2, as every-epoch judging keeps it
    epochs = [(1.0, 0.9), (1.0, 0.8), (0.5, 0.8), (0.5, 0.8), (1.0, 0.8)]
    assert _tracker_run("default", epochs) == ([True, True, False, False], 4, 2.0)
    assert _deferred_tracker_run(epochs) == ({4: False, 3: False, 2: True}, 4, 2.0)
    # none meets the rule: every epoch is judged and the initial mask stays
    assert _deferred_tracker_run([(0.5, 0.9), (0.5, 0.8), (0.5, 0.8)]) == ({3: False, 2: False, 1: False}, 3, 1.0)


def test_authors_protocol_agrees_with_the_authors_loop(tiny_model, tiny_data):
    """tests/reference_loop.py follows the authors' train_masks.py line by line (batch 1, torch Adam)."""
    x, y = tiny_data[0][:12], tiny_data[1][:12]
    rules = {"epochs": 10, "patience": 2, "tolerance": 2e-2, "keep_threshold": 0.99}
    naive, reference = naive_mask(copy.deepcopy(tiny_model), x, y, seed=1, lam=0.2, lr=0.01, **rules)
    # the authors' loop and tiny_model run in the default layout; NHWC would add rounding over ~100 steps
    package, history = learn_masks(copy.deepcopy(tiny_model), x, y, seeds=[1], batch_size=1, lr=0.01,
                                   schedule="onecycle", parametrization="fft", protocol="authors", loss="paper",
                                   **{"lambda": 0.2}, **rules)
    assert list(history["kept"]) == list(reference["kept"]) and not history["kept"].iloc[0]
    assert not history["kept"].all(), "some epochs must miss the keep rule for this test to mean anything"
    assert len(history) < rules["epochs"], "the patience rule must stop the run early"
    np.testing.assert_allclose(history["step_density"], reference["step_density"], atol=1e-5)
    np.testing.assert_allclose(package[0, 0], (naive + reflect(naive)) / 2, atol=5e-4)  # CPU-dependent rounding


def test_same_seed_gives_bit_identical_masks(tiny_model, tiny_data):
    x, y = tiny_data[0][:48], tiny_data[1][:48]
    first, h1 = learn_masks(tiny_model, x, y, seeds=[5], init="random", **FAST)
    second, h2 = learn_masks(tiny_model, x, y, seeds=[5], init="random", **FAST)
    assert np.array_equal(first, second)
    assert h1.drop(columns="seconds").equals(h2.drop(columns="seconds"))


class _Sharpened(torch.nn.Module):
    """``model`` with its logits scaled up, so that the paper loss's exponent overflows."""

    def __init__(self, model, scale):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


def test_steps_that_blow_up_the_loss_are_undone_and_reported(tiny_model, tiny_data):
    """A network with huge logits at a far too large rate: the paper loss stays finite, jumps are undone."""
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    masks, history = learn_masks(_Sharpened(copy.deepcopy(tiny_model), 1e4), x, y, seeds=[1, 2], epochs=3,
                                 batch_size=8, lr=0.5, schedule="constant")
    assert np.isfinite(masks).all() and np.isfinite(history["loss"]).all()
    assert history["backoffs"].sum() > 0, "this setting must make some steps jump for the test to mean anything"
    last = history.groupby("seed").tail(1)
    assert set(last["status"]) <= {"recovered", "budget", "diverged", "initial", "kept_early"}
    halved = history[history["backoffs"] > 0]
    assert (halved["lr"] < 0.5).all(), "every back-off halves the seed's learning rate"


def test_the_paper_loss_equals_exp_square_up_to_the_knee_and_stays_finite():
    from fourier_masks.masks.objective import KNEE, invariance

    gap = torch.linspace(-KNEE, KNEE, 101, dtype=torch.float64)
    torch.testing.assert_close(invariance(gap), torch.exp(gap**2))
    far = torch.tensor([10.0, 1e6, -1e30], requires_grad=True)
    value = invariance(far)
    (grad,) = torch.autograd.grad(value.sum(), far)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    slope = 2 * KNEE * math.exp(KNEE**2)  # the tangent's slope, continuous at the knee
    torch.testing.assert_close(grad.abs(), torch.full((3,), slope))


def test_the_one_sided_paper_loss_charges_rises_as_the_paper_and_falls_not_at_all():
    """``paper_one_sided`` against ``exp(d^2)`` written out, for cross-entropy rises and falls set by hand
    (logits of 2 classes give CE = softplus(-margin)), inside and beyond the knee."""
    from fourier_masks.masks.objective import loss_per_seed

    ce_clean = torch.full((1, 6), math.log(2.0), dtype=torch.float64)  # clean logits equal
    margin = torch.tensor([[-0.3, -1.0, -2.5, 0.4, 2.0, 0.8]], dtype=torch.float64, requires_grad=True)
    logits = torch.stack([torch.zeros_like(margin), margin], -1)  # label 1: CE = softplus(-margin)
    labels = torch.ones((1, 6), dtype=torch.long)
    gap = torch.nn.functional.softplus(-margin) - ce_clean  # rises for margin < 0, falls for margin > 0

    def loss(kind):
        return loss_per_seed(kind, logits, labels, ce_clean, None, 0.0, torch.zeros(1))

    one_sided, paper = loss("paper_one_sided"), loss("paper")
    rises = gap.detach() > 0
    expected = torch.where(rises, torch.exp(torch.clamp(gap.detach(), max=1.0) ** 2), torch.ones_like(gap.detach()))
    expected[0, 2] = math.e * (1 + 2 * (gap[0, 2].item() - 1))  # beyond the knee: the tangent line
    torch.testing.assert_close(one_sided, expected.mean(-1), check_dtype=False, rtol=1e-5, atol=1e-6)  # float32 logits
    assert paper > one_sided, "the paper's term charges the falls too"
    (grad,) = torch.autograd.grad(one_sided.sum(), margin)
    assert (grad[~rises] == 0).all() and (grad[rises] < 0).all(), grad  # a fall moves nothing; a rise pulls back
    with pytest.raises(ValueError, match="unknown mask loss"):
        loss("papr")


def test_lambda_zero_and_huge_lambda_work(tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    keep_all, _ = learn_masks(tiny_model, x, y, seeds=[1], **{**FAST, "lambda": 0.0})
    assert keep_all.mean() > 0.9
    empty, _ = learn_masks(tiny_model, x, y, seeds=[1], keep_threshold=0.0, epochs=4, batch_size=8, lr=0.1, loss="ce",
                           schedule="constant", **{"lambda": 1e6})
    assert empty.max() == 0.0


@pytest.mark.parametrize("options, key", [({"loss": "mse"}, "mask.loss"), ({"lambda": -1}, "mask.lambda"),
                                          ({"lamda": 0.1}, "lamda"), ({"epochs": 0}, "mask.epochs"),
                                          ({"protocol": "paper"}, "mask.protocol"),
                                          ({"fit_images": 10}, "fit_images")])
def test_bad_options_name_the_key(options, key):
    with pytest.raises(InputError, match=key):
        mask_options(**options)


def test_options_come_from_the_schema_and_the_checked_config():
    config = check_config({"mask": {"epochs": 2}, "device": "cpu"})
    assert mask_options(epochs=2, device="cpu") == MaskOptions.from_config(config["mask"], "cpu")
    assert mask_options(**{"lambda": 0.3}).lam == 0.3
    with pytest.raises(InputError, match="not both"):
        learn_masks(None, torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), [1],
                    options=mask_options(), epochs=1)


def test_bad_images_are_refused_before_learning(tiny_model):
    with pytest.raises(InputError, match="range"):
        learn_masks(tiny_model, torch.full((4, 1, 16, 16), 2.0), torch.zeros(4, dtype=torch.long), seeds=[1])
    with pytest.raises(InputError, match="shape"):
        learn_masks(tiny_model, torch.rand(4, 16, 16), torch.zeros(4, dtype=torch.long), seeds=[1])


@pytest.mark.parametrize("monitor", [False, True])
def test_progress_is_logged_once_per_epoch(tiny_model, tiny_data, caplog, monitor):
    with caplog.at_level(logging.INFO, logger="fourier_masks"):
        learn_masks(tiny_model, tiny_data[0][:32], tiny_data[1][:32], seeds=[1, 2], epochs=2, batch_size=16,
                    monitor=monitor)
    lines = [r.getMessage() for r in caplog.records if r.name == "fourier_masks.masks.learning"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1 (at most 2)", "epoch 2 (at most 2)"]
    assert all("steps/s" in line and "seed 2: density" in line for line in lines)
    assert ("fit acc" in lines[0]) == monitor, "without monitor the keep rule waits until the seeds are done"
    assert "fit acc" in lines[1] and "seed 2: density" in lines[1].split("budget with the mask of epoch")[1]


@pytest.mark.parametrize("progress", [False, True])
def test_progress_bar_counts_epochs_on_request_only(tiny_model, tiny_data, capsys, progress):
    masks, _ = learn_masks(tiny_model, tiny_data[0][:32], tiny_data[1][:32], seeds=[1], epochs=2, batch_size=16,
                           progress=progress)
    shown = capsys.readouterr().err
    assert bool(re.search(r"mask epochs.* [12]/2 .*seeds_learning", shown)) == progress, shown
    plain, _ = learn_masks(tiny_model, tiny_data[0][:32], tiny_data[1][:32], seeds=[1], epochs=2, batch_size=16)
    np.testing.assert_array_equal(masks, plain)  # the bar changes nothing


#: Option sets where judging only when a seed is done must walk back (the newest mask missing the
#: keep rule, some seeds keeping none) and where seeds stop at different epochs; the first with
#: the per-image second moment, the others with PyTorch's (larger steps, so masks overshoot).
DEFERRED_CASES = [
    {"epochs": 6, "batch_size": 16, "lr": 0.05},
    {"epochs": 6, "batch_size": 16, "lr": 0.05, "second_moment": "batch"},
    {"epochs": 6, "batch_size": 16, "lr": 0.05, "keep_threshold": 0.97, "patience": 2, "tolerance": 3e-2,
     "second_moment": "batch"},
    {"epochs": 8, "batch_size": 16, "lr": 0.1, "keep_threshold": 0.95, "patience": 2, "tolerance": 5e-2,
     "schedule": "constant", "loss": "kl", "second_moment": "batch"},
    {"epochs": 8, "batch_size": 16, "lr": 0.05, "patience": 2, "tolerance": 2e-2, "init": "random",
     "second_moment": "batch"},
    {"epochs": 5, "batch_size": 32, "lr": 0.2, "loss": "ce", "parametrization": "fft", "init": "random",
     "second_moment": "batch"},
    {"epochs": 12, "batch_size": 16, "lr": 0.1, "patience": 2, "tolerance": 2e-2, "loss_tolerance": 0.05,
     "schedule": "constant"},
]


def test_keep_rule_judged_when_done_equals_judging_every_epoch(tiny_model, tiny_data):
    x, y = tiny_data[0][:64], tiny_data[1][:64]
    walked_back = stopped_apart = judged_fewer = 0
    for options in DEFERRED_CASES:
        lazy, deferred = learn_masks(tiny_model, x, y, seeds=[1, 2, 3], **options)
        every, monitored = learn_masks(tiny_model, x, y, seeds=[1, 2, 3], monitor=True, **options)
        assert np.array_equal(lazy, every), options
        same = ["seed", "epoch", "steps", "lr", "loss", "density", "step_density", "clean_acc"]
        assert deferred[same].equals(monitored[same]), options
        judged = deferred["fit_acc"].notna().to_numpy()
        assert (deferred["kept"].notna().to_numpy() == judged).all() and monitored["kept"].notna().all()
        assert np.array_equal(deferred["fit_acc"][judged], monitored["fit_acc"][judged])
        assert list(deferred["kept"][judged]) == list(monitored["kept"][judged])
        for seed, rows in monitored.groupby("seed"):
            summary = learning_summary(deferred[deferred.seed == seed])
            assert {**summary, "seconds": 0} == {**learning_summary(rows), "seconds": 0}, options
            walked_back += not rows["kept"].iloc[-1] and rows["kept"].any()
        stopped_apart += deferred.groupby("seed")["epoch"].max().nunique() > 1
        judged_fewer += judged.sum() < len(judged)
    assert walked_back and stopped_apart and judged_fewer, "the cases must exercise the walk-back"


RESUME_SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np, torch
    import fourier_masks.masks.checkpoint as ck
    from fourier_masks.data.dataset import to_float
    from fourier_masks.data.photos import photo_patches
    from fourier_masks.masks.learning import learn_masks
    from fourier_masks.models.networks import make_model
    torch.set_num_threads(1)
    data = photo_patches(n_classes=3, n_train=96, n_test=6, image_size=16, channels=1, seed=0)
    torch.manual_seed(0)
    model = make_model("small_cnn", 1, 3, [0.5], [0.25], seed=0).eval()
    save = ck.save
    def slow_save(*args):
        save(*args)
        time.sleep(float(sys.argv[3]))
    ck.save = slow_save
    masks, history = learn_masks(model, to_float(data.train_images), torch.from_numpy(data.train_labels), [1, 2],
                                 checkpoint=sys.argv[1] or None, epochs=6, batch_size=16, lr=0.05, init="random",
                                 schedule="onecycle", patience=100, keep_threshold=0.82, checkpoint_interval=0,
                                 second_moment="batch")
    np.save(sys.argv[2], masks)
    history.drop(columns="seconds").to_parquet(sys.argv[2] + ".parquet")
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
    saved = torch.load(checkpoint, weights_only=True)["state"]
    assert 1 <= saved["epoch"] < 6
    assert [epoch for epoch, _ in saved["trackers"][0]["pending"]] == list(range(1, saved["epoch"] + 1)), \
        "the masks awaiting the keep rule travel in the checkpoint"
    subprocess.run([sys.executable, script, checkpoint, resumed, "0"], check=True)
    np.testing.assert_allclose(np.load(resumed), np.load(reference), atol=1e-6)
    resumed_history, history = (pd.read_parquet(f"{path}.parquet") for path in (resumed, reference))
    pd.testing.assert_frame_equal(resumed_history, history)
    assert history["kept"].isna().any() and not history.groupby("seed")["kept"].last().all(), \
        "a seed must walk back from its last epoch for this test to mean anything"


def test_one_cycle_schedule_matches_pytorchs_onecycle_lr_with_momentum():
    from fourier_masks.masks.options import _onecycle

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=100, pct_start=0.1)
    for step in range(100):
        lr, beta1 = _onecycle(step, 100, 0.05, 0.1)
        assert lr == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        assert beta1 == pytest.approx(optimizer.param_groups[0]["betas"][0], rel=1e-9)
        optimizer.step()
        schedule.step()


def test_projected_adam_equals_torch_adam_followed_by_a_clamp():
    from fourier_masks.masks.state import projected_adam as _projected_adam

    generator = torch.Generator().manual_seed(0)
    params = torch.rand(3, 1, 4, 3, generator=generator)
    reference = torch.nn.Parameter(params.clone())
    optimizer = torch.optim.Adam([reference], lr=0.1, betas=(0.9, 0.999))
    adam_m, adam_v = torch.zeros_like(params), torch.zeros_like(params)
    for step in (1, 2, 3):
        grad = torch.randn(params.shape, generator=generator)
        _projected_adam(params, grad, None, adam_m, adam_v, step, 0.1, 0.9)
        reference.grad = grad.clone()
        optimizer.step()
        with torch.no_grad():
            reference.clamp_(0.0, 1.0)
        torch.testing.assert_close(params, reference.detach(), rtol=1e-6, atol=1e-7)
    assert params.min() == 0 and params.max() == 1, "the clamp must bind for this test to mean anything"


def _image_gradient(model, image, label, params, lam, loss):
    """Gradient of one image's ``paper`` or ``paper_one_sided`` loss w.r.t. a half-spectrum mask
    ``[1, H, W']``, written out plainly."""
    from fourier_masks.masks.objective import bin_weights, invariance

    mask = params.clone().requires_grad_(True)
    height, width = image.shape[-2:]
    masked = torch.fft.irfft2(torch.fft.rfft2(image[None]) * mask, s=(height, width))
    gap = (torch.nn.functional.cross_entropy(model(masked), label[None])
           - torch.nn.functional.cross_entropy(model(image[None]), label[None]))
    if loss == "paper_one_sided":
        gap = torch.clamp(gap, min=0.0)
    total = invariance(gap) + lam * (mask * bin_weights(height, width, "rfft")).sum() / (height * width)
    (grad,) = torch.autograd.grad(total, mask)
    return grad


@pytest.mark.parametrize(("second_moment", "loss"), [("per_image", "paper_one_sided"), ("per_image", "paper"),
                                                     ("batch", "paper_one_sided")])
def test_a_step_takes_in_each_images_squared_gradient_or_the_batchs(tiny_model, tiny_data, second_moment, loss):
    """One backward pass gives the batch gradient and the mean of the images' squared gradients,
    equal to computing each image's gradient on its own (per_image), or the squared mean (batch)."""
    from fourier_masks.masks.learning import _Problem, _step_gradient

    x, y = tiny_data[0][:12], tiny_data[1][:12]
    options = mask_options(second_moment=second_moment, model_batch_size=8, device="cpu", loss=loss, **{"lambda": 0.2})
    problem = _Problem.build(tiny_model, x, y, options)
    params = torch.rand(2, 1, 16, 9, generator=torch.Generator().manual_seed(0))
    index = torch.tensor([[0, 3, 5, 7, 11], [1, 2, 4, 6, 8]])
    _, _, grad, square = _step_gradient(problem, params, index)
    for row in range(2):
        each = torch.stack([_image_gradient(problem.model, x[i], y[i], params[row], 0.2, loss) for i in index[row]])
        torch.testing.assert_close(grad[row], each.mean(0), rtol=1e-4, atol=1e-7)
        if loss == "paper_one_sided":  # some images' cross-entropy falls, so the clamp matters here
            two_sided = [_image_gradient(problem.model, x[i], y[i], params[row], 0.2, "paper") for i in index[row]]
            assert not torch.allclose(each, torch.stack(two_sided)), "no image's cross-entropy fell"
        if second_moment == "per_image":
            torch.testing.assert_close(square[row], each.square().mean(0), rtol=1e-4, atol=1e-9)
            assert not torch.allclose(square[row], grad[row].square(), rtol=0.1), "the images' gradients must differ"
    assert square is None or second_moment == "per_image"


def _calm_epochs(loss: np.ndarray, density: np.ndarray, rules: dict) -> np.ndarray:
    """Whether each epoch after the first is calm by the stop rule, reading ``loss`` as given."""
    return ((np.abs(np.diff(density)) <= rules["tolerance"])
            & (np.abs(np.diff(loss)) <= rules["loss_tolerance"] * np.abs(loss[:-1])))


def test_the_stop_rule_reads_the_paper_loss_above_its_floor(tiny_model, tiny_data):
    """exp(d^2) >= 1, so the stop rule reads the loss minus 1: a seed is converged when that part
    stopped moving, not when it is small beside the floor (which the loss itself would say earlier)."""
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    rules = {"patience": 2, "tolerance": 0.05, "loss_tolerance": 0.01, "keep_threshold": 0.9}
    _, history = learn_masks(tiny_model, x, y, seeds=[1, 2], epochs=40, batch_size=8, **rules)
    for _, seed in history.groupby("seed"):
        loss, density = seed["loss"].to_numpy(), seed["density"].to_numpy()
        assert seed["status"].iloc[-1] == "converged"
        assert _calm_epochs(loss - 1, density, rules)[-rules["patience"]:].all()
        by_loss_itself = _calm_epochs(loss, density, rules)
        two_calm = np.flatnonzero(by_loss_itself[1:] & by_loss_itself[:-1])  # patience 2
        assert len(two_calm) and two_calm[0] + 3 < len(seed), "read plainly, the loss would have stopped it earlier"
