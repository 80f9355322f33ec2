"""The package's shape, read from its source: a one-way import graph, short functions, one home per default.

Stages, from the bottom up (a module may import its own stage and the ones below it, never
one above; inside a stage the graph has no cycle):

    core      errors, template_guard, atomic, digests, config, io, provenance, device, spectrum
    data      fourier_masks.data.*
    models    fourier_masks.models.*
    masks     fourier_masks.masks.*
    analysis  fourier_masks.analysis.*
    figures   fourier_masks.figures

Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fourier_masks"
SCHEMA = PACKAGE / "config" / "config.schema.yaml"
STAGES = ("core", "data", "models", "masks", "analysis", "figures")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    return "core"


def _imported(module: str, tree: ast.Module) -> set[str]:
    """Package modules that ``module`` imports anywhere in its source (``from . import x`` counts ``x``)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES and name != module and name != "fourier_masks"}


GRAPH = {module: _imported(module, tree) for module, tree in TREES.items() if module != "fourier_masks"}


def test_the_graph_sees_the_known_edges():
    assert "fourier_masks.models.networks" in GRAPH["fourier_masks.masks.learning"]
    assert "fourier_masks.masks.checkpoint" in GRAPH["fourier_masks.masks.learning"]  # from . import checkpoint
    assert "fourier_masks.data.preflight" in GRAPH["fourier_masks.models.preflight"]  # a lazy import


def test_no_module_imports_a_later_stage():
    upward = [f"{module} ({_stage(module)}) imports {target} ({_stage(target)})"
              for module, targets in GRAPH.items() for target in targets
              if STAGES.index(_stage(target)) > STAGES.index(_stage(module))]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", ["fourier_masks.io", "fourier_masks.config", "fourier_masks.analysis.metrics",
                                    "fourier_masks.models.preflight", "fourier_masks.models.sources",
                                    "fourier_masks.digests", "fourier_masks.results", "fourier_masks",
                                    # what Snakemake reads to build the job graph (tests/test_minimal_env.py)
                                    "fourier_masks.models.regimes", "fourier_masks.models.zoo_cache",
                                    "fourier_masks.models.threat",
                                    "fourier_masks.data.preflight", "fourier_masks.requests"])
def test_light_modules_do_not_import_torch(module):
    """Table scripts (io), the config check, numpy mask metrics and Snakemake's parse-time check stay light."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "False"


def test_no_module_is_longer_than_400_lines():
    long = [f"{module}: {n} lines" for module, path in MODULES.items()
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, "\n".join(long)


def test_no_function_is_longer_than_60_lines():
    long = [f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for module, tree in TREES.items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, "\n".join(long)


# ---- one home per default -------------------------------------------------------------------

#: Config sections whose keys each part of the package takes as arguments (``models`` is a
#: model entry). Top-level keys (device, offline, seeds) belong to every module.
SECTIONS = {
    "fourier_masks.data": ("dataset",),
    "fourier_masks.models.training": ("training",),
    "fourier_masks.models.attacks": ("training", "analysis.robust_eval"),
    "fourier_masks.models.threat": ("models", "analysis.robust_eval"),
    "fourier_masks.models.networks": ("training",),
    "fourier_masks.models": ("models",),
    "fourier_masks.masks.learning": ("mask",),
    "fourier_masks.masks.single_image": ("analysis.single_image",),
    "fourier_masks.analysis": ("analysis",),
}

#: Argument names that stand for a config key of another name.
ALIASES = {"lam": "lambda", "n_boot": "bootstrap", "n_perm": "permutations", "n_shuffles": "random_shuffles",
           "threshold": "binarize_threshold", "radial_edges": "radial_bands"}

#: Arguments named like a config key of their section that mean something else, so a default is theirs.
# Module-level tables whose keys happen to be config keys but that hold no defaults.
NOT_DEFAULT_TABLES = {
    ("fourier_masks.models.regimes", "REGIME_SETTINGS"):
        "keyed by regime (scale, translate and rotate are also training keys); its values name keys",
}
NOT_CONFIG = {
    ("fourier_masks.data.dataset", "check_images", "name"): "the name of the images in messages",
    ("fourier_masks.models.attacks", "robust_accuracy", "batch_size"): "images per attack call, no config key",
    ("fourier_masks.models.attacks", "robust_accuracy", "seed"): "seeds the attack's random start",
    ("fourier_masks.models.attacks", "autoattack_accuracy", "batch_size"): "images per attack call, no config key",
    ("fourier_masks.models.attacks", "autoattack_accuracy", "seed"): "seeds AutoAttack's random starts and Square",
    ("fourier_masks.models.files", "save_model", "python_path"):
        "what the file records: none for a network not imported",
    ("fourier_masks.models.files", "load_model", "device"): "a torch device; callers resolve the config's device",
}


def _schema_defaults() -> dict[str, list]:
    """``{dotted key: [defaults]}`` of every schema leaf (``models`` entries as ``models``)."""
    found = {}

    def walk(node, path):
        if not isinstance(node, dict):
            return
        if "default" in node and path and not isinstance(node["default"], dict):
            found.setdefault(".".join(path), []).append(node["default"])
        for key, child in node.get("properties", {}).items():
            walk(child, path + [key])
        if isinstance(node.get("items"), dict):
            walk(node["items"], path)
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key, []):
                walk(child, path)
        for key in ("then", "else"):
            walk(node.get(key), path)

    walk(yaml.safe_load(SCHEMA.read_text()), [])
    return found


DEFAULTS = _schema_defaults()


def _leaves(module: str) -> dict[str, list]:
    """``{key name: [schema defaults]}`` of the config keys ``module`` may take as arguments."""
    prefixes = [prefix for prefix in SECTIONS if module == prefix or module.startswith(prefix + ".")]
    chosen = SECTIONS[max(prefixes, key=len)] if prefixes else ()
    leaves = {}
    for key, values in DEFAULTS.items():
        section, _, name = key.rpartition(".")
        if not section or any(section == s or section.startswith(s + ".") for s in chosen):
            leaves.setdefault(name, []).extend(values)
    return leaves


def _trivial(value) -> bool:
    return value is None or isinstance(value, bool) or value in (0, 1, "", (), [])


def _of_kind(argument: str) -> list:
    """Schema defaults, in any section, of the keys that name a kind of ``argument`` (``eval_batch_size``
    and ``model_batch_size`` for ``batch_size``): a literal default equal to one restates it."""
    return [value for key, defaults in DEFAULTS.items() if key.rpartition(".")[2].endswith("_" + argument)
            for value in defaults if not _trivial(value)]


def _restated(module: str, tree: ast.Module) -> list[str]:
    leaves, found = _leaves(module), []
    values = [value for defaults in leaves.values() for value in defaults if not _trivial(value)]

    def literal(node):
        try:
            value = ast.literal_eval(node)
        except ValueError:
            return None
        return list(value) if isinstance(value, tuple) else value

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args
            pairs = list(zip(arguments[len(arguments) - len(node.args.defaults):], node.args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d is not None]
            for argument, default in pairs:
                key = ALIASES.get(argument.arg, argument.arg)
                if (module, node.name, argument.arg) in NOT_CONFIG:
                    continue
                if key in leaves or (not _trivial(literal(default)) and literal(default) in values + _of_kind(key)):
                    found.append(f"{module}.{node.name}({argument.arg}={ast.unparse(default)})")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
              and node.args[0].value in leaves and isinstance(node.args[1], ast.Constant | ast.Tuple | ast.List)):
            found.append(f"{module}: .get({ast.unparse(node.args[0])}, {ast.unparse(node.args[1])})")
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            if sum(k in leaves for k in keys) >= 2 and (module, ast.unparse(node.targets[0])) not in NOT_DEFAULT_TABLES:
                found.append(f"{module}.{ast.unparse(node.targets[0])}: a table of config defaults")
        elif isinstance(node, ast.Assign) and not _trivial(literal(node.value)) and literal(node.value) in values:
            found.append(f"{module}.{ast.unparse(node.targets[0])} = {ast.unparse(node.value)}")
    return found


def test_the_default_check_finds_a_restated_default():
    tree = ast.parse("DEFAULTS = {'epochs': 12, 'lr': 2e-3}\n"
                     "def train(x, *, epochs=8): ...\n"
                     "def fit(cfg): return cfg.get('batch_size', 64)\n")
    assert len(_restated("fourier_masks.models.training", tree)) == 3
    assert _restated("fourier_masks.analysis.metrics", ast.parse("def f(x, n_boot=1000): ...\n"))
    # mask.eval_batch_size's 512 as the default of an analysis's batch_size (no analysis key of that name)
    assert _restated("fourier_masks.analysis.anchors", ast.parse("def curves(m, x, y, *, batch_size=512): ...\n"))
    assert not _restated("fourier_masks.analysis.anchors", ast.parse("def curves(m, x, y, *, batch_size=7): ...\n"))


def test_no_default_is_written_twice():
    """Every pipeline default lives in the schema: no argument named like a config key of its
    section has a default, no literal default equals one of the section's schema defaults, no
    ``cfg.get(key, literal)`` and no table of defaults (the adapters pass the checked config)."""
    found = [line for module, tree in TREES.items() for line in _restated(module, tree)]
    assert not found, "\n".join(found)


def test_every_public_name_of_the_package_imports():
    """``from fourier_masks import NAME`` works for every name of ``fourier_masks.__all__``."""
    import fourier_masks

    for name in fourier_masks.__all__:
        assert callable(getattr(fourier_masks, name)), name
