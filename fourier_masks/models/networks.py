"""Classifier networks: the package's architectures, builders by name, and running a network.

Every network here takes ``[N, C, H, W]`` images; :class:`Normalized` wraps one so that it
takes pixels in ``[0, 1]``. Architecture names: one of :data:`ARCHITECTURES`,
``torchvision:NAME``, ``timm:NAME`` or ``import:MODULE:FACTORY`` (any importable callable
returning an ``nn.Module``); ``robustbench:`` names are built by :mod:`.zoo`.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, brief
from .safe_load import torch_load_mode

__all__ = [
    "ARCHITECTURES",
    "Normalized",
    "SmallCNN",
    "ResNet8",
    "build_network",
    "check_builder_arguments",
    "import_factory",
    "on_sys_path",
    "make_model",
    "freeze",
    "predict",
    "accuracy",
]


class Normalized(nn.Module):
    """Wrap ``network`` so that it takes pixels in ``[0, 1]``: ``network((x - mean) / std)``.

    ``channels_last`` (set by :func:`fourier_masks.models.layout.set_layout`): inputs are
    converted to the channels-last memory layout before the network sees them.
    """

    def __init__(self, network: nn.Module, mean=None, std=None):
        super().__init__()
        self.network = network
        self.channels_last = False
        channels = len(mean) if mean is not None else 0
        self.has_norm = mean is not None
        self.register_buffer("mean", torch.tensor(mean or [], dtype=torch.float32).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(std or [], dtype=torch.float32).view(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_norm:
            x = (x - self.mean) / self.std
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.network(x)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks (32, 64, 128 channels) with max-pooling, global pooling, linear.

    Suited to 32x32 inputs; works at any size thanks to global average pooling.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(in_channels, width),
            nn.MaxPool2d(2),
            _conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet8(nn.Module):
    """A CIFAR-style ResNet with three stages of one basic block (16, 32, 64 channels)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = _conv_block(in_channels, width)
        self.stages = nn.Sequential(
            _BasicBlock(width, width, 1), _BasicBlock(width, 2 * width, 2), _BasicBlock(2 * width, 4 * width, 2)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def _torchvision_paper(name: str):
    """VGG11-bn or ResNet-18 from torchvision with a configurable number of input channels."""

    def build(in_channels: int = 3, num_classes: int = 10):
        import torchvision

        network = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        if in_channels != 3:
            first = network.features[0] if name.startswith("vgg") else network.conv1
            replacement = nn.Conv2d(in_channels, first.out_channels, first.kernel_size,
                                    first.stride, first.padding, bias=first.bias is not None)
            if name.startswith("vgg"):
                network.features[0] = replacement
            else:
                network.conv1 = replacement
        return network

    return build


#: Architectures defined or adapted by this package: name -> builder(in_channels, num_classes).
ARCHITECTURES = {
    "small_cnn": SmallCNN,
    "resnet8": ResNet8,
    "vgg11_bn": _torchvision_paper("vgg11_bn"),
    "resnet18": _torchvision_paper("resnet18"),
}


@contextmanager
def on_sys_path(folders):
    """Put ``folders`` (resolved against the working directory) first on ``sys.path`` inside the block only."""
    added = [str(Path(folder).resolve()) for folder in folders]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def import_factory(arch: str, python_path=()):
    """The callable named by ``arch`` = ``import:MODULE:ATTRIBUTE`` (``ATTRIBUTE`` may be dotted).

    ``python_path`` folders are put first on ``sys.path`` for the import only.
    """
    module_name, _, attribute = arch.removeprefix("import:").partition(":")
    absent = [str(folder) for folder in python_path if not Path(folder).is_dir()]
    if absent:
        raise InputError(f"arch {arch!r}: python_path folders {absent} do not exist (relative paths are read "
                         f"from the working directory {os.getcwd()}).")
    try:
        with on_sys_path(python_path):
            target = importlib.import_module(module_name)
    except Exception as error:  # the user's module may raise anything on import
        raise InputError(f"arch {arch!r}: module {module_name!r} cannot be imported ({type(error).__name__}: "
                         f"{brief(error)}); it is looked up in python_path {[str(f) for f in python_path]}, then "
                         "on sys.path."
                         ) from error
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise InputError(f"arch {arch!r}: {module_name} has no attribute {attribute!r}; "
                             "write arch as 'import:package.module:factory'.")
        target = getattr(target, part)
    if not callable(target):
        raise InputError(f"arch {arch!r}: {module_name}.{attribute} is not callable; it must build an nn.Module.")
    return target


def _imported_network(arch: str, python_path, kwargs: dict) -> nn.Module:
    """``factory(**kwargs)`` of an ``import:`` architecture, checked to be an ``nn.Module``."""
    factory = import_factory(arch, python_path)
    try:
        with on_sys_path(python_path):
            network = factory(**kwargs)
    except Exception as error:  # the user's factory may raise anything
        raise InputError(f"arch {arch!r} with arch_kwargs {kwargs} failed ({type(error).__name__}: "
                         f"{brief(error)}).") from error
    if not isinstance(network, nn.Module):
        raise InputError(f"arch {arch!r} returned a {type(network).__name__}, not a torch.nn.Module.")
    return network


#: ``arch_kwargs`` keys with which a torchvision or timm builder reads or downloads a file
#: (``weights``, ``weights_backbone``, ``pretrained_cfg_overlay``, ``checkpoint_path``, ...).
_FILE_KEY = re.compile(r".*(pretrained|weights|checkpoint|path|file|url|cache|hub|dir|download).*", re.IGNORECASE)


def check_builder_arguments(arch: str, kwargs: dict, where: str = "arch_kwargs") -> None:
    """Refuse ``arch_kwargs`` that make a ``torchvision:`` or ``timm:`` builder read or fetch a file.

    >>> check_builder_arguments("timm:resnet18", {"checkpoint_path": "x.pth"})
    Traceback (most recent call last):
    ...
    fourier_masks.errors.InputError: arch_kwargs.checkpoint_path would make timm read or download a file ...
    """
    family = arch.partition(":")[0]
    if family not in ("torchvision", "timm"):
        return
    for key in kwargs:
        if _FILE_KEY.fullmatch(str(key)):
            raise InputError(
                f"{where}.{key} would make {family} read or download a file while building {arch!r}; builders "
                "run without files here. Give the trained weights as the entry's path: or url: (with sha256) "
                "instead, so they are read as tensors only."
            )


def build_network(arch: str, python_path=(), **kwargs) -> nn.Module:
    """Build an untrained network by name (see the module docstring for the name forms).

    ``python_path`` is used by ``import:`` architectures only. ``torchvision:`` and ``timm:``
    builders get no file (:func:`check_builder_arguments`) and run with every ``torch.load``
    forced to tensors only.
    """
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch](**kwargs)
    family, _, name = arch.partition(":")
    check_builder_arguments(arch, kwargs)
    if family == "torchvision":
        import torchvision

        with torch_load_mode(weights_only=True):
            return torchvision.models.get_model(name, weights=None, **kwargs)
    if family == "timm":
        import timm

        with torch_load_mode(weights_only=True):
            return timm.create_model(name, pretrained=False, **kwargs)
    if family == "import":
        return _imported_network(arch, python_path, kwargs)
    raise InputError(
        f"unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}, 'torchvision:NAME', "
        "'timm:NAME' or 'import:package.module:factory' ('robustbench:' architectures are "
        "rebuilt by fourier_masks.models.zoo)."
    )


def make_model(arch: str, in_channels: int, num_classes: int, mean=None, std=None, *, seed: int) -> Normalized:
    """An untrained package architecture wrapped with its input normalisation.

    ``seed`` fixes the initial weights (the global random state is left untouched).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_network(arch, in_channels=in_channels, num_classes=num_classes)
    return Normalized(network, mean, std)


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode with no weight gradients; returns it."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int) -> torch.Tensor:
    """Predicted labels int64 ``[N]`` of ``images`` ``[N, C, H, W]``, ``batch_size`` images per model call."""
    device = next(iter(model.buffers()), images).device
    preds = [model(images[i : i + batch_size].to(device)).argmax(1).cpu()
             for i in range(0, len(images), batch_size)]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int) -> float:
    """Fraction of ``images`` that ``model`` classifies as ``labels`` (:func:`predict`'s ``batch_size``)."""
    return float((predict(model, images, batch_size=batch_size) == labels.cpu()).float().mean())
