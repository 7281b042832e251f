"""Networks of the book: backbones and per-paper heads.

Wu et al. 2016 (§2.3): :class:`FCRN` (semantic) and :class:`FCRNLocalization` (§2.1 box
regression) on the width-scaled dilated ResNets of :mod:`.backbones`.
"""

from .backbones import ScaledResNet, load_imagenet_weights
from .fcrn import (
    FCRN,
    FCRNConfig,
    FCRNLocalization,
    field_of_view,
    predict_multiview,
    select_class_boxes,
)

__all__ = [
    "FCRN",
    "FCRNConfig",
    "FCRNLocalization",
    "ScaledResNet",
    "field_of_view",
    "load_imagenet_weights",
    "predict_multiview",
    "select_class_boxes",
]
