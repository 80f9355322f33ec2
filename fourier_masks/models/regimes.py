"""Training regimes of the paper and this project, and the config keys each reads.

Every regime uses random flips and small random crops; on top of these:

``standard``   nothing more (the paper's N)
``adv_linf``   L-inf adversarial training (A), budget from ``pgd_linf``, attack PGD or FGSM-RS
``adv_l2``     L2 adversarial training, budget from ``pgd_l2``, attack PGD or FGSM-RS
``noise``      additive Gaussian noise of standard deviation ``noise_sigma`` (pixels) on a
               random half of the images, so clean images stay in distribution
``scale``      random zoom by a factor drawn from ``scale`` (S)
``translate``  random shift by up to ``translate`` x image side per axis (T)
``rotate``     random rotation by up to ``rotate`` degrees either way (R)

Plain data, no torch: Snakemake reads :func:`regime_settings` when it builds the job graph.
"""

from __future__ import annotations

__all__ = ["COMMON_SETTINGS", "REGIMES", "REGIME_SETTINGS", "check_regime", "regime_settings"]

#: The config's ``training`` keys that every regime reads (the named arguments of
#: :func:`fourier_masks.models.training.train_model`).
COMMON_SETTINGS = ("epochs", "batch_size", "lr", "seed")
#: The further ``training`` keys each regime reads (``settings`` of ``train_model``).
REGIME_SETTINGS = {"standard": (), "adv_linf": ("attack", "pgd_linf"), "adv_l2": ("attack", "pgd_l2"),
                   "noise": ("noise_sigma",), "scale": ("scale",), "translate": ("translate",), "rotate": ("rotate",)}
REGIMES = tuple(REGIME_SETTINGS)


def check_regime(regime: str) -> None:
    """Raise :class:`ValueError` unless ``regime`` is one of :data:`REGIMES`."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; allowed: {', '.join(REGIMES)}")


def regime_settings(training: dict, regime: str) -> dict:
    """The keys of a checked config's ``training`` section that training in ``regime`` reads.

    The common keys and the regime's own (:data:`REGIME_SETTINGS`); under ``attack: fgsm_rs``
    an adversarial budget without ``steps``, which only PGD reads. A rule that passes just
    these reruns a model's training only when something its regime uses changes.

    >>> training = {"epochs": 4, "batch_size": 64, "lr": 0.002, "seed": 0,
    ...             "attack": "fgsm_rs", "pgd_linf": {"eps": 0.0157, "steps": 4}, "noise_sigma": 0.1}
    >>> sorted(regime_settings(training, "standard"))
    ['batch_size', 'epochs', 'lr', 'seed']
    >>> regime_settings(training, "adv_linf")["pgd_linf"]
    {'eps': 0.0157}
    """
    check_regime(regime)
    chosen = {key: training[key] for key in (*COMMON_SETTINGS, *REGIME_SETTINGS[regime])}
    if chosen.get("attack") == "fgsm_rs":
        chosen.update({key: {name: value for name, value in chosen[key].items() if name != "steps"}
                       for key in REGIME_SETTINGS[regime] if key.startswith("pgd_")})
    return chosen
