"""Training benchmarks for the engine (not run in CI). One JSON line per result.

    .venv/bin/python bench/train_speed.py quick          # digits: accuracy and wall time
    .venv/bin/python bench/train_speed.py fashion        # examples/fashion-mnist-fast.yaml: accuracy, wall
    .venv/bin/python bench/train_speed.py throughput     # training images/s of the example configs
    .venv/bin/python bench/train_speed.py efficiency     # FLOP/s vs the matmul peak, time outside the model
    .venv/bin/python bench/train_speed.py study          # recipe:quick with 1 and 2 workers
    .venv/bin/python bench/train_speed.py pool-order     # the fast CNN trained pool-first vs as written
    .venv/bin/python bench/train_speed.py eval-batch     # its test set with flip TTA: batches of 1,024 vs 256
    .venv/bin/python bench/train_speed.py eval-fold      # the same, as written vs folded (for_inference)
    .venv/bin/python bench/train_speed.py optimizer      # ms per optimizer step: fused vs multi-tensor

Each prints one JSON line per result and writes the Markdown table bench/results/<benchmark>.md.
Time to accuracy against peer scripts is bench/race.py.

Fashion-MNIST is read from VISIONSTUDY_DATA_DIR (default /usr/share/datasets, Debian's mirror).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def train_config(path: Path) -> dict:
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import load_config

    cfg = load_config(path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = run_experiment(cfg, Path(tmp) / "run", quiet=True)
    return {"config": path.name, "test_accuracy": round(metrics["test_accuracy"], 4),
            "epochs": metrics["epochs_run"], "train_seconds": round(metrics["train_seconds"], 1),
            "wall_seconds": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads()}


def throughput(model_name: str, params: dict, shape=(1, 28, 28), batch=256, steps=20,
               channels_last: bool = True, bf16: bool = False, device: str = "cpu", compiled: bool = False,
               warm: int = 3) -> dict:
    """Images/second of forward+backward+step on random data (the loader excluded), after `warm`
    steps; on `device`, optionally `torch.compile`d (bench/gpu.py uses it on CUDA)."""
    from visionstudy.models import count_flops, create_model

    torch.manual_seed(0)
    model = create_model(model_name, shape[0], 10, shape[1:], **params)
    flops = count_flops(model, shape)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=layout)
    step_model = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape, device=device).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (batch,), device=device)
    for i in range(steps + warm):
        if i == warm:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(x).float()
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    seconds = time.perf_counter() - start
    ips = steps * batch / seconds
    return {"model": model_name, "input": "x".join(map(str, shape)), "batch": batch, "device": device,
            "compile": compiled, "channels_last": channels_last, "precision": "bf16" if bf16 else "32",
            "images_per_second": round(ips),
            "train_gflops_per_second": round(3 * flops * ips / 1e9, 1)}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """This machine's matrix-multiply rate (FLOP/s) in `dtype`, best of `repeats`, all threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


REPEATS = 2  # timed passes of each kind in `efficiency`


def efficiency(config: Path = ROOT / "examples" / "fashion-mnist-fast.yaml", precision: str = "32",
               steps: int = 40, sets: tuple[str, ...] = ()) -> dict:
    """A Fashion-MNIST config's model trained in `precision` ("32" or "bf16" autocast): achieved
    training FLOP/s as a share of this machine's matmul peak in the same precision, and the share of
    a real training step's time spent outside forward/backward/step (loader, augmentation,
    bookkeeping), measured on the Debian mirror's Fashion-MNIST with the config's augmentation and
    batch size (`sets`: --set overrides)."""
    from visionstudy.data import build_pipeline
    from visionstudy.data.loader import BatchLoader
    from visionstudy.data.prepare import prepare
    from visionstudy.models import count_flops, create_model
    from visionstudy.training.loop import train_one_epoch
    from visionstudy.training.optim import Schedule, build_optimizer
    from visionstudy.validate import load_config

    cfg = load_config(config, list(sets))
    t = cfg.train
    batch = t.batch_size
    data = prepare(cfg.data)
    torch.manual_seed(0)
    c, h, w = data.image_shape
    model = create_model(cfg.model.name, c, data.num_classes, (h, w), **cfg.model.params())
    model = model.to(memory_format=torch.channels_last)
    flops = count_flops(model, data.image_shape)
    opt = build_optimizer(model, t.optimizer)
    sched = Schedule(opt, t.scheduler, 1, (2 * REPEATS + 1) * steps)  # warm-up + the timed passes
    n = steps * batch
    loader = BatchLoader(data.train.images[:n], data.train.labels[:n], batch, mean=data.mean,
                         std=data.std, num_classes=data.num_classes,
                         augment=build_pipeline(cfg.data.augment), shuffle=True, channels_last=True)
    batches = list(loader)
    bf16 = precision == "bf16"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast:
            logits = model(x).float()
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=t.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step_batch()

    def bare() -> float:  # forward/backward/step alone, on batches made beforehand
        start = time.perf_counter()
        for x, y in batches:
            step(x, y)
        return time.perf_counter() - start

    def product() -> float:  # the product's loop: loading, augmenting, normalising, bookkeeping too
        with autocast:  # as Fabric's bf16-mixed does: the forward under autocast
            return train_one_epoch(model, loader, opt, sched, backward=lambda loss: loss.backward(),
                                   label_smoothing=t.label_smoothing).seconds

    model.train()
    for x, y in batches[:3]:
        step(x, y)
    times = [(bare(), product()) for _ in range(REPEATS)]  # alternated, best of each: less noise
    pure, real = min(b for b, _ in times), min(r for _, r in times)
    peak = matmul_peak(dtype=torch.bfloat16 if bf16 else torch.float32)
    ips = steps * batch / real
    return {"config": config.name, "precision": precision, "batch": batch, "threads": torch.get_num_threads(),
            "matmul_peak_gflops": round(peak / 1e9, 1), "train_gflops": round(3 * flops * ips / 1e9, 1),
            "share_of_peak": round(3 * flops * ips / peak, 3), "images_per_second": round(ips),
            "share_outside_model": round(1 - pure / real, 3)}


def study_throughput(workers: int) -> dict:
    """recipe:quick end to end (training, no report) in a fresh runs folder: wall and CPU use."""
    import resource
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "visionstudy", "study", "run", "recipe:quick", "--workers",
                        str(workers), "--runs-dir", tmp, "--quiet", "--no-report"], check=True,
                       capture_output=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"study": "quick", "workers": workers, "wall_seconds": round(wall, 1),
            "cpu_utilisation": round(cpu / wall / (os.cpu_count() or 1), 2)}


def markdown(rows: list[dict]) -> str:
    """One table of the results: a column per key, in order of first appearance."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


THROUGHPUT = {  # example config → (input shape, batch, timed steps)
    "fashion-mnist-fast.yaml": ((1, 28, 28), 256, 20),
    "fashion-mnist-resnet.yaml": ((1, 28, 28), 256, 20),
    "cifar10-fast.yaml": ((3, 32, 32), 512, 4),
}


def pool_order(repeats: int = 3):
    """The fast config's CNN trained with max pooling before its activations (the product's
    training order, models/cnn.py) against the written order, alternating in one process."""
    from visionstudy.models.cnn import CNN
    from visionstudy.validate import load_config

    model = load_config(ROOT / "examples" / "fashion-mnist-fast.yaml").model
    pool_first = CNN.forward_features
    orders = {"as written": lambda self, x: self.features(x), "pool first": pool_first}
    try:
        for repeat in range(repeats):
            for order, forward in orders.items():
                CNN.forward_features = forward  # type: ignore[method-assign]
                for bf16 in (True, False):
                    yield {"repeat": repeat, "order": order, **throughput(
                        model.name, model.params(), batch=128, steps=60 if bf16 else 30, bf16=bf16)}
    finally:
        CNN.forward_features = pool_first  # type: ignore[method-assign]


def fast_cnn():
    """The fast config's task, its prepared Fashion-MNIST and its CNN (channels_last)."""
    from visionstudy.tasks.base import task_of
    from visionstudy.validate import load_config

    cfg = load_config(ROOT / "examples" / "fashion-mnist-fast.yaml")
    task = task_of(cfg)
    data = task.prepare(cfg, None)
    return data, task.build_model(cfg, data).to(memory_format=torch.channels_last)


def eval_batch(repeats: int = 3):
    """Seconds to evaluate Fashion-MNIST's test set (flip TTA, bf16 autocast) with the fast config's
    CNN in batches of 1,024 (the eval_batch_size default) and of 256 (the cap on a CPU,
    tasks/base.py eval_batch), alternating, each after one warm pass."""
    from visionstudy.data.loader import BatchLoader
    from visionstudy.training.loop import evaluate

    data, net = fast_cnn()
    for repeat in range(repeats):
        for batch in (1024, 256):
            loader = BatchLoader(data.test.images, data.test.labels, batch, mean=data.mean, std=data.std,
                                 num_classes=data.num_classes, channels_last=True)
            seconds = []
            for _ in range(2):
                start = time.perf_counter()
                evaluate(net, loader, tta=True, autocast=torch.autocast("cpu", dtype=torch.bfloat16))
                seconds.append(time.perf_counter() - start)
            yield {"repeat": repeat, "batch": batch, "images": len(data.test),
                   "seconds": round(seconds[1], 2)}


def eval_fold(repeats: int = 4):
    """Seconds to evaluate Fashion-MNIST's test set (flip TTA, bf16 autocast, batches of 256) with the
    fast config's CNN as written and with the copy evaluation takes (`Classifier.for_inference`: batch
    norms folded, pooling first), alternating, each after one warm pass, freed memory kept as a run
    keeps it; and how many of the test images the two classify alike (batch norms with random
    statistics)."""
    from visionstudy.data.loader import BatchLoader
    from visionstudy.training.devices import keep_freed_memory

    keep_freed_memory()
    torch.manual_seed(0)
    data, net = fast_cnn()
    net.eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    folded = net.for_inference()
    loader = BatchLoader(data.test.images, data.test.labels, 256, mean=data.mean, std=data.std,
                         num_classes=data.num_classes, channels_last=True)

    @torch.inference_mode()
    def logits(model: torch.nn.Module) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.cat([(model(x).float() + model(x.flip(3)).float()) / 2 for x, _ in loader])

    agree = (logits(net).argmax(1) == logits(folded).argmax(1)).double().mean().item()
    for repeat in range(repeats):
        for name, model in (("as written", net), ("folded", folded)):
            start = time.perf_counter()
            logits(model)
            yield {"repeat": repeat, "model": name, "images": len(data.test),
                   "seconds": round(time.perf_counter() - start, 2), "same_class": round(agree, 4)}


def optimizer_steps(repeats: int = 3, steps: int = 200):
    """Milliseconds per optimizer step over the fast config's CNN parameters (gradients made up):
    each optimizer as `training/optim.py` builds it (fused where torch has the kernel) against torch's
    default multi-tensor update with the same settings, alternating, after 20 warm steps."""
    from visionstudy.config import OptimizerConfig
    from visionstudy.training.devices import keep_freed_memory
    from visionstudy.training.optim import build_optimizer

    keep_freed_memory()
    _, net = fast_cnn()
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    settings = {"sgd": {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
                "adam": {"weight_decay": 5e-4}, "adamw": {"weight_decay": 5e-4}, "adagrad": {}}
    torch_kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                  "adagrad": torch.optim.Adagrad}
    for name, kw in settings.items():
        ours = build_optimizer(net, OptimizerConfig(name=name, lr=1e-3, **kw))
        plain = torch_kind[name](net.parameters(), lr=1e-3, foreach=True, **kw)
        for repeat in range(repeats):
            for how, opt in (("ours (fused)", ours), ("multi-tensor", plain)):
                for _ in range(20):
                    opt.step()
                start = time.perf_counter()
                for _ in range(steps):
                    opt.step()
                yield {"optimizer": name, "repeat": repeat, "update": how,
                       "ms_per_step": round((time.perf_counter() - start) / steps * 1e3, 3)}


def results(what: str):
    """The rows of one benchmark, each yielded as soon as it is measured."""
    if what == "quick":
        yield train_config(ROOT / "examples" / "digits-quick.yaml")
    elif what == "fashion":
        yield train_config(ROOT / "examples" / "fashion-mnist-fast.yaml")
    elif what == "throughput":
        from visionstudy.validate import load_config

        for example, (shape, batch, steps) in THROUGHPUT.items():
            model = load_config(ROOT / "examples" / example).model
            for layout, bf16 in ((False, False), (True, False), (True, True)):
                yield {"config": example, **throughput(model.name, model.params(), shape, batch, steps,
                                                       channels_last=layout, bf16=bf16)}
    elif what == "efficiency":
        yield efficiency(precision="32")
        yield efficiency(precision="bf16")
    elif what == "eval-batch":
        yield from eval_batch()
    elif what == "optimizer":
        yield from optimizer_steps()
    elif what == "eval-fold":
        yield from eval_fold()
    elif what == "pool-order":
        yield from pool_order()
    elif what == "study":
        one, two = study_throughput(1), study_throughput(2)
        yield one
        yield {**two, "speedup": round(one["wall_seconds"] / two["wall_seconds"], 2)}
    else:
        sys.exit(f"unknown benchmark {what!r}: quick, fashion, throughput, efficiency, pool-order, "
                 "eval-batch, eval-fold, optimizer or study")


def main(what: str) -> None:
    os.environ.setdefault("VISIONSTUDY_DATA_DIR", "/usr/share/datasets")
    rows = []
    for row in results(what):
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = ROOT / "bench" / "results" / f"{what}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows))
    print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "quick")
