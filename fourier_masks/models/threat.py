"""The attack and budget each model's robust accuracy is measured under (rule evaluate_model).

``analysis.robust_eval.threat`` chooses between one threat model for every model
(``global``: ``norm``, ``eps`` of ``analysis.robust_eval``) and the model's own
(``per_model``): a RobustBench entry is then attacked under its ``threat_model`` with its
leaderboard budget (:data:`LEADERBOARD_EPS`), a ``corruptions`` entry gets no adversarial
robust accuracy, and every other model (trained here, own files) the global setting.

Plain data, no torch: Snakemake calls :func:`robust_threat` when it builds the job graph and
passes its result as a param, so a change reruns only the models whose threat it changes.
"""

from __future__ import annotations

__all__ = ["LEADERBOARD_EPS", "robust_threat"]

#: ``(threat_model, dataset): eps`` (pixels in [0, 1]) of the RobustBench leaderboards
#: (Croce et al. 2021, "RobustBench: a standardized adversarial robustness benchmark",
#: NeurIPS Datasets and Benchmarks; robustbench.github.io): Linf 8/255 on CIFAR-10 and
#: CIFAR-100, 4/255 on ImageNet; L2 0.5 on CIFAR-10, the one L2 leaderboard (and zoo).
LEADERBOARD_EPS = {
    ("Linf", "cifar10"): 8 / 255,
    ("Linf", "cifar100"): 8 / 255,
    ("Linf", "imagenet"): 4 / 255,
    ("L2", "cifar10"): 0.5,
}

_NO_ADVERSARY = ("none: a RobustBench corruptions entry is scored on common corruptions, "
                 "not under an adversarial budget")


def robust_threat(model: dict, robust_eval: dict, dataset: str) -> dict:
    """How the robust accuracy of the checked config entry ``model`` is measured.

    ``robust_eval`` is the checked ``analysis.robust_eval``; ``dataset`` the config's
    ``dataset.name`` (a zoo entry's own ``dataset`` wins). Returns ``attack`` (pgd,
    autoattack or none), ``budget`` (where the budget comes from) and, unless the attack
    is none, ``norm`` (linf or l2), ``eps`` and ``n_images``, and with pgd ``steps``: only
    what the measurement reads.

    >>> settings = {"attack": "pgd", "threat": "per_model", "norm": "linf", "eps": 0.0157,
    ...             "steps": 10, "n_images": 250}
    >>> zoo = {"source": "robustbench", "threat_model": "L2", "dataset": None}
    >>> robust_threat(zoo, settings, "cifar10")["eps"]
    0.5
    >>> robust_threat({"source": "train"}, settings, "cifar10")["budget"]
    'analysis.robust_eval'
    """
    own = robust_eval["threat"] == "per_model" and model["source"] == "robustbench"
    if own and model["threat_model"] == "corruptions":
        return {"attack": "none", "budget": _NO_ADVERSARY}
    threat = {"attack": robust_eval["attack"], "norm": robust_eval["norm"], "eps": robust_eval["eps"],
              "n_images": robust_eval["n_images"], "budget": "analysis.robust_eval"}
    if own:
        threat_model, on = model["threat_model"], model["dataset"] or dataset
        if (threat_model, on) not in LEADERBOARD_EPS:
            raise ValueError(f"RobustBench has no {threat_model} leaderboard for {on}")
        threat.update(norm=threat_model.lower(), eps=LEADERBOARD_EPS[threat_model, on],
                      budget=f"RobustBench {on} {threat_model} leaderboard")
    if threat["attack"] == "pgd":
        threat["steps"] = robust_eval["steps"]
    return threat
