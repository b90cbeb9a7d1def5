"""Contract tests over the model registry, and the seed reports' exact parameter counts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

from visionstudy.errors import ConfigError
from visionstudy.models import MODELS, Params, count_flops, count_params, create_model, list_models
from visionstudy.models.base import register_model


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28, 32])
def test_forward_backward_contract(name, channels, size):
    params = {"weights": None, "mode": "from-scratch", "arch": "resnet18"} if name == "torchvision" else {}
    model = create_model(name, channels, 7, size, **params)
    x = torch.randn(3, channels, size, size)
    feats = model.forward_features(x)
    assert feats.shape == (3, model.num_features)
    logits = model.forward_head(feats)
    assert logits.shape == (3, 7)
    model(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert count_params(model) > 0 and count_flops(model, (channels, size, size)) > 0


SEED_000 = {  # seed 000, Table 4: CIFAR-100 first 20 classes, 32x32 RGB
    "baseline": ({"channels": [32, 64], "hidden": [128]}, 546_388),
    "dropout": ({"channels": [32, 64], "hidden": [128], "dropout": 0.5}, 546_388),
    "batchnorm": ({"channels": [32, 64], "hidden": [128], "batch_norm": True}, 546_836),
    "depth 64/128 + aug": ({"channels": [64, 128], "hidden": [128], "batch_norm": True}, 1_127_572),
    "advanced": ({"channels": [[64, 64], [128, 128], [256, 256]], "hidden": [512, 256],
                  "batch_norm": True, "conv_dropout": [0.25, 0.25, 0.25], "dropout": 0.5},
                 3_382_868),
}


@pytest.mark.parametrize("variant", SEED_000)
def test_seed_000_cnn_parameter_counts(variant):
    params, expected = SEED_000[variant]
    assert count_params(create_model("cnn", 3, 20, 32, **params)) == expected


def test_seed_000_resnet_parameter_count():
    model = create_model("resnet", 3, 20, 32, blocks=[3, 3, 3], widths=[64, 128, 256])
    assert count_params(model) == 4_330_324


def test_flops_of_a_linear_model_are_exact():
    model = create_model("mlp", 1, 10, 8, hidden=[32])
    assert count_flops(model, (1, 8, 8)) == 2 * (64 * 32 + 32 * 10)


def test_impossible_shapes_fail_at_build_time():
    with pytest.raises(ConfigError, match="shrinks the 8x8 input to 0x0"):
        create_model("cnn", 1, 10, 8, channels=[8, 8, 8, 8])
    with pytest.raises(ConfigError, match="model.kernel_size"):
        create_model("cnn", 1, 10, 28, channels=[8, 8], kernel_size=[3, 3, 3])
    with pytest.raises(ConfigError, match="blocks has 2 stages but widths has 3"):
        create_model("resnet", 3, 10, 32, blocks=[1, 1], widths=[8, 16, 32])


def test_bad_parameters_name_field_value_and_choices():
    with pytest.raises(ConfigError, match="model.activation.*'swish'"):
        create_model("mlp", 1, 10, 8, activation="swish")
    with pytest.raises(ConfigError, match="model.widths: unknown key"):
        create_model("cnn", 1, 10, 8, widths=[1])
    with pytest.raises(ConfigError, match="unknown model 'vgg'.*resnet"):
        create_model("vgg", 1, 10, 8)
    with pytest.raises(ConfigError, match=r"'ResNet50' is a torchvision architecture.*arch: resnet50") as err:
        create_model("ResNet50", 1, 10, 8)
    assert "did you mean" not in str(err.value)  # not also "did you mean resnet20?"
    with pytest.raises(ConfigError, match=r"unknown model 'resnet-9'; choose one of: .*; did you mean "
                                          r"resnet9\?"):
        create_model("resnet-9", 1, 10, 8)


def test_registry_raises_on_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn", Params)(lambda *a: None)
    assert "cnn" in MODELS


def test_kernels_per_layer_express_seed_003():
    model = create_model("cnn", 1, 47, 28, channels=[32, 64, 128], kernel_size=[5, 5, 3])
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [5, 5, 3]


def test_resnets_without_batch_norm_have_biased_convs_and_no_norm_layers():
    for name in ("resnet", "resnet20", "resnet9"):
        plain = create_model(name, 3, 10, 32, batch_norm=False)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()), name
        convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(c.bias is not None for c in convs), name
        normed = create_model(name, 3, 10, 32)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in normed.modules()), name
        assert plain(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("spec, cls, attr, value", [
    ({"name": "leaky_relu", "negative_slope": 0.1}, torch.nn.LeakyReLU, "negative_slope", 0.1),
    ("leaky_relu", torch.nn.LeakyReLU, "negative_slope", 0.01),
    ({"name": "elu", "alpha": 0.5}, torch.nn.ELU, "alpha", 0.5),
    ({"name": "gelu", "approximate": "tanh"}, torch.nn.GELU, "approximate", "tanh"),
])
def test_activations_take_their_parameters_in_every_family(spec, cls, attr, value):
    for name, params in (("cnn", {"channels": [4]}), ("mlp", {"hidden": [8]}),
                         ("resnet", {"blocks": [1], "widths": [4]}), ("resnet9", {})):
        net = create_model(name, 1, 10, 16, activation=spec, **params)
        acts = [m for m in net.modules() if isinstance(m, cls)]
        assert acts and all(getattr(a, attr) == value for a in acts), name
    sets = create_model("deepsets", 3, 1, (10, 3), activation=spec)
    assert any(isinstance(m, cls) and getattr(m, attr) == value for m in sets.modules())


def test_l1_and_l2_penalise_the_weights_of_every_model_family():
    from visionstudy.training.optim import penalised_weights, weight_penalty

    nets = {name: create_model(name, 3, 10, 32) for name in list_models() if name != "torchvision"}
    nets["torchvision"] = create_model("torchvision", 3, 10, 32, weights=None, arch="resnet18",
                                       mode="from-scratch")
    nets["deepsets"] = create_model("deepsets", 3, 1, (10, 3))
    for name, net in nets.items():
        weights = penalised_weights(net)
        assert weights and all(w.ndim > 1 for w in weights), name
        l1, l2 = weight_penalty(weights, 1e-3, 0.0), weight_penalty(weights, 0.0, 1e-3)
        assert float(l1.detach()) > 0 and float(l2.detach()) > 0, name
        assert float(l1) == pytest.approx(1e-3 * sum(float(w.abs().sum()) for w in weights), rel=1e-4)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "elu", "tanh", "gelu"])
def test_a_cnn_trains_with_pooling_before_the_activation_and_the_same_outputs_and_gradients(act):
    """Training swaps each non-decreasing activation behind the max pooling that follows it (GELU,
    which dips, stays in place); evaluation keeps the written order, which Grad-CAM hooks."""
    from visionstudy.models.cnn import pool_first

    torch.manual_seed(0)
    model = create_model("cnn", 3, 5, 16, channels=[[4, 4], [8]], hidden=[6], batch_norm=True,
                         dropout=0.0, activation=act)
    order = [type(m).__name__ for m in model.train_order]
    a = type(model.features[2]).__name__
    stage_end = ["BatchNorm2d", "MaxPool2d", a] if act != "gelu" else ["BatchNorm2d", a, "MaxPool2d"]
    assert order[4:7] == stage_end and order[8:11] == stage_end
    written = torch.nn.Sequential(*model.features)  # the written order, the same modules
    x = torch.randn(6, 3, 16, 16)
    fast = model.forward_head(model.forward_features(x))
    fast.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = model.forward_head(written(x))
    plain.square().sum().backward()
    assert torch.equal(fast, plain)  # max and a non-decreasing activation commute exactly
    for g, p in zip(grads, model.parameters(), strict=True):
        assert torch.equal(g, p.grad)
    model.eval()
    calls = []
    hook = model.features[2].register_forward_hook(lambda m, i, o: calls.append(o.shape))
    model(x)
    hook.remove()
    assert calls == [(6, 4, 16, 16)]  # eval: the first activation sees the full-size map
    assert len(pool_first(list(model.features))) == len(model.features)


@pytest.mark.parametrize(("name", "params"), [
    ("cnn", {"channels": [[4, 4], [8]], "hidden": [6], "batch_norm": True, "dropout": 0.2}),
    ("cnn", {"channels": [4, 8], "hidden": [6], "batch_norm": False, "activation": "elu"}),
    ("mlp", {"hidden": [12, 6], "batch_norm": True}),
    ("resnet", {"blocks": [1, 1], "widths": [4, 8], "stem": "conv7"}),
])
def test_evaluation_folds_batch_norms_and_pools_first_with_the_same_outputs(name, params):
    """`for_inference`, which evaluation uses: a copy with each batch norm merged into the layer
    before it and pooling before the activation; the same logits and features, the model untouched."""
    from torch import nn

    from visionstudy.training.loop import evaluate

    torch.manual_seed(0)
    model = create_model(name, 3, 5, 16, **params).to(memory_format=torch.channels_last)
    model.train()
    for _ in range(3):  # batch statistics that differ from a batch norm's initial identity
        model(torch.randn(8, 3, 16, 16) * 3 + 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    fast = model.for_inference()
    assert fast is not model and not fast.training
    kinds = [type(m) for m in fast.features]
    assert nn.BatchNorm2d not in kinds and nn.BatchNorm1d not in kinds
    for conv in (m for m in fast.features if isinstance(m, nn.Conv2d)):
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(7, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fast.forward_features(x), model.forward_features(x), rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    loader = [(x, torch.arange(7) % 5)]
    ours = evaluate(model, loader, tta=True, keep_outputs=True)
    with torch.no_grad():
        plain = ((model(x) + model(x.flip(3))) / 2).numpy()
    np.testing.assert_allclose(ours.logits, plain, rtol=1e-4, atol=1e-5)


def test_a_model_with_nothing_to_fold_or_a_compiled_one_evaluates_itself():
    plain = create_model("cnn", 1, 3, 8, channels=[4], hidden=[], activation="gelu").eval()
    assert plain.for_inference() is plain  # no batch norm, GELU stays before the pooling
    mlp = create_model("mlp", 1, 3, 8, hidden=[4]).eval()
    assert mlp.for_inference() is mlp
    compiled = create_model("cnn", 1, 3, 8, channels=[4], hidden=[4], batch_norm=True).eval()
    compiled.compile()  # its compiled call would not follow a copy: the model evaluates as it is
    assert compiled.for_inference() is compiled


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_counting_flops_leaves_triton_unimported_and_importable():
    """torch's flop counter imports triton (CUDA wheels install it): 90 ms of every run's start
    before its first step, for kernels an eager model has none of. Counting leaves it unimported,
    says nothing (torch warns when a CUDA build lacks triton), and triton stays importable."""
    code = ("import sys, torch; from visionstudy.models import count_flops; "
            "from visionstudy.training.devices import defer_dynamo; defer_dynamo(); "  # as a run does
            "m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)); "
            "print(count_flops(m, (1, 8, 8)), 'triton' in sys.modules); "
            "import triton.runtime.jit; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(2 * (64 * 32 + 32 * 10)), "False", "ok"]
    assert "triton" not in done.stderr
