"""Classifier architectures and the model file format every rule shares.

A model file (``results/models/{model}/model.pt``) is a ``torch.save`` of a plain dict:

``arch``          architecture name: one of :data:`ARCHITECTURES`, ``torchvision:NAME``,
                  ``timm:NAME`` or ``robustbench:DATASET/THREAT/NAME``
``arch_kwargs``   keyword arguments of the architecture builder
``state_dict``    weights of the network (without the normalisation wrapper)
``mean``, ``std`` per-channel input normalisation applied inside the model, or ``None``
``input_shape``   ``[C, H, W]`` the model expects, pixels in ``[0, 1]``
``num_classes``   number of outputs
``source``        ``train``, ``checkpoint`` or ``robustbench``

:func:`load_model` turns it back into an eval-mode ``nn.Module`` taking ``[N, C, H, W]``
images in ``[0, 1]``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import InputError, brief

__all__ = [
    "ARCHITECTURES",
    "Normalized",
    "SmallCNN",
    "ResNet8",
    "build_network",
    "make_model",
    "save_model",
    "load_model",
    "freeze",
    "load_tensors",
    "predict",
    "accuracy",
]

FORMAT_VERSION = 1


class Normalized(nn.Module):
    """Wrap ``network`` so that it takes pixels in ``[0, 1]``: ``network((x - mean) / std)``."""

    def __init__(self, network: nn.Module, mean=None, std=None):
        super().__init__()
        self.network = network
        channels = len(mean) if mean is not None else 0
        self.has_norm = mean is not None
        self.register_buffer("mean", torch.tensor(mean or [], dtype=torch.float32).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(std or [], dtype=torch.float32).view(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_norm:
            x = (x - self.mean) / self.std
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


def build_network(arch: str, **kwargs) -> nn.Module:
    """Build an untrained network by name (see the module docstring for the name forms)."""
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch](**kwargs)
    family, _, name = arch.partition(":")
    if family == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kwargs)
    if family == "timm":
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)
    if family == "robustbench":
        from . import zoo

        return zoo.build_architecture(name)
    raise InputError(
        f"unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}, "
        "'torchvision:NAME', 'timm:NAME' or 'robustbench:DATASET/THREAT/NAME'."
    )


def make_model(arch: str, in_channels: int, num_classes: int, mean=None, std=None, seed: int = 0) -> Normalized:
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


def save_model(path, model: Normalized, *, arch: str, input_shape, num_classes: int,
               source: str, arch_kwargs: dict | None = None) -> None:
    """Write ``model`` in the shared model-file format (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.network.state_dict().items()},
        "mean": model.mean.flatten().tolist() if model.has_norm else None,
        "std": model.std.flatten().tolist() if model.has_norm else None,
        "input_shape": [int(s) for s in input_shape],
        "num_classes": int(num_classes),
        "source": source,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(record, tmp)
    tmp.replace(path)


def load_tensors(path, what: str, advice: str):
    """``torch.load`` of a tensors-only file onto the CPU.

    An unreadable file raises :class:`InputError`: ``{what} cannot be read (reason). {advice}``.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for bad files
        raise InputError(f"{what} cannot be read ({type(error).__name__}: {brief(error)}). {advice}") from error


def read_record(path) -> dict:
    """The dict stored in a model file, with a clear error for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; expected a file written by save_model.")
    record = load_tensors(path, f"model file {path}", "It is truncated or not a torch file; delete it and "
                          "rerun the rule that makes it.")
    missing = {"arch", "state_dict", "input_shape", "num_classes"} - set(record if isinstance(record, dict) else {})
    if missing:
        raise InputError(f"model file {path} lacks the keys {sorted(missing)}; it was not written by save_model.")
    return record


def load_model(path, device: str | torch.device = "cpu") -> Normalized:
    """Load a model file as a frozen eval-mode module taking ``[N, C, H, W]`` in ``[0, 1]``.

    >>> model = load_model("results/models/standard/model.pt")  # doctest: +SKIP
    """
    record = read_record(path)
    kwargs = dict(record.get("arch_kwargs") or {})
    if record["arch"] in ARCHITECTURES:
        kwargs.setdefault("in_channels", record["input_shape"][0])
        kwargs.setdefault("num_classes", record["num_classes"])
    network = build_network(record["arch"], **kwargs)
    try:
        network.load_state_dict(record["state_dict"])
    except RuntimeError as error:
        raise InputError(
            f"the weights in {path} do not fit architecture {record['arch']!r}: {error}"
        ) from error
    model = Normalized(network, record.get("mean"), record.get("std"))
    model.input_shape = tuple(record["input_shape"])
    model.num_classes = record["num_classes"]
    return freeze(model).to(device)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels int64 ``[N]`` of ``images`` ``[N, C, H, W]``, computed in batches."""
    device = next(iter(model.buffers()), images).device
    preds = [model(images[i : i + batch_size].to(device)).argmax(1).cpu()
             for i in range(0, len(images), batch_size)]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``images`` that ``model`` classifies as ``labels``."""
    return float((predict(model, images, batch_size) == labels.cpu()).float().mean())
