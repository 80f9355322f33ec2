"""fourier-masks: learn and compare the essential input frequencies of trained classifiers.

Implements and extends Karantzas et al., "Understanding Robustness and Generalization of
Artificial Neural Networks Through Fourier Masks", Front. Artif. Intell. 5:890016 (2022).

>>> from fourier_masks import learn_masks, load_model  # doctest: +SKIP
"""

from .masks import learn_masks, masked_accuracy
from .models import load_model
from .spectrum import apply_mask

__all__ = ["learn_masks", "masked_accuracy", "load_model", "apply_mask"]
__version__ = "0.1.0"
