"""Device choice: auto-detection order, CPU fallback, clear errors for absent devices."""

import pytest
import torch

from fourier_masks import device as device_module
from fourier_masks.device import resolve_device
from fourier_masks.errors import InputError
from fourier_masks.masks.learning import learn_masks


def test_auto_falls_back_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_asking_for_an_absent_gpu_names_the_setting():
    with pytest.raises(InputError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="not a device"):
        resolve_device("gpu0")


def test_mask_learning_runs_on_the_cpu_fallback(monkeypatch, tiny_model, tiny_data):
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module.torch.backends.mps, "is_available", lambda: False)
    masks, history = learn_masks(tiny_model, tiny_data[0][:16], tiny_data[1][:16], seeds=[1], epochs=1,
                                 batch_size=16, device="auto", amp="auto")
    assert masks.shape == (1, 1, 16, 16) and len(history) == 1
