"""RobustBench zoo and checkpoint acquisition, offline, on staged weight files.

The staged zoo entry is cifar10/Linf/Wong2020Fast (a PreAct ResNet-18, 11M parameters, the
smallest architecture among the configured zoo models): its real RobustBench architecture
with random weights, saved where RobustBench's ``load_model`` looks for it.
"""

import argparse
import re
from pathlib import Path

import pytest
import torch
import yaml

from fourier_masks import models, zoo
from fourier_masks.errors import InputError

DATASET, THREAT, NAME = "cifar10", "Linf", "Wong2020Fast"
SPEC = f"{DATASET}/{THREAT}/{NAME}"
CONFIGS = sorted((Path(__file__).parents[1] / "config").glob("*.yaml"))


def _random_network(seed=0):
    torch.manual_seed(seed)
    network = zoo.build_architecture(SPEC)
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
    path = zoo.cache_path(resources, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    # RobustBench strips DataParallel's "module." prefix from checkpoint["state_dict"].
    torch.save({"state_dict": {f"module.{k}": v for k, v in network.state_dict().items()}}, path)
    return resources, network


def test_cache_path_is_robustbench_layout(tmp_path):
    assert zoo.cache_path(tmp_path, DATASET, THREAT, NAME) == tmp_path / "robustbench/cifar10/Linf/Wong2020Fast.pt"
    assert zoo.zoo_files(tmp_path, DATASET, THREAT, NAME) == [zoo.cache_path(tmp_path, DATASET, THREAT, NAME)]
    members = zoo.zoo_files(tmp_path, "cifar10", "Linf", "Chen2020Adversarial")
    assert [p.name for p in members] == [f"Chen2020Adversarial.pt_m{i}.pt" for i in range(3)]
    hub = zoo.zoo_files(tmp_path, "imagenet", "Linf", "Standard_R50")
    assert hub == [tmp_path / "robustbench/hub/checkpoints/resnet50-0676ba61.pth"]


def test_offline_load_save_reload_and_learn_mask(staged, tmp_path):
    resources, network = staged
    model = zoo.acquire_robustbench(NAME, DATASET, THREAT, resources / "robustbench", offline=True)
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = network(images)
        torch.testing.assert_close(model(images), expected)
    zoo.save_zoo_model(tmp_path / "model.pt", model, SPEC, [3, 32, 32], 10)
    reloaded = models.load_model(tmp_path / "model.pt")
    assert reloaded.input_shape == (3, 32, 32) and reloaded.num_classes == 10
    with torch.no_grad():
        torch.testing.assert_close(reloaded(images), expected)
    record = models.read_record(tmp_path / "model.pt")
    assert record["arch"] == f"robustbench:{SPEC}" and record["mean"] is None
    assert record["source"] == "robustbench"

    masks_module = pytest.importorskip("fourier_masks.masks", reason="the lead's masks.py is not importable yet")
    labels = reloaded(images).argmax(1)
    masks, history = masks_module.learn_masks(reloaded, images, labels, seeds=[1], epochs=1, batch_size=8,
                                              device="cpu")
    assert masks.shape == (1, 1, 32, 32)
    assert 0.0 <= masks.min() and masks.max() <= 1.0
    assert len(history) == 1


def test_acquire_and_missing_files(staged, tmp_path):
    resources, network = staged
    spec = {"name": "wong", "source": "robustbench", "zoo_name": NAME, "threat_model": THREAT}
    config = {"dataset": {"name": DATASET}, "models": [spec]}
    assert zoo.missing_files(config, resources) == []
    assert zoo.missing_files(config, tmp_path) == [("wong", zoo.cache_path(tmp_path, DATASET, THREAT, NAME))]
    zoo.acquire(spec, resources, tmp_path / "wong.pt", offline=True, dataset=config["dataset"])
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(models.load_model(tmp_path / "wong.pt")(images), network(images))


def test_zoo_file_with_python_objects_loads(tmp_path):
    """Older zoo files pickle more than tensors; torch >= 2.6 refuses them by default."""
    network = _random_network(seed=1)
    path = zoo.cache_path(tmp_path, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": network.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.warns(UserWarning, match="holds Python objects besides tensors"):
        model = zoo.acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network(images))


def test_wrong_zoo_name_suggests_close_names():
    with pytest.raises(InputError, match=r"models\[1\]\.zoo_name = 'Wong2020Fsat'.*Did you mean: Wong2020Fast"):
        zoo.check_zoo_name("Wong2020Fsat", DATASET, THREAT, where="models[1]")
    with pytest.raises(InputError, match="exists in cifar10/Linf"):
        zoo.check_zoo_name("Carmon2019Unlabeled", DATASET, "L2", where="models[0]")


def test_wrong_dataset_or_threat_lists_allowed():
    with pytest.raises(InputError, match="cifar10, cifar100, imagenet"):
        zoo.check_zoo_name(NAME, "mnist", THREAT)
    with pytest.raises(InputError, match=r"threat_model = 'L1'.*Linf, L2, corruptions"):
        zoo.check_zoo_name(NAME, DATASET, "L1")
    with pytest.raises(InputError, match="DATASET/THREAT_MODEL/NAME"):
        zoo.build_architecture("cifar10/Wong2020Fast")


def test_offline_missing_file_names_it(tmp_path):
    expected = re.escape(str(zoo.cache_path(tmp_path, DATASET, THREAT, NAME)))
    with pytest.raises(InputError, match=f"not staged: missing {expected}.*drive.google.com"):
        zoo.acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True)


def test_html_instead_of_weights_is_explained(tmp_path):
    path = zoo.cache_path(tmp_path, DATASET, THREAT, NAME)
    path.parent.mkdir(parents=True)
    path.write_text("<!DOCTYPE html><html>Google Drive - Virus scan warning</html>")
    with pytest.raises(InputError, match="Wong2020Fast.pt is a web page"):
        zoo.acquire_robustbench(NAME, DATASET, THREAT, tmp_path / "robustbench", offline=True)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    network = models.SmallCNN(1, 5)
    path = tmp_path / "ckpt.pth"
    weights = {f"module.{k}": v for k, v in network.state_dict().items()}
    torch.save({"epoch": torch.tensor(3), "model": weights}, path)
    mean, std = [0.449], [0.226]
    model = zoo.acquire_checkpoint(path, "small_cnn", 5, [1, 16, 16], mean, std)
    images = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(images), network.eval()((images - 0.449) / 0.226))
    spec = {"name": "mine", "source": "checkpoint", "path": str(path), "arch": "small_cnn",
            "mean": mean, "std": std}
    dataset = {"name": "photos", "channels": 1, "image_size": 16, "n_classes": 5}
    assert zoo.missing_files({"dataset": dataset, "models": [spec]}, tmp_path) == []
    zoo.acquire(spec, tmp_path, tmp_path / "model.pt", offline=True, dataset=dataset)
    with torch.no_grad():
        torch.testing.assert_close(models.load_model(tmp_path / "model.pt")(images), model(images))


def test_checkpoint_torchvision_arch(tmp_path):
    network = models.build_network("torchvision:resnet18", num_classes=3)
    torch.save(network.state_dict(), tmp_path / "r18.pt")
    model = zoo.acquire_checkpoint(tmp_path / "r18.pt", "torchvision:resnet18", 3, [3, 32, 32])
    models.save_model(tmp_path / "m.pt", model, arch="torchvision:resnet18", input_shape=[3, 32, 32],
                      num_classes=3, source="checkpoint",
                      arch_kwargs=zoo.network_kwargs("torchvision:resnet18", 3, 3))
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(models.load_model(tmp_path / "m.pt")(images), model(images))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(InputError, match=r"models\[2\]\.path = .*does not exist"):
        zoo.acquire_checkpoint(tmp_path / "absent.pt", "small_cnn", 5, [1, 16, 16], where="models[2]")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="bad.pt cannot be read"):
        zoo.acquire_checkpoint(tmp_path / "bad.pt", "small_cnn", 5, [1, 16, 16])
    torch.save(models.SmallCNN(1, 5).state_dict(), tmp_path / "cnn.pt")
    with pytest.raises(InputError, match=r"cnn.pt does not fit.*shape mismatches \['classifier.weight"):
        zoo.acquire_checkpoint(tmp_path / "cnn.pt", "small_cnn", 7, [1, 16, 16])
    with pytest.raises(InputError, match=r"missing keys \['stem.0.weight'.*unexpected keys \['features"):
        zoo.acquire_checkpoint(tmp_path / "cnn.pt", "resnet8", 5, [1, 16, 16])
    torch.save({"optimizer": {"lr": torch.tensor(0.1)}, "epoch": 1}, tmp_path / "opt.pt")
    with pytest.raises(InputError, match="nor under any of the keys state_dict, model, net"):
        zoo.acquire_checkpoint(tmp_path / "opt.pt", "small_cnn", 5, [1, 16, 16])
    with pytest.raises(InputError, match="3 input channels"):
        zoo.network_kwargs("torchvision:resnet18", 1, 5)
    spec = {"name": "c", "source": "checkpoint", "path": str(tmp_path / "absent.pt"), "arch": "small_cnn"}
    assert zoo.missing_files({"dataset": {"name": "photos"}, "models": [spec]}, tmp_path) == [
        ("c", tmp_path / "absent.pt")]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_zoo_names_exist(path):
    """Every robustbench model in config/*.yaml names a real zoo entry; model names are safe."""
    config = yaml.safe_load(path.read_text())
    names = [m["name"] for m in config["models"]]
    assert len(set(names)) == len(names)
    for i, spec in enumerate(config["models"]):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", spec["name"]), spec["name"]
        if spec["source"] == "robustbench":
            zoo.check_zoo_name(spec["zoo_name"], config["dataset"]["name"], spec["threat_model"], f"models[{i}]")
        if spec["source"] == "train":
            assert spec["arch"] in models.ARCHITECTURES, spec["arch"]
    assert config["reference_model"] in names
