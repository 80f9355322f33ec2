"""Device choice: auto-detection order, CPU fallback, clear errors for absent devices; a job's CPU set-up."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fourier_masks import device as device_module
from fourier_masks.device import resolve_device
from fourier_masks.errors import InputError
from fourier_masks.masks.learning import learn_masks

ROOT = Path(__file__).resolve().parents[1]


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


FAULT_PROBE = """
import resource, sys, torch
from fourier_masks.device import configure_cpu
from fourier_masks.models.networks import make_model
torch.set_num_threads(1)
if sys.argv[1] == "job":
    configure_cpu(1)
model, images = make_model("small_cnn", 3, 10, seed=0).eval(), torch.rand(128, 3, 32, 32)
with torch.inference_mode():
    model(images)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        model(images)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and page-fault counts are Linux's")
def test_jobs_reuse_freed_memory_instead_of_faulting_in_fresh_pages():
    """Ten model calls of 128 images at 32 px: glibc's own settings hand each call's activations back to the OS
    and fault fresh pages in (about 10^5 page faults); a job's set-up keeps them for reuse."""
    faults = {setup: int(subprocess.run([sys.executable, "-c", FAULT_PROBE, setup], capture_output=True, text=True,
                                        check=True, cwd=ROOT).stdout)
              for setup in ("plain", "job")}
    assert faults["plain"] > 20_000, faults  # the probe does show the problem
    assert faults["job"] < faults["plain"] / 10, faults
