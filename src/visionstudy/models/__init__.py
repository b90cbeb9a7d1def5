"""Models: a registry, `create_model`, the MLP, CNN and ResNet families, and torchvision's
classifiers for transfer learning."""

from visionstudy.models import cnn, deepsets, mlp, pretrained, resnet  # noqa: F401  (registers the built-in models)
from visionstudy.models.base import (
    MODELS,
    Classifier,
    Params,
    check_model_params,
    count_flops,
    count_params,
    create_model,
    list_models,
    model_kind,
    register_model,
    validate_params,
)

__all__ = [
    "MODELS", "Classifier", "Params", "check_model_params", "count_flops", "count_params",
    "create_model", "list_models", "model_kind", "register_model", "validate_params",
]
