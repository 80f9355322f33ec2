"""fourier-masks: learn and compare the essential input frequencies of trained classifiers.

Implements and extends Karantzas et al., "Understanding Robustness and Generalization of
Artificial Neural Networks Through Fourier Masks", Front. Artif. Intell. 5:890016 (2022).

What the code computes, in which units, and where it departs from the paper is written in
``docs/method.md``; docstrings cite its sections (``docs/method.md, analysis 3``).

The public API is loaded lazily, so importing a light module (``fourier_masks.config``)
does not import torch.

>>> from fourier_masks import learn_masks, load_model  # doctest: +SKIP
"""

from importlib import import_module

__all__ = ["learn_masks", "masked_accuracy", "load_model", "apply_mask"]
__version__ = "0.1.0"

_HOMES = {"learn_masks": "masks.learning", "masked_accuracy": "masks.objective", "load_model": "models.files",
          "apply_mask": "spectrum"}


def __getattr__(name):
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
