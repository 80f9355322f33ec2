"""What the rules that run a network ask for: their conda env and their GPU request.

Plain strings and dicts, no torch: Snakemake reads these when it builds the job graph
(``workflow/rules/common.smk``), one choice for every such rule.
"""

from __future__ import annotations

import os
import shutil

__all__ = ["network_env", "gpu_request"]


def network_env(device: str) -> str:
    """Rule env file (relative to ``workflow/rules``) for jobs that run a network on ``device``.

    ``envs/gpu.yaml`` (CUDA builds) for ``cuda`` and ``cuda:N``, ``envs/cpu.yaml`` for ``cpu``
    and ``mps``. Under ``auto``, gpu.yaml only where Snakemake sees a CUDA driver
    (``nvidia-smi`` on PATH) or ``CONDA_OVERRIDE_CUDA`` is set (how conda is told to build
    CUDA envs on a login node without a GPU); elsewhere, a laptop or a Mac, cpu.yaml.

    >>> network_env("cuda:1"), network_env("mps")
    ('../envs/gpu.yaml', '../envs/cpu.yaml')
    """
    cuda = device.startswith("cuda") or (
        device == "auto" and bool(shutil.which("nvidia-smi") or os.environ.get("CONDA_OVERRIDE_CUDA")))
    return "../envs/gpu.yaml" if cuda else "../envs/cpu.yaml"


def gpu_request(device: str, form: str) -> dict:
    """Resources by which a job that runs a network asks for one GPU (config ``cluster.gpu_request``).

    ``gpus``: Snakemake's ``gpu=1``, which the SLURM plugin passes as ``--gpus=1`` and a local
    run counts only against ``--resources gpu=N`` (profiles/local-gpu: one at a time, on MPS
    too); ``gres``: ``gres="gpu:1"``, passed as ``--gres=gpu:1``; ``none``: nothing, for a
    profile's own ``set-resources``. Nothing under ``device: cpu``.

    >>> gpu_request("auto", "gpus"), gpu_request("cuda", "gres"), gpu_request("cpu", "gres")
    ({'gpu': 1}, {'gres': 'gpu:1'}, {})
    """
    if device == "cpu" or form == "none":
        return {}
    return {"gpu": 1} if form == "gpus" else {"gres": "gpu:1"}
