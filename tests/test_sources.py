"""Model files by URL from a local HTTP server, and the parse-time checks of what a config needs."""

import hashlib
import http.server
import re
from pathlib import Path

import pytest
import torch
from own_model import serve

from fourier_masks.config import check_config
from fourier_masks.errors import InputError
from fourier_masks.models.preflight import check_sources
from fourier_masks.models.sources import download, model_file

CONTENT = bytes(range(256)) * 4096  # 1 MiB, several read blocks
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def served(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "weights.pt").write_bytes(CONTENT)
    with serve(tmp_path / "www") as base:
        yield f"{base}/weights.pt", tmp_path / "resources/models/m/weights.pt"


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_with_matching_hash(served):
    url, output = served
    assert model_file({"name": "m", "url": url}, output.parents[2]) == output
    output.parent.mkdir(parents=True, exist_ok=True)
    (output.parent / f".{output.name}.part4242").write_bytes(b"half")  # a download killed earlier
    download(url, SHA.upper(), output)
    assert output.read_bytes() == CONTENT and _leftovers(output.parent) == ["weights.pt"]


def test_download_with_wrong_hash_keeps_nothing_and_names_both(served):
    url, output = served
    with pytest.raises(InputError, match=rf"models\[m\].sha256: {re.escape(url)} has SHA-256 {SHA}, but the entry "
                                         rf"expects {'0' * 64}; the download was discarded"):
        download(url, "0" * 64, output, where="models[m]")
    assert _leftovers(output.parent) == []


def test_server_gone_keeps_nothing_and_says_where_to_stage(served):
    url, output = served
    with serve(output.parent.parent) as base:
        dead = f"{base}/weights.pt"
    with pytest.raises(InputError, match=rf"{re.escape(dead)} could not be downloaded \(URLError.*put it at "
                                         rf"{re.escape(str(output))}"):
        download(dead, SHA, output)
    assert _leftovers(output.parent) == []


class _CutHandler(http.server.BaseHTTPRequestHandler):
    """Promises the whole file, sends half of it, then closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(CONTENT)))
        self.end_headers()
        self.wfile.write(CONTENT[: len(CONTENT) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_cut_connection_never_leaves_a_file_that_looks_complete(tmp_path):
    output = tmp_path / "resources/models/m/weights.pt"
    with serve(tmp_path, handler=_CutHandler) as base:
        cut = r"could not be downloaded \(ConnectionError: the connection closed after 524288 of 1048576 bytes"
        with pytest.raises(InputError, match=cut):
            download(f"{base}/weights.pt", SHA, output)
    assert _leftovers(output.parent) == []


def _config(models, dataset=None, offline=False):
    return check_config({"offline": offline, "dataset": dataset or {"name": "photos", "image_size": 16,
                                                                   "channels": 3, "n_classes": 4},
                         "models": models})


URL_MODEL = {"name": "web", "source": "torchscript", "url": "http://127.0.0.1:9/net.pt", "sha256": SHA}


def test_offline_lists_what_to_stage_and_where(tmp_path):
    config = _config([URL_MODEL, {"name": "local", "source": "exported", "path": str(tmp_path / "net.pt2")}],
                     offline=True)
    with pytest.raises(InputError) as caught:
        check_sources(config, tmp_path / "resources")
    message = str(caught.value)
    assert f"{tmp_path / 'resources/models/web/net.pt'}  (model web, from http://127.0.0.1:9/net.pt)" in message
    assert f"{tmp_path / 'net.pt2'}  (model local)" in message and "2 file(s) are not staged" in message
    staged = tmp_path / "resources/models/web/net.pt"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(CONTENT)  # what the entry's sha256 names
    (tmp_path / "net.pt2").write_bytes(b"x")
    check_sources(config, tmp_path / "resources")


def test_parse_time_checks_of_model_entries(tmp_path):
    local = {"name": "m", "source": "torchscript", "path": str(tmp_path / "absent.pt")}
    with pytest.raises(InputError, match=r"models\[0\] \(m\).path = .*absent.pt' does not exist"):
        check_sources(_config([local]), tmp_path)
    (tmp_path / "absent.pt").write_bytes(b"x")
    with pytest.raises(InputError, match=r"models\[0\] \(m\).input_shape = \[1, 16, 16\] does not match the "
                                         r"dataset's images \[3, 16, 16\]"):
        check_sources(_config([{**local, "input_shape": [1, 16, 16]}]), tmp_path)
    with pytest.raises(InputError, match=r"models\[0\] \(m\).num_classes = 10 does not match the dataset's 4"):
        check_sources(_config([{**local, "num_classes": 10}]), tmp_path)
    check_sources(_config([{**local, "num_classes": 4, "input_shape": [3, 16, 16]}]), tmp_path)


def test_folder_dataset_classes_are_counted_before_any_job(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / "photos/train" / name).mkdir(parents=True)
    dataset = {"name": "folder", "root": str(tmp_path / "photos"), "image_size": 16}
    model = {"name": "m", "source": "torchscript", "path": str(tmp_path / "m.pt"), "num_classes": 3}
    torch.save({}, tmp_path / "m.pt")
    with pytest.raises(InputError, match=r"num_classes = 3 does not match the dataset's 2 classes"):
        check_sources(_config([model], dataset), tmp_path)
    (tmp_path / "photos/train/dog").rmdir()
    (tmp_path / "photos/train/.ipynb_checkpoints").mkdir()
    with pytest.raises(InputError, match=r"has 1 class folder \(\['cat'\]\); a classifier needs at least 2"):
        check_sources(_config([model], dataset), tmp_path)


@pytest.mark.parametrize("entry, message", [
    ({"path": "a.pt", "url": "https://x.org/a.pt", "sha256": SHA}, "needs exactly one of path"),
    ({}, "needs exactly one of path"),
    ({"url": "https://x.org/a.pt"}, "models[0].sha256 is needed with url"),
    ({"url": "ftp://x.org/a.pt", "sha256": SHA}, "models[0].url = 'ftp://x.org/a.pt' is not allowed"),
    ({"path": "a.pt", "sha256": "abc"}, "models[0].sha256 = 'abc' is not allowed"),
    ({"path": "a.pt", "python_path": ["code"]}, "models[0].python_path is used only with arch: 'import:"),
    ({"path": "a.pt", "arch": "import:pkg"}, "models[0].arch = 'import:pkg' is not allowed"),
    ({"path": "a.pt", "expected_accuracy": 1.5}, "models[0].expected_accuracy = 1.5 is out of range"),
])
def test_bad_model_file_entries_name_the_key(entry, message):
    with pytest.raises(InputError) as caught:
        check_config({"models": [{"name": "m", "source": "checkpoint", "arch": "small_cnn", **entry}]})
    assert message in str(caught.value)


TRAINED = {"name": "t", "source": "train", "regime": "standard", "arch": "small_cnn"}


def test_mistakes_a_dry_run_can_see_are_named_before_any_job(tmp_path):
    """Folders that are not there, a folder given for a file, and a URL without a file name."""
    net = tmp_path / "net.pt"
    net.write_bytes(b"x")
    own = {"name": "m", "source": "checkpoint", "arch": "import:arch:Net", "path": str(net)}
    with pytest.raises(InputError, match=r"models\[0\] \(m\).python_path names \[.*/code'\], which is not a folder"):
        check_sources(_config([{**own, "python_path": [str(tmp_path / "code")]}]), tmp_path)
    (tmp_path / "code").mkdir()
    check_sources(_config([{**own, "python_path": [str(tmp_path / "code")]}]), tmp_path)
    with pytest.raises(InputError, match=r"models\[0\] \(m\).path = .* is a folder; name the model file in it "
                                         r"\(it holds net.pt\)"):
        check_sources(_config([{**own, "path": str(tmp_path)}]), tmp_path)
    for url in ("https://x.org/models/..", "https://x.org/models/"):
        with pytest.raises(InputError, match=r"models\[web\].url = .* does not end in a file name"):
            check_sources(_config([{**URL_MODEL, "url": url}]), tmp_path)

    for split, names in (("train", ("cat", "dog")), ("test", ("cat", "dgo"))):
        for name in names:
            (tmp_path / "photos" / split / name).mkdir(parents=True)
    dataset = {"name": "folder", "root": str(tmp_path / "photos"), "image_size": 16, "classes": ["cat", "dog"]}
    with pytest.raises(InputError, match=r"dataset.classes names \['dog'\], which .*photos/test lacks as class "
                                         r"folders; it has \['cat', 'dgo'\]"):
        check_sources(_config([TRAINED], dataset), tmp_path)
    with pytest.raises(InputError, match=r"dataset.root = .*elsewhere' does not exist; a folder dataset needs"):
        check_sources(_config([TRAINED], {**dataset, "root": str(tmp_path / "elsewhere")}), tmp_path)


def test_entry_digest_follows_contents_not_timestamps(tmp_path):
    """A model file replaced in place (same size, old mtime) or a changed architecture source reruns the model."""
    import os
    import time

    from fourier_masks.models.sources import entry_digest

    code, net = tmp_path / "code", tmp_path / "net.pt"
    code.mkdir()
    (code / "arch.py").write_text("import torch.nn as nn\nACT = nn.ReLU\n")
    net.write_bytes(b"weights-1")
    entry = {"name": "m", "source": "checkpoint", "path": str(net), "python_path": [str(code)]}
    first, stamp = entry_digest(entry, tmp_path), (net.stat().st_atime_ns, net.stat().st_mtime_ns)
    assert entry_digest(entry, tmp_path) == first
    time.sleep(0.05)  # file times are kept to a few milliseconds
    net.write_bytes(b"weights-2")
    os.utime(net, ns=stamp)  # touch -r: the old modification time
    second = entry_digest(entry, tmp_path)
    assert second != first
    (code / "arch.py").write_text("import torch.nn as nn\nACT = nn.Tanh\n")
    assert entry_digest(entry, tmp_path) != second


def test_a_model_file_that_no_longer_has_its_sha256_is_refused_before_any_job(tmp_path):
    net = tmp_path / "net.pt"
    net.write_bytes(b"x")
    entry = {"name": "m", "source": "torchscript", "path": str(net), "sha256": SHA}
    check_sources(_config([{**entry, "sha256": hashlib.sha256(b"x").hexdigest()}]), tmp_path)
    with pytest.raises(InputError, match=r"models\[0\] \(m\).sha256: .*net.pt has SHA-256 .* The file changed"):
        check_sources(_config([entry]), tmp_path)
