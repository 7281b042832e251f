"""Data layer: readers for VOC 2012, SBD, Cityscapes, PASCAL-Context and COCO, the
synthetic twin written in their formats, joint transforms and per-pixel training targets.

Light to import: torch-dependent parts (readers, transforms) load on first use.
"""

from __future__ import annotations

from importlib import import_module

from .errors import (ChecksumError, CorruptFileError, DataError, LabelRangeError, MissingAnnotationError,
                     MissingAnnotationWarning, MissingDatasetError, MissingFileError, MissingSplitError,
                     SizeMismatchError, UnknownCategoryWarning)
from .sample import Sample, boxes_from_instances

_LAZY = {
    "open_dataset": "registry", "dataset_fingerprint": "registry", "NAMES": "registry",
    "dataset_label": "registry", "data_source_summary": "registry",
    "train_transforms": "transforms", "eval_transforms": "transforms", "collate": "transforms",
    "generate": "synthetic", "generate_all": "synthetic", "render": "synthetic", "twin_root": "synthetic",
    "PRESETS": "synthetic",
}

__all__ = ["Sample", "boxes_from_instances", "DataError", "MissingDatasetError", "MissingSplitError",
           "CorruptFileError", "SizeMismatchError", "LabelRangeError", "ChecksumError", "MissingAnnotationError",
           "MissingAnnotationWarning", "MissingFileError", "UnknownCategoryWarning", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
