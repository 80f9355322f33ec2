"""RobustBench zoo and checkpoint acquisition, offline, on staged weight files.

The staged zoo entry is cifar10/Linf/Wong2020Fast (a PreAct ResNet-18, 11M parameters, the
smallest architecture among the configured zoo models): its real RobustBench architecture
with random weights, saved where RobustBench's ``load_model`` looks for it.
"""

import argparse
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import checked
from own_model import Payload

from fourier_masks.errors import InputError
from fourier_masks.models.acquire import acquire, check_accuracy, save_zoo_model
from fourier_masks.models.checkpoints import acquire_checkpoint, network_kwargs
from fourier_masks.models.files import load_model, read_record, save_model
from fourier_masks.models.networks import ARCHITECTURES, SmallCNN, accuracy, build_network, on_sys_path
from fourier_masks.models.preflight import missing_files
from fourier_masks.models.sources import imports_of
from fourier_masks.models.zoo import acquire_robustbench, build_architecture, check_zoo_name, zoo_files
from fourier_masks.models.zoo_cache import cache_path

DATASET, THREAT, NAME = "cifar10", "Linf", "Wong2020Fast"
SPEC = f"{DATASET}/{THREAT}/{NAME}"
CONFIGS = sorted((Path(__file__).parents[1] / "config").glob("*.yaml"))


#: What a checked config gives a checkpoint entry that sets only its path and arch.
ENTRY = checked({"name": "photos"},
                {"name": "c", "source": "checkpoint", "path": "c.pt", "arch": "small_cnn"})["models"][0]


def own(path, arch, num_classes, input_shape, **keys):
    """``acquire_checkpoint`` with the entry keys a checked config fills in, ``keys`` changed."""
    filled = {key: ENTRY[key] for key in ("mean", "std", "arch_kwargs", "python_path", "trust_pickle")}
    return acquire_checkpoint(path, arch, num_classes, input_shape, **{**filled, **keys})


def _random_network(seed=0):
    torch.manual_seed(seed)
    network = build_architecture(SPEC)
    for module in network.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return network.eval()


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """``(resources_dir, reference network)`` with the zoo file in RobustBench's layout."""
    resources = tmp_path_factory.mktemp("resources")
    network = _random_network()
    path = cache_path(resources, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    # RobustBench strips DataParallel's "module." prefix from checkpoint["state_dict"].
    torch.save({"state_dict": {f"module.{k}": v for k, v in network.state_dict().items()}}, path)
    return resources, network


def test_cache_path_is_robustbench_layout(tmp_path):
    assert cache_path(tmp_path, DATASET, THREAT, NAME) == tmp_path / "robustbench/cifar10/Linf/Wong2020Fast.pt"
    assert zoo_files(tmp_path, DATASET, THREAT, NAME) == [cache_path(tmp_path, DATASET, THREAT, NAME)]
    members = zoo_files(tmp_path, "cifar10", "Linf", "Chen2020Adversarial")
    assert [p.name for p in members] == [f"Chen2020Adversarial.pt_m{i}.pt" for i in range(3)]
    hub = zoo_files(tmp_path, "imagenet", "Linf", "Standard_R50")
    assert hub == [tmp_path / "robustbench/hub/checkpoints/resnet50-0676ba61.pth"]


def test_offline_load_save_reload_and_learn_mask(staged, tmp_path):
    resources, network = staged
    model = acquire_robustbench(NAME, DATASET, THREAT, resources / "robustbench", offline=True, trust_pickle=False)
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = network(images)
        torch.testing.assert_close(model(images), expected)
    save_zoo_model(tmp_path / "model.pt", model, SPEC, [3, 32, 32], 10, channels_last=True)
    reloaded = load_model(tmp_path / "model.pt")
    assert reloaded.input_shape == (3, 32, 32) and reloaded.num_classes == 10
    with torch.no_grad():
        torch.testing.assert_close(reloaded(images), expected)
    record = read_record(tmp_path / "model.pt")
    assert record["arch"] == f"robustbench:{SPEC}" and record["mean"] is None
    assert record["source"] == "robustbench"

    masks_module = pytest.importorskip("fourier_masks.masks.learning",
                                       reason="the lead's masks.py is not importable yet")
    labels = reloaded(images).argmax(1)
    masks, history = masks_module.learn_masks(reloaded, images, labels, seeds=[1], epochs=1, batch_size=8,
                                              device="cpu")
    assert masks.shape == (1, 1, 32, 32)
    assert 0.0 <= masks.min() and masks.max() <= 1.0
    assert len(history) == 1


def test_acquire_and_missing_files(staged, tmp_path):
    resources, network = staged
    config = checked({"name": DATASET}, {"name": "wong", "source": "robustbench", "zoo_name": NAME,
                                         "threat_model": THREAT})
    spec = config["models"][0]
    assert missing_files(config, resources) == []
    assert missing_files(config, tmp_path) == [("wong", cache_path(tmp_path, DATASET, THREAT, NAME))]
    acquire(spec, resources, tmp_path / "wong.pt", offline=True, dataset=config["dataset"], channels_last=True)
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "wong.pt")(images), network(images))


def test_zoo_file_with_python_objects_is_refused_without_trust(tmp_path):
    """A staged zoo file with a valid state dict and a payload: refused, nothing runs, the fix is named."""
    marker = tmp_path / "marker"
    path = cache_path(tmp_path, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": _random_network().state_dict(), "extra": Payload(marker)}, path)
    with pytest.raises(InputError) as caught:
        acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True, where="models[0]",
                            trust_pickle=False)
    assert not marker.exists()
    message = str(caught.value)
    assert str(path) in message and "models[0].trust_pickle: true" in message and "re-save its weights" in message
    torch.load(path, weights_only=False)  # the control: unpickled in full, the payload runs
    assert marker.exists()


def test_zoo_file_with_python_objects_loads_when_trusted(tmp_path):
    """Older zoo files pickle more than tensors; with trust_pickle they are unpickled in full."""
    network = _random_network(seed=1)
    path = cache_path(tmp_path, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": network.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    model = acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True,
                                    trust_pickle=True)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network(images))


def test_wrong_zoo_name_suggests_close_names():
    with pytest.raises(InputError, match=r"models\[1\]\.zoo_name = 'Wong2020Fsat'.*Did you mean: Wong2020Fast"):
        check_zoo_name("Wong2020Fsat", DATASET, THREAT, where="models[1]")
    with pytest.raises(InputError, match="exists in cifar10/Linf"):
        check_zoo_name("Carmon2019Unlabeled", DATASET, "L2", where="models[0]")


def test_wrong_dataset_or_threat_lists_allowed():
    with pytest.raises(InputError, match="cifar10, cifar100, imagenet"):
        check_zoo_name(NAME, "mnist", THREAT)
    with pytest.raises(InputError, match=r"threat_model = 'L1'.*Linf, L2, corruptions"):
        check_zoo_name(NAME, DATASET, "L1")
    with pytest.raises(InputError, match="DATASET/THREAT_MODEL/NAME"):
        build_architecture("cifar10/Wong2020Fast")


def test_offline_missing_file_names_it(tmp_path):
    expected = re.escape(str(cache_path(tmp_path, DATASET, THREAT, NAME)))
    with pytest.raises(InputError, match=f"not staged: missing {expected}.*drive.google.com"):
        acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True, trust_pickle=False)


def test_html_instead_of_weights_is_explained(tmp_path):
    path = cache_path(tmp_path, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    path.write_text("<!DOCTYPE html><html>Google Drive - Virus scan warning</html>")
    with pytest.raises(InputError, match="Wong2020Fast.pt is a web page"):
        acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True, trust_pickle=False)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    network = SmallCNN(1, 5)
    path = tmp_path / "ckpt.pth"
    weights = {f"module.{k}": v for k, v in network.state_dict().items()}
    torch.save({"epoch": torch.tensor(3), "model": weights}, path)
    mean, std = [0.449], [0.226]
    model, kwargs = own(path, "small_cnn", 5, [1, 16, 16], mean=mean, std=std)
    assert kwargs == {"in_channels": 1, "num_classes": 5}
    images = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network.eval()((images - 0.449) / 0.226))
    config = checked({"name": "photos", "channels": 1, "image_size": 16, "n_classes": 5},
                     {"name": "mine", "source": "checkpoint", "path": str(path), "arch": "small_cnn", "mean": mean,
                      "std": std})
    spec, dataset = config["models"][0], config["dataset"]
    assert missing_files(config, tmp_path) == []
    acquire(spec, tmp_path, tmp_path / "model.pt", offline=True, dataset=dataset, channels_last=True)
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "model.pt")(images), model(images))


def test_checkpoint_wrapper_prefixes_and_nesting_keys(tmp_path):
    """DataParallel inside torch.compile (and the reverse), under the keys training scripts use."""
    network = SmallCNN(3, 4).eval()
    images = torch.rand(2, 3, 16, 16)
    for i, (prefix, key) in enumerate([("_orig_mod.module.", "model_state_dict"), ("module._orig_mod.", "network"),
                                       ("", "state_dict")]):
        path = tmp_path / f"c{i}.pt"
        torch.save({key: {f"{prefix}{k}": v for k, v in network.state_dict().items()}, "epoch": 9}, path)
        model, _ = own(path, "small_cnn", 4, [3, 16, 16])
        with torch.no_grad():
            torch.testing.assert_close(model(images), network(images))


def test_an_old_batchnorm_checkpoint_loads_as_pytorch_loads_it_and_other_missing_keys_do_not(tmp_path):
    """Checkpoints saved before BatchNorm had num_batches_tracked: PyTorch fills the counters in (issue 21)."""
    network = SmallCNN(3, 4).eval()
    old = {f"module.{k}": v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(old) < len(network.state_dict()), "SmallCNN must have BatchNorm for this test to mean anything"
    torch.save(old, tmp_path / "old.pt")
    model, _ = own(tmp_path / "old.pt", "small_cnn", 4, [3, 16, 16])
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network(images))
    weight = next(k for k in old if k.endswith("running_mean"))
    torch.save({k: v for k, v in old.items() if k != weight}, tmp_path / "missing.pt")
    with pytest.raises(InputError, match=r"missing keys \['" + weight.removeprefix("module.")):
        own(tmp_path / "missing.pt", "small_cnn", 4, [3, 16, 16])


def test_stored_normalisation_is_used_and_a_different_one_refused(tiny_model, tiny_data, tmp_path):
    """The pipeline's own model file as a checkpoint: its stored mean/std, not none (issue 11)."""
    path = tmp_path / "model.pt"
    save_model(path, tiny_model, arch="small_cnn", input_shape=[1, 16, 16], num_classes=3, source="train")
    _, _, test_x, test_y = tiny_data
    model, _ = own(path, "small_cnn", 3, [1, 16, 16])
    assert model.mean.flatten().tolist() == [0.5] and model.std.flatten().tolist() == [0.25]
    assert accuracy(model, test_x, test_y, batch_size=64) == accuracy(tiny_model, test_x, test_y, batch_size=64) > 0.5
    same, _ = own(path, "small_cnn", 3, [1, 16, 16], mean=[0.5], std=[0.25])
    torch.testing.assert_close(same(test_x), model(test_x))
    with pytest.raises(InputError, match=r"mean = \[0.449\], std = \[0.226\] differ from the normalisation stored"):
        own(path, "small_cnn", 3, [1, 16, 16], mean=[0.449], std=[0.226], where="models[1]")


def test_checkpoint_torchvision_arch(tmp_path):
    network = build_network("torchvision:resnet18", num_classes=3)
    torch.save(network.state_dict(), tmp_path / "r18.pt")
    model, kwargs = own(tmp_path / "r18.pt", "torchvision:resnet18", 3, [3, 32, 32])
    save_model(tmp_path / "m.pt", model, arch="torchvision:resnet18", input_shape=[3, 32, 32],
                      num_classes=3, source="checkpoint", arch_kwargs=kwargs)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "m.pt")(images), model(images))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(InputError, match=r"models\[2\]\.path = .*does not exist"):
        own(tmp_path / "absent.pt", "small_cnn", 5, [1, 16, 16], where="models[2]")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="bad.pt cannot be read"):
        own(tmp_path / "bad.pt", "small_cnn", 5, [1, 16, 16])
    torch.save(SmallCNN(1, 5).state_dict(), tmp_path / "cnn.pt")
    with pytest.raises(InputError, match=r"cnn.pt does not fit.*shape mismatches \['classifier.weight"):
        own(tmp_path / "cnn.pt", "small_cnn", 7, [1, 16, 16])
    with pytest.raises(InputError, match=r"missing keys \['stem.0.weight'.*unexpected keys \['features"):
        own(tmp_path / "cnn.pt", "resnet8", 5, [1, 16, 16])
    torch.save({"optimizer": {"lr": torch.tensor(0.1)}, "epoch": 1}, tmp_path / "opt.pt")
    with pytest.raises(InputError, match="nor under any of the keys state_dict, model_state_dict, model, net"):
        own(tmp_path / "opt.pt", "small_cnn", 5, [1, 16, 16])
    with pytest.raises(InputError, match="3 input channels"):
        network_kwargs("torchvision:resnet18", 1, 5)
    config = checked({"name": "photos"}, {"name": "c", "source": "checkpoint", "path": str(tmp_path / "absent.pt"),
                                          "arch": "small_cnn"})
    assert missing_files(config, tmp_path) == [
        ("c", tmp_path / "absent.pt")]


PACKAGE = """
from pathlib import Path
from torch import nn
Path(__file__).with_name("imported").write_text("module code ran")

class Net(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes))

    def forward(self, x):
        return self.body(x)

def build(classes=4):
    return Net(classes)
"""


@pytest.fixture
def user_package(tmp_path):
    """A package ``userpkg`` (not importable from sys.path) whose import leaves a marker file."""
    code = tmp_path / "code"
    (code / "userpkg").mkdir(parents=True)
    (code / "userpkg" / "__init__.py").write_text("")
    (code / "userpkg" / "nets.py").write_text(PACKAGE)
    yield code, code / "userpkg" / "imported"
    for name in ("userpkg.nets", "userpkg"):
        sys.modules.pop(name, None)


def test_pickled_module_is_refused_unless_trusted(user_package, tmp_path):
    """A torch.save of a whole module pickles its class: unpickling imports and runs its code."""
    code, marker = user_package
    with on_sys_path([code]):
        network = build_network("import:userpkg.nets:build", python_path=[code]).eval()
    torch.save(network, tmp_path / "whole.pt")
    marker.unlink()
    for name in ("userpkg.nets", "userpkg"):
        sys.modules.pop(name, None)
    with pytest.raises(InputError, match=r"models\[0\].trust_pickle: true, or re-save its weights alone"):
        own(tmp_path / "whole.pt", "import:userpkg.nets:build", None, [3, 8, 8],
                               where="models[0]", python_path=[code])
    assert not marker.exists(), "the file's code ran although trust_pickle was not given"
    model, kwargs = own(tmp_path / "whole.pt", "import:userpkg.nets:build", None, [3, 8, 8],
                                           python_path=[code], trust_pickle=True)
    assert marker.exists() and kwargs == {}
    images = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network(images))
    assert str(code.resolve()) not in sys.path, "python_path stays on sys.path after the import"


def test_import_architecture_round_trip_and_trust(user_package, tmp_path):
    code, marker = user_package
    network = build_network("import:userpkg.nets:build", python_path=[code], classes=5).eval()
    torch.save({"state_dict": network.state_dict()}, tmp_path / "w.pt")
    config = checked({"name": "photos", "channels": 3, "image_size": 8, "n_classes": 5},
                     {"name": "mine", "source": "checkpoint", "path": str(tmp_path / "w.pt"),
                      "arch": "import:userpkg.nets:build", "arch_kwargs": {"classes": 5}, "python_path": [str(code)],
                      "trust_pickle": False})
    spec, dataset = config["models"][0], config["dataset"]
    acquire(spec, tmp_path, tmp_path / "model.pt", offline=True, dataset=dataset, channels_last=True)
    record = read_record(tmp_path / "model.pt")
    assert record["arch_kwargs"] == {"classes": 5} and record["python_path"] == [str(code.resolve())]
    for name in ("userpkg.nets", "userpkg"):
        sys.modules.pop(name, None)
    marker.unlink()
    with pytest.raises(InputError, match="runs only on request"):
        load_model(tmp_path / "model.pt")
    assert not marker.exists(), "a model file named code that ran without the caller's consent"
    imports = imports_of([spec])
    assert imports == {"import:userpkg.nets:build": [str(code)]}
    images = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "model.pt", imports=imports)(images), network(images))
    with pytest.raises(InputError, match=r"the network has 5 outputs but the dataset has 4 classes"):
        acquire(spec, tmp_path, tmp_path / "m4.pt", offline=True, dataset={**dataset, "n_classes": 4},
                channels_last=True)
    with pytest.raises(InputError, match=r"has no attribute 'buidl'"):
        build_network("import:userpkg.nets:buidl", python_path=[code])
    with pytest.raises(InputError, match=r"module 'nopkg.nets' cannot be imported.*No module named 'nopkg'"):
        build_network("import:nopkg.nets:build", python_path=[code])
    with pytest.raises(InputError, match=r"python_path folders \['absent'\] do not exist"):
        build_network("import:userpkg.nets:build", python_path=["absent"])


def test_model_file_sha256_is_checked(tmp_path):
    network = SmallCNN(1, 3)
    torch.save(network.state_dict(), tmp_path / "w.pt")
    config = checked({"name": "photos", "channels": 1, "image_size": 16, "n_classes": 3},
                     {"name": "m", "source": "checkpoint", "path": str(tmp_path / "w.pt"), "arch": "small_cnn",
                      "sha256": "0" * 64})
    spec, dataset = config["models"][0], config["dataset"]
    expected = r"models\[m\].sha256: .*w.pt has SHA-256 [0-9a-f]{64}, but the entry expects 0{64}"
    with pytest.raises(InputError, match=expected):
        acquire(spec, tmp_path, tmp_path / "model.pt", offline=True, dataset=dataset, channels_last=True)
    assert not (tmp_path / "model.pt").exists()


def test_accuracy_check_stops_at_chance_and_far_from_expected(tiny_model, tiny_data):
    _, _, images, labels = tiny_data
    names = ["a", "b", "c"]
    options = {"where": "models[0]", "chance_check": True, "expected_accuracy": None, "accuracy_tolerance": 0.03,
               "batch_size": 64}
    measured = check_accuracy(tiny_model, images, labels, names, **options)
    assert measured == accuracy(tiny_model, images, labels, batch_size=64) > 0.5
    assert check_accuracy(tiny_model, images, labels, names, **{**options, "expected_accuracy": measured - 0.02})
    with pytest.raises(InputError, match=rf"clean accuracy {measured:.3f} .* more than accuracy_tolerance = 0.03 "
                                         r"away from expected_accuracy = 0.5\. Usual causes: mean/std"):
        check_accuracy(tiny_model, images, labels, names, **{**options, "expected_accuracy": 0.5})
    shuffled = (labels + 1) % 3  # a wrong class order
    with pytest.raises(InputError, match=r"at or below 1.5 x chance \(0.333\).*class order \(dataset.classes\)"
                                         r".*models\[0\].chance_check: false"):
        check_accuracy(tiny_model, images, shuffled, names, **options)
    assert check_accuracy(tiny_model, images, shuffled, names, **{**options, "chance_check": False}) < 0.5
    with pytest.raises(InputError, match=r"the network has 3 outputs but the dataset has 4 classes"):
        check_accuracy(tiny_model, images, labels, names + ["d"], **options)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_zoo_names_exist(path):
    """Every robustbench model in config/*.yaml names a real zoo entry; model names are safe."""
    config = yaml.safe_load(path.read_text())
    names = [m["name"] for m in config["models"]]
    assert len(set(names)) == len(names)
    for i, spec in enumerate(config["models"]):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", spec["name"]), spec["name"]
        if spec["source"] == "robustbench":
            check_zoo_name(spec["zoo_name"], config["dataset"]["name"], spec["threat_model"], f"models[{i}]")
        if spec["source"] == "train":
            assert spec["arch"] in ARCHITECTURES, spec["arch"]
    assert config["reference_model"] in names


def test_zoo_digest_follows_the_staged_files_contents(tmp_path, monkeypatch):
    import time

    from fourier_masks.models.zoo_cache import AS_FETCHED, zoo_digest

    monkeypatch.chdir(tmp_path)  # the digest cache lives in the working directory's .snakemake/
    assert zoo_digest(tmp_path, "cifar10", "Linf", "Standard") == AS_FETCHED
    (path,) = zoo_files(tmp_path, "cifar10", "Linf", "Standard")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights 1")
    first = zoo_digest(tmp_path, "cifar10", "Linf", "Standard")
    time.sleep(0.05)  # file times are kept to a few milliseconds
    path.write_bytes(b"weights 2")
    assert zoo_digest(tmp_path, "cifar10", "Linf", "Standard") not in (first, AS_FETCHED)


def test_a_download_leaves_the_zoo_digest_as_it_was(tmp_path, monkeypatch):
    """Before the download and after it the param is the same (a finished run stays finished); a file
    replaced afterwards changes it."""
    from fourier_masks.models.zoo import import_robustbench
    from fourier_masks.models.zoo_cache import AS_FETCHED, zoo_digest

    monkeypatch.chdir(tmp_path)
    network = _random_network(seed=2)
    path = cache_path(tmp_path, DATASET, THREAT, NAME)

    def download_and_load(model_name, model_dir, dataset, threat_model):  # what robustbench does, offline
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": network.state_dict()}, path)
        return network

    monkeypatch.setattr(import_robustbench().utils, "load_model", download_and_load)
    before = zoo_digest(tmp_path, DATASET, THREAT, NAME)
    acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=False, trust_pickle=False)
    assert path.is_file() and before == zoo_digest(tmp_path, DATASET, THREAT, NAME) == AS_FETCHED
    torch.save({"state_dict": _random_network(seed=3).state_dict()}, path)
    assert zoo_digest(tmp_path, DATASET, THREAT, NAME) != AS_FETCHED

