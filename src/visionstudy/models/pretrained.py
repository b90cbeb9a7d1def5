"""Transfer learning: any torchvision classifier by name, with ImageNet weights from torchvision's
weights API (its download checksums and normalisation) or from a local weights file.

    model:
      name: torchvision
      arch: resnet18          # any name of torchvision.models.list_models(module=torchvision.models)
      weights: DEFAULT        # DEFAULT / IMAGENET1K_V1 / ... or a path to a local .pth state dict
      mode: fine-tune         # linear-probe | fine-tune | from-scratch
      backbone_lr_factor: 0.1 # fine-tune: the backbone learns at lr × this
      resize: 224             # upsample inputs (null: keep the dataset's size)
      stem: imagenet          # cifar: ResNet stem as a 3x3 stride-1 conv without max-pool

Files are read with `torch.load(weights_only=True)`: a pickle holding anything but tensors is
refused. Grayscale inputs are repeated to three channels. With weights, inputs are normalised
with the weights' own ImageNet mean and std instead of the dataset's (`input_stats`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from visionstudy.errors import CheckpointError, ConfigError
from visionstudy.models.base import Classifier
from visionstudy.models.registry import TorchvisionParams


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def weights_enum(arch: str) -> Any:
    import torchvision

    return torchvision.models.get_model_weights(arch)


def is_path(weights: str) -> bool:
    return "/" in weights or "\\" in weights or weights.endswith((".pth", ".pt", ".bin"))


def resolve_weights(arch: str, name: str) -> Any:
    enum = weights_enum(arch)
    try:
        return enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        known = ", ".join(["DEFAULT", *(w.name for w in enum)])
        raise ConfigError(f"model.weights {name!r}: {arch} has no such weights; use one of {known} "
                          "or a path to a local weights file") from None


def download_state(arch: str, weights: Any) -> dict[str, torch.Tensor]:
    """The weights' state dict from torch hub's cache, downloaded there first if missing with
    torchvision's checksum (the hash prefix in the file name), then read weights-only."""
    import re

    target = hub_file(weights)
    if not target.is_file():
        found = re.search(r"-([a-f0-9]+)\.", target.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(weights.url, str(target), found.group(1) if found else None,
                                           progress=False)
        except Exception as exc:  # urllib / socket / hash errors all mean: no usable file
            target.unlink(missing_ok=True)
            raise ConfigError(
                f"model.weights: cannot download the {weights} weights of {arch} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}). Offline? Put the file "
                f"{weights.url} at {target}, or set model.weights to a local copy's path"
            ) from None
    return read_state_file(target)


def hub_file(weights: Any) -> Path:
    """Where torch hub keeps a torchvision weights file once downloaded (its cache, shared by runs)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def weights_not_on_disk(p: TorchvisionParams) -> str | None:
    """What a run would do for its weights, without fetching them (a dry run says it): None when
    they are on disk or it uses none; else that the first run downloads them (which file, from
    where, into which folder), or the error it would stop with."""
    if not p.weights:
        return None
    if is_path(p.weights):
        path = Path(p.weights).expanduser()
        return None if path.is_file() else f"model.weights: {path}: no such file"
    weights = resolve_weights(p.arch, p.weights)
    target = hub_file(weights)
    if target.is_file():
        return None
    return (f"model.weights {p.weights} of {p.arch}: not on disk (looked in torch hub's cache, "
            f"{target.parent}); the first run downloads {target.name} from {weights.url.rsplit('/', 1)[0]} "
            f"(without internet, put that file there, or set model.weights to a local copy's path)")


def fetch_weights(p: TorchvisionParams) -> None:
    """Make sure the weights a config names are on this machine (downloading them if needed), so a
    study stops with one clear error before its workers start rather than once per run."""
    if not p.weights:
        return
    if is_path(p.weights):
        read_state_file(Path(p.weights).expanduser())
    else:
        download_state(p.arch, resolve_weights(p.arch, p.weights))


def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision-format state dict (or a {'state_dict'|'model': ...} wrapper), weights only."""
    from visionstudy.training.checkpoint import safe_load

    if not path.is_file():
        raise ConfigError(f"model.weights: {path}: no such file")
    try:
        state = safe_load(path, "cpu", "weights")
    except CheckpointError as exc:
        raise ConfigError(f"model.weights: {exc}") from None
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        state = state.get("state_dict", state.get("model", state))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.weights: {path}: not a state dict of tensors")
    return state


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ConfigError("model.arch: this torchvision model has no linear classifier to replace")
    return found[-1]


def replace_module(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


class Pretrained(Classifier):
    own_init = True  # keep torchvision's initialisation and the loaded weights

    def __init__(self, in_channels: int, num_classes: int, p: TorchvisionParams):
        super().__init__()
        import torchvision

        if p.arch not in classification_models():
            raise ConfigError(f"model.arch {p.arch!r}: not a torchvision classification model; e.g. "
                              "resnet18, resnet50, mobilenet_v3_small, efficientnet_b0, vgg11_bn")
        if p.mode == "from-scratch" and p.weights:
            raise ConfigError("model.weights: from-scratch trains new weights; set model.weights: null")
        if p.mode != "from-scratch" and not p.weights:
            raise ConfigError(f"model.weights: {p.mode} needs pretrained weights (e.g. DEFAULT or a path)")
        net = torchvision.models.get_model(p.arch, weights=None)
        self.input_stats: tuple[list[float], list[float]] | None = None
        if p.weights:
            meta_weights = weights_enum(p.arch).DEFAULT
            if is_path(p.weights):
                state = read_state_file(Path(p.weights).expanduser())
            else:
                meta_weights = resolve_weights(p.arch, p.weights)
                state = download_state(p.arch, meta_weights)
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                detail = " ".join(str(exc).split())[:300]
                raise ConfigError(f"model.weights {p.weights}: does not fit {p.arch} ({detail})") from None
            tf = meta_weights.transforms()
            mean, std = list(tf.mean), list(tf.std)
            if in_channels == 1:
                mean, std = [sum(mean) / 3], [sum(std) / 3]
            if p.normalize == "weights":
                self.input_stats = (mean, std)
        if p.stem == "cifar":
            if not hasattr(net, "conv1") or not hasattr(net, "maxpool"):
                raise ConfigError(f"model.stem: cifar applies to ResNets only, not {p.arch}")
            net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        name, linear = last_linear(net)
        replace_module(net, name, nn.Identity())
        self.features = net
        self.num_features = linear.in_features
        self.head = nn.Linear(linear.in_features, num_classes)
        self.in_channels, self.resize, self.mode = in_channels, p.resize, p.mode
        self.backbone_lr_factor = p.backbone_lr_factor
        if p.mode == "linear-probe":
            self.features.requires_grad_(False)

    def train(self, mode: bool = True) -> Pretrained:
        super().train(mode)
        if self.mode == "linear-probe":
            self.features.eval()  # a frozen backbone keeps its batch-norm statistics
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return self.features(x)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: the backbone at lr × backbone_lr_factor, the new head at lr."""
        backbone = [p for p in self.features.parameters() if p.requires_grad]
        groups = [{"params": list(self.head.parameters()), "lr": lr}]
        if backbone:
            groups.insert(0, {"params": backbone, "lr": lr * self.backbone_lr_factor})
        return groups


def build_torchvision(in_channels: int, num_classes: int, size: tuple[int, int],
                      p: TorchvisionParams) -> Pretrained:
    return Pretrained(in_channels, num_classes, p)
