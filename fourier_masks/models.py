"""Classifier architectures and the model file format every rule shares.

A model file (``results/models/{model}/model.pt``) is a ``torch.save`` of a plain dict:

``arch``          architecture name: one of :data:`ARCHITECTURES`, ``torchvision:NAME``,
                  ``timm:NAME``, ``robustbench:DATASET/THREAT/NAME``, ``import:MODULE:FACTORY``
                  (any importable callable returning an ``nn.Module``), or one of
                  :data:`PROGRAMS` (the network is the stored ``program`` itself)
``arch_kwargs``   keyword arguments of the architecture builder
``python_path``   folders (absolute) an ``import:`` architecture was imported from, or ``[]``
``program``       uint8 tensor: the bytes of a TorchScript archive or torch.export program
                  (``arch`` in :data:`PROGRAMS` only)
``state_dict``    weights of the network (without the normalisation wrapper; empty for programs)
``mean``, ``std`` per-channel input normalisation applied inside the model, or ``None``
``input_shape``   ``[C, H, W]`` the model expects, pixels in ``[0, 1]``
``num_classes``   number of outputs
``source``        ``train``, ``checkpoint``, ``torchscript``, ``exported`` or ``robustbench``

:func:`load_model` turns it back into an eval-mode ``nn.Module`` taking ``[N, C, H, W]``
images in ``[0, 1]``. A file is read as tensors only; an ``import:`` architecture is code, so
it is imported only when the caller names it in ``imports`` (the workflow passes the
config's own entries, see :func:`imports_of`).
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .errors import InputError, brief

__all__ = [
    "ARCHITECTURES",
    "Normalized",
    "SmallCNN",
    "ResNet8",
    "PROGRAMS",
    "build_network",
    "import_factory",
    "on_sys_path",
    "imports_of",
    "torch_load_mode",
    "make_model",
    "save_model",
    "load_model",
    "freeze",
    "load_tensors",
    "predict",
    "accuracy",
]

FORMAT_VERSION = 1

#: Architecture-free model files: the stored program is the network (see :mod:`.programs`).
PROGRAMS = ("torchscript", "exported")


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
                         f"{brief(error)}); it is looked up in python_path {[str(f) for f in python_path]}, then on sys.path."
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


def build_network(arch: str, python_path=(), **kwargs) -> nn.Module:
    """Build an untrained network by name (see the module docstring for the name forms).

    ``python_path`` is used by ``import:`` architectures only.
    """
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
    if family == "import":
        return _imported_network(arch, python_path, kwargs)
    raise InputError(
        f"unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}, 'torchvision:NAME', "
        "'timm:NAME', 'robustbench:DATASET/THREAT/NAME' or 'import:package.module:factory'."
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
               source: str, arch_kwargs: dict | None = None, python_path=(), program: bytes | None = None) -> None:
    """Write ``model`` in the shared model-file format (see the module docstring).

    ``program``: the file bytes of a TorchScript archive or exported program (``arch`` in
    :data:`PROGRAMS`), stored instead of the weights.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {} if program is not None else model.network.state_dict()
    record = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs or {}),
        "python_path": [str(Path(folder).resolve()) for folder in python_path],
        "state_dict": {k: v.detach().cpu() for k, v in weights.items()},
        "mean": model.mean.flatten().tolist() if model.has_norm else None,
        "std": model.std.flatten().tolist() if model.has_norm else None,
        "input_shape": [int(s) for s in input_shape],
        "num_classes": int(num_classes),
        "source": source,
    }
    if program is not None:
        record["program"] = torch.frombuffer(bytearray(program), dtype=torch.uint8)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(record, tmp)
    tmp.replace(path)


@contextmanager
def torch_load_mode(weights_only: bool):
    """Make every ``torch.load`` inside the block tensors-only (``True``) or fully unpickling (``False``).

    ``True`` overrides even calls that pass ``weights_only=False`` (torch.export's loader
    does); ``False`` applies to calls that leave ``weights_only`` unset (RobustBench's).
    """
    names = {True: "TORCH_FORCE_WEIGHTS_ONLY_LOAD", False: "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    previous = {name: os.environ.pop(name, None) for name in names.values()}
    os.environ[names[weights_only]] = "1"
    try:
        yield
    finally:
        for name, value in previous.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


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


def imports_of(models: list[dict]) -> dict[str, list[str]]:
    """``{arch: python_path}`` of the ``import:`` architectures named by config ``models`` entries.

    What :func:`load_model` may import when the workflow rebuilds these models.
    """
    imports = {}
    for spec in models:
        if str(spec.get("arch", "")).startswith("import:"):
            folders = imports.setdefault(spec["arch"], [])
            folders += [f for f in spec.get("python_path") or [] if f not in folders]
    return imports


def _network(record: dict, path, imports: dict) -> nn.Module:
    """The network of a model-file record, weights loaded (programs: the stored program)."""
    arch = record["arch"]
    if arch in PROGRAMS:
        from .programs import load_program

        program = record.get("program")
        if not isinstance(program, torch.Tensor) or program.dtype != torch.uint8:
            raise InputError(f"model file {path} has arch {arch!r} but no program; it was not written by save_model.")
        return load_program(arch, program.numpy().tobytes(), f"model file {path}")
    kwargs = dict(record.get("arch_kwargs") or {})
    if arch.startswith("import:") and arch not in imports:
        raise InputError(
            f"model file {path} rebuilds its network by running {arch!r} (imported from "
            f"{record.get('python_path') or 'sys.path'}). Code named by a data file runs only on request: "
            f"load_model({str(path)!r}, imports={{{arch!r}: {record.get('python_path') or []}}}) if you trust it."
        )
    if arch in ARCHITECTURES:
        kwargs.setdefault("in_channels", record["input_shape"][0])
        kwargs.setdefault("num_classes", record["num_classes"])
    network = build_network(arch, python_path=imports.get(arch, ()), **kwargs)
    try:
        network.load_state_dict(record["state_dict"])
    except RuntimeError as error:
        raise InputError(f"the weights in {path} do not fit architecture {arch!r}: {brief(error)}") from error
    return network


def load_model(path, device: str | torch.device = "cpu", *, imports: dict | None = None) -> Normalized:
    """Load a model file as a frozen eval-mode module taking ``[N, C, H, W]`` in ``[0, 1]``.

    ``imports``: ``{arch: python_path}`` of the ``import:`` architectures the caller trusts
    (:func:`imports_of` gives the config's); a file naming another one is refused.

    >>> model = load_model("results/models/standard/model.pt")  # doctest: +SKIP
    """
    record = read_record(path)
    model = Normalized(_network(record, path, imports or {}), record.get("mean"), record.get("std"))
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
