"""A model trained "elsewhere": its own architecture file, its own training and evaluation code.

Builds, in a temporary folder, what a user brings to fourier-masks:

* ``code/tinynets/arch.py``: a small CNN in a package that is not part of fourier_masks;
* ``photos/{train,test}/{class}/*``: real photographs (scikit-image's astronaut, chelsea and
  coffee), cut into crops of various sizes and aspect ratios, saved as JPEG (train) and
  PNG (test, some grayscale, some with alpha), so the loader must convert and resize;
* the network trained on them with torchvision's own ``ImageFolder`` and transforms, and
  evaluated the same way (:func:`own_accuracy`, the model's own evaluation code);
* the trained network saved three ways: a training checkpoint (state dict nested under
  ``model`` with DataParallel and torch.compile prefixes, plus the normalisation it used),
  a TorchScript archive and a torch.export program.
"""

from __future__ import annotations

import http.server
import importlib
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES = ("astronaut", "chelsea", "coffee")
MEAN, STD = [0.48, 0.45, 0.40], [0.23, 0.22, 0.24]
IMAGE_SIZE = 32
ARCH = "import:tinynets.arch:build"
ARCH_KWARGS = {"num_classes": 3, "width": 8}

ARCH_SOURCE = '''
"""A user's architecture, defined outside fourier_masks."""
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=10, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def build(num_classes=10, width=16):
    return TinyNet(num_classes, width)
'''


def write_package(folder: Path) -> Path:
    """Write the ``tinynets`` package under ``folder``; returns ``folder`` (the python_path entry)."""
    package = folder / "tinynets"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "arch.py").write_text(textwrap.dedent(ARCH_SOURCE))
    return folder


def _crops(image: np.ndarray, columns: slice, count: int, rng: np.random.Generator):
    """``count`` crops of random size (28 to 90 px, aspect 0.6 to 1.6) inside ``columns`` of ``image``."""
    band = image[:, columns]
    for _ in range(count):
        h = int(rng.integers(28, min(90, band.shape[0])))
        w = int(np.clip(h * rng.uniform(0.6, 1.6), 28, band.shape[1] - 1))
        top, left = rng.integers(0, band.shape[0] - h), rng.integers(0, band.shape[1] - w)
        yield band[top : top + h, left : left + w]


def write_photos(root: Path, n_train: int = 24, n_test: int = 10, seed: int = 0) -> Path:
    """Class folders of real photographs: train crops from the left half (JPEG), test from the right (PNG)."""
    import skimage.data

    rng = np.random.default_rng(seed)
    for name in CLASSES:
        photo = np.asarray(getattr(skimage.data, name)())[..., :3]
        half = photo.shape[1] // 2
        for split, columns, count in (("train", slice(0, half), n_train), ("test", slice(half, None), n_test)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, crop in enumerate(_crops(photo, columns, count, rng)):
                image = Image.fromarray(np.ascontiguousarray(crop))
                if split == "train":
                    image.save(folder / f"{i:03d}.jpg", quality=90)
                elif i % 5 == 1:
                    image.convert("RGBA").save(folder / f"{i:03d}.png")
                else:
                    image.save(folder / f"{i:03d}.png")
    return root


def own_transform():
    """The model's own evaluation transform (torchvision): what the pipeline must reproduce."""
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(IMAGE_SIZE), transforms.CenterCrop(IMAGE_SIZE),
                               transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def build_network(code: Path):
    """A fresh ``TinyNet`` imported from the package in ``code``."""
    sys.path.insert(0, str(code))
    try:
        arch = importlib.import_module("tinynets.arch")
    finally:
        sys.path.remove(str(code))
    return arch.build(**ARCH_KWARGS)


def train(code: Path, photos: Path, epochs: int = 12, seed: int = 0):
    """The network trained on ``photos/train`` by its own code (ImageFolder, Adam); eval mode."""
    from torchvision import datasets

    torch.manual_seed(seed)
    network = build_network(code)
    data = datasets.ImageFolder(str(photos / "train"), transform=own_transform())
    loader = torch.utils.data.DataLoader(data, batch_size=12, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(images), labels).backward()
            optimizer.step()
    return network.eval()


@torch.no_grad()
def own_accuracy(network, photos: Path) -> float:
    """Accuracy on ``photos/test`` measured by the model's own evaluation code."""
    from torchvision import datasets

    data = datasets.ImageFolder(str(photos / "test"), transform=own_transform())
    correct = sum(int((network(images).argmax(1) == labels).sum())
                  for images, labels in torch.utils.data.DataLoader(data, batch_size=7))
    return correct / len(data)


def save_forms(network, folder: Path) -> dict[str, Path]:
    """The network saved as a training checkpoint, a TorchScript archive and an exported program."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"checkpoint": folder / "tinynet.pth", "torchscript": folder / "tinynet_ts.pt",
             "exported": folder / "tinynet.pt2"}
    weights = {f"module._orig_mod.{k}": v for k, v in network.state_dict().items()}
    torch.save({"epoch": 12, "model": weights, "mean": MEAN, "std": STD}, paths["checkpoint"])
    example = torch.rand(4, 3, IMAGE_SIZE, IMAGE_SIZE)
    torch.jit.trace(network, example).save(str(paths["torchscript"]))
    program = torch.export.export(network, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, paths["exported"])
    return paths


@contextmanager
def serve(folder: Path, handler=None):
    """An HTTP server on 127.0.0.1 serving ``folder`` from a thread; yields its base URL."""
    import functools
    import threading

    handler = handler or functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Payload:
    """Pickles to code that writes the file ``marker``: what a hostile file would run when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('payload ran')",))
