"""Networks of the book: backbones and per-paper heads.

Wu et al. 2016 (§2.3): :class:`FCRN` (semantic) and :class:`FCRNLocalization` (§2.1 box
regression) on the width-scaled dilated ResNets of :mod:`.backbones`.

Fathi et al. 2017 (§3.2-3.6): :class:`FathiNet`, embedding and seediness heads on the same
trunk, and the pixel similarity σ of Eq. 1 (:mod:`.embedding`).
"""

from .backbones import ScaledResNet, load_imagenet_weights
from .embedding import (
    FATHI_TAUS,
    PYRAMID_SCALES,
    EmbeddingHead,
    FathiConfig,
    FathiNet,
    FathiOutput,
    SeedinessHead,
    distance_threshold,
    log_dissimilarity,
    log_similarity,
    pairwise_sq_distances,
    similarity,
)
from .fcrn import (
    FCRN,
    FCRNConfig,
    FCRNLocalization,
    field_of_view,
    predict_multiview,
    select_class_boxes,
)

__all__ = [
    "FATHI_TAUS",
    "PYRAMID_SCALES",
    "EmbeddingHead",
    "FathiConfig",
    "FathiNet",
    "FathiOutput",
    "SeedinessHead",
    "distance_threshold",
    "log_dissimilarity",
    "log_similarity",
    "pairwise_sq_distances",
    "similarity",
    "FCRN",
    "FCRNConfig",
    "FCRNLocalization",
    "ScaledResNet",
    "field_of_view",
    "load_imagenet_weights",
    "predict_multiview",
    "select_class_boxes",
]
