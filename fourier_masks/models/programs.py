"""Architecture-free model files: TorchScript archives and torch.export programs.

Neither needs the Python class of the network, and both are read without unpickling
Python objects:

* ``torch.jit.load`` reads the archive's pickles with TorchScript's own unpickler, which
  knows only tensors, containers and the TorchScript classes compiled from the archive;
  any other Python global is an error. The archive's code is TorchScript, which cannot call
  Python, but it can call operators that touch files (``torch.from_file(path, shared=True)``
  writes through a memory map). :func:`load_torchscript` refuses code that names such an
  operator before loading, and after loading walks every method of every submodule, calls
  inlined, admitting only :func:`pure_operator` s.
* ``torch.export.load`` on its own is not safe for untrusted files: it falls back to full
  unpickling for some parts, runs ``pickle.loads`` on opaque objects, loads compiled
  AOTInductor libraries, evaluates symbolic shape expressions with ``sympy.sympify`` (an
  ``eval``) and compiles the archive's ``guards_code`` into Python. :func:`load_exported`
  therefore admits only archives made of JSON, tensors and the sample inputs, loads them
  with every ``torch.load`` forced to tensors-only, admits only plain arithmetic on shape
  symbols in expressions, refuses guard code, and refuses graphs that call anything but
  pure torch operators (:func:`pure_operator`) and arithmetic.

Both checks run whenever a program is loaded: at acquisition and in every job that reads
the model file.
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

__all__ = ["load_program", "load_torchscript", "load_exported", "pure_operator", "StaticBatch", "ExportedNetwork"]

#: Operator namespaces a program may call: ATen tensor operators and TorchScript's primitives.
PURE_NAMESPACES = ("aten", "prim", "prims")
#: Operators of those namespaces that read or write files, storages or shared memory, or call Python.
_IMPURE_NAME = re.compile(r".*from_file.*|save|load|.*storage.*|.*mmap.*|_?share_memory_?|set_|_?pin_memory"
                          r"|PythonOp|CallFunction|CallMethod|.*[Pp]ython.*")
#: Words in TorchScript source that name such operators (checked before the archive is loaded).
_IMPURE_WORD = re.compile(r"\b(\w*from_file\w*|\w*storage\w*|\w*mmap\w*|_?share_memory_?|set_|_?pin_memory)\b")

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


def pure_operator(qualified: str) -> bool:
    """Whether operator ``namespace::name`` (e.g. ``aten::conv2d``) computes on tensors only.

    >>> pure_operator("aten::conv2d"), pure_operator("aten::from_file"), pure_operator("myops::read")
    (True, False, False)
    """
    namespace, _, name = qualified.partition("::")
    return namespace in PURE_NAMESPACES and not _IMPURE_NAME.fullmatch(name.split(".")[0])


def _refused(operators, where: str) -> None:
    impure = sorted({op for op in operators if not pure_operator(op)})
    if impure:
        raise InputError(f"{where} calls {impure[:5]}, which touch files, storage or Python rather than compute on "
                         "tensors (only aten and prim operators that do neither are allowed); the program is refused.")


def _torchscript_source_words(data: bytes) -> set[str]:
    """Operator-like words of the archive's TorchScript source that name file or storage operators."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        code = [archive.read(n).decode("utf-8", "replace") for n in archive.namelist() if n.endswith(".py")]
    return {match.group(1) for text in code for match in _IMPURE_WORD.finditer(text)}


def _node_kinds(block) -> set[str]:
    """Kinds of the nodes of a TorchScript graph or block, nested blocks included."""
    kinds = set()
    for node in block.nodes():
        kinds.add(node.kind())
        for inner in node.blocks():
            kinds |= _node_kinds(inner)
    return kinds


def _torchscript_operators(module) -> set[str]:
    """Every operator the methods of ``module`` and its submodules call, with calls inlined."""
    kinds = set()
    for sub in module.modules():
        methods = sub._c._method_names() if hasattr(sub, "_c") else []
        for name in methods:
            graph = sub._c._get_method(name).graph.copy()
            torch._C._jit_pass_inline(graph)
            kinds |= _node_kinds(graph)
    return kinds


def load_torchscript(data: bytes, where: str) -> nn.Module:
    """A ``torch.jit.save`` archive as a module on the CPU (``where`` names it in errors).

    Refused: source naming file, storage or memory-map operators (checked before loading,
    since loading runs ``__setstate__``), and methods calling any operator that is not
    :func:`pure_operator`.
    """
    names = _archive_names(data, where, "TorchScript archive (torch.jit.save)")
    if "archive_format" in names:
        raise InputError(f"{where} is a torch.export program, not TorchScript; use source: exported.")
    _refused((f"aten::{word}" for word in _torchscript_source_words(data)), where)
    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as error:  # torch.jit raises RuntimeError and others for bad archives
        raise InputError(f"{where} cannot be loaded as TorchScript ({type(error).__name__}: {brief(error)}). "
                         "Expected a file written by torch.jit.save; a torch.save of a module or "
                         "state dict is source: checkpoint.") from error
    _refused(_torchscript_operators(module), where)
    return module


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


def _qualified_name(target) -> str:
    """``namespace::name`` of a torch operator overload or packet."""
    if isinstance(target, torch._ops.OpOverload):
        return target._schema.name
    return target._qualified_op_name


def _foreign_calls(graph) -> list[str]:
    """Call targets of ``graph`` that are neither pure torch operators nor arithmetic.

    Higher-order operators (``cond``, ``while_loop``) are admitted; their subgraphs are
    checked as graphs of their own.
    """
    operators = (torch._ops.OpOverload, torch._ops.OpOverloadPacket)
    foreign = []
    for node in graph.nodes:
        if node.op in ("call_module", "call_method"):
            foreign.append(f"{node.op} {node.target}")
        elif node.op == "call_function" and isinstance(node.target, operators):
            if not pure_operator(_qualified_name(node.target)):
                foreign.append(_qualified_name(node.target))
        elif node.op == "call_function" and not isinstance(node.target, torch._ops.HigherOrderOperator):
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
        raise InputError(f"{where}: the exported graph calls {sorted(set(foreign))[:5]}, which are not pure torch "
                         "operators (only aten and prims operators that touch no file, storage or Python are "
                         "allowed); the program is refused.")
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
