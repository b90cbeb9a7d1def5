"""The fast paths give the plain paths' results: channels_last, torch.compile, batched (tensor)
augmentation against per-image torchvision transforms, and deterministic flip TTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from visionstudy.data.augment import Rotate, shift_batch
from visionstudy.data.loader import BatchLoader
from visionstudy.models import create_model
from visionstudy.training.loop import evaluate


@pytest.mark.parametrize("name, params", [("cnn", {"channels": [8, 16], "batch_norm": True}),
                                          ("resnet", {"blocks": [1, 1], "widths": [8, 16]})])
def test_channels_last_gives_the_same_outputs_and_gradients(name, params):
    torch.manual_seed(0)
    plain = create_model(name, 3, 10, 16, **params)
    fast = create_model(name, 3, 10, 16, **params)
    fast.load_state_dict(plain.state_dict())
    fast = fast.to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 16, 16)
    out_plain = plain(x)
    out_fast = fast(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out_plain, out_fast, atol=1e-5)
    out_plain.square().mean().backward()
    out_fast.square().mean().backward()
    for (n, a), (_, b) in zip(plain.named_parameters(), fast.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), n


@pytest.mark.slow  # 25 s (inductor compiles on a busy machine): scheduled first, never the tail
def test_compiled_model_matches_eager():
    torch.manual_seed(0)
    model = create_model("cnn", 1, 10, 8, channels=[4, 8], hidden=[16]).eval()
    x = torch.randn(4, 1, 8, 8)
    eager = model(x)
    compiled = torch.compile(model)
    assert torch.allclose(compiled(x), eager, atol=1e-5)


def test_bf16_autocast_on_cpu_stays_close_to_fp32():
    """The fast example's `precision: bf16` (AMX on recent CPUs, tensor cores on CUDA): the same
    predictions as fp32 within bf16's precision, and gradients pointing the same way."""
    torch.manual_seed(0)
    model = create_model("cnn", 1, 10, 28, channels=[[8, 8], [16]], hidden=[32], batch_norm=True)
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))

    def logits_and_grad(bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()
        torch.nn.functional.cross_entropy(logits, y).backward()
        return logits.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])

    fp32, g32 = logits_and_grad(False)
    bf16, g16 = logits_and_grad(True)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)  # bf16 really ran
    assert torch.allclose(bf16, fp32, atol=0.05, rtol=0.05)
    assert (bf16.argmax(1) == fp32.argmax(1)).float().mean() > 0.9
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99


def test_batched_shift_equals_per_image_pad_and_crop():
    """`crop`/`translate` move every image by its own offset in one gather: the same pixels as
    torchvision's per-image pad-then-crop at that offset."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 12, 12, generator=g)
    pad = 3
    dy = torch.randint(-pad, pad + 1, (6,), generator=g)
    dx = torch.randint(-pad, pad + 1, (6,), generator=g)
    batched = shift_batch(x, dy, dx, pad)
    for i in range(6):
        padded = TF.pad(x[i], [pad, pad, pad, pad])
        top, left = pad - int(dy[i]), pad - int(dx[i])
        assert torch.equal(batched[i], TF.crop(padded, top, left, 12, 12))


def test_batched_rotation_equals_per_image_rotation():
    """One affine grid for the batch equals rotating each image alone by its own angle."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 1, 16, 16, generator=g)
    op = Rotate(30.0)
    out, _ = op(x, torch.zeros(5), torch.Generator().manual_seed(7))
    theta = op.matrices(5, x, torch.Generator().manual_seed(7))
    for i in range(5):
        grid = torch.nn.functional.affine_grid(theta[i:i + 1], [1, 1, 16, 16], align_corners=False)
        alone = torch.nn.functional.grid_sample(x[i:i + 1], grid, mode="bilinear", padding_mode="zeros",
                                                align_corners=False)
        assert torch.allclose(out[i], alone[0], atol=1e-6)
    angle = float(torch.atan2(theta[0, 1, 0], theta[0, 0, 0]))
    ref = TF.rotate(x[0], np.degrees(angle), interpolation=TF.InterpolationMode.BILINEAR)
    inner = (slice(None), slice(4, 12), slice(4, 12))  # the corners differ in how they fill
    assert torch.allclose(out[0][inner], ref[inner], atol=1e-5)  # torchvision's per-image rotate


def test_flip_tta_is_deterministic_and_averages_both_views():
    torch.manual_seed(0)
    model = create_model("cnn", 1, 4, 8, channels=[4], hidden=[8]).eval()
    images = np.random.default_rng(0).integers(0, 255, (20, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(20) % 4
    loader = BatchLoader(images, labels, 7, mean=(0.5,), std=(0.25,), num_classes=4)
    a = evaluate(model, loader, tta=True, keep_outputs=True)
    b = evaluate(model, loader, tta=True, keep_outputs=True)
    assert np.array_equal(a.logits, b.logits)
    plain = evaluate(model, loader, keep_outputs=True).logits
    x = torch.cat([xb for xb, _ in loader])
    mirrored = model(x.flip(3)).detach().numpy()
    assert np.allclose(a.logits, (plain + mirrored) / 2, atol=1e-5)


def test_a_cpu_evaluates_in_batches_of_at_most_256_with_the_same_outputs():
    from visionstudy.tasks.base import CPU_EVAL_BATCH, task_of
    from visionstudy.validate import validate_run_config

    cfg = validate_run_config({"name": "e", "data": {"dataset": "digits"},
                               "model": {"name": "cnn", "channels": [4], "hidden": [8], "batch_norm": True},
                               "train": {"eval_batch_size": 1024}})
    task = task_of(cfg)
    data = task.prepare(cfg, None)
    _, val, test = task.loaders(data, cfg, torch.device("cpu"), False, 0, 1)
    assert [len(x) for x, _ in test] == [CPU_EVAL_BATCH, len(data.test) - CPU_EVAL_BATCH] == [256, 194]
    assert max(len(x) for x, _ in val) <= CPU_EVAL_BATCH
    torch.manual_seed(0)
    model = task.build_model(cfg, data).eval()
    whole = BatchLoader(data.test.images, data.test.labels, 1024, mean=data.mean, std=data.std,
                        num_classes=10)
    a = evaluate(model, test, tta=True, keep_outputs=True)
    b = evaluate(model, whole, tta=True, keep_outputs=True)
    assert np.allclose(a.logits, b.logits, atol=1e-5) and np.allclose(a.features, b.features, atol=1e-5)
    assert np.array_equal(a.labels, b.labels) and a.accuracy == b.accuracy


@pytest.mark.slow  # ~17 s on a cold inductor cache: scheduled first
def test_a_compiled_run_on_cpu_trains_without_a_cuda_warning(tmp_path):
    """`train.compile: true` end to end (the config key, not torch.compile by hand): the run finishes
    with its metrics, and where CUDA_HOME is set, the CPU run no longer prints torch's "No CUDA
    runtime is found, using CUDA_HOME=..." (inductor's C++ build, nothing a CPU run lacks)."""
    import json
    import os

    from tests.helpers import vs

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndata: {dataset: digits, max_train_samples: 100}\n"
                   "model: {name: mlp, hidden: [8]}\ntrain: {epochs: 1, batch_size: 64, compile: true}\n")
    done = vs("train", cfg, "--out", tmp_path / "run", "--device", "cpu",
              env={**os.environ, "CUDA_HOME": str(tmp_path / "cuda")})
    assert done.returncode == 0, done.stderr
    assert "No CUDA runtime" not in done.stderr, done.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 1
