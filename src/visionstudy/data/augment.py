"""Training augmentations that run on whole batches as tensor ops, with per-sample randomness.

Each one takes float images (N, C, H, W) in 0..1 on any device, labels (N,) or soft targets
(N, K), and a `torch.Generator` on the same device, and returns new (images, targets). They run
before normalisation, so the fill value 0 is black, as in torchvision's padding. torchvision's
policies (AutoAugment, RandAugment, TrivialAugment) work per image on uint8 (`on_uint8 = True`).
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any, ClassVar

from visionstudy.errors import ConfigError
from visionstudy.registry import Registry

if TYPE_CHECKING:  # torch is imported where a batch is augmented: checking a config needs none
    import torch


class BatchAugment:
    """Base class. Constructors store validated parameters and do nothing else."""

    on_uint8: ClassVar[bool] = False  # runs on uint8 images before normalisation
    mixes_labels: ClassVar[bool] = False  # needs soft targets (N, K)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


AUGMENTATIONS: Registry[type[BatchAugment]] = Registry("augmentation")


def list_augmentations() -> list[str]:
    return AUGMENTATIONS.names()


def _rand(n: int, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    import torch

    return torch.rand(n, generator=gen, device=x.device)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {message}")


def shift_batch(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Translate each image by its own (dy, dx) pixels (|d| <= pad), filling with zeros."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(h, device=x.device)[None, :] + pad - dy[:, None]).long()  # (N, H)
    cols = (torch.arange(w, device=x.device)[None, :] + pad - dx[:, None]).long()  # (N, W)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


@AUGMENTATIONS.register("crop")
class RandomCrop(BatchAugment):
    """Random crop after zero padding (torchvision RandomCrop(size, padding))."""

    def __init__(self, padding: int = 4) -> None:
        _check(isinstance(padding, int) and padding >= 1, "padding", "an integer >= 1 (pixels)")
        self.padding = padding

    def __call__(self, x, y, gen):
        import torch

        n, p = len(x), self.padding
        dy = torch.randint(-p, p + 1, (n,), generator=gen, device=x.device)
        dx = torch.randint(-p, p + 1, (n,), generator=gen, device=x.device)
        return shift_batch(x, dy, dx, p), y


@AUGMENTATIONS.register("flip")
class HorizontalFlip(BatchAugment):
    """Mirror left-right with probability p."""

    def __init__(self, p: float = 0.5) -> None:
        _check(0 <= p <= 1, "p", "a probability in [0, 1]")
        self.p = p

    def __call__(self, x, y, gen):
        import torch

        mask = (_rand(len(x), x, gen) < self.p)[:, None, None, None]
        return torch.where(mask, x.flip(3), x), y


@AUGMENTATIONS.register("translate")
class Translate(BatchAugment):
    """Shift by up to `fraction` of the width and height (Keras width/height_shift_range)."""

    def __init__(self, fraction: float = 0.1) -> None:
        _check(0 < fraction < 1, "fraction", "a share of the image size in (0, 1)")
        self.fraction = fraction

    def __call__(self, x, y, gen):
        import torch

        n, _, h, w = x.shape
        py, px = max(1, round(self.fraction * h)), max(1, round(self.fraction * w))
        dy = torch.randint(-py, py + 1, (n,), generator=gen, device=x.device)
        dx = torch.randint(-px, px + 1, (n,), generator=gen, device=x.device)
        return shift_batch(x, dy, dx, max(py, px)), y


class Affine(BatchAugment):
    """One random affine warp per image (bilinear, zero fill): rotation, shear, zoom."""

    def matrices(self, n: int, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x, y, gen):
        import torch.nn.functional as F

        theta = self.matrices(len(x), x, gen).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False), y


def _affine(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    import torch

    zero = torch.zeros_like(a)
    return torch.stack([torch.stack([a, b, zero], 1), torch.stack([c, d, zero], 1)], 1)


@AUGMENTATIONS.register("rotate")
class Rotate(Affine):
    """Rotate by a uniform angle in [-degrees, degrees]."""

    def __init__(self, degrees: float = 15.0) -> None:
        _check(0 < degrees <= 180, "degrees", "an angle in (0, 180]")
        self.degrees = degrees

    def matrices(self, n, x, gen):
        t = (_rand(n, x, gen) * 2 - 1) * math.radians(self.degrees)
        return _affine(t.cos(), -t.sin(), t.sin(), t.cos())


@AUGMENTATIONS.register("shear")
class Shear(Affine):
    """Horizontal shear (x' = x + s*y) by a uniform factor s in [-factor, factor], or by a uniform
    angle in [-degrees, degrees] (Keras `shear_range` is an angle in degrees: s = tan(angle))."""

    def __init__(self, factor: float | None = None, degrees: float | None = None) -> None:
        _check(factor is None or degrees is None, "factor", "give factor or degrees, not both")
        if degrees is not None:
            _check(0 < degrees < 90, "degrees", "an angle in (0, 90)")
            factor = math.tan(math.radians(degrees))
        factor = 0.2 if factor is None else factor
        _check(0 < factor <= 1, "factor", "a shear factor in (0, 1]")
        self.factor = factor

    def matrices(self, n, x, gen):
        import torch

        s = (_rand(n, x, gen) * 2 - 1) * self.factor
        one = torch.ones_like(s)
        return _affine(one, s, torch.zeros_like(s), one)


@AUGMENTATIONS.register("zoom")
class Zoom(Affine):
    """Scale by a uniform factor in [1 - amount, 1 + amount] (Keras zoom_range)."""

    def __init__(self, amount: float = 0.2) -> None:
        _check(0 < amount < 1, "amount", "a zoom range in (0, 1)")
        self.amount = amount

    def matrices(self, n, x, gen):
        import torch

        inv = 1 / (1 + (_rand(n, x, gen) * 2 - 1) * self.amount)  # grid scale = 1 / zoom
        zero = torch.zeros_like(inv)
        return _affine(inv, zero, zero, inv)


def box_mask(
    n: int, h: int, w: int, bh: torch.Tensor, bw: torch.Tensor, x: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """(N, 1, H, W) boolean masks of one box per image, of size (bh, bw), centred at random."""
    import torch

    cy = (_rand(n, x, gen) * h).floor()
    cx = (_rand(n, x, gen) * w).floor()
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_y = (rows >= (cy - bh // 2)[:, None]) & (rows < (cy - bh // 2 + bh)[:, None])
    in_x = (cols >= (cx - bw // 2)[:, None]) & (cols < (cx - bw // 2 + bw)[:, None])
    return (in_y[:, :, None] & in_x[:, None, :])[:, None]


@AUGMENTATIONS.register("cutout")
class Cutout(BatchAugment):
    """Zero one square of `size` pixels per image (DeVries & Taylor), may overlap the border."""

    def __init__(self, size: int = 8) -> None:
        _check(isinstance(size, int) and size >= 1, "size", "an integer >= 1 (pixels)")
        self.size = size

    def __call__(self, x, y, gen):
        import torch

        n, _, h, w = x.shape
        side = torch.full((n,), float(self.size), device=x.device)
        return x.masked_fill(box_mask(n, h, w, side, side, x, gen), 0.0), y


@AUGMENTATIONS.register("erasing")
class RandomErasing(BatchAugment):
    """Random erasing (Zhong et al.): with probability p, zero a box of random area and shape."""

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3)) -> None:
        _check(0 <= p <= 1, "p", "a probability in [0, 1]")
        _check(0 < scale[0] <= scale[1] < 1, "scale", "[min, max] area shares in (0, 1)")
        _check(0 < ratio[0] <= ratio[1], "ratio", "[min, max] aspect ratios > 0")
        self.p, self.scale, self.ratio = p, tuple(scale), tuple(ratio)

    def __call__(self, x, y, gen):
        import torch

        n, _, h, w = x.shape
        area = (self.scale[0] + _rand(n, x, gen) * (self.scale[1] - self.scale[0])) * h * w
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(lo + _rand(n, x, gen) * (hi - lo))
        bh = (area * aspect).sqrt().round().clamp(1, h)
        bw = (area / aspect).sqrt().round().clamp(1, w)
        mask = box_mask(n, h, w, bh, bw, x, gen) & (_rand(n, x, gen) < self.p)[:, None, None, None]
        return x.masked_fill(mask, 0.0), y


def _mix_weights(alpha: float, n: int, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Beta(alpha, alpha) samples drawn from the generator (torch's Beta takes no generator)."""
    import torch

    g1 = torch._standard_gamma(torch.full((n,), alpha, device=x.device), generator=gen)
    g2 = torch._standard_gamma(torch.full((n,), alpha, device=x.device), generator=gen)
    return g1 / (g1 + g2)


@AUGMENTATIONS.register("mixup")
class Mixup(BatchAugment):
    """Blend each image and its soft target with another from the batch (Zhang et al.)."""

    mixes_labels = True

    def __init__(self, alpha: float = 0.2) -> None:
        _check(alpha > 0, "alpha", "the Beta distribution parameter, > 0")
        self.alpha = alpha

    def __call__(self, x, y, gen):
        import torch

        n = len(x)
        lam = _mix_weights(self.alpha, n, x, gen)
        perm = torch.randperm(n, generator=gen, device=x.device)
        lx = lam.to(x.dtype)[:, None, None, None]
        return lx * x + (1 - lx) * x[perm], lam[:, None] * y + (1 - lam[:, None]) * y[perm]


@AUGMENTATIONS.register("cutmix")
class CutMix(BatchAugment):
    """Paste a box from another image of the batch; targets mix by pasted area (Yun et al.)."""

    mixes_labels = True

    def __init__(self, alpha: float = 1.0) -> None:
        _check(alpha > 0, "alpha", "the Beta distribution parameter, > 0")
        self.alpha = alpha

    def __call__(self, x, y, gen):
        import torch

        n, _, h, w = x.shape
        lam = _mix_weights(self.alpha, n, x, gen)
        side = (1 - lam).sqrt()
        mask = box_mask(n, h, w, (side * h).round(), (side * w).round(), x, gen)
        perm = torch.randperm(n, generator=gen, device=x.device)
        kept = 1 - mask.float().mean((1, 2, 3))  # exact share after clipping at the border
        return torch.where(mask, x[perm], x), kept[:, None] * y + (1 - kept[:, None]) * y[perm]


class TorchvisionPolicy(BatchAugment):
    """torchvision's learned/random policies, applied image by image on uint8."""

    on_uint8 = True

    def make(self) -> Any:
        raise NotImplementedError

    def __call__(self, x, y, gen):
        import torch

        policy = self.make()
        # torchvision draws from the global RNG: seed it from our generator, inside a fork, so the
        # result repeats under the loader's seed and the global stream is left untouched
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=x.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.stack([policy(img) for img in x]), y


@AUGMENTATIONS.register("autoaugment")
class AutoAugment(TorchvisionPolicy):
    """torchvision AutoAugment with the policy learned on 'cifar10', 'imagenet' or 'svhn'."""

    def __init__(self, policy: str = "cifar10") -> None:
        _check(policy in ("cifar10", "imagenet", "svhn"), "policy", "cifar10, imagenet or svhn")
        self.policy = policy

    def make(self):
        from torchvision.transforms import v2

        return v2.AutoAugment(getattr(v2.AutoAugmentPolicy, self.policy.upper()))


@AUGMENTATIONS.register("randaugment")
class RandAugment(TorchvisionPolicy):
    """torchvision RandAugment: `num_ops` random operations of strength `magnitude` (0..30)."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9) -> None:
        _check(1 <= num_ops <= 10, "num_ops", "an integer in 1..10")
        _check(0 <= magnitude <= 30, "magnitude", "an integer in 0..30")
        self.num_ops, self.magnitude = num_ops, magnitude

    def make(self):
        from torchvision.transforms import v2

        return v2.RandAugment(num_ops=self.num_ops, magnitude=self.magnitude)


@AUGMENTATIONS.register("trivialaugment")
class TrivialAugment(TorchvisionPolicy):
    """torchvision TrivialAugmentWide: one random operation of random strength per image."""

    def make(self):
        from torchvision.transforms import v2

        return v2.TrivialAugmentWide()


def build_augment(name: str, params: dict[str, Any], field: str = "data.augment") -> BatchAugment:
    """Construct one augmentation; unknown names, unknown or bad parameters name the field."""
    cls = AUGMENTATIONS.get(name, f"{field}.name")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{field}: {name} has no parameter {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )
    try:
        return cls(**params)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{field}.{exc}" if ":" in str(exc) else f"{field}: {exc}") from None


class Pipeline:
    """The configured augmentations, in order; uint8 policies first, then the batch ops."""

    def __init__(self, ops: list[BatchAugment]) -> None:
        self.uint8_ops = [op for op in ops if op.on_uint8]
        self.float_ops = [op for op in ops if not op.on_uint8]
        self.mixes_labels = any(op.mixes_labels for op in ops)

    def __bool__(self) -> bool:
        return bool(self.uint8_ops or self.float_ops)


def build_pipeline(specs: list[Any]) -> Pipeline:
    """From `DataConfig.augment` entries ({name, **params})."""
    ops = []
    for i, spec in enumerate(specs):
        params = dict(spec.model_extra or {})
        ops.append(build_augment(spec.name, params, f"data.augment[{i}]"))
    return Pipeline(ops)
