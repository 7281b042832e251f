"""Networks of the book: backbones and per-paper heads.

Wu et al. 2016 (§2.3): :class:`FCRN` (semantic) and :class:`FCRNLocalization` (§2.1 box
regression) on the width-scaled dilated ResNets of :mod:`.backbones`.

Fathi et al. 2017 (§3.2-3.6): :class:`FathiNet`, embedding and seediness heads on the same
trunk, and the pixel similarity σ of Eq. 1 (:mod:`.embedding`).
Liang et al. 2015 (PFN, §3.1): :class:`DeepLabLargeFOV` on the width-scaled VGG-16 /
AlexNet :class:`VGGTrunk` of :mod:`.vgg`; the instance-level network :class:`PFN` (§3.2) of
:mod:`.pfn`.
:mod:`.crf`: the one dense CRF (mean field as a layer, Krähenbühl & Koltun 2011; CRF-RNN),
reused by Arnab & Torr 2017, PFN and BoxSup: :class:`DenseCRF`, :func:`dense_crf`.
:mod:`.weights`: the registry of torchvision's ImageNet weights (URL and published hash),
verified and cached in ``$TORCH_HOME``.
"""

from .backbones import ScaledResNet, load_imagenet_weights
from .crf import DenseCRF, HigherOrder, dense_crf, scale_position_widths
from .detection_potential import DetectionPotential
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
from .pfn import PFN, PFNConfig, coordinate_maps
from .vgg import DeepLabLargeFOV, VGGTrunk, largefov_dilation, load_vgg_imagenet_weights, receptive_field
from .weights import IMAGENET_WEIGHTS, WeightsUnavailableError

__all__ = [
    "IMAGENET_WEIGHTS",
    "WeightsUnavailableError",
    "DetectionPotential",
    "HigherOrder",
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
    "DeepLabLargeFOV",
    "DenseCRF",
    "FCRN",
    "FCRNConfig",
    "FCRNLocalization",
    "PFN",
    "PFNConfig",
    "ScaledResNet",
    "VGGTrunk",
    "coordinate_maps",
    "dense_crf",
    "field_of_view",
    "largefov_dilation",
    "load_imagenet_weights",
    "load_vgg_imagenet_weights",
    "predict_multiview",
    "receptive_field",
    "scale_position_widths",
    "select_class_boxes",
]
