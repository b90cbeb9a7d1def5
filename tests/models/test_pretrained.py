"""Transfer learning through torchvision: local weights files, freezing, learning-rate groups,
normalisation with the weights' statistics, and hostile or missing weight files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
import torchvision

from visionstudy.config import OptimizerConfig
from visionstudy.errors import ConfigError
from visionstudy.models import create_model
from visionstudy.training.optim import build_optimizer


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A torchvision-format ResNet-18 state dict, as torchvision's own .pth files are."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    path = tmp_path_factory.mktemp("w") / "resnet18-local.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def build(path, **kw):
    return create_model("torchvision", 3, 10, 32, arch="resnet18", weights=str(path), **kw)


def test_local_weights_are_loaded_and_the_head_is_new(weights_file):
    path, state = weights_file
    model = build(path)
    assert torch.equal(model.features.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.features.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.head.out_features == 10 and model.num_features == 512
    mean, std = model.input_stats
    assert mean == pytest.approx([0.485, 0.456, 0.406]) and std == pytest.approx([0.229, 0.224, 0.225])
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_linear_probe_freezes_the_backbone(weights_file):
    path, state = weights_file
    model = build(path, mode="linear-probe")
    model.train()
    assert not model.features.training  # frozen batch-norm statistics
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in model.features.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    opt = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1))
    assert sum(len(g["params"]) for g in opt.param_groups) == 2  # head weight and bias only
    opt.step()
    assert torch.equal(model.features.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.features.bn1.running_mean, state["bn1.running_mean"])


def test_fine_tune_trains_everything_with_a_lower_backbone_lr(weights_file):
    path, _ = weights_file
    model = build(path, backbone_lr_factor=0.1)
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    opt = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.1])


def test_grayscale_upsampling_and_cifar_stem(weights_file):
    path, _ = weights_file
    model = create_model("torchvision", 1, 5, 28, arch="resnet18", weights=str(path), resize=64)
    assert len(model.input_stats[0]) == 1
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 5)
    scratch = create_model("torchvision", 3, 5, 32, arch="resnet18", weights=None, mode="from-scratch",
                           stem="cifar")
    assert scratch.features.conv1.stride == (1, 1) and scratch.input_stats is None


def test_a_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "weights.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(ConfigError, match="refused"):
        build(path)
    torch.save({"conv1.weight": Evil()}, tmp_path / "zipped.pth")
    with pytest.raises(ConfigError, match="refused"):
        build(tmp_path / "zipped.pth")
    assert not marker.exists()


def test_wrong_missing_and_offline_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such file"):
        build(tmp_path / "missing.pth")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ConfigError, match="does not fit resnet18"):
        build(tmp_path / "r34.pth")
    with pytest.raises(ConfigError, match="from-scratch trains new weights"):
        build(tmp_path / "r34.pth", mode="from-scratch")
    with pytest.raises(ConfigError, match="no such weights; use one of DEFAULT, IMAGENET1K_V1"):
        create_model("torchvision", 3, 10, 32, arch="resnet18", weights="IMAGENET9K")
    with pytest.raises(ConfigError, match="not a torchvision classification model"):
        create_model("torchvision", 3, 10, 32, arch="resnet7", weights=None, mode="from-scratch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # an empty cache, and no network here
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    url = r"https://download.pytorch.org/models/resnet18-f37072fd.pth"
    with pytest.raises(ConfigError, match=rf"Offline\? Put the file {url} at .*hub/checkpoints/resnet18-"):
        create_model("torchvision", 3, 10, 32, arch="resnet18", weights="DEFAULT")


def _offline(*args, **kwargs):
    raise OSError("network unreachable")


def test_a_checkpoint_reloads_without_fetching_weights(weights_file):
    path, _ = weights_file
    model = build(path, mode="linear-probe")
    again = create_model("torchvision", 3, 10, 32, skeleton=True, arch="resnet18", weights="DEFAULT")
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model.eval()(x), again.eval()(x))
