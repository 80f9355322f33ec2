"""The conda environments pin exactly what pyproject.toml pins, and the rules use them.

environment.yml (the full development env) = dependencies + extras zoo, workflow, test,
plus the package itself (`pip: -e .`). workflow/envs/{cpu,gpu}.yaml (rule envs) =
dependencies + extra zoo: the rules' scripts import fourier_masks through the
workflow/scripts/fourier_masks symlink, and Snakemake itself comes from the script
preamble's search path.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FULL_ENV = REPO / "environment.yml"
RULE_ENVS = {"cpu": REPO / "workflow" / "envs" / "cpu.yaml", "gpu": REPO / "workflow" / "envs" / "gpu.yaml"}
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
TORCH = {"torch", "torchvision"}  # packages with CPU and CUDA builds
# conda-forge name -> PyPI name, where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}


def normalise(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name).lower()  # PEP 503
    return CONDA_TO_PYPI.get(name, name)


def parse_pin(requirement: str) -> tuple[str, str]:
    name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([\w.]+)", requirement.strip()).groups()
    return normalise(name), version


def pyproject_pins(*extras: str) -> dict[str, str]:
    requirements = PYPROJECT["project"]["dependencies"] + [
        r for extra in extras for r in PYPROJECT["project"]["optional-dependencies"][extra]
    ]
    pins = dict(parse_pin(r) for r in requirements)
    assert len(pins) == len(requirements), "a package is listed twice in pyproject.toml"
    return pins


class Env:
    """A conda env file: conda specs ('name==1.0', 'name=1.0=build*', 'python>=3.11') and
    pip requirements ('name==1.0', '-e .')."""

    def __init__(self, path: Path):
        self.path = path
        self.data = yaml.safe_load(path.read_text())
        deps = self.data["dependencies"]
        self.conda = [d for d in deps if isinstance(d, str)]
        pip = [d["pip"] for d in deps if isinstance(d, dict)]
        self.pip = [r for block in pip for r in block]
        self.python = next((d for d in self.conda if re.match(r"python\b", d)), None)
        self.builds: dict[str, str] = {}  # name -> build string pattern

    def pins(self) -> dict[str, str]:
        pins = {}
        for spec in self.conda:
            if spec == "pip" or spec == self.python:
                continue
            exact = re.fullmatch(r"([\w.\-]+)==([\w.]+)", spec)
            with_build = re.fullmatch(r"([\w.\-]+)=([\w.]+)=(\S+)", spec)
            assert exact or with_build, f"{self.path.name}: {spec!r} is not an exact pin"
            name, version = (exact or with_build).group(1, 2)
            if with_build:
                self.builds[normalise(name)] = with_build[3]
            assert normalise(name) not in pins, f"{self.path.name}: {name} twice"
            pins[normalise(name)] = version
        for requirement in self.pip:
            if requirement.startswith("-e"):
                continue
            name, version = parse_pin(requirement)
            assert name not in pins, f"{self.path.name}: {name} both from conda and pip"
            pins[name] = version
        return pins


@pytest.mark.parametrize(
    "path, extras",
    [(FULL_ENV, ("zoo", "workflow", "test")), (RULE_ENVS["cpu"], ("zoo",)), (RULE_ENVS["gpu"], ("zoo",))],
    ids=["environment.yml", "cpu.yaml", "gpu.yaml"],
)
def test_env_pins_the_same_packages_and_versions_as_pyproject(path, extras):
    env = Env(path)
    expected, pinned = pyproject_pins(*extras), env.pins()
    assert pinned.keys() == expected.keys(), (
        f"only in {path.name}: {sorted(pinned.keys() - expected.keys())}; "
        f"only in pyproject.toml: {sorted(expected.keys() - pinned.keys())}"
    )
    assert pinned == expected
    assert env.python is not None and env.python.replace(" ", "") == "python" + PYPROJECT["project"]["requires-python"]
    assert env.data["channels"][0] == "conda-forge"
    if env.pip:
        assert "pip" in env.conda, "a pip: section needs pip itself"


def test_full_env_installs_the_package_itself():
    assert "-e ." in Env(FULL_ENV).pip


def test_gpu_env_asks_for_cuda_builds_and_cpu_env_does_not():
    gpu, cpu = Env(RULE_ENVS["gpu"]), Env(RULE_ENVS["cpu"])
    gpu.pins(), cpu.pins()
    assert {name: gpu.builds.get(name, "") for name in TORCH} == {name: "cuda*" for name in TORCH}
    assert {name: cpu.builds.get(name, "") for name in TORCH} == {name: "cpu*" for name in TORCH}
    assert not [spec for spec in cpu.conda if "cuda" in spec.lower()]
    assert "nvidia" not in cpu.data["channels"]


def test_rule_envs_find_the_package_through_the_scripts_symlink():
    link = REPO / "workflow" / "scripts" / "fourier_masks"
    assert link.is_symlink() and link.resolve() == (REPO / "fourier_masks").resolve()


def rule_blocks(path: Path) -> list[tuple[str, str]]:
    """(rule name, its text) from each `rule name:` (or `rule:` in a loop) to the next one (nesting ignored)."""
    text = path.read_text()
    heads = list(re.finditer(r"^[ \t]*rule\b ?(\w*):", text, flags=re.MULTILINE))
    ends = [head.start() for head in heads[1:]] + [len(text)] if heads else []
    return [(head[1] or "rule in a loop", text[head.start() : end]) for head, end in zip(heads, ends, strict=True)]


def test_every_rule_file_conda_directive_names_an_existing_env():
    seen = 0
    for path in RULE_FILES:
        for env in re.findall(r"conda:\s*\n?\s*[\"']([^\"']+)[\"']", path.read_text()):
            seen += 1
            assert (path.parent / env).resolve().is_file(), f"{path.name}: conda env {env} does not exist"
            assert (path.parent / env).resolve() in {p.resolve() for p in RULE_ENVS.values()}, (
                f"{path.name}: {env} is not one of workflow/envs/cpu.yaml, gpu.yaml"
            )
    assert seen, "no rule names a conda env"


def test_every_rule_that_runs_code_names_a_conda_env():
    """Under --sdm conda a rule without `conda:` would run in whatever Python is at hand."""
    missing = [
        f"{path.name}: {name}"
        for path in RULE_FILES
        for name, block in rule_blocks(path)
        if re.search(r"^\s+(script|shell|run|notebook):", block, flags=re.MULTILINE)
        and not re.search(r"^\s+conda:", block, flags=re.MULTILINE)
    ]
    assert not missing, f"rules without conda: {missing}"


def test_rules_that_ask_for_a_gpu_take_the_device_s_env_and_no_other_does():
    """One choice for every rule that runs a network: env and GPU request go together."""
    blocks = [(f"{path.name}: {name}", block) for path in RULE_FILES for name, block in rule_blocks(path)]
    asking = {name for name, block in blocks if "**GPU_REQUEST" in block}
    assert len(asking) >= 9, asking
    assert asking == {name for name, block in blocks if re.search(r"conda:\s*\n\s*NETWORK_ENV\b", block)}
    assert not [name for name, block in blocks if re.search(r"\bgpu\s*=|gres\s*=|envs/gpu.yaml", block)]


@pytest.mark.parametrize("device, driver, override, env", [
    ("cuda", False, None, "gpu"), ("cuda:1", False, None, "gpu"), ("cpu", True, None, "cpu"),
    ("mps", False, None, "cpu"), ("auto", True, None, "gpu"), ("auto", False, "12.6", "gpu"),
    ("auto", False, None, "cpu"),
])
def test_network_env_follows_the_device(monkeypatch, tmp_path, device, driver, override, env):
    from fourier_masks.requests import network_env

    if driver:
        smi = tmp_path / "nvidia-smi"
        smi.write_text("#!/bin/sh\n")
        smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    if override:
        monkeypatch.setenv("CONDA_OVERRIDE_CUDA", override)
    chosen = REPO / "workflow" / "rules" / network_env(device)
    assert chosen.resolve() == RULE_ENVS[env].resolve()
