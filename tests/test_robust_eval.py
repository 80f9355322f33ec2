"""Robust accuracy as evaluate_model measures it: the threat model of each model, PGD and AutoAttack."""

import time

import pytest

from fourier_masks.config import check_config
from fourier_masks.models.threat import robust_threat

#: The schema's analysis.robust_eval (attack pgd, threat per_model, linf 0.0157, 10 steps, 250 images).
ROBUST_EVAL = check_config({})["analysis"]["robust_eval"]


def zoo(threat_model, dataset=None):
    return {"name": "zoo", "source": "robustbench", "zoo_name": "Standard", "threat_model": threat_model,
            "dataset": dataset}


def test_the_schema_defaults_are_fast_pgd_under_each_models_own_threat():
    assert ROBUST_EVAL["attack"] == "pgd" and ROBUST_EVAL["threat"] == "per_model"


def test_a_zoo_entry_gets_its_own_leaderboard_budget():
    l2 = robust_threat(zoo("L2"), ROBUST_EVAL, "cifar10")
    assert l2 == {"attack": "pgd", "norm": "l2", "eps": 0.5, "steps": ROBUST_EVAL["steps"],
                  "n_images": ROBUST_EVAL["n_images"], "budget": "RobustBench cifar10 L2 leaderboard"}
    assert robust_threat(zoo("Linf"), ROBUST_EVAL, "cifar10")["eps"] == pytest.approx(8 / 255)
    assert robust_threat(zoo("Linf"), ROBUST_EVAL, "cifar100")["eps"] == pytest.approx(8 / 255)
    assert robust_threat(zoo("Linf", "imagenet"), ROBUST_EVAL, "cifar10")["eps"] == pytest.approx(4 / 255)


def test_a_corruptions_entry_gets_no_adversarial_budget():
    threat = robust_threat(zoo("corruptions"), ROBUST_EVAL, "cifar10")
    assert threat["attack"] == "none" and set(threat) == {"attack", "budget"} and "corruptions" in threat["budget"]


def test_a_trained_model_and_every_model_under_threat_global_get_the_global_setting():
    trained = robust_threat({"name": "standard", "source": "train", "regime": "adv_l2"}, ROBUST_EVAL, "cifar10")
    expected = {"attack": "pgd", "norm": ROBUST_EVAL["norm"], "eps": ROBUST_EVAL["eps"],
                "steps": ROBUST_EVAL["steps"], "n_images": ROBUST_EVAL["n_images"], "budget": "analysis.robust_eval"}
    assert trained == expected
    glob = {**ROBUST_EVAL, "threat": "global"}
    for threat_model in ("Linf", "L2", "corruptions"):
        assert robust_threat(zoo(threat_model), glob, "cifar10") == expected


def test_autoattack_reads_no_steps_so_a_change_of_steps_reruns_no_autoattack_model():
    settings = {**ROBUST_EVAL, "attack": "autoattack"}
    threat = robust_threat(zoo("L2"), settings, "cifar10")
    assert threat["attack"] == "autoattack" and "steps" not in threat
    assert robust_threat(zoo("L2"), {**settings, "steps": 3}, "cifar10") == threat


def test_a_threat_model_without_a_leaderboard_is_refused():
    with pytest.raises(ValueError, match="no L2 leaderboard for imagenet"):
        robust_threat(zoo("L2", "imagenet"), ROBUST_EVAL, "cifar10")


def test_autoattack_is_at_least_as_strong_as_pgd_and_nothing_at_eps_0(tiny_model, tiny_data):
    """On the tiny 3-class CNN (APGD-CE, FAB-T and Square: APGD-T needs 4 classes): AutoAttack's
    robust accuracy <= PGD's at the same budget <= clean accuracy, and at eps 0 the clean accuracy."""
    from fourier_masks.models.attacks import autoattack_accuracy, robust_accuracy
    from fourier_masks.models.networks import accuracy

    x, y = tiny_data[2][:30], tiny_data[3][:30]
    eps = 4 / 255
    clean = round(accuracy(tiny_model, x, y, batch_size=256) * len(y)) / len(y)  # a float32 mean: the exact share
    pgd = robust_accuracy(tiny_model, x, y, norm="linf", eps=eps, steps=10)
    start = time.perf_counter()
    auto = autoattack_accuracy(tiny_model, x, y, norm="linf", eps=eps)
    seconds = time.perf_counter() - start
    unattacked = autoattack_accuracy(tiny_model, x[:10], y[:10], norm="linf", eps=0.0)
    numbers = {"clean": clean, "pgd": pgd, "autoattack": auto, "autoattack_seconds": round(seconds, 1)}
    print(numbers)
    assert auto <= pgd <= clean and auto < clean, numbers
    assert unattacked == pytest.approx(accuracy(tiny_model, x[:10], y[:10], batch_size=256))
