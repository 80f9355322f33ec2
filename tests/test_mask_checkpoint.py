"""Mask checkpoints: tensors only, tied to every input that decides the masks, never a dead end."""

import copy
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from fourier_masks.masks.learning import learn_masks

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"epochs": 2, "batch_size": 16, "lr": 0.05, "init": "random", "checkpoint_interval": 0}


class Payload:
    """Unpickling this writes ``marker``: what a hostile checkpoint could do."""

    def __init__(self, marker):
        self.marker = Path(marker)

    def __reduce__(self):
        return Path.write_text, (self.marker, "the payload ran")


def _data(tiny_data):
    return tiny_data[0][:48], tiny_data[1][:48]


def _messages(caplog):
    return " ".join(record.getMessage() for record in caplog.records)


def test_a_finished_checkpoint_is_resumed_without_relearning(tiny_model, tiny_data, tmp_path, caplog):
    x, y = _data(tiny_data)
    first, h1 = learn_masks(tiny_model, x, y, [1, 2], checkpoint=tmp_path / "ck.pt", **OPTIONS)
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert saved["state"]["epoch"] == 2 and set(saved["fingerprint"]) == {"code", "model", "data", "options", "seeds"}
    with caplog.at_level(logging.INFO, logger="fourier_masks"):
        again, h2 = learn_masks(tiny_model, x, y, [1, 2], checkpoint=tmp_path / "ck.pt", **OPTIONS)
    assert "resumed mask learning" in _messages(caplog) and "epoch 1/2" not in _messages(caplog)
    assert np.array_equal(first, again) and h1.equals(h2)


def test_a_checkpoint_of_another_model_or_data_is_not_resumed(tiny_model, tiny_data, tmp_path, caplog):
    x, y = _data(tiny_data)
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(other.parameters()).mul_(1.01)
    fresh, _ = learn_masks(other, x, y, [1, 2], **OPTIONS)
    learn_masks(tiny_model, x, y, [1, 2], checkpoint=tmp_path / "ck.pt", **OPTIONS)
    with caplog.at_level(logging.INFO, logger="fourier_masks"):
        masks, _ = learn_masks(other, x, y, [1, 2], checkpoint=tmp_path / "ck.pt", **OPTIONS)
    assert np.array_equal(masks, fresh)
    assert "made from another model; starting afresh" in _messages(caplog)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fourier_masks"):
        learn_masks(other, x[:40], y[:40], [1, 2], checkpoint=tmp_path / "ck.pt", **{**OPTIONS, "lr": 0.04})
    assert "made from another data, options; starting afresh" in _messages(caplog)


def test_a_truncated_checkpoint_is_moved_aside_with_a_warning(tiny_model, tiny_data, tmp_path, caplog):
    x, y = _data(tiny_data)
    checkpoint = tmp_path / "ck.pt"
    reference, _ = learn_masks(tiny_model, x, y, [1, 2], checkpoint=checkpoint, **OPTIONS)
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    with caplog.at_level(logging.WARNING, logger="fourier_masks"):
        masks, _ = learn_masks(tiny_model, x, y, [1, 2], checkpoint=checkpoint, **OPTIONS)
    assert np.array_equal(masks, reference)
    corrupt = tmp_path / "ck.pt.corrupt"
    assert corrupt.stat().st_size == 300 and str(checkpoint) in _messages(caplog) and str(corrupt) in _messages(caplog)


def test_a_pickle_payload_in_a_checkpoint_never_runs(tiny_model, tiny_data, tmp_path, caplog):
    x, y = _data(tiny_data)
    checkpoint, marker = tmp_path / "ck.pt", tmp_path / "marker"
    torch.save({"fingerprint": {}, "state": Payload(marker)}, checkpoint)
    with caplog.at_level(logging.WARNING, logger="fourier_masks"):
        masks, _ = learn_masks(tiny_model, x, y, [1, 2], checkpoint=checkpoint, **OPTIONS)
    assert not marker.exists()
    assert masks.shape == (2, 1, 16, 16) and "ck.pt.corrupt" in _messages(caplog)
    torch.load(tmp_path / "ck.pt.corrupt", weights_only=False)  # proof that the payload is live
    assert marker.read_text() == "the payload ran"


def test_a_pickle_payload_at_the_pipelines_checkpoint_never_runs(tmp_path):
    checkpoint = tmp_path / "results" / "checkpoints" / "masks" / "standard" / "all_seeds.pt"
    checkpoint.parent.mkdir(parents=True)
    marker = tmp_path / "marker"
    torch.save({"fingerprint": {}, "state": Payload(marker)}, checkpoint)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(REPO / "tests" / "configs" / "tiny.yaml"), "--cores", "2",
               "results/masks/standard/seed1.npy"]
    job = subprocess.run(command, capture_output=True, text=True, check=False)
    assert job.returncode == 0, job.stderr[-3000:]
    assert not marker.exists() and (tmp_path / "results" / "masks" / "standard" / "seed2.npy").is_file()
    log = (tmp_path / "results" / "logs" / "learn_masks" / "standard.log").read_text()
    assert "moved it to results/checkpoints/masks/standard/all_seeds.pt.corrupt" in log and "epoch 3 (at most 3)" in log
    assert not checkpoint.exists(), "the job removes its own checkpoint once the masks are written"
