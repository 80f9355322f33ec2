"""Model files: round trip, normalisation inside, clear errors for bad files."""

import os

import pytest
import torch

from fourier_masks.errors import InputError
from fourier_masks.models.files import load_model, save_model
from fourier_masks.models.networks import ARCHITECTURES, make_model


@pytest.mark.parametrize("arch", ["small_cnn", "resnet8"])
def test_saved_model_loads_frozen_with_the_same_outputs(tmp_path, arch):
    torch.manual_seed(0)
    model = make_model(arch, 3, 5, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], seed=0).eval()
    save_model(tmp_path / "m.pt", model, arch=arch, input_shape=(3, 32, 32), num_classes=5, source="train")
    loaded = load_model(tmp_path / "m.pt")
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert loaded.input_shape == (3, 32, 32)


def test_normalisation_lives_inside_the_model():
    model = make_model("small_cnn", 1, 2, [0.5], [0.25], seed=0).eval()
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(model(x), model.network((x - 0.5) / 0.25))


def test_paper_architectures_take_grayscale_inputs():
    for arch in ("vgg11_bn", "resnet18"):
        network = ARCHITECTURES[arch](in_channels=1, num_classes=5).eval()
        assert network(torch.rand(1, 1, 64, 64)).shape == (1, 5)


def test_missing_and_corrupt_model_files_are_named(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="corrupt.pt"):
        load_model(corrupt)


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path):
    model = make_model("small_cnn", 3, 5, seed=0)
    save_model(tmp_path / "m.pt", model, arch="resnet8", input_shape=(3, 32, 32), num_classes=5, source="train")
    with pytest.raises(InputError, match="do not fit architecture 'resnet8'"):
        load_model(tmp_path / "m.pt")


def test_unknown_architecture_lists_the_allowed_ones():
    with pytest.raises(InputError, match="small_cnn"):
        make_model("alexnet2", 3, 10, seed=0)


def test_torch_load_mode_forces_tensors_only_and_restores_the_environment(tmp_path, monkeypatch):
    from own_model import Payload

    from fourier_masks.models.safe_load import torch_load_mode

    marker = tmp_path / "marker"
    torch.save({"w": torch.ones(2), "x": Payload(marker)}, tmp_path / "p.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # a user's environment that allows everything
    with torch_load_mode(weights_only=True), pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "p.pt", weights_only=False)
    assert not marker.exists()
    assert os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] == "1" and "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ


def test_program_model_file_without_its_program_is_refused(tmp_path):
    torch.save({"arch": "exported", "state_dict": {}, "input_shape": [3, 8, 8], "num_classes": 2}, tmp_path / "m.pt")
    with pytest.raises(InputError, match="has arch 'exported' but no program"):
        load_model(tmp_path / "m.pt")


class _ViewFlatten(torch.nn.Module):
    """A published-style network whose forward flattens with ``.view`` (fails on NHWC activations)."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(self.conv(x).view(x.size(0), -1))


def test_the_memory_layout_is_decided_once_and_recorded_in_the_model_file(tmp_path):
    from fourier_masks.models.layout import choose_layout, set_layout
    from fourier_masks.models.networks import Normalized

    model = make_model("small_cnn", 3, 5, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], seed=0).eval()
    assert choose_layout(model, (3, 16, 16), wanted=True) and not choose_layout(model, (3, 16, 16), wanted=False)
    x = torch.rand(4, 3, 16, 16)
    expected = model(x)
    save_model(tmp_path / "nhwc.pt", set_layout(model, True), arch="small_cnn", input_shape=(3, 16, 16),
               num_classes=5, source="train")
    loaded = load_model(tmp_path / "nhwc.pt")
    conv = next(p for p in loaded.parameters() if p.dim() == 4)
    assert loaded.channels_last and conv.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(loaded(x), expected, rtol=1e-4, atol=1e-5)
    assert not choose_layout(Normalized(_ViewFlatten()).eval(), (3, 8, 8), wanted=True)

    record = torch.load(tmp_path / "nhwc.pt", weights_only=True)
    del record["channels_last"]  # a model file written before the layout was recorded
    torch.save(record, tmp_path / "old.pt")
    assert not load_model(tmp_path / "old.pt").channels_last
    torch.save({**record, "channels_last": "yes"}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="channels_last"):
        load_model(tmp_path / "bad.pt")


@pytest.mark.parametrize("arch, key", [("timm:resnet18", "checkpoint_path"),
                                       ("timm:resnet18", "pretrained_cfg_overlay"),
                                       ("torchvision:resnet18", "weights_backbone")])
def test_builders_never_read_files_named_by_arch_kwargs(tmp_path, arch, key):
    """A model file recording such arch_kwargs is refused before the builder runs; the pickle never runs."""
    from conftest import checked
    from own_model import Payload

    from fourier_masks.models.preflight import check_sources

    marker, payload = tmp_path / "marker", tmp_path / "payload.pth"
    torch.save(Payload(marker), payload)
    value = {"file": str(payload)} if key == "pretrained_cfg_overlay" else str(payload)
    record = {"format_version": 1, "arch": arch, "arch_kwargs": {key: value}, "python_path": [], "state_dict": {},
              "mean": None, "std": None, "input_shape": [3, 32, 32], "num_classes": 10, "source": "checkpoint"}
    torch.save(record, tmp_path / "m.pt")
    with pytest.raises(InputError, match=rf"arch_kwargs.{key} would make .* read or download a file"):
        load_model(tmp_path / "m.pt")
    entry = {"name": "m", "source": "checkpoint", "path": str(tmp_path / "m.pt"), "arch": arch,
             "arch_kwargs": {key: value}}
    config = checked({"name": "photos", "image_size": 32, "channels": 3, "n_classes": 10}, entry)
    with pytest.raises(InputError, match=rf"models\[0\] \(m\).arch_kwargs.{key} would make"):
        check_sources(config, tmp_path)
    assert not marker.exists()


def _with_batch_norm_statistics(model):
    """``model`` with running statistics and affine weights as training leaves them, not the identity."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, (lo, hi) in ((module.running_mean, (-0.5, 0.5)), (module.running_var, (0.3, 3.0)),
                                     (module.weight.data, (0.5, 1.5)), (module.bias.data, (-0.3, 0.3))):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (hi - lo) + lo)
    return model.eval()


@pytest.mark.parametrize("arch", ["small_cnn", "resnet8"])
def test_loaded_models_run_with_batch_norm_folded_and_the_same_logits_and_input_gradients(tmp_path, arch):
    model = _with_batch_norm_statistics(make_model(arch, 3, 5, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], seed=0))
    save_model(tmp_path / "m.pt", model, arch=arch, input_shape=(3, 32, 32), num_classes=5, source="train")
    loaded = load_model(tmp_path / "m.pt")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.modules())
    x = torch.rand(16, 3, 32, 32, requires_grad=True)
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)
    ours, = torch.autograd.grad(loaded(x).logsumexp(1).sum(), x)
    theirs, = torch.autograd.grad(model(x).logsumexp(1).sum(), x)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), "the original must stay unchanged"


def test_batch_norm_stays_where_the_forward_does_not_apply_it_right_after_its_convolution():
    from fourier_masks.models.fusion import folded

    class Doubled(torch.nn.Module):
        """Runs its Sequential's layers one by one, doubling in between: folding would change it."""

        def __init__(self):
            super().__init__()
            self.block = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))

        def forward(self, x):
            return self.block[1](2 * self.block[0](x)).mean((2, 3))

    model = _with_batch_norm_statistics(Doubled())
    assert folded(model, torch.rand(8, 3, 16, 16)) is model
    training = _with_batch_norm_statistics(make_model("small_cnn", 3, 5, seed=0)).train()
    statistics = [m.running_mean.clone() for m in training.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert folded(training, torch.rand(8, 3, 16, 16)) is training
    after = [m.running_mean for m in training.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(statistics, after, strict=True)), "a probe must not train it"
