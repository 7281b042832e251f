"""Networks of the book: backbones and per-paper heads.

Wu et al. 2016 (§2.3): :class:`FCRN` (semantic) and :class:`FCRNLocalization` (§2.1 box
regression) on the width-scaled dilated ResNets of :mod:`.backbones`.

:mod:`.crf`: the one dense CRF (mean field as a layer, Krähenbühl & Koltun 2011; CRF-RNN),
reused by Arnab & Torr 2017, PFN and BoxSup: :class:`DenseCRF`, :func:`dense_crf`.
"""

from .backbones import ScaledResNet, load_imagenet_weights
from .crf import DenseCRF, dense_crf, scale_position_widths
from .fcrn import (
    FCRN,
    FCRNConfig,
    FCRNLocalization,
    field_of_view,
    predict_multiview,
    select_class_boxes,
)

__all__ = [
    "DenseCRF",
    "FCRN",
    "FCRNConfig",
    "FCRNLocalization",
    "ScaledResNet",
    "dense_crf",
    "field_of_view",
    "load_imagenet_weights",
    "predict_multiview",
    "scale_position_widths",
    "select_class_boxes",
]
