"""Options of mask learning and their learning-rate schedules.

:class:`MaskOptions` holds the config's ``mask`` keys that decide the masks, and the device.
It has no defaults in Python: the config schema ``fourier_masks/config/config.schema.yaml``
holds them, and :func:`mask_options` fills the keywords a caller leaves out from it.

Schedules (``mask.schedule``), as the rate of step ``t`` of at most ``T`` steps:

* ``plateau`` (the default): a constant ``lr``; each seed's rate is halved whenever its epoch
  loss has not improved for ``mask.plateau`` epochs (and after each back-off, see
  :mod:`fourier_masks.masks.protocol`), so it needs no total and settles by itself.
* ``onecycle``: PyTorch's ``OneCycleLR`` (cosine) over ``T = epochs x steps per epoch``, as the
  authors: from ``lr / 25`` up to ``lr`` over the ``warmup`` fraction, then down to
  ``lr / 25e4``; Adam's beta1 moves the other way between 0.95 and 0.85.
* ``constant``: ``lr`` throughout.

>>> mask_options(epochs=2, device="cpu").epochs
2
"""

from __future__ import annotations

import dataclasses
import math

from ..config import check_config
from ..errors import InputError

__all__ = ["MaskOptions", "mask_options"]


#: Fields whose config key is a Python keyword.
_CONFIG_KEYS = {"lam": "lambda"}


def config_key(field: str) -> str:
    """The ``mask`` config key of a :class:`MaskOptions` field (``lam`` is ``lambda``)."""
    return _CONFIG_KEYS.get(field, field)


@dataclasses.dataclass(frozen=True)
class MaskOptions:
    """How masks are learned: the config's ``mask`` keys that decide the masks, and the device.

    Each field is the config key of the same name (``lam`` is ``mask.lambda``); the schema
    documents them. Build it with :meth:`from_config` from a checked config, or with
    :func:`mask_options` from keywords over the schema's defaults.
    """

    loss: str
    lam: float
    lr: float
    schedule: str
    warmup: float
    plateau: int
    epochs: int
    batch_size: int
    second_moment: str
    init: str
    per_channel: bool
    parametrization: str
    protocol: str
    keep_threshold: float
    patience: int
    tolerance: float
    loss_tolerance: float
    jump: float
    max_backoffs: int
    monitor: bool
    amp: bool | str
    compile: bool
    model_batch_size: int
    checkpoint_interval: float
    device: str

    @classmethod
    def config_keys(cls) -> list[str]:
        """The keyword (config key) of each field, ``device`` last."""
        return [config_key(field.name) for field in dataclasses.fields(cls)]

    @classmethod
    def from_config(cls, mask: dict, device: str) -> MaskOptions:
        """From a checked config's ``mask`` section (other keys in it are ignored) and ``device``."""
        names = [field.name for field in dataclasses.fields(cls) if field.name != "device"]
        return cls(**{name: mask[config_key(name)] for name in names}, device=device)

    @property
    def backs_off(self) -> bool:
        """Whether steps that make the loss jump are undone (``protocol='default'``; the authors' take every step)."""
        return self.protocol == "default"

    def learning_rate(self, step: int, total: int) -> tuple[float, float]:
        """``(learning rate, Adam beta1)`` of the ``step``-th update (0-based) of ``total``, before any halving."""
        if self.schedule == "onecycle":
            return _onecycle(step, total, self.lr, self.warmup)
        return self.lr, 0.9


def mask_options(**keywords) -> MaskOptions:
    """Options from keyword arguments (``mask`` config keys and ``device``) over the schema's defaults.

    The values are checked like a config (``mask.<key>`` names a bad one); a keyword that
    is not a mask-learning option raises :class:`InputError`.
    """
    allowed = MaskOptions.config_keys()
    unknown = sorted(set(keywords) - set(allowed))
    if unknown:
        raise InputError(f"unknown mask option(s) {unknown}; the options of learn_masks are {', '.join(allowed)} "
                         "(fit_split, fit_images, vectorize_seeds, require_converged and eval_batch_size steer the "
                         "pipeline only).")
    section = {key: value for key, value in keywords.items() if key != "device"}
    device = {"device": str(keywords["device"])} if "device" in keywords else {}  # a torch.device too
    config = check_config({"mask": section, **device})
    return MaskOptions.from_config(config["mask"], config["device"])


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


def _onecycle(step: int, total: int, max_lr: float, warmup: float) -> tuple[float, float]:
    """Learning rate and Adam's beta1 at ``step`` of PyTorch's ``OneCycleLR`` (cosine), as the authors use it."""
    initial, final = max_lr / 25, max_lr / 25e4
    peak = max(1.0, warmup * total - 1)
    if step <= peak:
        fraction = step / peak
        return _cosine(initial, max_lr, fraction), _cosine(0.95, 0.85, fraction)
    fraction = min(1.0, (step - peak) / max(1.0, total - 1 - peak))
    return _cosine(max_lr, final, fraction), _cosine(0.85, 0.95, fraction)
