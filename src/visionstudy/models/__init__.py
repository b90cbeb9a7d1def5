"""Models: a registry (torch-free: a config is checked without importing torch), `create_model`,
the MLP, CNN and ResNet families, and torchvision's classifiers for transfer learning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from visionstudy.models.registry import (
    MODELS,
    Params,
    list_models,
    model_kind,
    register_model,
    validate_params,
)

if TYPE_CHECKING:
    from visionstudy.models.base import Classifier, count_flops, count_params, create_model

__all__ = [
    "MODELS", "Classifier", "Params", "count_flops", "count_params",
    "create_model", "list_models", "model_kind", "register_model", "validate_params",
]
NEED_TORCH = ("Classifier", "count_flops", "count_params", "create_model")


def __getattr__(name: str) -> Any:
    """What builds or measures a network comes with torch, on first use."""
    if name in NEED_TORCH:
        from visionstudy.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'visionstudy.models' has no attribute {name!r}")
