"""Training regimes and PGD on real tensors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TRAINING, training

from fourier_masks.errors import InputError
from fourier_masks.models.attacks import ATTACKS, fgsm_rs, pgd
from fourier_masks.models.regimes import REGIMES
from fourier_masks.models.training import augment, train_model


@pytest.mark.parametrize("regime", REGIMES)
def test_augmentations_keep_shape_and_range_and_change_images(regime):
    images = torch.rand(8, 3, 16, 16)
    out = augment(images, regime, torch.Generator().manual_seed(0), TRAINING)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, images)


def test_rotation_by_180_degrees_turns_the_image():
    image = torch.zeros(1, 1, 16, 16)
    image[..., :4, :] = 1.0  # bright band at the top
    settings = {**TRAINING, "rotate": 180.0}
    rotated = [augment(image, "rotate", torch.Generator().manual_seed(s), settings) for s in range(20)]
    assert any(r[..., -4:, :].mean() > r[..., :4, :].mean() for r in rotated)


@pytest.mark.parametrize("norm, eps", [("linf", 4 / 255), ("l2", 0.5)])
def test_pgd_stays_in_budget_and_raises_the_loss(tiny_model, tiny_data, norm, eps):
    x, y = tiny_data[2][:32], tiny_data[3][:32]
    adversarial = pgd(tiny_model, x, y, norm=norm, eps=eps, steps=5, generator=torch.Generator().manual_seed(0))
    delta = (adversarial - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all() and adversarial.min() >= 0 and adversarial.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(tiny_model(adversarial), y) > F.cross_entropy(tiny_model(x), y)


@pytest.mark.parametrize("norm, eps", [("linf", 4 / 255), ("l2", 0.5)])
def test_fgsm_with_random_start_stays_in_budget_and_raises_the_loss(tiny_model, tiny_data, norm, eps):
    x, y = tiny_data[2][:32], tiny_data[3][:32]
    adversarial = fgsm_rs(tiny_model, x, y, norm=norm, eps=eps, generator=torch.Generator().manual_seed(0))
    delta = (adversarial - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all() and adversarial.min() >= 0 and adversarial.max() <= 1
    if norm == "linf":  # a 1.25 eps step from inside the ball lands on its boundary where not clipped to [0, 1]
        inside = ((x > eps) & (x < 1 - eps)).flatten(1)
        assert (delta.abs()[inside] > eps - 1e-5).float().mean() > 0.5
    with torch.no_grad():
        assert F.cross_entropy(tiny_model(adversarial), y) > F.cross_entropy(tiny_model(x), y)


def test_fast_adversarial_training_buys_robustness_like_pgd_training(tiny_data):
    """FGSM-RS training (Wong et al. 2020) resists a 10-step PGD attack far better than standard
    training, and about as well as 4-step PGD training."""
    from fourier_masks.models.attacks import robust_accuracy
    from fourier_masks.models.networks import make_model

    x, y, test_x, test_y = tiny_data
    eps, robust = 16 / 255, {}
    for regime, attack in (("standard", "pgd"), ("adv_linf", "fgsm_rs"), ("adv_linf", "pgd")):
        model = make_model("small_cnn", 1, 3, [0.5], [0.25], seed=0)
        train_model(model, x, y, regime, **training(epochs=4, batch_size=32, lr=5e-3, attack=attack,
                                                    pgd_linf={"eps": eps, "steps": 4}))
        robust[regime, attack] = robust_accuracy(model, test_x, test_y, norm="linf", eps=eps, steps=10)
    fast, pgd_trained = robust["adv_linf", "fgsm_rs"], robust["adv_linf", "pgd"]
    assert fast > robust["standard", "pgd"] + 0.2 and abs(fast - pgd_trained) <= 0.1, robust


def test_channels_last_training_matches_the_default_layout(tiny_data):
    """The NHWC layout changes float rounding only; the model keeps the layout it trained in."""
    from fourier_masks.models.layout import set_layout
    from fourier_masks.models.networks import make_model

    x, y = tiny_data[0][:96], tiny_data[1][:96]
    models, histories = [], []
    for channels_last in (False, True):
        model = set_layout(make_model("small_cnn", 1, 3, [0.5], [0.25], seed=0), channels_last)
        settings = training(epochs=2, batch_size=32, lr=5e-3, attack="fgsm_rs")
        histories.append(train_model(model, x, y, "adv_linf", **settings))
        models.append(model)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-3)
    convs = [next(p for p in model.parameters() if p.dim() == 4) for model in models]
    assert convs[0].is_contiguous() and convs[1].is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # Adam turns rounding-sized gradients into small steps: compare what the models do
        logits = [model(tiny_data[2]) for model in models]
    assert (logits[0].argmax(1) == logits[1].argmax(1)).float().mean() >= 0.95
    torch.testing.assert_close(logits[0].softmax(1), logits[1].softmax(1), rtol=0, atol=0.02)


def test_training_logs_each_epoch_with_its_speed(tiny_data, caplog):
    from fourier_masks.models.networks import make_model

    with caplog.at_level("INFO", logger="fourier_masks.models.training"):
        train_model(make_model("small_cnn", 1, 3, seed=0), tiny_data[0][:64], tiny_data[1][:64], "adv_linf",
                    **training(epochs=2, batch_size=32, attack="fgsm_rs"))
    lines = [r.getMessage() for r in caplog.records if r.name == "fourier_masks.models.training"]
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2: loss ") and "steps/s" in lines[1]


def test_attacks_match_the_schema_and_unknown_ones_are_refused(tiny_data):
    from fourier_masks.config import load_schema
    from fourier_masks.models.networks import make_model

    assert tuple(load_schema()["properties"]["training"]["properties"]["attack"]["enum"]) == ATTACKS
    with pytest.raises(InputError, match="training.attack = 'trades'.*pgd, fgsm_rs"):
        train_model(make_model("small_cnn", 1, 3, seed=0), tiny_data[0][:4], tiny_data[1][:4], "adv_linf",
                    **training(attack="trades"))


def test_adversarial_training_runs_and_records_history(tiny_data):
    from fourier_masks.models.networks import make_model

    x, y = tiny_data[0][:64], tiny_data[1][:64]
    history = train_model(make_model("small_cnn", 1, 3, seed=0), x, y, "adv_l2",
                          **training(epochs=2, batch_size=32, pgd_l2={"eps": 0.5, "steps": 2}))
    assert history["epoch"].tolist() == [1, 2] and history["loss"].notna().all()


def test_unknown_regime_is_refused(tiny_data):
    from fourier_masks.models.networks import make_model

    with pytest.raises(ValueError, match="standard"):
        train_model(make_model("small_cnn", 1, 3, seed=0), tiny_data[0][:4], tiny_data[1][:4], "mixup", **training())


def test_diverged_training_stops_instead_of_leaving_a_nan_model():
    """A learning rate that turns the weights into NaN is an error naming training.lr, not a model
    whose accuracy looks plausible."""
    from fourier_masks.errors import NumericalError
    from fourier_masks.models.networks import make_model

    images, labels = torch.rand(32, 1, 16, 16), torch.randint(0, 3, (32,))
    model = make_model("small_cnn", 1, 3, [0.5], [0.25], seed=0)
    with pytest.raises(NumericalError, match=r"training diverged in epoch 1.*lower training.lr \(now 1e\+30\)"):
        train_model(model, images, labels, "standard", **training(epochs=2, batch_size=16, lr=1e30))
