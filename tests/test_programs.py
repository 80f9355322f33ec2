"""TorchScript archives and torch.export programs: same outputs, and nothing in the file runs on load.

Each hostile archive below is a real program with one part replaced by a payload that
writes a marker file; the tests assert the program is refused and the marker is absent.
The control shows that torch.export.load alone runs such a payload.
"""

import io
import json
import logging
import pickle
import zipfile

import pytest
import torch
from conftest import checked
from own_model import Payload
from torch import nn

from fourier_masks.errors import InputError
from fourier_masks.models.acquire import acquire
from fourier_masks.models.files import load_model, read_record
from fourier_masks.models.networks import freeze
from fourier_masks.models.programs import ExportedNetwork, StaticBatch, load_program

IMAGES = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.head = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 3)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.conv(x))).mean((2, 3)))


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    net = Net()
    net.norm.running_mean.uniform_(-0.2, 0.2)
    return net.eval()


def _exported(network, batch=None, example=IMAGES):
    dynamic = None if batch else {"x": {0: torch.export.Dim("batch")}}
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(network, (example[:batch] if batch else example,), dynamic_shapes=dynamic),
                      buffer)
    return buffer.getvalue()


def _torchscript(network):
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(network, IMAGES), buffer)
    return buffer.getvalue()


def _replace(data: bytes, suffix: str, change) -> bytes:
    """The zip archive ``data`` with the member ending in ``suffix`` passed through ``change``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            target.writestr(name, change(content) if name.endswith(suffix) else content)
    return out.getvalue()


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_programs_compute_what_the_network_computes(network):
    with torch.no_grad():
        expected = network(IMAGES)
        for kind, data in (("torchscript", _torchscript(network)), ("exported", _exported(network))):
            loaded = freeze(load_program(kind, data, kind))
            torch.testing.assert_close(loaded(IMAGES), expected, msg=kind)
    exported = load_program("exported", _exported(network), "x")
    assert isinstance(exported, ExportedNetwork)
    exported.eval()  # the module of an exported program refuses eval(); the wrapper does not pass it on


def test_program_exported_for_one_batch_size_runs_any(network):
    loaded = load_program("exported", _exported(network, batch=2), "static")
    assert isinstance(loaded, StaticBatch) and loaded.batch == 2
    with torch.no_grad():
        torch.testing.assert_close(loaded(IMAGES), network(IMAGES))  # 5 images: chunks of 2, 2 and 1 (padded)


def test_program_exported_in_training_mode_is_refused():
    train_mode = Net().train()
    with pytest.raises(InputError, match=r"exported in training mode .*batch_norm.*Export model.eval\(\)"):
        load_program("exported", _exported(train_mode), "trainmode.pt2")


def test_acquire_programs_round_trip_through_model_files(network, tmp_path):
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    normalised = (IMAGES - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    for kind, data in (("torchscript", _torchscript(network)), ("exported", _exported(network))):
        (tmp_path / kind).write_bytes(data)
        config = checked({"name": "photos", "channels": 3, "image_size": 16, "n_classes": 3},
                         {"name": kind, "source": kind, "path": str(tmp_path / kind), "mean": mean, "std": std})
        spec, dataset = config["models"][0], config["dataset"]
        acquire(spec, tmp_path, tmp_path / f"{kind}.pt", offline=True, dataset=dataset, channels_last=True)
        record = read_record(tmp_path / f"{kind}.pt")
        assert record["arch"] == kind and record["state_dict"] == {} and record["num_classes"] == 3
        with torch.no_grad():
            torch.testing.assert_close(load_model(tmp_path / f"{kind}.pt")(IMAGES), network(normalised))
        with pytest.raises(InputError, match=r"the network has 3 outputs but models\[x\].num_classes has 4"):
            acquire({**spec, "num_classes": 4}, tmp_path, tmp_path / "x.pt", offline=True, dataset=dataset,
                    channels_last=True, where="models[x]")


def test_wrong_kind_of_file_is_named(network, tmp_path):
    with pytest.raises(InputError, match="is a torch.export program, not TorchScript; use source: exported"):
        load_program("torchscript", _exported(network), "a.pt2")
    with pytest.raises(InputError, match="b.pt cannot be loaded as TorchScript.*source: checkpoint"):
        load_program("torchscript", _replace(_torchscript(network), "data.pkl", lambda _: b"junk"), "b.pt")
    with pytest.raises(InputError, match=r"c.pt is not a torch.export program .*not a zip archive"):
        load_program("exported", b"plain bytes", "c.pt")


def test_torchscript_archive_with_a_python_payload_is_refused(network, tmp_path):
    marker = tmp_path / "marker"
    hostile = _replace(_torchscript(network), "data.pkl", lambda _: _pickled(Payload(marker)))
    with pytest.raises(InputError, match="cannot be loaded as TorchScript"):
        load_program("torchscript", hostile, "hostile.pt")
    assert not marker.exists()


def _hostile_exports(network, marker):
    """Exported programs each carrying one payload, by what carries it."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    data = _exported(network)

    def guards(content):
        return json.dumps({**json.loads(content), "guards_code": [code]}).encode()

    def symbol(content):
        text = json.dumps(json.loads(content))
        start = text.index("Symbol(")
        return (text[:start] + json.dumps(f"__import__('builtins').exec({code!r}) + ")[1:-1] + text[start:]).encode()

    def use_pickle(content):
        config = json.loads(content)
        for payload in config["config"].values():
            payload["use_pickle"] = True
        return json.dumps(config).encode()

    def opaque_constant(content):
        entry = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
        return json.dumps({"config": {**json.loads(content)["config"], "evil": entry}}).encode()

    opaque = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_replace(data, "model_constants_config.json", opaque_constant))) as source, \
            zipfile.ZipFile(opaque, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr(name.split("/")[0] + "/data/constants/opaque_obj_0", pickle.dumps(Payload(marker)))
    return {
        "sample inputs": _replace(data, "sample_inputs/model.pt", lambda _: _pickled(Payload(marker))),
        "pickled weight": _replace(_replace(data, "weights/weight_0", lambda _: _pickled(Payload(marker))),
                                   "model_weights_config.json", use_pickle),
        "guard code": _replace(data, "models/model.json", guards),
        "shape expression": _replace(data, "models/model.json", symbol),
        "opaque object": opaque.getvalue(),
    }


@pytest.mark.parametrize("carrier", ["sample inputs", "pickled weight", "guard code", "shape expression",
                                     "opaque object"])
def test_exported_program_with_a_payload_is_refused(network, tmp_path, carrier):
    marker = tmp_path / "marker"
    with pytest.raises(InputError, match="hostile.pt2"):
        load_program("exported", _hostile_exports(network, marker)[carrier], "hostile.pt2")
    assert not marker.exists(), f"the payload in the {carrier} ran"


def test_control_torch_export_load_alone_runs_the_payload(network, tmp_path):
    marker = tmp_path / "marker"
    logging.disable(logging.WARNING)  # torch logs the failed weights-only attempt before unpickling in full
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever torch raises after the payload ran
            torch.export.load(io.BytesIO(_hostile_exports(network, marker)["sample inputs"]))
    finally:
        logging.disable(logging.NOTSET)
    assert marker.exists()


class _FileWriter(nn.Module):
    """A TorchScript-able network that writes bytes to ``path`` through ``torch.from_file`` on every call."""

    def __init__(self, path: str):
        super().__init__()
        self.path, self.head = path, nn.Linear(3, 3)

    def forward(self, x):
        written = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        written.fill_(65)
        return self.head(x.mean((2, 3))) + written[0].float() * 0


_LIBRARY = torch.library.Library("fourier_masks_test", "DEF")  # an operator of an unknown namespace
_LIBRARY.define("touch(Tensor x) -> Tensor")
_LIBRARY.impl("touch", lambda x: x.clone(), "CPU")


class _Submodule(nn.Module):
    def forward(self, x):
        return torch.ops.fourier_masks_test.touch(x)


class _CallsUnknownOperator(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner, self.head = _Submodule(), nn.Linear(3, 3)

    def forward(self, x):
        return self.head(self.inner(x).mean((2, 3)))


def _scripted(module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def test_torchscript_program_that_writes_files_is_refused_and_nothing_is_written(tmp_path):
    marker = tmp_path / "marker"
    marker.write_bytes(b"\0" * 8)  # from_file with shared=True writes into an existing file
    archive = _scripted(_FileWriter(str(marker)))
    with pytest.raises(InputError, match=r"hostile.pt calls \['aten::from_file'\], which touch files"):
        load_program("torchscript", archive, "hostile.pt")
    assert marker.read_bytes() == b"\0" * 8
    torch.jit.load(io.BytesIO(archive))(IMAGES)  # control: run unchecked, the program writes
    assert marker.read_bytes() == b"A" * 8


def test_torchscript_submodule_calling_an_unknown_namespace_is_refused():
    archive = _scripted(_CallsUnknownOperator())
    with pytest.raises(InputError, match=r"calls \['fourier_masks_test::touch'\]"):
        load_program("torchscript", archive, "custom.pt")


def test_exported_graph_calling_file_operators_is_refused():
    from fourier_masks.models.programs import _foreign_calls

    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    written = graph.call_function(torch.ops.aten.from_file.default, ("/tmp/marker", True, 8))
    graph.call_function(torch.ops.aten.fill_.Scalar, (written, 65))
    graph.output(graph.call_function(torch.ops.aten.relu.default, (x,)))
    assert _foreign_calls(graph) == ["aten::from_file"]
