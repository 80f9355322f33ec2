"""Architecture-free model files: TorchScript archives and torch.export programs.

Neither needs the Python class of the network, and both are read without unpickling
Python objects:

* ``torch.jit.load`` reads the archive's pickles with TorchScript's own unpickler, which
  knows only tensors, containers and the TorchScript classes compiled from the archive;
  any other Python global is an error. The archive's code is TorchScript, which cannot call
  Python: running the network runs the torch operators it names, nothing else.
* ``torch.export.load`` on its own is not safe for untrusted files: it falls back to full
  unpickling for some parts, runs ``pickle.loads`` on opaque objects, loads compiled
  AOTInductor libraries, evaluates symbolic shape expressions with ``sympy.sympify`` (an
  ``eval``) and compiles the archive's ``guards_code`` into Python. :func:`load_exported`
  therefore admits only archives made of JSON, tensors and the sample inputs, loads them
  with every ``torch.load`` forced to tensors-only, admits only plain arithmetic on shape
  symbols in expressions, refuses guard code, and refuses graphs that call anything but
  torch operators and arithmetic.
"""

from __future__ import annotations

import io
import json
import math
import operator
import re
import zipfile
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import InputError, brief
from .safe_load import torch_load_mode

__all__ = ["load_program", "load_torchscript", "load_exported", "StaticBatch", "ExportedNetwork"]

#: Archive members (below the archive's root folder) that torch.export.save writes for a
#: plain program: JSON, raw tensor payloads and the pickled sample inputs (read tensors-only).
_EXPORT_MEMBERS = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/[^/]+\.json|extra/[^/]+|data/sample_inputs/[^/]+\.pt"
    r"|data/weights/(weight_\d+|[^/]+_weights_config\.json)"
    r"|data/constants/(tensor_\d+|[^/]+_constants_config\.json))"
)

#: Names a symbolic shape expression may use besides the deserializer's own functions and symbols.
_SYMPY_NAMES = {"Symbol", "Integer", "Rational", "Float", "True", "False", "oo", "positive", "negative",
                "nonnegative", "nonpositive", "integer", "real", "finite", "nonzero", "even", "odd", "Max", "Min",
                "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Abs"}
_SYMPY_TOKEN = re.compile(r"\s+|'[A-Za-z_]\w*'|[A-Za-z_]\w*|\d+(\.\d+)?(e-?\d+)?|\*\*|//|[=!<>]=|[-+*/%(),<>=&|~]")

#: Functions (besides torch operators) an exported graph may call: arithmetic on sizes.
_SAFE_FUNCTION_MODULES = ("_operator", "operator", "math")


def load_program(kind: str, data: bytes, where: str) -> nn.Module:
    """The network stored as ``data`` (the bytes of a file) of ``kind`` ``torchscript`` or ``exported``."""
    loaders = {"torchscript": load_torchscript, "exported": load_exported}
    if kind not in loaders:
        raise InputError(f"{where}: unknown program kind {kind!r}; allowed: {', '.join(loaders)}.")
    return loaders[kind](data, where)


def _archive_names(data: bytes, where: str, what: str) -> list[str]:
    """Member names of the zip archive ``data`` without their root folder."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [name.split("/", 1)[-1] for name in archive.namelist()]
    except zipfile.BadZipFile as error:
        raise InputError(f"{where} is not a {what} (not a zip archive: {error}).") from error


def load_torchscript(data: bytes, where: str) -> nn.Module:
    """A ``torch.jit.save`` archive as a module on the CPU (``where`` names it in errors)."""
    names = _archive_names(data, where, "TorchScript archive (torch.jit.save)")
    if "archive_format" in names:
        raise InputError(f"{where} is a torch.export program, not TorchScript; use source: exported.")
    try:
        return torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as error:  # torch.jit raises RuntimeError and others for bad archives
        raise InputError(f"{where} cannot be loaded as TorchScript ({type(error).__name__}: {brief(error)}). "
                         "Expected a file written by torch.jit.save; a torch.save of a module or "
                         "state dict is source: checkpoint.") from error


def _check_exported_archive(data: bytes, where: str) -> None:
    """Refuse archive members beyond JSON and tensors, and programs carrying guard code."""
    names = _archive_names(data, where, "torch.export program (torch.export.save)")
    foreign = [name for name in names if not _EXPORT_MEMBERS.fullmatch(name)]
    if foreign or "archive_format" not in names:
        raise InputError(
            f"{where} is not a plain torch.export program: it holds {foreign[:5] or 'no archive_format'} "
            "(compiled code, pickled objects or an unknown layout). Only programs saved by "
            "torch.export.save(torch.export.export(model.eval(), (x,)), path) are loaded."
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.namelist():
            if re.fullmatch(r"[^/]+/models/[^/]+\.json", member):
                try:
                    program = json.loads(archive.read(member))
                except ValueError as error:
                    raise InputError(f"{where}: {member} is not valid JSON ({error}).") from error
                if program.get("guards_code"):
                    raise InputError(f"{where} carries guard code ({member}: guards_code), which would run as "
                                     "Python; re-export the model without it.")


def _checked_sympify(original):
    """``sympy.sympify`` that refuses strings other than arithmetic on shape symbols."""

    def sympify(value, *args, **kwargs):
        if isinstance(value, str):
            known = set(kwargs.get("locals") or {}) | _SYMPY_NAMES
            tokens = [match.group(0) for match in _SYMPY_TOKEN.finditer(value)]
            names = [t for t in tokens if t[0].isalpha() or t[0] == "_"]
            if "".join(tokens) != value or any(n not in known and not re.fullmatch(r"[a-z]+\d+", n) for n in names):
                raise InputError(f"symbolic shape expression {value[:80]!r} is not plain arithmetic on shape symbols")
        return original(value, *args, **kwargs)

    return sympify


@contextmanager
def _safe_sympify():
    import sympy

    original = sympy.sympify
    sympy.sympify = _checked_sympify(original)
    try:
        yield
    finally:
        sympy.sympify = original


def _foreign_calls(graph) -> list[str]:
    """Call targets of ``graph`` (and its subgraphs) that are neither torch operators nor arithmetic."""
    allowed = (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator)
    foreign = []
    for node in graph.nodes:
        if node.op in ("call_module", "call_method"):
            foreign.append(f"{node.op} {node.target}")
        elif node.op == "call_function" and not isinstance(node.target, allowed):
            module = getattr(node.target, "__module__", None)
            name = getattr(node.target, "__name__", "")
            if not (module in _SAFE_FUNCTION_MODULES or node.target in (operator.getitem, math.trunc)
                    or (module and module.startswith("torch") and name.startswith(("sym_", "_check", "_assert")))):
                foreign.append(str(node.target))
    return foreign


def _training_calls(graph) -> list[str]:
    """Batch-norm or dropout calls of ``graph`` that run in training mode."""
    found = []
    for node in graph.nodes:
        name = str(node.target)
        if node.op != "call_function":
            continue
        if "batch_norm" in name and "no_training" not in name and len(node.args) > 5 and node.args[5] is True:
            found.append(name)
        elif "dropout" in name and (node.kwargs.get("train") is True or (len(node.args) > 2 and node.args[2] is True)):
            found.append(name)
    return found


class StaticBatch(nn.Module):
    """Run ``network``, exported for batches of exactly ``batch`` images, on any batch size.

    Inputs are cut into chunks of ``batch`` images (the last one padded with zeros, whose
    outputs are dropped).
    """

    def __init__(self, network: nn.Module, batch: int):
        super().__init__()
        self.network = network
        self.batch = batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for start in range(0, len(x), self.batch):
            chunk = x[start : start + self.batch]
            short = self.batch - len(chunk)
            if short:
                chunk = torch.cat([chunk, chunk.new_zeros((short, *chunk.shape[1:]))])
            outputs.append(self.network(chunk)[: self.batch - short])
        return torch.cat(outputs)


class ExportedNetwork(nn.Module):
    """An exported program's module; train/eval switches are ignored (the graph is fixed)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def _static_batch(program) -> int | None:
    """The fixed batch size of the program's one image input, or ``None`` if it is dynamic."""
    inputs = program.graph_signature.user_inputs
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    value = placeholders[inputs[0]].meta.get("val") if len(inputs) == 1 and inputs[0] in placeholders else None
    if value is None or value.dim() != 4:
        raise InputError(f"the program takes {len(inputs)} input(s); expected one image tensor [N, C, H, W].")
    return value.shape[0] if isinstance(value.shape[0], int) else None


def load_exported(data: bytes, where: str) -> nn.Module:
    """A ``torch.export.save`` program as a module on the CPU, loaded without running code from it.

    See the module docstring for what is refused. A program exported for a fixed batch
    size is wrapped in :class:`StaticBatch`.
    """
    _check_exported_archive(data, where)
    try:
        with torch_load_mode(weights_only=True), _safe_sympify():
            program = torch.export.load(io.BytesIO(data))
    except InputError as error:
        raise InputError(f"{where}: {error}; the program is refused.") from error
    except Exception as error:  # torch.export raises many types for bad or refused archives
        raise InputError(f"{where} cannot be loaded as a torch.export program ({type(error).__name__}: "
                         f"{brief(error)}). Expected a file written by torch.export.save.") from error
    graphs = [module.graph for module in program.graph_module.modules() if isinstance(module, torch.fx.GraphModule)]
    foreign = [call for graph in graphs for call in _foreign_calls(graph)]
    if foreign:
        raise InputError(f"{where}: the exported graph calls {sorted(set(foreign))[:5]}, which are not torch "
                         "operators; the program is refused.")
    training = [call for graph in graphs for call in _training_calls(graph)]
    if training:
        raise InputError(f"{where} was exported in training mode ({sorted(set(training))[:3]}): batch statistics "
                         "and dropout would change its outputs. Export model.eval() instead.")
    try:
        batch = _static_batch(program)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    network = ExportedNetwork(program.module())
    return network if batch is None else StaticBatch(network, batch)
