"""Datasets, splits, augmentation and batch loading (the loaders, in `data.loader`, are the one
part that imports torch: listing and checking datasets does not)."""

from visionstudy.data import sources as _sources  # noqa: F401  (registers the built-in datasets)
from visionstudy.data.augment import (
    AUGMENTATIONS,
    BatchAugment,
    Pipeline,
    build_pipeline,
    list_augmentations,
)
from visionstudy.data.base import (
    DATASETS,
    DatasetSource,
    RawDataset,
    Split,
    fetch,
    get_source,
    list_datasets,
    load_raw,
    register_dataset,
)
from visionstudy.data.prepare import (
    PreparedData,
    channel_stats,
    kfold_indices,
    prepare,
    select_classes,
    stratified_split,
)

__all__ = [
    "AUGMENTATIONS", "DATASETS", "BatchAugment", "DatasetSource", "Pipeline",
    "PreparedData", "RawDataset", "Split", "build_pipeline", "channel_stats", "fetch", "get_source",
    "kfold_indices", "list_augmentations", "list_datasets", "load_raw", "prepare",
    "register_dataset", "select_classes", "stratified_split",
]
