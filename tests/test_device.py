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
import resource, statistics, sys, torch
from fourier_masks.device import configure_cpu
from fourier_masks.models.networks import make_model
torch.set_num_threads(1)
if sys.argv[1] == "job":
    configure_cpu(1)
model, images = make_model("small_cnn", 3, 10, seed=0).eval(), torch.rand(128, 3, 32, 32)
faults = []
with torch.inference_mode():
    for _ in range(21):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        model(images)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(statistics.median(faults[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and page-fault counts are Linux's")
def test_jobs_reuse_freed_memory_instead_of_faulting_in_fresh_pages():
    """Model calls of 128 images at 32 px: with glibc's own settings a call hands its activations back to the
    OS and faults fresh pages in (thousands of page faults a call); a job's set-up keeps them for reuse.
    Medians over 20 calls after the first, so that a rare growth of the heap does not count."""
    faults = {setup: float(subprocess.run([sys.executable, "-c", FAULT_PROBE, setup], capture_output=True,
                                          text=True, check=True, cwd=ROOT).stdout)
              for setup in ("plain", "job")}
    if faults["plain"] <= 1000:
        pytest.skip(f"this machine does not fault fresh pages in on every call ({faults}), e.g. huge pages")
    assert faults["job"] < faults["plain"] / 20, faults
